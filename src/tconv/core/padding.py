"""Padding: the four padding modes, applied (convolution) and folded back (transposed convolution).

A convolution with padding mode ``M`` first pads its input by ``(before, after)`` per spatial dimension,
each new pixel a copy of an input pixel (``circular``, ``reflect``, ``replicate``) or zero (``zeros``),
and then correlates without padding. Padding is a linear map ``P``; its transpose ``P^T`` *folds*:
every border pixel is added back onto the pixel it was copied from, and zero-padding's border is
simply dropped (a crop). tconv defines the transposed convolution with mode ``M`` as the exact adjoint
of the convolution with mode ``M``:

    conv_M            = correlate_valid o P_M
    conv_transpose_M  = P_M^T o conv_transpose_valid

which PyTorch refuses to compute for any mode but ``zeros`` (pytorch/pytorch#46027).

>>> import numpy as np
>>> pad(np.array([1., 2., 3.]), [(2, 1)], "circular")
array([2., 3., 1., 2., 3., 1.])
>>> fold(np.array([1., 1., 1., 1., 1., 1.]), [(2, 1)], "circular")
array([2., 2., 2.])
"""

from __future__ import annotations

from collections.abc import Sequence
from types import EllipsisType
from typing import Literal

import numpy as np

PADDING_MODES = ("zeros", "circular", "reflect", "replicate")
_NUMPY_MODE: dict[str, Literal["constant", "wrap", "reflect", "edge"]] = {
    "zeros": "constant", "circular": "wrap", "reflect": "reflect", "replicate": "edge"
}

Pairs = Sequence[tuple[int, int]]


def source_index(q: int, size: int, mode: str) -> int:
    """Index of the input pixel that padded position ``q`` (in input coordinates) copies.

    ``q < 0`` or ``q >= size`` lies in the border. Zero mode has no source (returns -1).

    >>> [source_index(q, 3, "reflect") for q in (-2, -1, 3, 4)]
    [2, 1, 1, 0]
    """
    if 0 <= q < size:
        return q
    if mode == "circular":
        return q % size
    if mode == "reflect":
        return -q if q < 0 else 2 * (size - 1) - q
    if mode == "replicate":
        return 0 if q < 0 else size - 1
    return -1


def check_pads(pads: Pairs, sizes: Sequence[int], mode: str, what: str) -> None:
    """Refuse, as PyTorch does, a border that the mode cannot copy from ``sizes`` pixels."""
    for dim, ((before, after), size) in enumerate(zip(pads, sizes)):
        widest = max(before, after)
        if mode == "reflect" and widest >= size:
            raise ValueError(
                f"{what}: padding_mode='reflect' needs padding smaller than the padded size in every "
                f"dimension, got padding {(before, after)} for size {size} in dimension {dim}"
            )
        if mode == "circular" and widest > size:
            raise ValueError(
                f"{what}: padding_mode='circular' needs padding no larger than the padded size in "
                f"every dimension, got padding {(before, after)} for size {size} in dimension {dim}"
            )


def pad(a: np.ndarray, pads: Pairs, mode: str) -> np.ndarray:
    """Pad the last ``len(pads)`` axes of ``a`` by ``(before, after)`` each, in padding mode ``mode``.

    Shape ``(..., *L)`` to ``(..., *(L + before + after))``. A new array; ``a`` is not modified.
    """
    if not any(before or after for before, after in pads):
        return a
    widths = [(0, 0)] * (a.ndim - len(pads)) + [tuple(p) for p in pads]
    return np.pad(a, widths, mode=_NUMPY_MODE[mode])


def fold(z: np.ndarray, pads: Pairs, mode: str) -> np.ndarray:
    """The transpose of :func:`pad`: shape ``(..., *(L + before + after))`` to ``(..., *L)``.

    The interior is kept and every border pixel is added onto its source pixel; for ``zeros`` the
    border is dropped. ``<pad(x), z> == <x, fold(z)>`` for every ``x`` and ``z``.
    """
    out = z
    first = z.ndim - len(pads)
    for i, (before, after) in enumerate(pads):
        if not (before or after):
            continue
        axis = first + i
        size = out.shape[axis] - before - after
        moved = np.moveaxis(out, axis, 0)
        folded = moved[before : before + size].copy()
        if mode != "zeros":
            for j in (*range(before), *range(before + size, before + size + after)):
                folded[source_index(j - before, size, mode)] += moved[j]
        out = np.moveaxis(folded, 0, axis)
    return out


def pad_or_crop(a: np.ndarray, pairs: Pairs) -> np.ndarray:
    """Zero-pad (positive) or crop (negative) the last ``len(pairs)`` axes by ``(before, after)``."""
    first = a.ndim - len(pairs)
    crop = tuple(slice(max(-b, 0), a.shape[first + i] - max(-e, 0)) for i, (b, e) in enumerate(pairs))
    index: tuple[EllipsisType | slice, ...] = (Ellipsis, *crop)
    a = a[index]
    widths = [(0, 0)] * first + [(max(b, 0), max(e, 0)) for b, e in pairs]
    if any(w != (0, 0) for w in widths):
        a = np.pad(a, widths)
    return a
