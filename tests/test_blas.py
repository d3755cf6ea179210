"""NumPy's BLAS product from compiled code (tconv.engine.blas): the library it finds, the stand-in
it falls back on, and the fused kernel run with each, against NumPy and PyTorch."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from oracle import torch_conv_transpose

from tconv.core.spec import transposed_spec
from tconv.engine import blas, subpixel


def _call(fn, a, b, ta, tb):
    """``op(a) @ op(b)`` through ``fn``, the arrays C-contiguous as the kernels pass them."""
    M = a.shape[1] if ta == blas.TRANS else a.shape[0]
    K = a.shape[0] if ta == blas.TRANS else a.shape[1]
    N = b.shape[0] if tb == blas.TRANS else b.shape[1]
    c = np.full((M, N), np.nan, a.dtype)
    fn(blas.ROW_MAJOR, ta, tb, M, N, K, 1.0, a.ctypes.data, a.shape[1], b.ctypes.data, b.shape[1],
       0.0, c.ctypes.data, N)
    return c


def _address(fn):
    return ctypes.cast(fn, ctypes.c_void_p).value


def test_numpys_own_library_is_found():
    """The lock's NumPy is a wheel whose OpenBLAS exports the 64-bit CBLAS product: that one is
    used, not the stand-in (whose products of a tile's shapes ran at 0.4-0.8x its rate)."""
    files = [info["filepath"] for info in blas.numpy_blas_infos()]
    assert files and all("numpy" in f for f in files)
    for dtype in (np.float32, np.float64):
        address = blas.gemm(dtype)
        assert address != blas.stand_in(np.dtype(dtype).char).address
        lib = ctypes.CDLL(files[0])
        names = blas.SYMBOLS[np.dtype(dtype).char]
        assert address in {_address(getattr(lib, n)) for n in names if hasattr(lib, n)}


@pytest.mark.parametrize("which", ["numpy", "stand-in"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(blas.NO_TRANS, blas.NO_TRANS), (blas.TRANS, blas.TRANS),
                                   (blas.TRANS, blas.NO_TRANS), (blas.NO_TRANS, blas.TRANS)])
def test_products_match_numpy(which, dtype, ta, tb):
    rng = np.random.default_rng(3)
    fn = blas.function(dtype) if which == "numpy" else blas._prototype(np.dtype(dtype))(
        blas.stand_in(np.dtype(dtype).char).address)
    for M, N, K in [(1, 1, 1), (8, 585, 216), (37, 5, 3), (3, 64, 100)]:
        a = rng.standard_normal((K, M) if ta == blas.TRANS else (M, K)).astype(dtype)
        b = rng.standard_normal((N, K) if tb == blas.TRANS else (K, N)).astype(dtype)
        want = (a.T if ta == blas.TRANS else a).astype(np.float64) @ (
            b.T if tb == blas.TRANS else b).astype(np.float64)
        got = _call(fn, a, b, ta, tb)
        np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-12,
                                   atol=1e-3 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("runs", [False, True])
def test_subpixel_with_the_stand_in(monkeypatch, runs):
    """The fused kernel gives PyTorch's numbers whichever product it is given (stride 1 with
    dilation, the taps gathered a dilation apart; a strided layer; both product orders)."""
    monkeypatch.setattr(blas, "gemm", lambda dtype: blas.stand_in(np.dtype(dtype).char).address)
    monkeypatch.setattr(subpixel, "RUNS_MIN_STRIDE", 1 if runs else 10**6)
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        for stride, dilation, padding in [((1, 1), (2, 3), (2, 1)), ((2, 3), (1, 2), (1, 0))]:
            x = rng.standard_normal((2, 6, 7, 9)).astype(dtype)
            w = rng.standard_normal((6, 4, 3, 2)).astype(dtype)
            b = rng.standard_normal(8).astype(dtype)
            spec = transposed_spec("t", x, w, b, stride, padding, 0, 2, dilation)
            got = subpixel.subpixel(spec, x, w, b)
            want = torch_conv_transpose(x, w, b, stride, padding, 0, 2, dilation)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_stride_one_gathers_no_padded_tap():
    """At stride 1 the dilated kernel is gathered a dilation apart, not padded with zeros: the
    product multiplies ``k`` taps per dimension, not ``d*(k-1) + 1``."""
    x, w = np.zeros((1, 8, 9, 9, 9), np.float32), np.zeros((8, 8, 3, 3, 3), np.float32)
    spec = transposed_spec("t", x, w, None, 1, 2, 0, 1, 2)
    assert subpixel.taps_per_phase(spec) == (3, 3, 3)
    assert subpixel.tap_steps(spec) == (2, 2, 2)
    assert subpixel.padded_macs(spec) == 9**3 * 27 * 8 * 8
    strided = transposed_spec("t", x, w, None, 2, 2, 0, 1, 2)
    assert subpixel.taps_per_phase(strided) == (3, 3, 3) and subpixel.tap_steps(strided) == (1, 1, 1)
