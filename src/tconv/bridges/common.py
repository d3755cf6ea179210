"""What both bridges need and neither framework: tconv's checks on the shapes, and the geometry of a
checked call in plain Python arithmetic (``torch.compile`` and ``jax.jit`` trace it with static or
symbolic sizes). Imports neither torch nor jax."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.padding import PADDING_MODES
from ..core.shapes import same_transposed, transposed_size
from ..core.spec import ConvSpec, stand_in, transposed_spec


def spec_of(
    op: str,
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    bias_shape: tuple[int, ...] | None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: Any = 1,
    dilation: Any = 1,
    output_size: Any = None,
    padding_mode: Any = "zeros",
) -> ConvSpec:
    """tconv's validated :class:`~tconv.core.spec.ConvSpec` for arrays of these shapes."""
    if len(weight_shape) < 3 or len(weight_shape) > 5:
        raise ValueError(
            f"{op}: weight must have 3, 4 or 5 dimensions (C_in, C_out/groups, *kernel) for a 1d, 2d "
            f"or 3d transposed convolution, got shape {tuple(weight_shape)}"
        )
    return transposed_spec(
        op,
        stand_in(input_shape),
        stand_in(weight_shape),
        None if bias_shape is None else stand_in(bias_shape),
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        output_size,
        padding_mode,
        in_memory=False,  # the array may live on a device; the framework reports its own memory errors
    )


def per_dim(value: Any, rank: int) -> tuple:
    """An argument given once or per dimension (a tuple, list or NumPy array), per dimension."""
    return tuple(value) if isinstance(value, (tuple, list, np.ndarray)) else (value,) * rank


def geometry(input_shape, weight_shape, stride, padding, output_padding, dilation, output_size,
              padding_mode):
    """The geometry of an already checked call in plain Python arithmetic on the shapes (no NumPy), so
    that ``torch.compile`` traces it, with static or symbolic sizes, and leaves no graph break:
    ``(unbatched, rank, stride, dilation, crop, pads)``, ``crop`` the ``(before, after)`` zero-pad
    (positive) or crop (negative) of the framework's full transposed convolution (padding 0), the
    output for zeros and the padded domain for the other modes
    (:attr:`tconv.core.spec.ConvSpec.core_crop`)."""
    rank = len(weight_shape) - 2
    n, kernel = tuple(input_shape[-rank:]), tuple(weight_shape[2:])
    stride = tuple(int(v) for v in per_dim(stride, rank))
    dilation = tuple(int(v) for v in per_dim(dilation, rank))
    if isinstance(padding, str) and padding == "same":
        same = [same_transposed(ni, k, s, d) for ni, k, s, d in zip(n, kernel, stride, dilation)]
        pads, extra = tuple(p for p, _ in same), tuple(e for _, e in same)
    else:
        if isinstance(padding, str):  # 'valid' (anything else was refused by the spec)
            padding = 0
        pads = tuple(per_dim(p, 2) for p in per_dim(padding, rank))
        pads = tuple((int(p[0]), int(p[1])) for p in pads)
        if output_size is None:
            extra = tuple(int(v) for v in per_dim(output_padding, rank))
        else:
            request = tuple(output_size)[-rank:]
            extra = tuple(r - transposed_size(ni, k, s, p, d)
                          for r, ni, k, s, p, d in zip(request, n, kernel, stride, pads, dilation))
    if padding_mode == "zeros":
        crop = tuple((-b, e - a) for (b, a), e in zip(pads, extra))
    else:
        crop = tuple((0, e) for e in extra)
    return len(input_shape) == rank + 1, rank, stride, dilation, crop, pads


def fold_pieces(before: int, after: int, size: int, mode: str) -> list[tuple[int, int, int, bool, bool]]:
    """What folding one dimension adds, for the frameworks' folds: ``(source start, length,
    destination start, flip, sum)`` pieces of the padded dimension (``before + size + after`` long), the
    interior first, then each border strip where the mode copied it from
    (:func:`tconv.core.padding.fold` pixel by pixel): circular, the opposite end; reflect, flipped, from
    one pixel in; replicate, summed onto the edge pixel. Zeros keeps the interior only.

    >>> fold_pieces(2, 1, 3, "reflect")
    [(2, 3, 0, False, False), (0, 2, 1, True, False), (5, 1, 1, True, False)]
    """
    pieces = [(before, size, 0, False, False)]
    if mode == "zeros":
        return pieces
    if mode not in PADDING_MODES:
        raise ValueError(f"fold: padding_mode must be one of {PADDING_MODES}, got {mode!r}")
    if before:
        pieces.append({"circular": (0, before, size - before, False, False),
                       "reflect": (0, before, 1, True, False),
                       "replicate": (0, before, 0, False, True)}[mode])
    if after:
        pieces.append({"circular": (before + size, after, 0, False, False),
                       "reflect": (before + size, after, size - 1 - after, True, False),
                       "replicate": (before + size, after, size - 1, False, True)}[mode])
    return pieces
