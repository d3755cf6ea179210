"""Size arithmetic against PyTorch's shapes and against brute-force enumeration."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from tconv.core.shapes import (
    conv_size,
    effective_kernel,
    output_padding_range,
    same_pads,
    transposed_size,
)

ints = st.integers


@given(n=ints(1, 9), k=ints(1, 5), s=ints(1, 4), p=ints(0, 3), d=ints(1, 3), data=st.data())
def test_transposed_size_is_pytorchs(n, k, s, p, d, data):
    o = data.draw(ints(0, max(s, d) - 1), label="output_padding")  # what PyTorch allows
    size = transposed_size(n, k, s, (p, p), d, o)
    try:
        y = torch.nn.functional.conv_transpose1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), None, s,
                                                 p, o, 1, d)
    except RuntimeError as exc:  # PyTorch refuses an empty output: the formula gives no pixel
        assert "Output size is too small" in str(exc)
        assert size < 1
        return
    assert size == y.shape[-1]


@given(L=ints(1, 20), k=ints(1, 5), s=ints(1, 4), b=ints(0, 3), a=ints(0, 3), d=ints(1, 3))
def test_conv_size_counts_windows(L, k, s, b, a, d):
    span = effective_kernel(k, d)
    windows = len(range(0, L + b + a - span + 1, s))
    assert max(conv_size(L, k, s, (b, a), d), 0) == windows  # no window: a size below 1


@given(n=ints(1, 9), k=ints(1, 5), s=ints(1, 4), p=ints(0, 3), d=ints(1, 3))
def test_output_padding_range_restores_every_conv_input(n, k, s, p, d):
    """Every size in the range convolves back to n (PyTorch's conv1d says so): why output_padding exists."""
    lo, hi = output_padding_range(n, k, s, (p, p), d)
    assert (lo, hi) == ((n - 1) * s - 2 * p + d * (k - 1) + 1, (n - 1) * s - 2 * p + d * (k - 1) + s)
    for L in range(max(lo, 1), hi + 1):  # a low end under 1 is no size at all
        y = torch.nn.functional.conv1d(torch.zeros(1, 1, L), torch.zeros(1, 1, k), None, s, p, d)
        assert conv_size(L, k, s, (p, p), d) == y.shape[-1] == n


@given(L=ints(1, 30), k=ints(1, 6), s=ints(1, 4), d=ints(1, 2))
def test_same_pads_give_ceil_and_odd_pixel_at_the_end(L, k, s, d):
    b, a = same_pads(L, k, s, d)
    assert a - b in (0, 1)
    assert conv_size(L, k, s, (b, a), d) == -(-L // s)
    if s == 1:  # PyTorch's padding='same'
        x = torch.arange(float(L)).reshape(1, 1, L)
        w = torch.ones(1, 1, k)
        expected = torch.nn.functional.conv1d(x, w, padding="same", dilation=d)
        manual = torch.nn.functional.conv1d(torch.nn.functional.pad(x, (b, a)), w, dilation=d)
        np.testing.assert_array_equal(expected.numpy(), manual.numpy())
