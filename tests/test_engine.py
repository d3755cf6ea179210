"""The fast engine: the same numbers as the reference algorithms and PyTorch, whatever the chunking.

Small chunk budgets force many row bands and sample groups; a zero work threshold forces the two
workers (and so the channel and sample splits) on every problem.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from oracle import torch_conv_transpose, torch_transposed_mode
from test_functional import assert_refused, torch_pads, transposed_sizes

import tconv
from tconv.engine import fast as engine


@contextlib.contextmanager
def chunked(chunk_bytes):
    saved = engine.GEMM_CHUNK_BYTES, engine.PARALLEL_MIN_WORK
    engine.GEMM_CHUNK_BYTES, engine.PARALLEL_MIN_WORK = chunk_bytes, 0
    try:
        yield
    finally:
        engine.GEMM_CHUNK_BYTES, engine.PARALLEL_MIN_WORK = saved


@st.composite
def wide_configs(draw):
    """Many channels (the channels-last path) and long inputs (row bands), any rank."""
    rank = draw(st.sampled_from([1, 2, 3]))
    groups = draw(st.sampled_from([1, 2]))
    size = tuple(draw(st.integers(1, 40 if rank == 1 else (9 if rank == 2 else 4)))
                 for _ in range(rank))
    kernel = tuple(draw(st.integers(1, 5)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    padding = tuple(draw(st.integers(0, 3)) for _ in range(rank))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    c_in = groups * draw(st.sampled_from([1, 5, 8]))
    c_out = groups * draw(st.sampled_from([3, 16, 20]))
    return (draw(st.integers(1, 3)), c_in, c_out, size, kernel, stride, padding, output_padding,
            groups, dilation, draw(st.sampled_from(tconv.PADDING_MODES)))


def torch_reference(x, w, b, stride, padding, output_padding, groups, dilation, mode, large):
    """PyTorch's output; for the other padding modes the adjoint of its padded convolution."""
    if mode == "zeros":
        return torch_conv_transpose(x, w, b, stride, padding, output_padding, groups, dilation)
    pairs = tuple((p, p) for p in padding)
    # output_padding >= stride (allowed by dilation) gives the convolution a tail past the input size:
    # the adjoint of "convolve, keep the first n" is "pad with zeros, transpose"
    tail = tuple((L + 2 * p - d * (k - 1) - 1) // s + 1 for L, p, d, k, s in
                 zip(large, padding, dilation, w.shape[2:], stride))
    y = np.zeros(x.shape[:2] + tail, x.dtype)
    y[(Ellipsis, *(slice(0, n) for n in x.shape[2:]))] = x
    out = torch_transposed_mode(y, w, stride, pairs, dilation, groups, mode, large)
    return out + b.reshape(-1, *(1,) * (w.ndim - 2))


def refused_like_torch(run, x, w, b, args, mode, large):
    """The configuration is one PyTorch refuses: each run must raise a ValueError naming the rule.

    Returns False (nothing refused) when PyTorch accepts it.
    """
    if min(large) < 1:
        with pytest.raises(RuntimeError, match="Output size is too small"):
            torch_conv_transpose(x, w, b, *args)
        with pytest.raises(ValueError, match=r"the output size .* must be positive in every dimension"):
            run()
        return True
    if not torch_pads(mode, tuple((p, p) for p in args[1]), large):
        assert_refused(run, mode)
        return True
    return False


@given(cfg=wide_configs(), chunk=st.sampled_from([64, 4096, 8 * 2**20]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_fast_engine_matches_reference_and_torch(cfg, chunk, dtype):
    N, c_in, c_out, size, kernel, stride, padding, output_padding, groups, dilation, mode = cfg
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, c_in, *size))
    w = rng.standard_normal((c_in, c_out // groups, *kernel))
    b = rng.standard_normal(c_out)
    args = (stride, padding, output_padding, groups, dilation)
    large = transposed_sizes(size, kernel, stride, tuple((p, p) for p in padding), dilation,
                             output_padding)
    x32, w32, b32 = (a.astype(dtype) for a in (x, w, b))

    def run(name):
        return tconv.conv_transpose(x32, w32, b32, *args, padding_mode=mode, algorithm=name)

    with chunked(chunk):
        if refused_like_torch(lambda: [run(name) for name in ("gemm", "direct", "auto")], x, w, b, args,
                              mode, large):
            return
        results = {name: run(name) for name in ("gemm", "direct", "auto")}
    expected = torch_reference(x, w, b, *args, mode, large)  # float64
    scatter = run("scatter")
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(scatter, expected, rtol=tol, atol=tol)
    for name, y in results.items():
        assert y.dtype == dtype and y.shape == (N, c_out, *large)
        np.testing.assert_allclose(y, expected, rtol=tol, atol=tol, err_msg=name)
        np.testing.assert_allclose(y, scatter, rtol=tol / 10, atol=tol / 10, err_msg=f"{name} vs scatter")


@given(cfg=wide_configs(), chunk=st.sampled_from([64, 4096, 8 * 2**20]))
def test_backward_and_conv_match_torch(cfg, chunk):
    N, c_in, c_out, size, kernel, stride, padding, output_padding, groups, dilation, _ = cfg
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, c_in, *size))
    w = rng.standard_normal((c_in, c_out // groups, *kernel))
    args = (stride, padding, output_padding, groups, dilation)
    large = transposed_sizes(size, kernel, stride, tuple((p, p) for p in padding), dilation,
                             output_padding)
    if min(large) < 1:  # PyTorch refuses the forward pass, so there is no backward to compare
        g = np.ones((N, c_out, *(1,) * len(size)))
        assert refused_like_torch(lambda: tconv.conv_transpose_backward(g, x, w, *args), x, w, None,
                                  args, "zeros", large)
        return
    g = rng.standard_normal((N, c_out, *large))
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    fn = getattr(torch.nn.functional, f"conv_transpose{len(size)}d")
    fn(xt, wt, None, *args).backward(torch.tensor(g))
    with chunked(chunk):
        gi, gw, _ = tconv.conv_transpose_backward(g, x, w, *args)
        small = tconv.conv(g, w, None, stride, padding, dilation, groups)
    np.testing.assert_allclose(gi, xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-10, atol=1e-10)
    conv = getattr(torch.nn.functional, f"conv{len(size)}d")
    expected = conv(torch.tensor(g), torch.tensor(w), None, stride, padding, dilation, groups)
    assert small.shape == expected.shape
    np.testing.assert_allclose(small, expected.numpy(), rtol=1e-10, atol=1e-10)


def test_split_never_shares_a_sample_or_channel():
    chunks = [(n, 1, (0, 0, r), (1, 1, 2), None) for n in range(3) for r in (0, 2)]
    shares = engine._split(chunks, 8, work=1 << 40)
    owners = {}
    for w, (mine, lo, hi) in enumerate(shares):
        assert (lo, hi) == (0, 8)
        for c in mine:
            owners.setdefault(c[0], set()).add(w)
    assert all(len(v) == 1 for v in owners.values()) and len(owners) == 3
    single = engine._split(chunks[:2], 8, work=1 << 40)
    assert [(lo, hi) for _, lo, hi in single] == [(0, 4), (4, 8)]
    assert engine._split(chunks, 8, work=1) == [(chunks, 0, 8)]
