"""tconv's transposed convolution in JAX's own ops: every padding mode, any padding, jit, grad, vmap.

``jax.lax.conv_transpose`` has no padding modes, and Flax's ``ConvTranspose`` only a CIRCULAR one.
Here are circular/reflect/replicate, ``padding='same'`` and asymmetric ``(before, after)`` padding with
tconv's exact semantics (the transposed convolution with padding mode ``M`` is the adjoint of the
convolution with that padding mode), in PyTorch's argument names and layout: channels-first input
``(N, C_in, *in)`` and weight ``(C_in, C_out/groups, *k)``. It is computed as ``lax.conv_general_dilated``
(the input dilated by the stride, the kernel flipped with in/out channels swapped per group) into the
padded domain, followed by the *fold* in ``jnp``: each border strip is added onto the pixels the
convolution copied it from, and zero padding's border is cropped.

The arguments are checked by tconv's own spec (:mod:`tconv.core.spec`) on the shapes, which are static
under ``jax.jit`` too; stride, padding, output_padding, groups, dilation and padding_mode must be
static (Python values).

>>> import jax.numpy as jnp
>>> from tconv.jax import conv_transpose
>>> conv_transpose(jnp.ones((1, 1, 3)), jnp.ones((1, 1, 3)), padding=1, padding_mode="circular")
Array([[[3., 3., 3.]]], dtype=float32)
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp

from ..core.padding import PADDING_MODES
from .common import fold_pieces, geometry, spec_of

__all__ = ["conv_transpose", "fold"]

_DIMENSION_NUMBERS = {
    1: ("NCH", "OIH", "NCH"),
    2: ("NCHW", "OIHW", "NCHW"),
    3: ("NCDHW", "OIDHW", "NCDHW"),
}


def fold(z: jax.Array, pads: tuple[tuple[int, int], ...], mode: str) -> jax.Array:
    """The transpose of padding the last ``len(pads)`` dims by ``(before, after)`` in mode ``mode``
    (:func:`tconv.core.padding.fold` in jnp); ``zeros`` crops.

    The fold is separable, so it is the sum of one piece per choice of (centre, before-strip,
    after-strip) in every dimension, each cut from ``z`` and added onto the centre: 9 pieces in 2-d,
    27 in 3-d. Folding one dimension after another instead gives XLA's CPU backend nested slices that
    it fuses into one slow loop (8x slower on a 130x130 output).

    >>> fold(jnp.array([1., 2., 3., 4., 5., 6.]), ((2, 1),), "reflect")
    Array([ 3., 12.,  6.], dtype=float32)
    """
    if mode not in PADDING_MODES:
        raise ValueError(f"fold: padding_mode must be one of {PADDING_MODES}, got {mode!r}")
    first = z.ndim - len(pads)
    sizes = [z.shape[first + i] - before - after for i, (before, after) in enumerate(pads)]
    choices = [fold_pieces(before, after, n, mode) for (before, after), n in zip(pads, sizes)]
    out = None
    for combination in itertools.product(*choices):
        piece, where = z, [slice(None)] * first
        for dim, (start, length, to, flip, total) in enumerate(combination, first):
            piece = jax.lax.slice_in_dim(piece, start, start + length, axis=dim)
            if flip:
                piece = jnp.flip(piece, dim)
            if total:
                piece = piece.sum(dim, keepdims=True)
            where.append(slice(to, to + piece.shape[dim]))
        out = piece if out is None else out.at[tuple(where)].add(piece)  # the centre comes first
    assert out is not None  # every dimension has its interior piece: the product is never empty
    return out


def conv_transpose(
    x: jax.Array,
    w: jax.Array,
    bias: jax.Array | None = None,
    stride: int | tuple[int, ...] = 1,
    padding: int | str | tuple = 0,
    output_padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
    padding_mode: str = "zeros",
    output_size: tuple[int, ...] | None = None,
) -> jax.Array:
    """Transposed convolution of spatial rank 1, 2 or 3 (``w.ndim - 2``) with tconv's semantics.

    Arguments as :func:`tconv.conv_transpose` / ``torch.nn.functional.conv_transpose2d``:
    ``padding`` an int, one int per dimension, one ``(before, after)`` pair per dimension, ``'valid'``
    or ``'same'``; ``padding_mode`` in zeros/circular/reflect/replicate. x ``(N, C_in, *in)`` or
    unbatched ``(C_in, *in)``; w ``(C_in, C_out/groups, *k)``; bias ``(C_out,)``. Output
    ``(N, C_out, *out)``, ``out = (in - 1)*stride - before - after + dilation*(k - 1) + output_padding + 1``.
    ``output_size`` (the spatial sizes, or the full shape as PyTorch accepts it) chooses
    ``output_padding`` instead, as ``ConvTranspose2d(...)(x, output_size=...)`` does.

    >>> conv_transpose(jnp.ones((1, 1, 3)), jnp.ones((1, 1, 3)), stride=2, padding=1,
    ...                output_size=(6,)).shape
    (1, 1, 6)
    """
    op = "conv_transpose"
    x, w = jnp.asarray(x), jnp.asarray(w)
    spec_of(op, tuple(x.shape), tuple(w.shape), None if bias is None else tuple(jnp.shape(bias)),
            stride, padding, output_padding, groups, dilation, output_size, padding_mode)
    unbatched, rank, stride, dilation, crop, pads = geometry(
        x.shape, w.shape, stride, padding, output_padding, dilation, output_size, padding_mode
    )
    return _compute(x, w, None if bias is None else jnp.asarray(bias), stride, dilation, crop, pads,
                    int(groups), padding_mode, unbatched, rank)


@functools.partial(jax.jit, static_argnums=tuple(range(3, 11)))
def _compute(x, w, bias, stride, dilation, crop, pads, groups, padding_mode, unbatched, rank):
    """The checked call as one compiled computation (one XLA compile per geometry, not one per op)."""
    if unbatched:
        x = x[None]
    c_in, c_out_g, kernel = w.shape[0], w.shape[1], w.shape[2:]
    # (C_in, C_out/g, *k) -> (C_out, C_in/g, *k), spatially flipped: the forward kernel of the scatter
    k = w.reshape((groups, c_in // groups, c_out_g) + kernel)
    k = jnp.swapaxes(k, 1, 2).reshape((groups * c_out_g, c_in // groups) + kernel)
    k = jnp.flip(k, tuple(range(2, 2 + rank)))
    full = [(d * (kk - 1), d * (kk - 1)) for kk, d in zip(kernel, dilation)]
    z = jax.lax.conv_general_dilated(
        x, k.astype(x.dtype), window_strides=(1,) * rank, padding=full, lhs_dilation=stride,
        rhs_dilation=dilation, dimension_numbers=_DIMENSION_NUMBERS[rank], feature_group_count=groups,
    )
    if any(b or a for b, a in crop):
        z = jax.lax.pad(z, jnp.zeros((), z.dtype), [(0, 0, 0), (0, 0, 0)] + [(b, a, 0) for b, a in crop])
    if padding_mode != "zeros":
        z = fold(z, pads, padding_mode)
    if bias is not None:
        z = z + jnp.asarray(bias, z.dtype).reshape((1, -1) + (1,) * rank)
    return z[0] if unbatched else z
