"""Padding modes: pad equals PyTorch's F.pad, fold is its exact transpose."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from tconv.core.padding import PADDING_MODES, fold, pad, pad_or_crop, source_index

TORCH = {"zeros": "constant", "circular": "circular", "reflect": "reflect", "replicate": "replicate"}


@st.composite
def padded(draw):
    rank = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(PADDING_MODES))
    sizes = tuple(draw(st.integers(1, 5)) for _ in range(rank))
    limit = {"reflect": -1, "circular": 0}.get(mode)
    pads = tuple(
        (draw(st.integers(0, s + limit if limit is not None else 4)),
         draw(st.integers(0, s + limit if limit is not None else 4)))
        for s in sizes)
    return mode, sizes, pads


@given(case=padded())
def test_pad_is_torch_pad(case):
    mode, sizes, pads = case
    x = np.random.default_rng(0).standard_normal((2, 3, *sizes))
    flat = [v for p in reversed(pads) for v in p]
    expected = F.pad(torch.tensor(x), flat, mode=TORCH[mode]).numpy()
    np.testing.assert_array_equal(pad(x, pads, mode), expected)


@given(case=padded())
def test_fold_is_the_transpose_of_pad(case):
    mode, sizes, pads = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, *sizes))
    z = rng.standard_normal((2, *(s + b + a for s, (b, a) in zip(sizes, pads))))
    assert fold(z, pads, mode).shape == x.shape
    np.testing.assert_allclose(np.vdot(pad(x, pads, mode), z), np.vdot(x, fold(z, pads, mode)),
                               rtol=1e-12)


def test_fold_by_hand():
    z = np.arange(1.0, 7.0)  # padded [b0, b1 | x0 x1 x2 | a0], pads (2, 1)
    np.testing.assert_array_equal(fold(z, [(2, 1)], "zeros"), [3, 4, 5])
    np.testing.assert_array_equal(fold(z, [(2, 1)], "circular"), [3 + 6, 4 + 1, 5 + 2])
    np.testing.assert_array_equal(fold(z, [(2, 1)], "replicate"), [3 + 1 + 2, 4, 5 + 6])
    np.testing.assert_array_equal(fold(z, [(2, 1)], "reflect"), [3, 4 + 2 + 6, 5 + 1])


def test_source_index():
    assert [source_index(q, 4, "circular") for q in (-5, -1, 4, 9)] == [3, 3, 0, 1]
    assert [source_index(q, 4, "replicate") for q in (-3, 5)] == [0, 3]
    assert source_index(-1, 4, "zeros") == -1


def test_pad_or_crop():
    a = np.arange(5.0)
    np.testing.assert_array_equal(pad_or_crop(a, [(-1, 2)]), [1, 2, 3, 4, 0, 0])
    np.testing.assert_array_equal(pad_or_crop(a, [(1, -3)]), [0, 0, 1])


def test_pad_and_fold_do_not_modify_their_input():
    x = np.arange(6.0).reshape(2, 3)
    x.flags.writeable = False
    pad(x, [(1, 1)], "reflect")
    fold(x, [(1, 1)], "circular")
