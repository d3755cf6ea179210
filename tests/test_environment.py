"""The environment tconv runs in: a dask without the distributed released with it gets a clear error
naming the versions and the fix (tconv.scale.run.require_distributed, ``tconv apply``, ``tconv bench
--dask``); requirements.lock pins a version of every requirement pyproject.toml declares, inside its
range.

The broken pair that turned main red (the index served dask 2026.11.0 and distributed only up to
2026.8.0, so pip paired dask 2026.11.0 with distributed 2021.4.1) is faked with ``.dist-info`` metadata
first on ``sys.path``: ``importlib.metadata`` then reports those versions and dask's requirements, as
pip would have left them.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from tconv import cli

ROOT = Path(__file__).resolve().parents[1]
FIX = "pip install --upgrade 'tconv[dask]' (in a checkout of tconv: pip install --upgrade '.[dask]')"

pytest.importorskip("dask")
run = pytest.importorskip("tconv.scale.run")


def fake_distributions(path: Path, **versions: str | None) -> None:
    """``name-version.dist-info`` folders in ``path``; dask's declares the distributed extra of a real
    dask release (``distributed==<dask's version>``)."""
    for name, version in versions.items():
        info = path / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        if name == "dask":
            lines += ["Provides-Extra: distributed",
                      f'Requires-Dist: distributed=={version}; extra == "distributed"',
                      'Requires-Dist: numpy>=1.24; extra == "array"']
        (info / "METADATA").write_text("\n".join(lines) + "\n")


@pytest.fixture
def mismatched(tmp_path, monkeypatch):
    """dask 2026.11.0 beside distributed 2021.4.1, as pip paired them."""
    fake_distributions(tmp_path / "site", dask="2026.11.0", distributed="2021.4.1")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert metadata.version("dask") == "2026.11.0"


def test_a_matching_pair_passes():
    run.require_distributed()
    wanted = run._distributed_wanted_by_dask()
    assert wanted is not None and wanted.specifier.contains(metadata.version("distributed"))
    assert not wanted.specifier.contains("2021.4.1")


def test_the_mismatch_names_both_versions_and_the_fix(mismatched):
    with pytest.raises(run.DependencyError) as caught:
        run.require_distributed("tconv apply")
    message = str(caught.value)
    assert message == ("tconv apply needs the distributed released with dask; found dask 2026.11.0, "
                       "distributed 2021.4.1, but dask 2026.11.0 works with distributed==2026.11.0. "
                       f"Fix: {FIX}")
    assert isinstance(caught.value, ImportError)  # what `except ImportError` around extras expects


def test_connect_checks_before_starting_a_cluster(mismatched):
    with pytest.raises(run.DependencyError, match="found dask 2026.11.0, distributed 2021.4.1"), \
            run.connect(workers=1, processes=False):
        pytest.fail("a cluster started")  # pragma: no cover


def test_a_missing_distributed(monkeypatch):
    real = metadata.version

    def version(name):
        if name == "distributed":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", version)
    with pytest.raises(run.DependencyError) as caught:
        run.require_distributed()
    assert str(caught.value) == (f"a dask cluster needs dask and distributed; found dask "
                                 f"{real('dask')}, distributed (not installed). Fix: {FIX}")


def test_a_distributed_that_does_not_import(monkeypatch):
    # the versions match, but the import fails all the same (here: hidden from the import system)
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(run.DependencyError, match=r"a dask cluster: distributed does not import \(") \
            as caught:
        run.require_distributed()
    assert FIX in str(caught.value) and isinstance(caught.value.__cause__, ImportError)


def test_tconv_apply_says_so_and_writes_nothing(mismatched, tmp_path, monkeypatch, capsys):
    zarr = pytest.importorskip("zarr")
    monkeypatch.chdir(tmp_path)
    zarr.create_array("x.zarr", shape=(1, 2, 4, 4), chunks=(1, 2, 2, 2), dtype="f4")[...] = 1
    np.save("w.npy", np.ones((2, 1, 3, 3), np.float32))
    code = cli.main(["apply", "--input", "x.zarr", "--weight", "w.npy", "--output", "y.zarr",
                     "--workers", "1", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 2
    assert err == ("tconv: a dask cluster needs the distributed released with dask; found dask "
                   "2026.11.0, distributed 2021.4.1, but dask 2026.11.0 works with "
                   f"distributed==2026.11.0. Fix: {FIX}\n")
    assert not (tmp_path / "y.zarr").exists()


def test_bench_dask_says_so(mismatched, capsys):
    assert cli.main(["bench", "--dask", "--list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tconv: bench --dask needs the distributed released with dask; found dask "
                          "2026.11.0, distributed 2021.4.1") and err.endswith(f"Fix: {FIX}\n")


def test_other_import_errors_keep_their_traceback(monkeypatch):
    def broken(args):
        raise ImportError("a defect, not an environment")

    monkeypatch.setattr(cli, "cmd_shape", broken)
    with pytest.raises(ImportError, match="a defect"):
        cli.main(["shape", "--input-size", "4", "--kernel-size", "3"])


# --- the lock -----------------------------------------------------------------------------------

def locked() -> dict[str, str]:
    """requirements.lock as {normalised name: version}."""
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: not a pin: {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def declared() -> list[str]:
    """Every requirement in pyproject.toml: the dependencies and every extra's."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 on: the project's environments
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *(r for extra in project["optional-dependencies"].values()
                                        for r in extra)]


def test_the_lock_pins_every_requirement_inside_its_range():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = locked()
    for line in declared():
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name == "tconv":  # an extra naming other extras of tconv's
            continue
        assert name in pins, f"requirements.lock has no {name} (make lock)"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"requirements.lock pins {name}=={pins[name]}, outside pyproject.toml's {line!r} (make lock)"
        for extra in requirement.extras:  # e.g. dask[array,distributed]: what the extra brings is pinned
            for needed in metadata.requires(requirement.name) or ():
                wanted = Requirement(needed)
                if wanted.marker is not None and wanted.marker.evaluate({"extra": extra}):
                    assert canonicalize_name(wanted.name) in pins, f"{line}: {wanted.name} is not locked"


def test_the_lock_pins_the_dask_pair_and_torch_s_cpu_build():
    pins = locked()
    assert pins["dask"] == pins["distributed"]
    assert pins["torch"] == "2.13.0+cpu"
    assert not [name for name in pins if name.startswith(("nvidia-", "triton"))]  # no CUDA build
