"""tconv's transposed convolution as a Flax NNX module: every padding mode, PyTorch's names and layout.

``ConvTranspose(in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
groups=1, bias=True, dilation=1, padding_mode='zeros', *, rngs)`` holds ``weight``
``(C_in, C_out/groups, *k)`` and ``bias`` ``(C_out,)`` as ``nnx.Param``, initialised as PyTorch does
(uniform in ``±1/sqrt(C_out/groups * prod(k))``) from ``rngs.params()``, and calls
:func:`tconv.bridges.jax.conv_transpose` on channels-first input ``(N, C_in, *in)``. The spatial rank is
``len(kernel_size)`` (an int is 1-d, as in Flax); ``ConvTranspose1d/2d/3d`` fix it as PyTorch's
classes do. The arguments are checked by :func:`tconv.core.layers.layer_args`, in tconv's words.

How it relates to Flax's own ``nnx.ConvTranspose(..., padding='CIRCULAR')``: Flax computes the
transposed convolution with no padding and wraps it onto ``in * stride`` outputs per dimension, centred.
That is tconv's ``padding_mode='circular'`` with the output size ``in * stride``: with
``e = dilation*(k - 1) + 1 - stride`` (the full output's excess over ``in * stride``),
``padding = e // 2`` when ``e`` is even; ``padding = (e + 1) // 2, output_padding = 1`` when ``e`` is
odd, Flax's ``transpose_kernel=True`` and stride or dilation > 1; ``padding = 0, output_padding = -e``
when ``e < 0``; where that padding is at most ``in * stride`` (tconv refuses a wider circular border,
as PyTorch does; Flax wraps it round more than once). Flax's kernel is ``(*k, C_in, C_out)``
channels-last, spatially flipped unless ``transpose_kernel=True`` (there ``(*k, C_out, C_in)``). Other
sizes, and reflect/replicate, Flax cannot express.

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> from tconv.jax import ConvTranspose2d
>>> layer = ConvTranspose2d(2, 3, 3, stride=2, padding=1, padding_mode="reflect", rngs=nnx.Rngs(0))
>>> layer.weight.shape, layer(jnp.ones((1, 2, 4, 4))).shape
((2, 3, 3, 3), (1, 3, 7, 7))
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from ..core.layers import layer_args
from .jax import conv_transpose

__all__ = ["ConvTranspose", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


class ConvTranspose(nnx.Module):
    """A transposed convolution layer with tconv's padding in Flax NNX (see the module's docstring).

    ``layer(x, output_size=None)``: ``output_size`` chooses ``output_padding`` as PyTorch's
    ``ConvTranspose2d(...)(x, output_size=...)`` does. ``dtype`` is the dtype of the computation
    (default: the input's and the parameters' promoted, as ``jnp.result_type``); ``param_dtype`` that of
    the parameters.
    """

    _rank: int | None = None  # fixed by ConvTranspose1d/2d/3d; else len(kernel_size)

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
        *,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        rank = self._rank
        if rank is None:
            rank = len(kernel_size) if isinstance(kernel_size, (tuple, list)) else 1
        args = layer_args(type(self).__name__, rank, True, in_channels, out_channels, kernel_size,
                          stride, padding, output_padding, groups, dilation, padding_mode)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.dilation = args.kernel_size, args.stride, args.dilation
        self.output_padding, self.padding, self.padding_mode = (args.output_padding, args.padding,
                                                                args.padding_mode)
        self.dtype, self.param_dtype = dtype, param_dtype
        key = rngs.params()
        wkey, bkey = jax.random.split(key)
        self.weight = nnx.Param(
            jax.random.uniform(wkey, args.weight_shape, param_dtype, -args.bound, args.bound)
        )
        self.bias = (nnx.Param(jax.random.uniform(bkey, (out_channels,), param_dtype, -args.bound,
                                                  args.bound)) if bias else None)

    def __call__(self, x: jax.Array, output_size: tuple[int, ...] | None = None) -> jax.Array:
        """``x`` ``(N, C_in, *in)`` or ``(C_in, *in)`` -> ``(N, C_out, *out)``."""
        dtype = self.dtype if self.dtype is not None else jnp.result_type(x, self.weight[...])
        return conv_transpose(
            jnp.asarray(x, dtype),
            jnp.asarray(self.weight[...], dtype),
            None if self.bias is None else jnp.asarray(self.bias[...], dtype),
            self.stride,
            self.padding,
            self.output_padding if output_size is None else 0,
            self.groups,
            self.dilation,
            self.padding_mode,
            output_size,
        )


class ConvTranspose1d(ConvTranspose):
    """:class:`ConvTranspose` of spatial rank 1 (an int ``kernel_size`` is one size per dimension)."""

    _rank = 1


class ConvTranspose2d(ConvTranspose):
    """:class:`ConvTranspose` of spatial rank 2 (an int ``kernel_size`` is one size per dimension)."""

    _rank = 2


class ConvTranspose3d(ConvTranspose):
    """:class:`ConvTranspose` of spatial rank 3 (an int ``kernel_size`` is one size per dimension)."""

    _rank = 3
