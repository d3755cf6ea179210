"""Bad input: a ValueError or TypeError that names the argument and the rule; nothing else."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import tconv

X = np.ones((1, 2, 4, 4))
W = np.ones((2, 3, 3, 3))  # transposed: C_in=2, C_out=3
WC = np.ones((3, 2, 3, 3))  # conv: C_out=3, C_in=2


def ct(**kw):
    args = dict(input=X, weight=W)
    args.update(kw)
    return lambda: tconv.conv_transpose(**args)


def cv(**kw):
    args = dict(input=X, weight=WC)
    args.update(kw)
    return lambda: tconv.conv(**args)


CASES = [
    # ranks and channels
    (ct(weight=np.ones((2, 3))), ValueError, r"weight must have at least 3 dimensions"),
    (ct(input=np.ones((4, 4))), ValueError, r"input must have 4 dimensions .* or 3"),
    (ct(input=np.ones((1, 1, 2, 4, 4))), ValueError, r"input must have 4 dimensions"),
    (ct(input=np.ones((1, 5, 4, 4))), ValueError, r"input has 5 channels but weight .* expects 2"),
    (cv(input=np.ones((1, 5, 4, 4))), ValueError, r"input has 5 channels but weight .* expects 2"),
    (ct(groups=3, weight=np.ones((2, 1, 3, 3))), ValueError,
     r"in_channels \(2\) must be divisible by groups \(3\)"),
    (cv(groups=2, weight=np.ones((3, 1, 3, 3))), ValueError,
     r"out_channels \(3\) must be divisible by groups \(2\)"),
    (ct(groups=0), ValueError, r"groups must be positive"),
    (ct(groups=1.5), TypeError, r"groups must be an int"),
    (ct(weight=np.ones((2, 3, 0, 3))), ValueError, r"weight must have no empty dimension"),
    (ct(input=np.ones((1, 2, 0, 4))), ValueError, r"input spatial size must be positive"),
    # stride, dilation, padding, output_padding
    (ct(stride=0), ValueError, r"stride must be positive in every dimension, got stride=\(0, 0\)"),
    (ct(stride=(1, -2)), ValueError, r"stride must be positive"),
    (ct(stride=(1, 2, 3)), TypeError, r"stride must be an int or a tuple of 2 ints"),
    (ct(stride=1.0), TypeError, r"stride must be an int or a tuple of 2 ints"),
    (ct(stride=True), TypeError, r"stride must be an int"),
    (ct(dilation=0), ValueError, r"dilation must be positive"),
    (ct(padding=-1), ValueError, r"padding must be non-negative"),
    (ct(padding=((1, -1), 0)), ValueError, r"padding must be non-negative"),
    (ct(padding="full"), ValueError, r"padding must be an int, a tuple, 'same' or 'valid', got 'full'"),
    (ct(padding=(1, 2, 3)), TypeError, r"padding must be an int, a tuple of 2 ints"),
    (ct(padding=((1, 2, 3), 0)), TypeError, r"\(before, after\) pair"),
    (ct(output_padding=-1), ValueError, r"output_padding must be non-negative"),
    (ct(stride=2, output_padding=2), ValueError,
     r"output_padding must be smaller than either stride or dilation in every dimension, "
     r"got output_padding=\(2, 2\), stride=\(2, 2\), dilation=\(1, 1\)"),
    (ct(padding="same", output_padding=1, stride=2), ValueError,
     r"output_padding must be 0 with padding='same'"),
    (ct(padding="same", stride=2, output_size=(7, 8)), ValueError,
     r"padding='same' gives output size \(8, 8\)"),
    (ct(padding=3), ValueError, r"the output size \(0, 0\) must be positive"),
    (cv(padding=0, input=np.ones((1, 2, 2, 2))), ValueError,
     r"padded input \(size \(2, 2\)\) must be at least as large as the dilated kernel"),
    # output_size
    (ct(stride=2, output_size=(5, 5)), ValueError,
     r"requested an output size of \(5, 5\), but valid sizes range from \(9, 9\) to \(10, 10\) "
     r"\(for an input of \(4, 4\)\)"),
    (ct(output_size=(6,)), ValueError, r"output_size must have 2 or 4 ints"),
    (ct(stride=2, output_size=(10, 10), output_padding=(1, 0)), ValueError,
     r"output_padding=\(1, 0\) contradicts output_size=\(10, 10\)"),
    # modes, algorithms, bias, dtype
    (ct(padding_mode="mirror"), ValueError,
     r"padding_mode must be one of \('zeros', 'circular', 'reflect', 'replicate'\), got 'mirror'"),
    (cv(padding_mode="wrap"), ValueError, r"padding_mode must be one of"),
    (ct(padding=4, stride=2, padding_mode="reflect"), ValueError,
     r"padding_mode='reflect' needs padding smaller than the padded size"),
    (cv(padding=5, padding_mode="circular"), ValueError,
     r"padding_mode='circular' needs padding no larger than the padded size"),
    (ct(algorithm="fft"), ValueError, r"algorithm must be one of \('auto', 'scatter'"),
    (ct(bias=np.ones(2)), ValueError, r"bias must have shape \(3,\), one value per output channel"),
    (cv(bias=np.ones((3, 1))), ValueError, r"bias must have shape \(3,\)"),
    (ct(input="abc"), TypeError, r"input must have dtype float32 or float64"),
    (ct(weight=[[1, 2], [3]]), TypeError, r"weight must be an array of numbers"),
    (ct(bias=np.ones(3, dtype=np.complex128)), TypeError, r"bias must have dtype"),
    (ct(input=np.ones((1, 2, 4, 4), dtype=np.float16)), TypeError, r"got dtype float16"),
    # sizes that would not fit in memory are refused, never a MemoryError
    (ct(stride=2**40), ValueError, r"would need .* GiB, more than this machine's"),
    (ct(weight=np.ones((2, 3, 3, 3)), stride=200, algorithm="matrix"), ValueError,
     r"algorithm='matrix': the dense convolution matrix would have shape .* MiB, above the 256 MiB"),
    # backward
    (lambda: tconv.conv_transpose_backward(np.ones((1, 3, 5, 5)), X, W), ValueError,
     r"grad_output must have the output's shape \(1, 3, 6, 6\), got \(1, 3, 5, 5\)"),
    (lambda: tconv.conv_backward(np.ones((1, 3, 5, 5)), X, WC), ValueError,
     r"grad_output must have the output's shape \(1, 3, 2, 2\)"),
    # ranked wrappers
    (lambda: tconv.conv_transpose1d(X, W), ValueError,
     r"conv_transpose1d: weight must have 3 dimensions"),
    (lambda: tconv.conv3d(X, WC), ValueError, r"conv3d: weight must have 5 dimensions"),
    (lambda: tconv.conv_transpose2d(np.ones((1, 5, 4, 4)), W), ValueError,
     r"conv_transpose2d: input has 5 channels"),
]


@pytest.mark.parametrize("call, error, match", CASES, ids=[c[2] for c in CASES])
def test_bad_input_is_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_output_padding_zero_does_not_contradict_output_size():
    """output_padding=0 is the default, not a request: output_size decides, as in PyTorch's layer."""
    y = ct(stride=2, output_size=(10, 10), output_padding=(0, 0))()
    layer = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(W))
        expected = layer(torch.from_numpy(X), output_size=[10, 10]).numpy()
    assert y.shape == expected.shape == (1, 3, 10, 10)
    np.testing.assert_allclose(y, expected, rtol=1e-12)


def test_matrix_refusal_happens_before_allocating():
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(ValueError, match="above the 256 MiB limit"):
        tconv.conv_transpose(np.ones((1, 64, 32, 32)), np.ones((64, 64, 4, 4)), stride=2,
                             algorithm="matrix")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 16 * 2**20


def test_errors_name_the_function_called():
    with pytest.raises(ValueError, match=r"^conv_transpose2d: stride must be positive"):
        tconv.conv_transpose2d(X, W, stride=0)
    with pytest.raises(ValueError, match=r"^ConvTranspose2d: stride must be positive"):
        tconv.ConvTranspose2d(2, 3, 3, stride=0)


ODD = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 5), st.floats(-2, 2), st.text(max_size=5),
    st.sampled_from(["same", "valid", "zeros", "circular", "reflect", "replicate"]),
    st.lists(st.integers(-2, 4), max_size=4).map(tuple),
    st.lists(st.tuples(st.integers(-1, 3), st.integers(-1, 3)), max_size=3).map(tuple),
)
SHAPES = st.lists(st.integers(0, 4), min_size=0, max_size=5).map(tuple)


@given(x_shape=SHAPES, w_shape=SHAPES, kwargs=st.dictionaries(
    st.sampled_from(["stride", "padding", "output_padding", "groups", "dilation", "output_size",
                     "padding_mode", "algorithm", "bias"]), ODD, max_size=4),
    transposed=st.booleans())
def test_anything_is_a_result_or_a_clear_error(x_shape, w_shape, kwargs, transposed):
    """Whatever the arguments: a result, a ValueError or a TypeError; never another exception."""
    x, w = np.ones(x_shape), np.ones(w_shape)
    if transposed:
        call = lambda: tconv.conv_transpose(x, w, **kwargs)  # noqa: E731
    else:
        for key in ("output_padding", "output_size", "algorithm"):
            kwargs.pop(key, None)
        call = lambda: tconv.conv(x, w, **kwargs)  # noqa: E731
    try:
        y = call()
    except (ValueError, TypeError) as exc:
        op, _, message = str(exc).partition(": ")
        assert op in {"conv_transpose", "conv", "algorithm='zero_insertion'"}
        # and it names what is wrong: an argument given, or the arrays themselves
        named = [*kwargs, "input", "weight", "in_channels", "out_channels", "output size",
                 "zero-inserted image", "padded input"]
        assert any(name in message for name in named), str(exc)
        return
    assert isinstance(y, np.ndarray) and y.dtype == np.float64
