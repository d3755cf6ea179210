"""The fast engine: the same numbers as the reference algorithms and PyTorch, whatever the chunking.

Small chunk budgets force many row bands and sample groups; a zero work threshold forces the two
workers (and so the channel and sample splits) on every problem.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from oracle import torch_conv_transpose

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


@given(cfg=wide_configs(), chunk=st.sampled_from([64, 4096, 8 * 2**20]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_fast_engine_matches_reference_and_torch(cfg, chunk, dtype):
    N, c_in, c_out, size, kernel, stride, padding, output_padding, groups, dilation, mode = cfg
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, c_in, *size)).astype(dtype)
    w = rng.standard_normal((c_in, c_out // groups, *kernel)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    args = (stride, padding, output_padding, groups, dilation)
    try:
        expected = tconv.conv_transpose(x, w, b, *args, padding_mode=mode, algorithm="scatter")
    except ValueError:
        return
    with chunked(chunk):
        for name in ("gemm", "direct", "auto"):
            y = tconv.conv_transpose(x, w, b, *args, padding_mode=mode, algorithm=name)
            assert y.dtype == dtype
            tol = 1e-4 if dtype == np.float32 else 1e-10
            np.testing.assert_allclose(y, expected, rtol=tol, atol=tol, err_msg=name)
    if mode == "zeros":
        ref = torch_conv_transpose(x, w, b, *args)
        np.testing.assert_allclose(expected, ref, rtol=1e-4, atol=1e-4)


@given(cfg=wide_configs(), chunk=st.sampled_from([64, 4096, 8 * 2**20]))
def test_backward_and_conv_match_torch(cfg, chunk):
    N, c_in, c_out, size, kernel, stride, padding, output_padding, groups, dilation, _ = cfg
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, c_in, *size))
    w = rng.standard_normal((c_in, c_out // groups, *kernel))
    args = (stride, padding, output_padding, groups, dilation)
    try:
        y = tconv.conv_transpose(x, w, None, *args, algorithm="scatter")
    except ValueError:
        return
    g = rng.standard_normal(y.shape)
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
    n = tuple(slice(0, s) for s in size)  # output_padding >= stride leaves a tail
    np.testing.assert_allclose(small[(Ellipsis, *n)], expected.numpy()[(Ellipsis, *n)],
                               rtol=1e-10, atol=1e-10)


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
