"""Docstrings point at what exists: every Sphinx-style reference (``:func:`x```, ``:mod:`x```, ...)
in every tconv module resolves to a module or object."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import tconv

MODULES = sorted(m.name for m in pkgutil.walk_packages(tconv.__path__, "tconv.")
                 if not m.name.endswith("__main__"))

REFERENCE = re.compile(r":(?:func|mod|data|class|meth|attr):`~?\.?([\w.]+)`")


def _resolves(target: str, module: str) -> bool:
    """``target`` as written, or relative to ``module``, its package, or ``tconv``."""
    for name in (target, f"{module}.{target}", f"{module.rsplit('.', 1)[0]}.{target}", f"tconv.{target}"):
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            try:
                for part in parts[i:]:
                    obj = getattr(obj, part)
            except AttributeError:
                break
            return True
    return False


@pytest.mark.parametrize("module", MODULES)
def test_references_in_docstrings_resolve(module):
    mod = importlib.import_module(module)
    docs = {module: mod.__doc__ or ""}
    for name, obj in vars(mod).items():
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module:
            docs[f"{module}.{name}"] = obj.__doc__ or ""
    broken = [(where, target) for where, doc in docs.items() for target in REFERENCE.findall(doc)
              if not _resolves(target, module)]
    assert not broken


def test_the_engine_docstrings_say_what_the_code_does():
    from tconv.engine import fast, kernels

    assert ":func:`correlate`" in fast.__doc__ and "conv_backward_chunks" not in fast.__doc__
    assert callable(fast.correlate)
    # every kernel is serial and releases the GIL (no numba parallel region: see test_threads)
    assert "Every kernel is serial and releases the GIL" in kernels.__doc__
    compiled = [f for f in vars(kernels).values()  # the kernels (inlined helpers aside)
                if hasattr(f, "targetoptions") and f.targetoptions.get("inline") != "always"]
    assert kernels.direct in compiled and kernels.subpixel_tiles in compiled
    for serial in compiled:
        assert not serial.targetoptions.get("parallel") and serial.targetoptions.get("nogil")
