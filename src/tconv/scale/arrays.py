"""Which arrays :mod:`tconv.scale` computes, told apart without importing their libraries (so that
``import tconv`` imports no dask)."""

from __future__ import annotations


def is_dask(a: object) -> bool:
    """A dask array (:mod:`tconv.scale.dask` computes it block by block); checked without dask.

    >>> import numpy as np
    >>> is_dask(np.zeros(3))
    False
    """
    return type(a).__module__.startswith("dask.array") and hasattr(a, "chunks")
