"""tconv's transposed convolution in PyTorch's own ops: every padding mode, any padding, autograd, any device.

PyTorch refuses ``padding_mode`` circular/reflect/replicate for a transposed convolution
(pytorch/pytorch#46027) and ``padding='same'`` (pytorch/pytorch#80301), and has no asymmetric
``(before, after)`` padding. Here they are, with tconv's exact semantics: the transposed convolution
with padding mode ``M`` is the adjoint (the autograd vector-Jacobian product) of ``torch.nn.ConvNd(...,
padding_mode=M)``. It is computed as PyTorch's own ``conv_transpose`` into the padded domain (padding
0), followed by the *fold*: each border strip is added onto the pixels the convolution copied it from
(circular: the opposite edge; reflect: the mirrored pixels, flipped; replicate: the edge pixel), and
zero padding's border is cropped. Only slicing, ``flip``, ``sum`` and in-place adds on a fresh tensor:
no NumPy round trip, no loop over pixels, so it runs on the tensor's device and autograd differentiates it.

In eager mode the arguments are checked by tconv's own spec (:mod:`tconv.core.spec`) on the shapes, so
the messages are those of :func:`tconv.conv_transpose`; under ``torch.compile`` the geometry is plain
Python arithmetic that dynamo traces (no graph break, static or symbolic sizes).

>>> import torch
>>> from tconv.torch import ConvTranspose2d, conv_transpose
>>> x = torch.ones(1, 1, 3)
>>> conv_transpose(x, torch.ones(1, 1, 3), padding=1, padding_mode="circular")
tensor([[[3., 3., 3.]]])
>>> layer = ConvTranspose2d(4, 2, 4, stride=2, padding="same", padding_mode="reflect")
>>> layer(torch.randn(1, 4, 8, 8)).shape
torch.Size([1, 2, 16, 16])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ..core.padding import PADDING_MODES
from ..core.spec import check_output_padding, padding_pairs
from .common import fold_pieces, geometry, spec_of

__all__ = ["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "conv_transpose", "fold"]

_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _pad_or_crop(z: torch.Tensor, pairs: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """Zero-pad (positive) or crop (negative) the last ``len(pairs)`` dims by ``(before, after)``."""
    if not any(b or a for b, a in pairs):
        return z
    return F.pad(z, [v for pair in reversed(pairs) for v in pair])


def fold(z: torch.Tensor, pads: tuple[tuple[int, int], ...], mode: str) -> torch.Tensor:
    """The transpose of padding the last ``len(pads)`` dims by ``(before, after)`` in mode ``mode``.

    Shape ``(..., *(L + before + after))`` to ``(..., *L)``: the interior is kept and every border
    pixel is added onto its source pixel (:func:`tconv.core.padding.fold`, in torch ops); ``zeros``
    crops.

    >>> fold(torch.tensor([1., 2., 3., 4., 5., 6.]), ((2, 1),), "reflect")
    tensor([ 3., 12.,  6.])
    """
    first = z.dim() - len(pads)
    out = z
    for i, (before, after) in enumerate(pads):
        if not (before or after):
            continue
        dim = first + i
        size = out.shape[dim] - before - after
        (start, length, _, _, _), *strips = fold_pieces(before, after, size, mode)
        interior = out.narrow(dim, start, length)
        if not strips:  # zeros
            out = interior
            continue
        folded = interior.clone()
        for start, length, to, flip, total in strips:
            strip = out.narrow(dim, start, length)
            if flip:
                strip = strip.flip(dim)
            if total:
                strip = strip.sum(dim, keepdim=True)
            folded.narrow(dim, to, strip.shape[dim]).add_(strip)
        out = folded
    return out


def conv_transpose(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, ...] = 1,
    padding: int | str | tuple = 0,
    output_padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
    padding_mode: str = "zeros",
    output_size: Sequence[int] | None = None,
) -> torch.Tensor:
    """Transposed convolution of spatial rank 1, 2 or 3 (set by ``weight.dim() - 2``), tconv's semantics.

    Args as :func:`torch.nn.functional.conv_transpose2d`, plus:
        padding: an int; one int per dimension; one ``(before, after)`` pair per dimension; ``'valid'``;
            or ``'same'`` (output size ``input * stride``, the odd pixel cropped at the end).
        padding_mode: ``'zeros'``, ``'circular'``, ``'reflect'`` or ``'replicate'``: the adjoint of
            ``torch.nn.ConvNd(..., padding_mode=padding_mode)`` with the same padding.
        output_size: the spatial output size (or the whole output shape), chooses output_padding as
            ``torch.nn.ConvTranspose2d.forward(input, output_size)`` does.

    input ``(N, C_in, *in)`` or unbatched ``(C_in, *in)``; weight ``(C_in, C_out/groups, *k)``; bias
    ``(C_out,)``. Returns ``(N, C_out, *out)`` (unbatched in, unbatched out) on the input's device.
    """
    op = "conv_transpose"
    if not isinstance(input, torch.Tensor) or not isinstance(weight, torch.Tensor):
        raise TypeError(
            f"{op}: input and weight must be torch tensors, got {type(input).__name__} and "
            f"{type(weight).__name__} (for NumPy arrays use tconv.conv_transpose)"
        )
    if bias is not None and not isinstance(bias, torch.Tensor):
        raise TypeError(f"{op}: bias must be a torch tensor or None, got {type(bias).__name__}")
    # tconv's checks (NumPy shape arithmetic, messages naming the argument) run in eager mode; inside
    # torch.compile they are skipped, and a bad argument fails in PyTorch's own ops instead
    if not torch.compiler.is_compiling():
        spec_of(op, tuple(input.shape), tuple(weight.shape), None if bias is None else tuple(bias.shape),
                stride, padding, output_padding, groups, dilation, output_size, padding_mode)
    unbatched, rank, stride, dilation, crop, pads = geometry(
        input.shape, weight.shape, stride, padding, output_padding, dilation, output_size, padding_mode
    )
    mode = padding_mode
    x = input.unsqueeze(0) if unbatched else input
    z = _CONV_TRANSPOSE[rank](x, weight, None, stride, 0, 0, groups, dilation)
    # z covers the full scatter (n-1)*s + d*(k-1) + 1; the algorithm's crop (zeros: the output itself;
    # other modes: the padded domain, extended by extra = output_padding pixels) then the fold.
    z = _pad_or_crop(z, crop)
    if mode != "zeros":
        z = fold(z, pads, mode)
    if bias is not None:
        z = z + bias.reshape((1, -1) + (1,) * rank)
    return z.squeeze(0) if unbatched else z


# --------------------------------------------------------------------------- modules


class _ConvTransposeMixin:
    """The part of ``ConvTranspose1d/2d/3d`` that torch's own classes refuse: padding forms and modes."""

    _rank: int
    if TYPE_CHECKING:  # set by torch's ConvTransposeNd, the other base of every class made by _make
        # (for mypy only: TorchScript reads class annotations, and these would change its refusal)
        weight: torch.Tensor
        bias: torch.Tensor | None
        stride: tuple[int, ...]
        output_padding: tuple[int, ...]
        dilation: tuple[int, ...]
        groups: int

    def _tconv_init(self, padding: Any, padding_mode: str) -> None:
        name = type(self).__name__
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        if isinstance(padding, str):
            stored: Any = padding
        elif isinstance(padding, int):
            stored = (padding,) * self._rank
        else:
            stored = tuple(p if isinstance(p, int) else tuple(p) for p in padding)
        self.padding = stored
        self.padding_mode = padding_mode
        # the padding form checked now, with tconv's messages; sizes are checked at each call
        pairs = padding_pairs(name, stored, self._rank)
        if pairs == "same" and any(self.output_padding):
            raise ValueError(
                f"{name}: output_padding must be 0 with padding='same' (the output size is input size "
                f"x stride), got output_padding={tuple(self.output_padding)}"
            )
        check_output_padding(name, tuple(self.output_padding), tuple(self.stride), tuple(self.dilation))

    def forward(self, input: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        # as torch's ConvTransposeNd: output_size, when given, chooses output_padding
        return conv_transpose(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.output_padding if output_size is None else 0,
            self.groups,
            self.dilation,
            self.padding_mode,
            output_size,
        )


def _make(rank: int, base: type[torch.nn.Module]) -> type:
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | str | tuple = 0,
        output_padding: int | tuple[int, ...] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, ...] = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        base.__init__(
            self, in_channels, out_channels, kernel_size, stride, 0, output_padding, groups, bias,
            dilation, "zeros", device, dtype,
        )
        self._tconv_init(padding, padding_mode)

    doc = (
        f"``torch.nn.ConvTranspose{rank}d`` with tconv's padding: the same constructor, parameters, "
        f"state_dict keys and ``forward(input, output_size=None)``, plus ``padding_mode`` in {PADDING_MODES} "
        f"and ``padding`` as an int, one int per dimension, one ``(before, after)`` pair per dimension, "
        f"'valid' or 'same'."
    )
    cls = type(
        f"ConvTranspose{rank}d",
        (_ConvTransposeMixin, base),
        {"__init__": __init__, "_rank": rank, "__doc__": doc, "__module__": __name__},
    )
    __init__.__qualname__ = f"ConvTranspose{rank}d.__init__"  # cls.__init__
    return cls


ConvTranspose1d = _make(1, torch.nn.ConvTranspose1d)
ConvTranspose2d = _make(2, torch.nn.ConvTranspose2d)
ConvTranspose3d = _make(3, torch.nn.ConvTranspose3d)
