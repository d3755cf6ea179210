"""explain(): every view's numbers equal conv_transpose; the planning helpers check out by brute force."""

from __future__ import annotations

from math import prod

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from oracle import torch_conv_transpose
from strategies import configs

import tconv
from tconv.core.shapes import conv_size
from tconv.explainer.steps import (
    MAX_MATRIX_ENTRIES,
    MAX_STEPS,
    explain,
    output_shape,
    overlap,
    round_trip,
    solve,
)


@given(cfg=configs(ranks=(1, 2, 3)))
def test_every_view_equals_conv_transpose(cfg):
    x, w, _ = cfg.arrays()
    e = explain(x[0], w, cfg.stride, cfg.padding, cfg.output_padding, cfg.dilation, cfg.groups)
    expected = torch_conv_transpose(x[:1], w, None, *cfg.args())[0]
    np.testing.assert_allclose(e.output, expected, rtol=1e-10, atol=1e-10)
    # scatter: the last running sum, cropped (and extended by output_padding), is the output
    full = e.steps[-1].running
    assert np.array_equal(full, e.full)
    cropped = full[(slice(None), *(slice(b, full.shape[1 + i] - max(a, 0))
                                   for i, (b, a) in enumerate(e.crop)))]
    region = tuple(slice(0, s) for s in cropped.shape[1:])
    np.testing.assert_allclose(expected[(slice(None), *region)], cropped, rtol=1e-10, atol=1e-10)
    # every step adds value * kernel
    for step in e.steps:
        taps = tuple(slice(None, None, d) for d in cfg.dilation)
        np.testing.assert_allclose(step.product[(slice(None), *taps)], step.value * w[step.channel])
    # zero insertion: correlating the processing image with the flipped kernel
    z = e.zero_insertion
    assert z.border == tuple((d * (k - 1) - p, d * (k - 1) - p + o) for k, d, p, o in
                             zip(cfg.kernel, cfg.dilation, cfg.padding, cfg.output_padding))
    if all(b >= 0 and a >= 0 for b, a in z.border):  # every input element is in the image, in order
        assert np.array_equal(z.image[z.is_input], x[0].ravel())
    else:  # a negative border crops some away
        assert np.isin(z.image[z.is_input], x[0]).all()
    assert not z.image[~z.is_input].any()  # the rest is inserted zeros and border
    np.testing.assert_allclose(z.output, expected, rtol=1e-10, atol=1e-10)
    # matrix: y = W^T x, shown up to MAX_MATRIX_ENTRIES entries
    entries = cfg.c_in * prod(cfg.size) * cfg.c_out * prod(cfg.out_size)
    if entries <= MAX_MATRIX_ENTRIES:
        assert e.matrix.W.shape == (cfg.c_in * prod(cfg.size), cfg.c_out * prod(cfg.out_size))
        np.testing.assert_allclose(e.matrix.W.T @ x[0].ravel(), expected.ravel(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(e.matrix.y, expected.ravel(), rtol=1e-10, atol=1e-10)
    else:
        assert e.matrix is None and f"W would have {entries} entries" in e.matrix_note
    # channels: the pieces add up
    np.testing.assert_allclose(e.pieces.sum(axis=0), expected, rtol=1e-10, atol=1e-10)


def test_zero_insertion_image_by_hand():
    """Seed 003, In [27]-[28]: 4x4 ones, k=3, stride 2, padding 2: border 0, image 7x7."""
    e = explain(np.ones((4, 4)), np.ones((3, 3)), stride=2, padding=2)
    z = e.zero_insertion
    assert z.border == ((0, 0), (0, 0))
    assert z.image.shape == (1, 7, 7)
    assert z.image[0, ::2, ::2].tolist() == np.ones((4, 4)).tolist()
    assert z.image[0, 1::2].sum() == 0
    assert e.output[0].tolist() == [[4, 2, 4, 2, 4], [2, 1, 2, 1, 2], [4, 2, 4, 2, 4],
                                    [2, 1, 2, 1, 2], [4, 2, 4, 2, 4]]
    assert np.allclose(np.flip(e.zero_insertion.flipped, (2, 3)), e.weight)


def test_matrix_view_is_d2l():
    K = np.array([[1.0, 2.0], [3.0, 4.0]])
    Y = np.array([[27.0, 37.0], [57.0, 67.0]])
    e = explain(Y, K)
    assert e.matrix.W.tolist()[0] == [1, 2, 0, 3, 4, 0, 0, 0, 0]
    np.testing.assert_allclose(e.matrix.y, e.matrix.W.T @ Y.ravel())


def test_big_problems_are_refused_clearly():
    with pytest.raises(ValueError, match=r"limited to 4096"):
        explain(np.ones((1, 80, 80)), np.ones((1, 1, 3, 3)))
    assert MAX_STEPS == 4096
    e = explain(np.ones((1, 40, 40)), np.ones((1, 1, 3, 3)))
    assert e.matrix is None and "entries" in e.matrix_note


@given(n=st.integers(1, 20), k=st.integers(1, 6), s=st.integers(1, 4), p=st.integers(0, 3),
       d=st.integers(1, 3))
def test_output_shape_is_pytorchs(n, k, s, p, d):
    if (n - 1) * s - 2 * p + d * (k - 1) + 1 < 1:  # no output pixel: PyTorch and tconv both refuse
        with pytest.raises(RuntimeError, match="Output size is too small"):
            torch.nn.functional.conv_transpose1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), None, s, p,
                                                 0, 1, d)
        with pytest.raises(ValueError, match=r"output_shape: the output size .* must be positive"):
            output_shape(n, k, s, p, 0, d)
        return
    size, forms = output_shape(n, k, s, p, 0, d)
    ref = torch.nn.functional.conv_transpose1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), None, s, p,
                                               0, 1, d)
    assert size == (ref.shape[-1],)
    assert forms[0].endswith(f"= {size[0]}")


@given(L=st.integers(1, 40), k=st.integers(1, 5), s=st.integers(1, 4), p=st.integers(0, 2))
def test_round_trip_restores_the_conv_input(L, k, s, p):
    conv = torch.nn.Conv1d(1, 1, k, s, p)
    try:
        y = conv(torch.zeros(1, 1, L))
    except RuntimeError:  # PyTorch: the kernel is larger than the padded input
        with pytest.raises(ValueError, match=rf"round_trip: a convolution of size {L} with kernel {k} "
                                             r"gives no output"):
            round_trip(L, k, s, p)
        return
    r = round_trip(L, k, s, p)
    assert y.shape[-1] == r.conv_output[0]
    assert 0 <= r.output_padding[0] < s  # what PyTorch's ConvTranspose1d accepts (dilation 1)
    assert torch.nn.ConvTranspose1d(1, 1, k, s, p, r.output_padding[0])(y).shape[-1] == L
    assert L in r.collisions[0]
    assert all(conv_size(v, k, s, (p, p)) == r.conv_output[0] for v in r.collisions[0])


@given(n=st.integers(1, 12), out=st.integers(1, 40))
def test_solve_results_really_map_in_to_out(n, out):
    for sol in solve(n, out):
        y = tconv.conv_transpose1d(np.zeros((1, 1, n)), np.zeros((1, 1, sol.kernel)), None,
                                   sol.stride, sol.padding, sol.output_padding, 1, sol.dilation)
        assert y.shape[-1] == out
        assert sol.even == overlap(sol.kernel, sol.stride, sol.dilation).even
    ranks = [not s.even for s in solve(n, out)]
    assert ranks == sorted(ranks)  # even coverage first


@given(k=st.integers(1, 9), s=st.integers(1, 5), d=st.integers(1, 3))
def test_overlap_counts_by_brute_force(k, s, d):
    """Scatter ones: interior output pixels receive exactly the counted number of taps."""
    n = 12
    y = tconv.conv_transpose1d(np.ones((1, 1, n)), np.ones((1, 1, k)), None, s, 0, 0, 1, d)[0, 0]
    span = d * (k - 1) + 1
    interior = y[span: (n - 1) * s + 1]  # reached by full kernels only
    o = overlap(k, s, d)
    for j in range(span, span + len(interior)):
        assert y[j] == o.counts[j % s]
    assert o.even == (len(set(o.counts)) == 1)
