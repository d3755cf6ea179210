"""The worked examples of the seed documents, with the outputs the seeds print.

Each :class:`Example` holds an input, a weight, the call's arguments and the expected output exactly as
printed in its source; ``make demo`` (``tconv tour``) recomputes every one of them with tconv, and the
tests assert that tconv reproduces them. Sources:

- ``000``: a Korean note on ``nn.ConvTranspose2d`` (1 -> 3 channels, kernel 4; the weights were set to
  0.1, 0.2, ..., 4.8, as its printed output shows);
- ``002``: D2L 14.10 "Transposed Convolution" (Fig. 14.10.1, padding, stride, 14.10.3 matrix view);
- ``003``: a Korean notebook comparing ``Conv2d`` and ``ConvTranspose2d`` on a 4x4 input of ones;
- ``004``: a Japanese note checking stride, padding and output_padding on ``[[1, 2], [3, 4]]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Example:
    """One worked example: ``op(input, weight, **params)`` should print ``expected``."""

    name: str
    source: str
    op: str  # "conv_transpose" or "conv"
    input: Any
    weight: Any
    params: dict = field(default_factory=dict)
    expected: Any = None
    decimals: int | None = None  # the seed printed rounded values
    repr: str | None = None  # the layer's repr as the seed printed it

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(input, weight, expected)`` as float32 arrays of PyTorch's shapes (batch of one)."""
        as4 = np.asarray(self.input, dtype=np.float32)
        return as4, np.asarray(self.weight, dtype=np.float32), np.asarray(self.expected, np.float32)


def _nchw(rows):
    return [[rows]]


_ONES4 = _nchw([[1.0] * 4] * 4)
_D2L_X = _nchw([[0.0, 1.0], [2.0, 3.0]])
_JP_X = _nchw([[1.0, 2.0], [3.0, 4.0]])
_JP_K = _nchw([[1.0, 0.0], [0.0, 1.0]])


def _ones_kernel(k):
    return _nchw([[1.0] * k] * k)


EXAMPLES: tuple[Example, ...] = (
    Example(
        "ko-3ch-k4", "000 ([PyTorch] nn.ConvTranspose2d())", "conv_transpose",
        _nchw([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
        (np.arange(1, 49, dtype=np.float64).reshape(1, 3, 4, 4) / 10).tolist(),
        {},
        [[
            [[0.1, 0.4, 1.0, 1.6, 1.7, 1.2], [0.9, 2.9, 6.2, 8.3, 7.5, 4.8],
             [2.9, 7.7, 14.6, 16.7, 13.9, 8.4], [4.9, 12.5, 23.0, 25.1, 20.3, 12.0],
             [5.2, 12.1, 20.8, 22.3, 17.0, 9.6]],
            [[1.7, 5.2, 10.6, 11.2, 9.7, 6.0], [8.9, 22.1, 39.8, 41.9, 33.1, 19.2],
             [10.9, 26.9, 48.2, 50.3, 39.5, 22.8], [12.9, 31.7, 56.6, 58.7, 45.9, 26.4],
             [11.6, 26.5, 44.8, 46.3, 34.6, 19.2]],
            [[3.3, 10.0, 20.2, 20.8, 17.7, 10.8], [16.9, 41.3, 73.4, 75.5, 58.7, 33.6],
             [18.9, 46.1, 81.8, 83.9, 65.1, 37.2], [20.9, 50.9, 90.2, 92.3, 71.5, 40.8],
             [18.0, 40.9, 68.8, 70.3, 52.2, 28.8]],
        ]],
        decimals=4,
    ),
    Example("d2l-fig-14.10.1", "002 (D2L 14.10.1, Fig. 14.10.1)", "conv_transpose", _D2L_X, _D2L_X,
            {}, _nchw([[0.0, 0.0, 1.0], [0.0, 4.0, 6.0], [4.0, 12.0, 9.0]])),
    Example("d2l-padding-1", "002 (D2L 14.10.2, padding=1)", "conv_transpose", _D2L_X, _D2L_X,
            {"padding": 1}, _nchw([[4.0]])),
    Example("d2l-stride-2", "002 (D2L 14.10.2, Fig. 14.10.2)", "conv_transpose", _D2L_X, _D2L_X,
            {"stride": 2},
            _nchw([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 2.0, 3.0], [0.0, 2.0, 0.0, 3.0],
                   [4.0, 6.0, 6.0, 9.0]])),
    Example("d2l-corr2d", "002 (D2L 14.10.3, corr2d)", "conv",
            _nchw([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]), _nchw([[1.0, 2.0], [3.0, 4.0]]),
            {}, _nchw([[27.0, 37.0], [57.0, 67.0]])),
    Example("ko-conv-k3-p1", "003 (Conv2d, In [7])", "conv", _ONES4, _ones_kernel(3), {"padding": 1},
            _nchw([[4.0, 6.0, 6.0, 4.0], [6.0, 9.0, 9.0, 6.0], [6.0, 9.0, 9.0, 6.0],
                   [4.0, 6.0, 6.0, 4.0]])),
    Example("ko-conv-k3-p2", "003 (Conv2d, In [10])", "conv", _ONES4, _ones_kernel(3), {"padding": 2},
            _nchw([[1.0, 2.0, 3.0, 3.0, 2.0, 1.0], [2.0, 4.0, 6.0, 6.0, 4.0, 2.0],
                   [3.0, 6.0, 9.0, 9.0, 6.0, 3.0], [3.0, 6.0, 9.0, 9.0, 6.0, 3.0],
                   [2.0, 4.0, 6.0, 6.0, 4.0, 2.0], [1.0, 2.0, 3.0, 3.0, 2.0, 1.0]])),
    Example("ko-k2-p0", "003 (ConvTranspose2d, In [14])", "conv_transpose", _ONES4, _ones_kernel(2),
            {}, _nchw([[1.0, 2.0, 2.0, 2.0, 1.0]] + [[2.0, 4.0, 4.0, 4.0, 2.0]] * 3
                      + [[1.0, 2.0, 2.0, 2.0, 1.0]])),
    Example("ko-k2-p1", "003 (ConvTranspose2d, In [18])", "conv_transpose", _ONES4, _ones_kernel(2),
            {"padding": 1}, _nchw([[4.0, 4.0, 4.0]] * 3)),
    Example("ko-k3-p0", "003 (ConvTranspose2d, In [22])", "conv_transpose", _ONES4, _ones_kernel(3),
            {}, _nchw([[1.0, 2.0, 3.0, 3.0, 2.0, 1.0], [2.0, 4.0, 6.0, 6.0, 4.0, 2.0],
                       [3.0, 6.0, 9.0, 9.0, 6.0, 3.0], [3.0, 6.0, 9.0, 9.0, 6.0, 3.0],
                       [2.0, 4.0, 6.0, 6.0, 4.0, 2.0], [1.0, 2.0, 3.0, 3.0, 2.0, 1.0]])),
    Example("ko-k3-p2", "003 (ConvTranspose2d, In [25])", "conv_transpose", _ONES4, _ones_kernel(3),
            {"padding": 2}, _nchw([[9.0, 9.0], [9.0, 9.0]])),
    Example("ko-k3-p2-s2", "003 (ConvTranspose2d, In [28])", "conv_transpose", _ONES4,
            _ones_kernel(3), {"padding": 2, "stride": 2},
            _nchw([[4.0, 2.0, 4.0, 2.0, 4.0], [2.0, 1.0, 2.0, 1.0, 2.0], [4.0, 2.0, 4.0, 2.0, 4.0],
                   [2.0, 1.0, 2.0, 1.0, 2.0], [4.0, 2.0, 4.0, 2.0, 4.0]])),
    Example("jp-s2-p1", "004 (4-1, stride=2, padding=1)", "conv_transpose", _JP_X, _JP_K,
            {"stride": 2, "padding": 1}, _nchw([[1.0, 0.0], [0.0, 4.0]]),
            repr="ConvTranspose2d(1, 1, kernel_size=(2, 2), stride=(2, 2), padding=(1, 1), bias=False)"),
    Example("jp-s3-p1", "004 (4-2, stride=3, padding=1)", "conv_transpose", _JP_X, _JP_K,
            {"stride": 3, "padding": 1}, _nchw([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 4.0]]),
            repr="ConvTranspose2d(1, 1, kernel_size=(2, 2), stride=(3, 3), padding=(1, 1), bias=False)"),
    Example("jp-s2-p0", "004 (4-3, stride=2, padding=0)", "conv_transpose", _JP_X, _JP_K,
            {"stride": 2},
            _nchw([[1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, 2.0], [3.0, 0.0, 4.0, 0.0],
                   [0.0, 3.0, 0.0, 4.0]]),
            repr="ConvTranspose2d(1, 1, kernel_size=(2, 2), stride=(2, 2), bias=False)"),
    Example("jp-s2-p1-op1", "004 (4-4, output_padding=1)", "conv_transpose", _JP_X, _JP_K,
            {"stride": 2, "padding": 1, "output_padding": 1},
            _nchw([[1.0, 0.0, 2.0], [0.0, 4.0, 0.0], [3.0, 0.0, 4.0]]),
            repr="ConvTranspose2d(1, 1, kernel_size=(2, 2), stride=(2, 2), padding=(1, 1), "
                 "output_padding=(1, 1), bias=False)"),
)

#: D2L 14.10.3: the 4x9 matrix of the 2x2 kernel [[1, 2], [3, 4]] on a 3x3 input (``kernel2matrix``).
D2L_MATRIX = [
    [1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 3.0, 4.0],
]

#: Shape-only examples (the seeds used random weights): ``(source, layers, input shape, output shape)``,
#: each layer ``(class name, constructor arguments)``, applied in order.
SHAPE_EXAMPLES = (
    ("002 (D2L 14.10.2: a transposed convolution with the conv's hyper-parameters restores its shape)",
     (("Conv2d", dict(in_channels=10, out_channels=20, kernel_size=5, padding=2, stride=3)),
      ("ConvTranspose2d", dict(in_channels=20, out_channels=10, kernel_size=5, padding=2, stride=3))),
     (1, 10, 16, 16), (1, 10, 16, 16)),
    ("003 (Transpose Prac: ConvTranspose2d(2, 4, 7) on a 2x2 map)",
     (("ConvTranspose2d", dict(in_channels=2, out_channels=4, kernel_size=7, bias=False)),),
     (1, 2, 2, 2), (1, 4, 8, 8)),
)
