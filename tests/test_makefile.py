"""``make test`` without Chromium: installs it as root or with passwordless sudo, else says how and
lets the browser tests skip; as root a missing browser must fail them (TCONV_REQUIRE_BROWSER=1).

make runs with the virtualenv targets taken as built (``-o``) and ``PY=echo``, so nothing is
installed and no test runs; ``sudo`` is a stand-in first on PATH, so the real one is never called.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def clean_environ() -> dict[str, str]:
    """This environment without what a make running these tests (``make lock`` runs ``make test``)
    passes to the makes they start: its flags and level would make them print directories."""
    return {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL",
                                                             "MAKEOVERRIDES")}


def make_test(tmp_path: Path, *variables: str, sudo_works: bool, dry_run: bool = False) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    sudo = bin_dir / "sudo"
    # `sudo -n true` answers; any other sudo command is only reported
    sudo.write_text("#!/bin/sh\n" + ("[ \"$1\" = -n ] && exit 0\necho \"SUDO: $*\"\n" if sudo_works
                                      else "exit 1\n"))
    sudo.chmod(0o755)
    env = {**clean_environ(), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("TCONV_REQUIRE_BROWSER", None)
    done = subprocess.run(
        [MAKE, "-s", *(["-n"] if dry_run else []), "-o", ".venv/.test", "-o", ".venv/.base", "test",
         "PY=echo", "CHROMIUM=", "PYTEST_WORKERS=", *variables],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def test_not_root_without_sudo_says_how_and_goes_on(tmp_path):
    out = make_test(tmp_path, "IS_ROOT=", sudo_works=False)
    assert "Chromium is missing and apt-get needs root: the browser tests will be skipped" in out
    assert "sudo apt-get install chromium" in out
    assert out.splitlines()[-1] == "-m pytest"  # run, and not told to require the browser


def test_not_root_with_passwordless_sudo_installs(tmp_path):
    out = make_test(tmp_path, "IS_ROOT=", sudo_works=True)
    install = "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium"
    assert f"SUDO: sh -c {install}" in out
    assert out.splitlines()[-1] == "-m pytest"


def test_root_installs_with_apt_get_and_requires_the_browser(tmp_path):
    out = make_test(tmp_path, "IS_ROOT=1", sudo_works=False, dry_run=True)
    lines = out.splitlines()
    assert lines[0] == "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium"
    assert lines[-1] == "TCONV_REQUIRE_BROWSER=1 echo -m pytest"


def dry_run(*goals: str) -> list[str]:
    """The commands ``make -n -B goals`` would run (nothing runs; -B: as from a fresh clone)."""
    done = subprocess.run([MAKE, "-s", "-n", "-B", *goals, "CHROMIUM=/bin/true"], cwd=ROOT,
                          env=clean_environ(), capture_output=True, text=True, timeout=60, check=True)
    return re.sub(r"\\\n\s*", " ", done.stdout).splitlines()  # a continued line as one


def test_the_venvs_install_the_locked_versions():
    lines = dry_run(".venv/.test")
    installs = [line for line in lines if " -m pip install " in line]
    assert len(installs) == 2  # the base set (demo), then the test set on top
    assert all(" -c requirements.lock " in line for line in installs)
    assert installs[0].endswith("-e '.[plot]'") and "-e '.[test]';" in installs[1]
    # the engine's loops compile into numba's cache on the other core while the test set installs
    assert installs[1].startswith(".venv/bin/python -m tconv.engine.warm & ")
    assert lines.index("rm -rf .venv") < lines.index("python3 -m venv .venv")  # nothing old lingers


def test_make_lock_re_resolves_through_pip_compile_then_tests():
    lines = dry_run("lock")
    compile_ = next(line for line in lines if "pip-compile" in line)
    for flag in ("--upgrade", "--all-extras", "--strip-extras", "--output-file requirements.lock",
                 "--unsafe-package tconv"):
        assert flag in compile_
    assert compile_.endswith(" pyproject.toml")
    # then the tests, on a venv rebuilt from the new lock
    assert any(line.endswith("-m pytest -n auto --maxprocesses=4 --dist loadgroup")
               for line in lines[lines.index(compile_):])
