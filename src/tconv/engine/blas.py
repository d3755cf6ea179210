"""NumPy's own BLAS product, callable from compiled code.

The fused kernels (:func:`tconv.engine.kernels.subpixel_tiles`) multiply inside numba. numba's
``np.dot`` calls SciPy's BLAS, a second OpenBLAS whose products of the shapes a tile makes ran at
0.4-0.8x the rate of NumPy's on one thread (a ``(8, 216) @ (216, 585)`` product: 21 against
50 GFLOP/s; ``(64, 216) @ (216, 585)``: 69 against 86; OpenBLAS 0.3.30 in SciPy 1.17, 0.3.31 in
NumPy 2.4, AVX2). So the kernels take a product function as an argument: :func:`gemm` gives the
address of NumPy's ``cblas_?gemm`` where NumPy's wheel exports it (64-bit integers, the names
:data:`SYMBOLS`), else of a compiled stand-in with the same signature that calls ``np.dot``.

Either one computes, row-major, ``C = A' @ B'`` with ``A'`` ``A`` or ``A.T`` (``ta`` 111 or 112,
CBLAS's codes) and the same for ``B``: ``fn(101, ta, tb, M, N, K, 1.0, A, lda, B, ldb, 0.0, C, ldc)``
with the arrays as addresses (``a.ctypes.data``) and row strides in elements.

>>> import numpy as np
>>> a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((3, 2), np.float32)
>>> c = np.empty((2, 2), np.float32)
>>> function(np.float32)(101, 111, 111, 2, 2, 3, 1.0, a.ctypes.data, 3, b.ctypes.data, 2, 0.0,
...                      c.ctypes.data, 2)
>>> c
array([[ 3.,  3.],
       [12., 12.]], dtype=float32)
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

#: Per dtype, the names NumPy's wheels export the CBLAS product under, 64-bit integers (NumPy 2's
#: ``scipy-openblas64``, then 1.x's ``openblas64_``).
SYMBOLS = {
    "f": ("scipy_cblas_sgemm64_", "cblas_sgemm64_"),
    "d": ("scipy_cblas_dgemm64_", "cblas_dgemm64_"),
}

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def _prototype(dtype: np.dtype) -> Any:
    scalar = ctypes.c_float if dtype.char == "f" else ctypes.c_double
    i64, ptr, enum = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    return ctypes.CFUNCTYPE(None, enum, enum, enum, i64, i64, i64, scalar, ptr, i64, ptr, i64,
                            scalar, ptr, i64)


def numpy_blas_infos(infos: list[dict] | None = None) -> list[dict]:
    """threadpoolctl's descriptions of the BLAS libraries that came with NumPy, among ``infos``
    (default: every BLAS loaded in this process): NumPy's own copy, not SciPy's or another
    package's (wheels for Linux keep it in ``numpy.libs`` beside the package, for macOS in
    ``numpy/.dylibs``)."""
    if infos is None:
        from threadpoolctl import threadpool_info

        infos = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    numpy_dir = Path(np.__file__).resolve().parent
    paths = [Path(info.get("filepath") or "").resolve() for info in infos]
    return [info for info, path in zip(infos, paths)
            if path.parent.name == "numpy.libs" or numpy_dir in path.parents]


@lru_cache(maxsize=2)
def _gemm(char: str) -> int:
    for info in numpy_blas_infos():
        lib = ctypes.CDLL(info["filepath"])
        for name in SYMBOLS[char]:
            fn = getattr(lib, name, None)
            if fn is not None:
                return int(ctypes.cast(fn, ctypes.c_void_p).value or 0)
    return int(stand_in(char).address)


def gemm(dtype: Any) -> int:
    """The address of the product function for ``dtype`` (float32 or float64): NumPy's
    ``cblas_?gemm``, else :func:`stand_in`'s. Found once per process. An address, not a ctypes
    function, because numba types an int argument in nanoseconds and a ctypes function in
    microseconds, on every call (a small layer's whole call is ~40 us); compiled code calls it
    through :func:`tconv.engine.kernels.gemm_call`, Python through :func:`function`."""
    return _gemm(np.dtype(dtype).char)


def function(dtype: Any) -> Any:
    """:func:`gemm` for ``dtype`` as a ctypes function, to call from Python."""
    return _prototype(np.dtype(dtype))(gemm(dtype))


@lru_cache(maxsize=2)
def stand_in(char: str) -> Any:
    """A compiled function with ``cblas_?gemm``'s signature (row-major, ``alpha`` 1, ``beta`` 0, the
    only calls the kernels make) that multiplies with ``np.dot``, SciPy's BLAS: for a NumPy whose
    BLAS exports no 64-bit CBLAS product under a known name."""
    import numba
    import scipy.linalg.cython_blas  # noqa: F401  (the BLAS numba's np.dot calls)
    from numba import types

    from .threads import forget_blas

    forget_blas()  # SciPy's BLAS joins the libraries tconv's thread limits set
    dtype = np.dtype(char)
    scalar = types.float32 if char == "f" else types.float64
    i64, ptr, enum = types.int64, types.voidptr, types.intc
    sig = types.void(enum, enum, enum, i64, i64, i64, scalar, ptr, i64, ptr, i64, scalar, ptr, i64)

    @numba.cfunc(sig, cache=True)
    def product(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc):  # pragma: no cover
        a = numba.carray(A, (M if ta == NO_TRANS else K) * lda, dtype).reshape(
            (M if ta == NO_TRANS else K, lda))
        b = numba.carray(B, (K if tb == NO_TRANS else N) * ldb, dtype).reshape(
            (K if tb == NO_TRANS else N, ldb))
        c = numba.carray(C, M * ldc, dtype).reshape((M, ldc))
        a = a[:, :K] if ta == NO_TRANS else a[:, :M].T
        b = b[:, :N] if tb == NO_TRANS else b[:, :K].T
        c[:, :N] = np.dot(np.ascontiguousarray(a), np.ascontiguousarray(b))

    return product
