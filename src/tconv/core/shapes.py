"""Size arithmetic of convolution and transposed convolution, one spatial dimension at a time.

Symbols used throughout tconv:

- ``n``: the size of the *small* side (a convolution's output, a transposed convolution's input);
- ``L``: the size of the *large* side (a convolution's input, a transposed convolution's output);
- ``k``, ``s``, ``d``: kernel size, stride, dilation; ``k_eff = d*(k-1) + 1`` is the span of the kernel;
- ``(before, after)``: the padding of the large side. For a convolution it is added to the input;
  for a transposed convolution it is cropped from the output.

A convolution maps ``L`` to ``n = floor((L + before + after - k_eff) / s) + 1``. Several ``L`` give the
same ``n`` when ``s > 1``; a transposed convolution has to pick one, and ``output_padding`` is how
the caller says which:

    L = (n - 1)*s - before - after + d*(k - 1) + output_padding + 1

(PyTorch's formula, with ``before = after = padding``.)

>>> transposed_size(2, kernel=2, stride=2, pads=(1, 1))
2
>>> conv_size(2, kernel=2, stride=2, pads=(1, 1))
2
"""

from __future__ import annotations


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: ``d*(k-1) + 1``.

    >>> effective_kernel(3, dilation=2)
    5
    """
    return dilation * (kernel - 1) + 1


def transposed_size(
    n: int,
    kernel: int,
    stride: int = 1,
    pads: tuple[int, int] = (0, 0),
    dilation: int = 1,
    output_padding: int = 0,
) -> int:
    """Output size of a transposed convolution along one dimension.

    ``(n-1)*s - before - after + d*(k-1) + output_padding + 1``.

    >>> transposed_size(4, kernel=3, stride=2, pads=(2, 2))   # seed 003, In [28]
    5
    """
    before, after = pads
    return (n - 1) * stride - before - after + effective_kernel(kernel, dilation) + output_padding


def conv_size(
    L: int, kernel: int, stride: int = 1, pads: tuple[int, int] = (0, 0), dilation: int = 1
) -> int:
    """Output size of a convolution along one dimension: ``floor((L + before + after - k_eff)/s) + 1``.

    >>> conv_size(4, kernel=3, pads=(1, 1))   # seed 003, In [7]
    4
    """
    before, after = pads
    return (L + before + after - effective_kernel(kernel, dilation)) // stride + 1


def same_pads(L: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """The (before, after) padding of TF/Keras 'same' (ONNX SAME_UPPER) for a large side of size ``L``.

    A convolution then gives ``ceil(L/s)`` outputs; a transposed convolution of ``n`` inputs gives
    ``L = n*s``. The total is ``max((ceil(L/s) - 1)*s + k_eff - L, 0)`` and the odd pixel goes to the
    end. For stride 1 this is PyTorch's ``padding='same'`` of a convolution.

    >>> same_pads(8, kernel=4, stride=2)
    (1, 1)
    >>> same_pads(8, kernel=3, stride=2)
    (0, 1)
    """
    n = -(-L // stride)
    total = max((n - 1) * stride + effective_kernel(kernel, dilation) - L, 0)
    return total // 2, total - total // 2


def full_size(n: int, kernel: int, stride: int = 1, dilation: int = 1) -> int:
    """Size of the full scatter result, nothing cropped: ``(n-1)*s + d*(k-1) + 1``.

    Every framework's output is a window of it (cropped at either end, or extended at the end).

    >>> full_size(3, kernel=3, stride=2)
    7
    """
    return transposed_size(n, kernel, stride, (0, 0), dilation)


def output_padding_limit(stride: int, dilation: int = 1) -> int:
    """PyTorch's rule: ``output_padding`` must be smaller than this, ``max(stride, dilation)``.

    Past it, output_padding would append pixels no kernel tap can reach.

    >>> output_padding_limit(2, dilation=3)
    3
    """
    return max(stride, dilation)


def same_transposed(n: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[tuple[int, int], int]:
    """``padding='same'`` of a transposed convolution: ``((before, after), extra)`` for ``n`` inputs.

    The output is ``n*s`` pixels: the padding of the convolution that maps ``n*s`` back to ``n``
    (:func:`same_pads`, odd pixel at the end) is cropped, and where the kernel is shorter than the
    stride ``extra = s - k_eff`` pixels past the full result are appended (zeros, then the bias).

    >>> same_transposed(4, kernel=3, stride=2)
    ((0, 1), 0)
    >>> same_transposed(4, kernel=1, stride=2)
    ((0, 0), 1)
    """
    pads = same_pads(n * stride, kernel, stride, dilation)
    return pads, n * stride - transposed_size(n, kernel, stride, pads, dilation)


def output_padding_range(
    n: int, kernel: int, stride: int, pads: tuple[int, int], dilation: int
) -> tuple[int, int]:
    """The output sizes PyTorch lets ``output_size`` ask for: ``[min, min + s - 1]``.

    >>> output_padding_range(16, kernel=4, stride=2, pads=(1, 1), dilation=1)
    (32, 33)
    """
    low = transposed_size(n, kernel, stride, pads, dilation)
    return low, low + stride - 1
