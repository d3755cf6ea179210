"""One validated, frozen description of a (transposed) convolution: :class:`ConvSpec`.

Every public entry point normalises and checks its arguments here, once, and every algorithm receives
the resulting spec together with plain, already-checked arrays.

A convolution and its transposed convolution share one geometry, so one spec serves both:

- the *small* side has ``small_channels`` channels and spatial size ``small`` (``n`` per dimension):
  a transposed convolution's input, a convolution's output;
- the *large* side has ``large_channels`` channels and spatial size ``large`` (``L``): a transposed
  convolution's output, a convolution's input;
- the weight has shape ``(small_channels, large_channels/groups, *kernel)`` in both cases: PyTorch's
  ``ConvTranspose`` layout ``(C_in, C_out/groups, *k)`` is exactly the ``Conv`` layout
  ``(C_out, C_in/groups, *k)`` of the convolution it transposes;
- ``pads`` is the ``(before, after)`` padding of the large side, per dimension, and ``extra`` the
  large pixels past the last kernel window (a transposed convolution's ``output_padding``):
  ``L + before + after = (n - 1)*s + d*(k - 1) + 1 + extra``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from math import prod
from numbers import Integral
from typing import Any

import numpy as np

from .padding import PADDING_MODES, check_pads
from .shapes import (
    conv_size,
    effective_kernel,
    full_size,
    output_padding_limit,
    output_padding_range,
    same_pads,
    same_transposed,
    transposed_size,
)


@dataclass(frozen=True)
class ConvSpec:
    """The validated geometry of one call. See the module docstring for the symbols."""

    transposed: bool
    batch: int | None  # None: the caller's arrays have no batch axis
    small_channels: int
    large_channels: int
    groups: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    small: tuple[int, ...]
    large: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    padding_mode: str
    dtype: np.dtype

    @property
    def rank(self) -> int:
        return len(self.kernel)

    @property
    def extra(self) -> tuple[int, ...]:
        """Large pixels past the last kernel window; a transposed convolution's output_padding."""
        return tuple(
            L + b + a - full_size(n, k, s, d)
            for L, (b, a), n, k, s, d in zip(
                self.large, self.pads, self.small, self.kernel, self.stride, self.dilation
            )
        )

    @property
    def core_crop(self) -> tuple[tuple[int, int], ...]:
        """What an algorithm crops from the full scatter ``(n-1)*s + d*(k-1) + 1`` per dimension.

        A negative crop extends with zeros. For ``zeros`` mode the algorithm's result is the output
        itself; for the other modes it is the padded domain, which :func:`tconv.core.padding.fold` then folds.
        """
        if self.padding_mode == "zeros":
            return tuple((b, a - e) for (b, a), e in zip(self.pads, self.extra))
        return tuple((0, -e) for e in self.extra)

    @property
    def core_size(self) -> tuple[int, ...]:
        """Spatial size of an algorithm's result (see :attr:`core_crop`)."""
        if self.padding_mode == "zeros":
            return self.large
        return tuple(L + b + a for L, (b, a) in zip(self.large, self.pads))

    @property
    def multiply_adds(self) -> int:
        """``N * P_n * P_k * C_small * C_large / G``: the multiply-adds of either direction, ``N``
        counting 1 for an unbatched input and for an empty batch too (what the engine's thresholds
        and ``auto`` weigh)."""
        return ((self.batch or 1) * prod(self.small) * prod(self.kernel) * self.small_channels
                * self.large_channels // self.groups)

    @property
    def in_channels(self) -> int:
        return self.small_channels if self.transposed else self.large_channels

    @property
    def out_channels(self) -> int:
        return self.large_channels if self.transposed else self.small_channels

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return (self.small_channels, self.large_channels // self.groups, *self.kernel)

    def _shape(self, channels: int, spatial: tuple[int, ...]) -> tuple[int, ...]:
        return ((self.batch,) if self.batch is not None else ()) + (channels, *spatial)

    @property
    def small_shape(self) -> tuple[int, ...]:
        return self._shape(self.small_channels, self.small)

    @property
    def large_shape(self) -> tuple[int, ...]:
        return self._shape(self.large_channels, self.large)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.small_shape if self.transposed else self.large_shape

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.large_shape if self.transposed else self.small_shape


# --------------------------------------------------------------------------- argument checks


def as_array(op: str, name: str, value: Any) -> np.ndarray:
    """``value`` as an ndarray of a supported dtype (never copied, never modified)."""
    if isinstance(value, np.ndarray):
        arr = value
    else:
        if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
            value = value.detach().cpu().numpy()
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{op}: {name} must be an array of numbers, got {type(value).__name__}") from exc
    kind = arr.dtype.kind
    if kind not in "biuf" or arr.dtype in (np.float16, np.longdouble):
        raise TypeError(
            f"{op}: {name} must have dtype float32 or float64 (integer and bool arrays are computed "
            f"in float64), got dtype {arr.dtype}"
        )
    return arr


def result_dtype(*arrays: np.ndarray | None) -> np.dtype:
    """NumPy promotion of the arguments; integer and bool results are computed in float64."""
    dtype = np.result_type(*(a for a in arrays if a is not None))
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _int(op: str, name: str, value: Any) -> int:
    if isinstance(value, Integral) and not isinstance(value, bool):
        return int(value)
    raise TypeError(f"{op}: {name} must be an int, got {value!r}")


def int_tuple(op: str, name: str, value: Any, rank: int, minimum: int) -> tuple[int, ...]:
    """An int or one int per spatial dimension, each ``>= minimum``."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        values = (int(value),) * rank
    elif isinstance(value, Sequence) and not isinstance(value, str) or isinstance(value, np.ndarray):
        values = tuple(value)
        if len(values) != rank or not all(
            isinstance(v, Integral) and not isinstance(v, bool) for v in values
        ):
            raise TypeError(
                f"{op}: {name} must be an int or a tuple of {rank} ints (one per spatial dimension), "
                f"got {value!r}"
            )
        values = tuple(int(v) for v in values)
    else:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {rank} ints, got {value!r}")
    if any(v < minimum for v in values):
        rule = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{op}: {name} must be {rule} in every dimension, got {name}={values}")
    return values


def check_output_padding(
    op: str, output_padding: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...]
) -> None:
    """PyTorch's rule, the one place it is checked: ``output_padding < max(stride, dilation)`` per
    dimension (:func:`tconv.core.shapes.output_padding_limit`)."""
    if any(o >= output_padding_limit(s, d) for o, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(
            f"{op}: output_padding must be smaller than either stride or dilation in every "
            f"dimension, got output_padding={tuple(output_padding)}, stride={tuple(stride)}, "
            f"dilation={tuple(dilation)}"
        )


def padding_pairs(op: str, padding: Any, rank: int) -> str | tuple[tuple[int, int], ...]:
    """``padding`` as one ``(before, after)`` pair per dimension, or the word 'same' / 'valid'.

    Accepted: an int; one int per dimension (symmetric); one ``(before, after)`` pair per dimension.
    """
    if isinstance(padding, str):
        if padding in ("same", "valid"):
            return padding
        raise ValueError(f"{op}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    pairs: tuple[tuple[int, int], ...]
    if isinstance(padding, Integral) and not isinstance(padding, bool):
        pairs = ((int(padding), int(padding)),) * rank
    elif isinstance(padding, (Sequence, np.ndarray)) and len(padding) == rank:
        listed: list[tuple[int, int]] = []
        for p in padding:
            if isinstance(p, Integral) and not isinstance(p, bool):
                listed.append((int(p), int(p)))
            elif (
                isinstance(p, (Sequence, np.ndarray))
                and len(p) == 2
                and all(isinstance(v, Integral) and not isinstance(v, bool) for v in p)
            ):
                listed.append((int(p[0]), int(p[1])))
            else:
                raise TypeError(
                    f"{op}: padding must give each of the {rank} spatial dimensions an int or a "
                    f"(before, after) pair of ints, got {padding!r}"
                )
        pairs = tuple(listed)
    else:
        raise TypeError(
            f"{op}: padding must be an int, a tuple of {rank} ints, a tuple of {rank} (before, after) "
            f"pairs, 'same' or 'valid', got {padding!r}"
        )
    if any(v < 0 for pair in pairs for v in pair):
        raise ValueError(f"{op}: padding must be non-negative, got padding={padding!r}")
    return pairs


def _check_mode(op: str, padding_mode: Any) -> str:
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"{op}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    return padding_mode


def _layout(op: str, x: np.ndarray, w: np.ndarray, groups: Any):
    """Checks shared by both directions; returns (rank, batch, spatial sizes, groups)."""
    if w.ndim < 3:
        raise ValueError(
            f"{op}: weight must have at least 3 dimensions (channels, channels/groups, *kernel), "
            f"got shape {w.shape}"
        )
    rank = w.ndim - 2
    if x.ndim not in (rank + 1, rank + 2):
        raise ValueError(
            f"{op}: input must have {rank + 2} dimensions (N, C, *spatial) or {rank + 1} (C, *spatial) "
            f"for a weight of {w.ndim} dimensions, got input of shape {x.shape}"
        )
    groups = _int(op, "groups", groups)
    if groups < 1:
        raise ValueError(f"{op}: groups must be positive, got groups={groups}")
    if min(w.shape) < 1:
        raise ValueError(f"{op}: weight must have no empty dimension, got shape {w.shape}")
    batch = x.shape[0] if x.ndim == rank + 2 else None
    spatial = x.shape[-rank:]
    if min(spatial) < 1:
        raise ValueError(f"{op}: input spatial size must be positive, got input of shape {x.shape}")
    return rank, batch, tuple(spatial), groups


def _check_bias(op: str, b: np.ndarray | None, out_channels: int) -> None:
    if b is not None and b.shape != (out_channels,):
        raise ValueError(
            f"{op}: bias must have shape ({out_channels},), one value per output channel, got {b.shape}"
        )


def physical_memory() -> int | None:
    """This machine's memory in bytes, or None where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None


def check_bytes(op: str, what: str, need: int, share: float = 1.0) -> None:
    """Refuse, with a ValueError, an allocation over ``share`` of this machine's memory.

    A refusal beats a MemoryError or the kernel's out-of-memory killer.
    """
    have = physical_memory()
    if have is not None and need > share * have:
        raise ValueError(
            f"{op}: {what} would need {need / 2**30:.1f} GiB, more than "
            f"{'' if share == 1 else f'{share:.0%} of '}this machine's {have / 2**30:.1f} GiB of memory"
        )


def _check_memory(op: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    check_bytes(op, f"the output of shape {shape}", prod(shape) * dtype.itemsize)


def _pretty(values: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


# --------------------------------------------------------------------------- the two builders


def transposed_spec(
    op: str,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: Any = 1,
    dilation: Any = 1,
    output_size: Any = None,
    padding_mode: Any = "zeros",
    *,
    in_memory: bool = True,
) -> ConvSpec:
    """The spec of ``conv_transpose(x, w, b, ...)``; raises ValueError/TypeError naming the argument.

    ``in_memory=False`` (a dask input, computed block by block) skips the refusal of an output
    larger than this machine's memory."""
    rank, batch, n, groups = _layout(op, x, w, groups)
    if x.shape[-rank - 1] != w.shape[0]:
        raise ValueError(
            f"{op}: input has {x.shape[-rank - 1]} channels but weight of shape {w.shape} expects "
            f"{w.shape[0]} (weight is (C_in, C_out/groups, *kernel))"
        )
    if w.shape[0] % groups:
        raise ValueError(
            f"{op}: in_channels ({w.shape[0]}) must be divisible by groups ({groups})"
        )
    _check_bias(op, b, w.shape[1] * groups)
    kernel = tuple(w.shape[2:])
    stride = int_tuple(op, "stride", stride, rank, 1)
    dilation = int_tuple(op, "dilation", dilation, rank, 1)
    output_padding = int_tuple(op, "output_padding", output_padding, rank, 0)
    padding_mode = _check_mode(op, padding_mode)
    padding_arg = padding_pairs(op, padding, rank)
    pads: tuple[tuple[int, int], ...]

    if padding_arg == "same":
        if any(output_padding):
            raise ValueError(
                f"{op}: output_padding must be 0 with padding='same' (the output size is input size "
                f"x stride), got output_padding={output_padding}"
            )
        large = tuple(ni * s for ni, s in zip(n, stride))
        pads = tuple(same_transposed(ni, k, s, d)[0] for ni, k, s, d in zip(n, kernel, stride, dilation))
        if output_size is not None and _spatial_request(op, output_size, x, rank) != large:
            raise ValueError(
                f"{op}: padding='same' gives output size {large} (input size x stride), but "
                f"output_size={_pretty(output_size)} was requested"
            )
    else:
        pads = ((0, 0),) * rank if isinstance(padding_arg, str) else padding_arg  # str: 'valid'
        if output_size is not None:
            request = _spatial_request(op, output_size, x, rank)
            ranges = [
                output_padding_range(ni, k, s, p, d)
                for ni, k, s, p, d in zip(n, kernel, stride, pads, dilation)
            ]
            if not all(lo <= r <= hi for r, (lo, hi) in zip(request, ranges)):
                raise ValueError(
                    f"{op}: requested an output size of {request}, but valid sizes range from "
                    f"{tuple(lo for lo, _ in ranges)} to {tuple(hi for _, hi in ranges)} "
                    f"(for an input of {n})"
                )
            chosen = tuple(r - lo for r, (lo, _) in zip(request, ranges))
            if any(output_padding) and output_padding != chosen:
                raise ValueError(
                    f"{op}: output_padding={output_padding} contradicts output_size={request}, which "
                    f"needs output_padding={chosen}; give one or the other"
                )
            output_padding = chosen
        check_output_padding(op, output_padding, stride, dilation)
        large = tuple(
            transposed_size(ni, k, s, p, d, o)
            for ni, k, s, p, d, o in zip(n, kernel, stride, pads, dilation, output_padding)
        )
        if min(large) < 1:
            raise ValueError(
                f"{op}: the output size {large} must be positive in every dimension; it is "
                f"(in-1)*stride - padding_before - padding_after + dilation*(kernel-1) + "
                f"output_padding + 1 with in={n}, stride={stride}, padding={pads}, "
                f"dilation={dilation}, kernel={kernel}, output_padding={output_padding}"
            )
    if padding_mode != "zeros":
        check_pads(pads, large, padding_mode, op)
    return _build(op, True, batch, w, groups, kernel, stride, dilation, n, large, pads,
                  padding_mode, result_dtype(x, w, b), in_memory)


def cached_transposed_spec(op: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Any = 1,
                           padding: Any = 0, output_padding: Any = 0, groups: Any = 1, dilation: Any = 1,
                           output_size: Any = None, padding_mode: Any = "zeros") -> ConvSpec:
    """:func:`transposed_spec`, remembered per geometry: the spec depends only on the arrays' shapes and
    dtypes and on the arguments, so a call repeating them (a layer's every call on one input shape)
    reuses it instead of checking everything again. Only arguments of exactly ``int``, ``str``,
    ``None`` or tuples of them are remembered (``2.0`` equals ``2`` but is refused as a stride, so it
    is checked afresh each time, as are lists and arrays); a refusal is never remembered. Holds
    :data:`SPEC_CACHE_SIZE` geometries at most.

    >>> x, w = np.zeros((1, 2, 4, 4), np.float32), np.zeros((2, 3, 4, 4), np.float32)
    >>> cached_transposed_spec("f", x, w, None, 2, 1) is cached_transposed_spec("f", x, w, None, 2, 1)
    True
    >>> cached_transposed_spec("f", x, w, None, 2, 1) == transposed_spec("f", x, w, None, 2, 1)
    True
    """
    arguments = (stride, padding, output_padding, groups, dilation, output_size, padding_mode)
    if not all(map(_plain, arguments)):
        return transposed_spec(op, x, w, b, *arguments)
    return _remembered_transposed_spec(op, x.shape, x.dtype, w.shape, w.dtype,
                                       None if b is None else (b.shape, b.dtype), *arguments)


#: Geometries :func:`cached_transposed_spec` keeps (least recently used first out).
SPEC_CACHE_SIZE = 256


def _plain(value: Any) -> bool:
    """``int``, ``str``, ``None``, or a tuple of such (types checked exactly: no bool, float, numpy)."""
    kind = type(value)
    return kind in (int, str, type(None)) or (kind is tuple and all(map(_plain, value)))


@functools.lru_cache(maxsize=SPEC_CACHE_SIZE)
def _remembered_transposed_spec(op, x_shape, x_dtype, w_shape, w_dtype, bias, *arguments) -> ConvSpec:
    x, w = stand_in(x_shape, x_dtype), stand_in(w_shape, w_dtype)
    b = None if bias is None else stand_in(*bias)
    return transposed_spec(op, x, w, b, *arguments)


def stand_in(shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    """A read-only array of ``shape`` and ``dtype`` that occupies one element: the spec's checks read
    only shapes and dtypes (the bridges, a dask input and the remembered specs check through it)."""
    return np.broadcast_to(np.zeros((), dtype), tuple(shape))


def _build(op, transposed, batch, w, groups, kernel, stride, dilation, small, large, pads,
           padding_mode, dtype, in_memory=True) -> ConvSpec:
    spec = ConvSpec(
        transposed=transposed,
        batch=batch,
        small_channels=w.shape[0],
        large_channels=w.shape[1] * groups,
        groups=groups,
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        small=small,
        large=large,
        pads=pads,
        padding_mode=padding_mode,
        dtype=dtype,
    )
    if in_memory:
        _check_memory(op, spec.out_shape, spec.dtype)
    return spec


def _spatial_request(op: str, output_size: Any, x: np.ndarray, rank: int) -> tuple[int, ...]:
    """PyTorch's output_size: the spatial sizes, or the whole output shape."""
    try:
        sizes = tuple(output_size)
    except TypeError:
        sizes = (output_size,)
    non_spatial = x.ndim - rank
    if len(sizes) == rank + non_spatial:
        sizes = sizes[non_spatial:]
    if len(sizes) != rank or not all(isinstance(v, Integral) and not isinstance(v, bool) for v in sizes):
        raise ValueError(
            f"{op}: output_size must have {rank} or {rank + non_spatial} ints for an input of "
            f"{x.ndim} dimensions, got {output_size!r}"
        )
    return _pretty(sizes)


def conv_spec(
    op: str,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: Any = "zeros",
    *,
    in_memory: bool = True,
) -> ConvSpec:
    """The spec of ``conv(x, w, b, ...)``; raises ValueError/TypeError naming the argument
    (``in_memory`` as in :func:`transposed_spec`)."""
    rank, batch, L, groups = _layout(op, x, w, groups)
    if x.shape[-rank - 1] != w.shape[1] * groups:
        raise ValueError(
            f"{op}: input has {x.shape[-rank - 1]} channels but weight of shape {w.shape} with "
            f"groups={groups} expects {w.shape[1] * groups} (weight is (C_out, C_in/groups, *kernel))"
        )
    if w.shape[0] % groups:
        raise ValueError(f"{op}: out_channels ({w.shape[0]}) must be divisible by groups ({groups})")
    _check_bias(op, b, w.shape[0])
    kernel = tuple(w.shape[2:])
    stride = int_tuple(op, "stride", stride, rank, 1)
    dilation = int_tuple(op, "dilation", dilation, rank, 1)
    padding_mode = _check_mode(op, padding_mode)
    padding_arg = padding_pairs(op, padding, rank)
    pads: tuple[tuple[int, int], ...]
    if not isinstance(padding_arg, str):
        pads = padding_arg
    elif padding_arg == "valid":
        pads = ((0, 0),) * rank
    else:  # 'same'
        # TF/Keras 'same' for every stride: output ceil(L/s); for stride 1 it is PyTorch's 'same'.
        pads = tuple(same_pads(Li, k, s, d) for Li, k, s, d in zip(L, kernel, stride, dilation))
    padded = tuple(Li + b_ + a for Li, (b_, a) in zip(L, pads))
    spans = tuple(effective_kernel(k, d) for k, d in zip(kernel, dilation))
    if any(p < e for p, e in zip(padded, spans)):
        raise ValueError(
            f"{op}: the padded input (size {padded}) must be at least as large as the dilated "
            f"kernel (size {spans}) in every dimension"
        )
    if padding_mode != "zeros":
        check_pads(pads, L, padding_mode, op)
    n = tuple(
        conv_size(Li, k, s, p, d) for Li, k, s, p, d in zip(L, kernel, stride, pads, dilation)
    )
    return _build(op, False, batch, w, groups, kernel, stride, dilation, n, L, pads, padding_mode,
                  result_dtype(x, w, b), in_memory)
