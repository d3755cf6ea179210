"""The wheel: built from the sources, installed away from the checkout, it imports cheaply, computes,
explains (``python -m tconv``) and finds the benchmark layer list it ships as package data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = textwrap.dedent("""
    import json, sys
    import tconv
    loaded = sorted(m for m in ("numba", "torch", "onnx", "onnxruntime", "jax", "flax", "matplotlib", "dask")
                    if m in sys.modules)
    import numpy as np
    from tconv import bench
    X = np.array([[[[0., 1.], [2., 3.]]]])
    print(json.dumps({
        "file": tconv.__file__,
        "loaded_by_import": loaded,
        "d2l": tconv.conv_transpose(X, X, stride=2)[0, 0].tolist(),
        "layers": len(bench.load_layers()),
        "layer_file": str(bench.DEFAULT_LAYERS),
        "version": tconv.__version__,
    }))
""")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources (the checkout is left as it is), installed into a
    folder of its own without dependencies (the test venv's numpy and numba serve it)."""
    base = tmp_path_factory.mktemp("wheel")
    sources = base / "sources"
    sources.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, sources / name)
    shutil.copytree(ROOT / "src", sources / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.nbi", "*.nbc"))
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(base / "dist"), str(sources)], check=True, env=env, cwd=base,
                   capture_output=True)
    wheels = list((base / "dist").glob("tconv-*.whl"))
    assert len(wheels) == 1, wheels
    target = base / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheels[0])],
                   check=True, env=env, cwd=base, capture_output=True)
    return target


def _python(target: Path, *args: str) -> str:
    """The test venv's Python, from a folder outside the checkout, finding tconv in ``target`` first."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    env["PYTHONPATH"] = str(target)
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          cwd=target.parent, check=True)
    return done.stdout


def test_the_installed_wheel_imports_computes_and_finds_its_data(installed):
    got = json.loads(_python(installed, "-c", CHECK))
    assert Path(got["file"]).is_relative_to(installed)  # the wheel's copy, not the checkout's
    assert got["loaded_by_import"] == []  # none of the heavy optional libraries, nor numba
    assert got["d2l"] == [[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]]  # D2L Fig. 14.10.2
    assert got["layers"] == 14
    assert Path(got["layer_file"]).is_relative_to(installed)


def test_python_m_tconv_explains(installed):
    out = _python(installed, "-m", "tconv", "explain", "--stride", "2", "--color", "never")
    tail = out[out.index("Output y (1, 4, 4)"):]
    for row in ("0 0 0 1", "0 0 2 3", "0 2 0 3", "4 6 6 9"):
        assert row in tail


def test_the_version_is_stated_once_and_the_types_ship(installed):
    """pyproject.toml takes the version from tconv.__version__; the wheel's metadata says the same and
    it carries py.typed, so type checkers read tconv's own hints."""
    got = json.loads(_python(installed, "-c", CHECK))
    info = next(installed.glob("tconv-*.dist-info"))
    assert f"\nVersion: {got['version']}\n" in (info / "METADATA").read_text()
    assert info.name == f"tconv-{got['version']}.dist-info"
    assert (installed / "tconv" / "py.typed").is_file()
    text = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in text and "\nversion =" not in text.split("[tool.setuptools.dynamic]")[0]
