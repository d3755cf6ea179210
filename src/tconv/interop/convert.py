"""Convert a transposed convolution between PyTorch, ONNX, Keras, JAX and tconv, exactly.

``convert(params, source, target, input_shape=..., weight_shape=...)`` reads the source's own
arguments — what one passes to ``torch.nn.ConvTransposeNd``, the attributes of an ONNX
``ConvTranspose`` node, a ``keras.layers.ConvNDTranspose`` config, the keyword arguments of
``jax.lax.conv_transpose`` — with each framework's defaults for what is left out, and returns a
:class:`Conversion` whose ``params`` are the target's own arguments, usable as they are::

    torch.nn.ConvTranspose2d(**c.params)
    onnx.helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **c.params)
    keras.layers.Conv2DTranspose(**c.params)
    jax.lax.conv_transpose(x, w, **c.params)
    tconv.ConvTranspose2d(**c.params)

What a framework keeps outside its arguments (channel counts in ONNX, Keras and JAX, the kernel
size in ONNX and JAX, the rank) comes from ``weight_shape`` (in the source's weight layout) and/or
``input_shape`` (in the source's data layout); a ValueError says which is needed when nothing says it.

Every framework's arguments are read into one description — the output as a window of the *full*
scatter result ``(n-1)*stride + dilation*(k-1) + 1`` per dimension: ``crop`` ``(before, after)``
pixels removed from it (``after`` negative: pixels appended, as output_padding does) — and written
in the target's terms. Where the target cannot express the window, ``Conversion.fixup`` says what to
crop from (positive) or append to (negative) the target's output per dimension; appended pixels hold
the bias. The crop, from each framework's own definition:

- torch ``padding=p, output_padding=op``: ``(p, p - op)``; weight ``(C_in, C_out/g, *k)``.
- tconv: ``padding`` pairs ``(b, a)`` and ``output_padding``: ``(b, a - op)``; ``'same'`` as
  :func:`tconv.core.shapes.same_transposed`.
- onnx: as ONNX Runtime computes it, :func:`tconv.interop.onnx.transposed_window` (``auto_pad``
  ``SAME_*`` and ``output_shape`` need the input size). Weight as torch.
- keras ``padding='valid'|'same', output_padding`` (Keras 3): the padding Keras gives the
  zero-inserted input, ``(lo, hi)``, crops ``(k_eff-1-lo, k_eff-1-hi)``. Kernel ``(*k, C_out, C_in)``;
  data channels-last unless ``data_format='channels_first'``. No groups.
- jax ``lax.conv_transpose(strides, padding, rhs_dilation, dimension_numbers, transpose_kernel,
  use_consistent_padding)``: pairs ``(lo, hi)`` on the zero-inserted input crop
  ``(k_eff-1-lo, k_eff-1-hi)`` (with ``use_consistent_padding=True`` the pairs are the crop).
  ``dimension_numbers=None`` is TensorFlow's layout (``NHWC``, ``HWIO``); spatial dimensions are
  ordered as the kernel's spec lists them. With ``transpose_kernel=True`` the kernel's ``O`` axis
  holds the input channels and it is used as PyTorch's weight; with the default ``False`` the axes
  are the forward convolution's own and the kernel is flipped. No groups, no bias.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

import numpy as np

from ..core.shapes import effective_kernel, full_size, output_padding_limit, same_transposed
from ..core.spec import check_output_padding, int_tuple, padding_pairs

FRAMEWORKS = ("torch", "onnx", "keras", "jax", "tconv")

#: Arguments each source may carry, beyond those that set the window. Unknown names are a TypeError,
#: as they are in the framework itself.
_ACCEPTED = {
    "torch": {"in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
              "groups", "bias", "dilation", "padding_mode", "device", "dtype"},
    "onnx": {"auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape",
             "pads", "strides"},
    "keras": {"filters", "kernel_size", "strides", "padding", "output_padding", "data_format",
              "dilation_rate", "activation", "use_bias", "kernel_initializer", "bias_initializer",
              "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
              "bias_constraint", "name", "trainable", "dtype", "groups"},
    "jax": {"strides", "padding", "rhs_dilation", "dimension_numbers", "transpose_kernel",
            "precision", "preferred_element_type", "use_consistent_padding"},
}
_ACCEPTED["tconv"] = _ACCEPTED["torch"] | {"rng"}


@dataclass(frozen=True)
class Canonical:
    """A transposed convolution as a window of its full scatter result (see the module)."""

    rank: int
    in_channels: int
    out_channels: int
    groups: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    crop: tuple[tuple[int, int], ...]
    bias: bool = True

    @property
    def span(self) -> tuple[int, ...]:
        return tuple(effective_kernel(k, d) for k, d in zip(self.kernel, self.dilation))

    def out_size(self, n: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(full_size(ni, k, s, d) - b - a for ni, k, s, d, (b, a)
                     in zip(n, self.kernel, self.stride, self.dilation, self.crop))


@dataclass(frozen=True)
class Layout:
    """Where a framework keeps the axes: ``np.transpose(x, data_in)`` is ``(N, C, *spatial)``,
    ``np.transpose(y, data_out)`` likewise for its output, and ``np.transpose(w, weight)`` (then a
    flip of the spatial axes when ``flip``) is PyTorch's weight ``(C_in, C_out/g, *k)``."""

    data_in: tuple[int, ...]
    data_out: tuple[int, ...]
    weight: tuple[int, ...]
    flip: bool = False

    @classmethod
    def channels_first(cls, rank: int, weight: tuple[int, ...] | None = None) -> Layout:
        ident = tuple(range(rank + 2))
        return cls(ident, ident, weight or ident)

    @classmethod
    def channels_last(cls, rank: int, weight: tuple[int, ...] | None = None) -> Layout:
        perm = (0, rank + 1, *range(1, rank + 1))
        return cls(perm, perm, weight or tuple(range(rank + 2)))

    def to_torch_weight(self, w: np.ndarray) -> np.ndarray:
        w = np.transpose(w, self.weight)
        return np.flip(w, tuple(range(2, w.ndim))) if self.flip else w

    def from_torch_weight(self, w: np.ndarray) -> np.ndarray:
        if self.flip:
            w = np.flip(w, tuple(range(2, w.ndim)))
        return np.transpose(w, np.argsort(self.weight))

    def spatial(self, shape: tuple[int, ...], rank: int) -> tuple[int, ...]:
        """The spatial sizes of a whole input shape (or of spatial sizes given alone)."""
        if len(shape) == rank:
            return tuple(shape)
        return tuple(shape[i] for i in self.data_in[2:])


def _keras_weight_perm(rank: int) -> tuple[int, ...]:
    """Keras's kernel ``(*k, C_out, C_in)`` to PyTorch's ``(C_in, C_out, *k)``."""
    return (rank + 1, rank, *range(rank))


def weight_shape_of(params: dict, framework: str, in_channels: int, out_channels: int,
                    kernel_size: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of ``framework``'s weight for these channels and kernel sizes, in its own layout
    (``params`` says the groups, and for JAX the dimension numbers and ``transpose_kernel``).

    >>> weight_shape_of({}, "keras", 4, 8, (3, 3))
    (3, 3, 8, 4)
    >>> weight_shape_of(dict(dimension_numbers=("NCH", "IOH", "NCH")), "jax", 4, 8, (3,))
    (4, 8, 3)
    """
    rank = len(kernel_size)
    if framework == "keras":
        perm = _keras_weight_perm(rank)
    elif framework == "jax":
        dn, flip = params.get("dimension_numbers"), params.get("transpose_kernel", False)
        perm = _jax_layout(dn, rank, flip).weight
    elif framework in FRAMEWORKS:
        perm = tuple(range(rank + 2))
    else:
        raise ValueError(f"weight_shape_of: framework must be one of {FRAMEWORKS}, got {framework!r}")
    groups = params.get("group" if framework == "onnx" else "groups", 1)
    torch_shape = (in_channels, out_channels // groups, *kernel_size)
    return tuple(torch_shape[i] for i in np.argsort(perm))


# --------------------------------------------------------------------------- what the source says


class _Facts:
    """Channel counts, kernel size and rank, each from wherever the caller gave it, checked to agree."""

    def __init__(self, source: str):
        self.source = source
        self.values: dict[str, tuple[Any, str]] = {}

    def give(self, key: str, value: Any, where: str) -> None:
        if value is None:
            return
        if key in self.values and self.values[key][0] != value:
            old, old_where = self.values[key]
            raise ValueError(f"convert: {self.source} {key} is {old} by {old_where} but {value} by "
                             f"{where}")
        self.values.setdefault(key, (value, where))

    def get(self, key: str, how: str) -> Any:
        if key not in self.values:
            raise ValueError(f"convert: the {self.source} arguments do not say the {key}: pass {how}")
        return self.values[key][0]


def _shape(name: str, shape: Any) -> tuple[int, ...] | None:
    if shape is None:
        return None
    values = tuple(shape)
    if not values or not all(isinstance(v, Integral) and not isinstance(v, bool) and int(v) > 0
                             for v in values):
        raise ValueError(f"convert: {name} must be a tuple of positive ints, got {shape!r}")
    return tuple(int(v) for v in values)


def _count(name: str, value: Any, source: str) -> int:
    """A channel count: a positive int."""
    return int_tuple(f"convert: {source}", name, value, 1, 1)[0]


def _check_keys(params: dict, source: str) -> None:
    unknown = sorted(set(params) - _ACCEPTED[source])
    if unknown:
        raise TypeError(f"convert: {unknown} are not {source} arguments; {source} takes "
                        f"{sorted(_ACCEPTED[source])}")


def _per_dim(name: str, value: Any, rank: int, source: str, minimum: int = 1) -> tuple[int, ...]:
    return int_tuple(f"convert: {source}", name, value, rank, minimum)


def _shape_facts(facts: _Facts, layout: Layout, groups: int, rank: int, weight_shape, input_shape) -> None:
    """What the weight's shape (read through ``layout`` as PyTorch's ``(C_in, C_out/g, *k)``) and the
    whole input shape say of the channels and the kernel."""
    if weight_shape is not None:
        w = tuple(weight_shape[i] for i in layout.weight)
        facts.give("in_channels", w[0], "weight_shape")
        facts.give("out_channels", w[1] * groups, "weight_shape")
        facts.give("kernel size", w[2:], "weight_shape")
    if input_shape is not None and len(input_shape) == rank + 2:
        facts.give("in_channels", input_shape[layout.data_in[1]], "input_shape")


def _rank_of(facts: _Facts, per_dim: list, weight_shape, input_shape) -> int:
    """The rank from any per-dimension argument given as a sequence, or from the shapes."""
    for value in per_dim:
        if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
            facts.give("rank", len(value), "the arguments")
            break
    if weight_shape is not None:
        facts.give("rank", len(weight_shape) - 2, "weight_shape")
    if input_shape is not None and "rank" not in facts.values:
        # a whole shape (N, C, *spatial); one or two sizes can only be spatial sizes alone
        facts.give("rank", len(input_shape) - 2 if len(input_shape) > 2 else len(input_shape),
                   "input_shape")
    rank = facts.get("rank", "weight_shape or input_shape (the arguments give every size as one int)")
    if rank < 1:
        raise ValueError(f"convert: weight_shape must have at least 3 sizes, got {weight_shape}")
    if input_shape is not None and len(input_shape) not in (rank, rank + 2):
        raise ValueError(f"convert: input_shape must be the whole input shape ({rank + 2} sizes) or its "
                         f"{rank} spatial sizes, got {input_shape}")
    return rank


def _read(p: dict, source: str, input_shape, weight_shape) -> tuple[Canonical, Layout, tuple[str, ...]]:
    """The source's own arguments, with its defaults, as a window; its layouts; notes."""
    _check_keys(p, source)
    facts = _Facts(source)
    notes: tuple[str, ...] = ()
    if source in ("torch", "tconv"):
        rank = _rank_of(facts, [p.get("kernel_size"), p.get("stride"), p.get("dilation"),
                                p.get("output_padding"), p.get("padding")], weight_shape, input_shape)
        layout = Layout.channels_first(rank)
        groups = int_tuple(f"convert: {source}", "groups", p.get("groups", 1), 1, 1)[0]
        if "kernel_size" in p:
            facts.give("kernel size", _per_dim("kernel_size", p["kernel_size"], rank, source),
                       "kernel_size")
        for key in ("in_channels", "out_channels"):
            if key in p:
                facts.give(key, _count(key, p[key], source), key)
        _shape_facts(facts, layout, groups, rank, weight_shape, input_shape)
        kernel = facts.get("kernel size", "kernel_size or weight_shape")
        stride = _per_dim("stride", p.get("stride", 1), rank, source)
        dilation = _per_dim("dilation", p.get("dilation", 1), rank, source)
        op = _per_dim("output_padding", p.get("output_padding", 0), rank, source, 0)
        if p.get("padding_mode", "zeros") != "zeros":
            raise ValueError(f"convert: only padding_mode='zeros' exists in every framework, got "
                             f"padding_mode={p['padding_mode']!r}")
        check_output_padding(f"convert: {source}", op, stride, dilation)
        if source == "torch":
            pads = tuple((q, q) for q in _per_dim("padding", p.get("padding", 0), rank, source, 0))
        else:
            padding_arg = padding_pairs("convert: tconv", p.get("padding", 0), rank)
            if not isinstance(padding_arg, str):
                pads = padding_arg
            elif padding_arg == "valid":
                pads = ((0, 0),) * rank
            else:  # 'same'
                if any(op):
                    raise ValueError("convert: tconv output_padding must be 0 with padding='same'")
                n = _need(input_shape, layout, rank, "tconv padding='same'")
                same = [same_transposed(ni, k, s, d) for ni, k, s, d in zip(n, kernel, stride, dilation)]
                pads, op = tuple(pr for pr, _ in same), tuple(e for _, e in same)
        crop = tuple((b, a - o) for (b, a), o in zip(pads, op))
        bias = bool(p.get("bias", True))
    elif source == "onnx":
        from .onnx import resolve

        rank = _rank_of(facts, [p.get("kernel_shape"), p.get("strides"), p.get("dilations"),
                                p.get("output_padding")], weight_shape, input_shape)
        layout = Layout.channels_first(rank)
        groups = int_tuple("convert: onnx", "group", p.get("group", 1), 1, 1)[0]
        if "kernel_shape" in p:
            facts.give("kernel size", _per_dim("kernel_shape", p["kernel_shape"], rank, source),
                       "kernel_shape")
        _shape_facts(facts, layout, groups, rank, weight_shape, input_shape)
        kernel = facts.get("kernel size", "kernel_shape or weight_shape")
        attrs = dict(p)
        for key in ("strides", "dilations", "output_padding"):
            if key in attrs:
                attrs[key] = _per_dim(key, attrs[key], rank, source, 0 if key == "output_padding" else 1)
        if attrs.get("output_shape") is not None:  # the spatial sizes (a whole shape: its last ones)
            shape = attrs["output_shape"]
            if isinstance(shape, (Sequence, np.ndarray)) and len(shape) == rank + 2:
                shape = list(shape)[2:]
            attrs["output_shape"] = _per_dim("output_shape", shape, rank, source)
        if "pads" in attrs:
            attrs["pads"] = int_tuple("convert: onnx", "pads", attrs["pads"], 2 * rank, 0)
        needs = (p.get("auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER")
                 or p.get("output_shape") is not None)
        n = _need(input_shape, layout, rank, "auto_pad SAME_* / output_shape") if needs else (1,) * rank
        attrs["kernel_shape"] = kernel
        r = resolve("ConvTranspose", attrs, n, kernel, "convert: onnx")
        stride, dilation = r["stride"], r["dilation"]
        crop = tuple((b, a - o) for (b, a), o in zip(r["padding"], r["output_padding"]))
        notes = r["notes"]
        bias = True  # ONNX's bias is an optional input, not an attribute
    elif source == "keras":
        rank = _rank_of(facts, [p.get("kernel_size"), p.get("strides"), p.get("dilation_rate"),
                                p.get("output_padding")], weight_shape, input_shape)
        first = (p.get("data_format") or "channels_last") == "channels_first"
        layout = (Layout.channels_first if first else Layout.channels_last)(rank, _keras_weight_perm(rank))
        if p.get("groups", 1) != 1:
            raise ValueError("convert: keras Conv*DTranspose has no groups")
        if p.get("activation") not in (None, "linear"):
            raise ValueError(f"convert: keras activation={p['activation']!r} is not part of a transposed "
                             f"convolution: convert the layer without it and apply it after")
        groups = 1
        facts.give("kernel size", _per_dim("kernel_size", p.get("kernel_size"), rank, source),
                   "kernel_size")
        if "filters" in p:
            facts.give("out_channels", _count("filters", p["filters"], source), "filters")
        _shape_facts(facts, layout, groups, rank, weight_shape, input_shape)
        kernel = facts.get("kernel size", "kernel_size")
        stride = _per_dim("strides", p.get("strides", 1), rank, source)
        dilation = _per_dim("dilation_rate", p.get("dilation_rate", 1), rank, source)
        padding = str(p.get("padding", "valid")).lower()
        if padding not in ("valid", "same"):
            raise ValueError(f"convert: keras padding must be 'valid' or 'same', got {p['padding']!r}")
        stated = p.get("output_padding")
        ops: tuple[int | None, ...] = (
            (None,) * rank if stated is None else _per_dim("output_padding", stated, rank, source, 0))
        for o, s in zip(ops, stride):
            if o is not None and o >= s:
                raise ValueError(f"convert: keras output_padding must be smaller than strides, got "
                                 f"output_padding={stated}, strides={stride}")
        crop = tuple(_keras_crop(k, s, d, padding, o) for k, s, d, o in zip(kernel, stride, dilation, ops))
        bias = bool(p.get("use_bias", True))
    elif source == "jax":
        for key in ("strides", "padding"):
            if key not in p:
                raise TypeError(f"convert: jax.lax.conv_transpose needs {key!r}")
        rank = _rank_of(facts, [p.get("strides")], weight_shape, input_shape)
        layout = _jax_layout(p.get("dimension_numbers"), rank, p.get("transpose_kernel", False))
        groups = 1
        _shape_facts(facts, layout, groups, rank, weight_shape, input_shape)
        kernel = facts.get("kernel size", "weight_shape (jax's arguments do not hold the kernel)")
        stride = _per_dim("strides", p["strides"], rank, source)
        dilation = _per_dim("rhs_dilation", p.get("rhs_dilation") or 1, rank, source)
        spans = [effective_kernel(k, d) for k, d in zip(kernel, dilation)]
        padding = p["padding"]
        if isinstance(padding, str):
            if padding not in ("SAME", "VALID"):
                raise ValueError(f"convert: jax padding must be 'SAME', 'VALID' or one (lo, hi) pair per "
                                 f"spatial dimension, got {padding!r}")
            pairs = [_jax_padding(e, s, padding) for e, s in zip(spans, stride)]
        else:
            pairs = _jax_pairs(padding, rank)
            if p.get("use_consistent_padding", False):  # the forward convolution's padding
                pairs = [(e - 1 - lo, e - 1 - hi) for e, (lo, hi) in zip(spans, pairs)]
        crop = tuple((e - 1 - lo, e - 1 - hi) for e, (lo, hi) in zip(spans, pairs))
        bias = False  # lax.conv_transpose adds none
    else:
        raise ValueError(f"convert: source must be one of {FRAMEWORKS}, got {source!r}")
    in_channels = facts.get("in_channels", "weight_shape or input_shape")
    out_channels = facts.get("out_channels", "weight_shape")
    for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
        if channels % groups:
            raise ValueError(f"convert: {source} {name} ({channels}) must be divisible by groups ({groups})")
    canonical = Canonical(rank, int(in_channels), int(out_channels), groups, tuple(kernel), stride,
                          dilation, crop, bias)
    if input_shape is not None and min(canonical.out_size(layout.spatial(input_shape, rank))) < 1:
        raise ValueError(f"convert: the {source} layer gives an empty output for input_shape "
                         f"{input_shape}")
    return canonical, layout, notes


def _need(input_shape, layout: Layout, rank: int, what: str) -> tuple[int, ...]:
    if input_shape is None:
        raise ValueError(f"convert: {what} depends on the input size: pass input_shape (the whole "
                         f"input shape in the source's layout, or the spatial sizes)")
    return layout.spatial(input_shape, rank)


def _keras_crop(k: int, s: int, d: int, padding: str, op: int | None) -> tuple[int, int]:
    """Keras 3 (``compute_conv_transpose_padding_args_for_jax``): the padding of the zero-inserted
    input, as a crop of the full result."""
    e = effective_kernel(k, d)
    if padding == "valid":
        op = max(e, s) - e if op is None else op
        lo, hi = e - 1, e - 1 + op
    else:
        pad_len = s + e - 2 if op is None else e + e % 2 - 2 + op
        lo = min(pad_len // 2 + pad_len % 2, e - 1)
        hi = pad_len - lo
    return e - 1 - lo, e - 1 - hi


def _keras_closest_op(k: int, s: int, d: int, padding: str, want: tuple[int, int]) -> int:
    """The output_padding (< stride) whose Keras window is closest to ``want``; the smallest of ties."""
    return min(range(s), key=lambda o: (_distance([_keras_crop(k, s, d, padding, o)], [want]), o))


def _jax_default_numbers(rank: int) -> tuple[str, str, str]:
    """``lax.conv_transpose``'s ``dimension_numbers=None``: TensorFlow's layout."""
    sp = "HWD"[:rank]
    return ("N" + sp + "C", sp + "IO", "N" + sp + "C")


def _jax_channels_first(rank: int) -> tuple[str, str, str]:
    """The dimension numbers tconv writes: channels-first data, PyTorch's weight as it is."""
    sp = "DHW"[3 - rank:]
    return ("NC" + sp, "OI" + sp, "NC" + sp)


def _jax_layout(dn: Any, rank: int, transpose_kernel: bool) -> Layout:
    """The layouts of a ``lax.conv_transpose`` call.

    As ``lax.conv_general_permutations``: 'N'/'C' (data) and 'O'/'I' (kernel) once each, the same
    spatial letters in all three, spatial dimensions ordered as the kernel's spec lists them.
    """
    if dn is None:
        dn = _jax_default_numbers(rank)
    try:
        specs = tuple(dn)
        ok = len(specs) == 3 and all(isinstance(sp, str) for sp in specs)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"convert: jax dimension_numbers must be None or three strings like "
                         f"('NCHW', 'OIHW', 'NCHW'), got {dn!r}")
    lhs, rhs, out = specs
    for spec, pair in ((lhs, "NC"), (rhs, "OI"), (out, "NC")):
        if any(spec.count(c) != 1 for c in pair) or len(set(spec)) != len(spec) or len(spec) != rank + 2:
            raise ValueError(f"convert: jax dimension_numbers {specs} must give each of {specs} "
                             f"{rank + 2} distinct letters, {pair[0]!r} and {pair[1]!r} once")
    spatial = [c for c in rhs if c not in "OI"]
    if set(spatial) != set(lhs) - set("NC") or set(spatial) != set(out) - set("NC"):
        raise ValueError(f"convert: jax dimension_numbers {specs} must use the same spatial letters "
                         f"in all three")

    def perm(spec: str, pair: str) -> tuple[int, ...]:
        return (spec.index(pair[0]), spec.index(pair[1]), *(spec.index(c) for c in spatial))

    # transpose_kernel=True: the kernel's O axis holds C_in and it is PyTorch's weight, unflipped;
    # False: it is the forward convolution's kernel (O = C_out), flipped.
    weight = perm(rhs, "OI") if transpose_kernel else perm(rhs, "IO")
    return Layout(perm(lhs, "NC"), perm(out, "NC"), weight, flip=not transpose_kernel)


def _jax_pairs(padding: Any, rank: int) -> list[tuple[int, int]]:
    """jax's explicit padding: one ``(lo, hi)`` pair of ints per spatial dimension, any sign."""
    try:
        pairs = [tuple(pr) for pr in padding]
        ok = len(pairs) == rank and all(
            len(pr) == 2 and all(isinstance(v, Integral) and not isinstance(v, bool) for v in pr)
            for pr in pairs)
    except TypeError:
        ok = False
    if not ok:
        raise TypeError(f"convert: jax padding must be 'SAME', 'VALID' or {rank} (lo, hi) pairs of ints, "
                        f"got {padding!r}")
    return [(int(lo), int(hi)) for lo, hi in pairs]


def _jax_padding(e: int, s: int, padding: str) -> tuple[int, int]:
    """``lax.conv_transpose``'s SAME/VALID padding of the zero-inserted input, for a span ``e``."""
    if padding == "SAME":
        pad_len = e + s - 2
        lo = e - 1 if s > e - 1 else -(-pad_len // 2)
    else:
        pad_len = e + s - 2 + max(e - s, 0)
        lo = e - 1
    return lo, pad_len - lo


# --------------------------------------------------------------------------- the target's terms


def _write(c: Canonical, target: str) -> tuple[dict, tuple[tuple[int, int], ...], Layout]:
    """``(params, achieved crop, layout)``: the target's arguments whose window is closest to ``c``."""
    if target in ("keras", "jax") and c.groups != 1:
        raise ValueError(f"convert: {target} has no grouped transposed convolution (groups={c.groups})")
    if target in ("tconv", "onnx"):
        pads, ops = [], []
        for (b, a), s, d in zip(c.crop, c.stride, c.dilation):
            # ONNX Runtime wants output_padding < stride; tconv and PyTorch < max(stride, dilation)
            limit = s if target == "onnx" else output_padding_limit(s, d)
            pads.append((max(b, 0), max(a, 0)))
            ops.append(min(max(-a, 0), limit - 1))
        got = tuple((b, a - o) for (b, a), o in zip(pads, ops))
        layout = Layout.channels_first(c.rank)
        if target == "onnx":
            return dict(kernel_shape=list(c.kernel), strides=list(c.stride),
                        pads=[b for b, _ in pads] + [a for _, a in pads], output_padding=ops,
                        dilations=list(c.dilation), group=c.groups), got, layout
        padding = (tuple(b for b, _ in pads) if all(b == a for b, a in pads) else tuple(pads))
        return dict(in_channels=c.in_channels, out_channels=c.out_channels, kernel_size=c.kernel,
                    stride=c.stride, padding=padding, output_padding=tuple(ops), groups=c.groups,
                    bias=c.bias, dilation=c.dilation), got, layout
    if target == "torch":
        ps, torch_ops, achieved = [], [], []
        for (b, a), s, d in zip(c.crop, c.stride, c.dilation):
            best: tuple[tuple[int, int], int, int, tuple[int, int]] | None = None
            for p in range(0, max(b, 0) + 1):
                for o in range(output_padding_limit(s, d)):
                    g = (p, p - o)
                    if g[1] <= a or g[1] <= 0:
                        score = (abs(g[0] - b) + abs(g[1] - a), -p)
                        if best is None or score < best[0]:
                            best = (score, p, o, g)
            assert best is not None  # p = o = 0 always qualifies
            _, p, o, g = best
            ps.append(p)
            torch_ops.append(o)
            achieved.append(g)
        return dict(in_channels=c.in_channels, out_channels=c.out_channels, kernel_size=c.kernel,
                    stride=c.stride, padding=tuple(ps), output_padding=tuple(torch_ops),
                    groups=c.groups, bias=c.bias, dilation=c.dilation), tuple(achieved), \
            Layout.channels_first(c.rank)
    if target == "keras":
        if any(s > 1 for s in c.stride) and any(d > 1 for d in c.dilation):
            raise ValueError(f"convert: keras refuses strides > 1 with dilation_rate > 1 (strides="
                             f"{c.stride}, dilation_rate={c.dilation})")
        # (distance, padding, output_padding, achieved crop)
        options: list[tuple[int, str, tuple[int, ...] | None, tuple[tuple[int, int], ...]]] = []
        dims = list(zip(c.kernel, c.stride, c.dilation, c.crop))
        for mode in ("same", "valid"):
            # output_padding=None (Keras's own choice in every dimension), or per dimension the
            # output_padding (< stride) whose window is closest
            got = tuple(_keras_crop(k, s, d, mode, None) for k, s, d, _ in dims)
            options.append((_distance(got, c.crop), mode, None, got))
            closest = tuple(_keras_closest_op(k, s, d, mode, w) for k, s, d, w in dims)
            got = tuple(_keras_crop(k, s, d, mode, o) for (k, s, d, _), o in zip(dims, closest))
            options.append((_distance(got, c.crop), mode, closest, got))
        _, mode, keras_ops, got = min(options, key=lambda t: (t[0], t[1] != "same", t[2] is not None))
        layout = Layout.channels_last(c.rank, _keras_weight_perm(c.rank))
        return dict(filters=c.out_channels, kernel_size=c.kernel, strides=c.stride, padding=mode,
                    output_padding=keras_ops, data_format="channels_last", dilation_rate=c.dilation,
                    use_bias=c.bias), got, layout
    if target == "jax":
        pairs = tuple((e - 1 - b, e - 1 - a) for e, (b, a) in zip(c.span, c.crop))
        numbers = _jax_channels_first(c.rank)
        return dict(strides=c.stride, padding=pairs, rhs_dilation=c.dilation,
                    dimension_numbers=numbers, transpose_kernel=True), c.crop, \
            _jax_layout(numbers, c.rank, True)
    raise ValueError(f"convert: target must be one of {FRAMEWORKS}, got {target!r}")


def _distance(got, want) -> int:
    """How far a target window is from the wanted one; a window that cuts away computed pixels
    the source keeps cannot be fixed up (only pixels past the full result can be appended)."""
    cuts = any(g[0] > max(w[0], 0) or g[1] > max(w[1], 0) for g, w in zip(got, want))
    return (1 << 20) * cuts + sum(abs(g[0] - w[0]) + abs(g[1] - w[1]) for g, w in zip(got, want))


# --------------------------------------------------------------------------- text forms

_WEIGHT = {
    "torch": "(C_in, C_out/groups, *k)", "onnx": "(C_in, C_out/groups, *k)",
    "tconv": "(C_in, C_out/groups, *k)", "keras": "(*k, C_out, C_in)",
}


def call(framework: str, params: dict, rank: int) -> str:
    """The target's own call with ``params``, as code."""
    args = ", ".join(f"{k}={v!r}" for k, v in params.items())
    if framework in ("torch", "tconv"):
        return f"{'torch.nn' if framework == 'torch' else 'tconv'}.ConvTranspose{rank}d({args})"
    if framework == "keras":
        return f"keras.layers.Conv{rank}DTranspose({args})"
    if framework == "onnx":
        return f'onnx.helper.make_node("ConvTranspose", ["x", "W", "B"], ["y"], {args})'
    return f"jax.lax.conv_transpose(x, w, {args})"


def _weight_words(framework: str, layout: Layout) -> str:
    if framework in _WEIGHT:
        return _WEIGHT[framework]
    return (f"a kernel whose axes {layout.weight} are PyTorch's (C_in, C_out, *k)"
            + (" after a flip of its spatial axes" if layout.flip else ""))


# --------------------------------------------------------------------------- the conversion


@dataclass(frozen=True)
class Conversion:
    """The target's arguments, how to move the weight, bias and data, and any fixup.

    ``params``: the target's own arguments, to pass as they are (see the module). ``fixup``: None,
    or per spatial dimension ``(before, after)`` to crop from (positive) or append to (negative,
    bias-valued pixels) the target's output so that it equals the source's.
    """

    source: str
    target: str
    params: dict
    canonical: Canonical
    achieved: tuple[tuple[int, int], ...]
    fixup: tuple[tuple[int, int], ...] | None
    source_layout: Layout
    target_layout: Layout
    notes: tuple[str, ...] = field(default=())
    input_size: tuple[int, ...] | None = None

    @property
    def exact(self) -> bool:
        """The target alone reproduces the source (no fixup)."""
        return self.fixup is None

    @property
    def rank(self) -> int:
        return self.canonical.rank

    @property
    def in_channels(self) -> int:
        return self.canonical.in_channels

    @property
    def out_channels(self) -> int:
        return self.canonical.out_channels

    @property
    def groups(self) -> int:
        return self.canonical.groups

    @property
    def kernel_size(self) -> tuple[int, ...]:
        return self.canonical.kernel

    @property
    def has_bias(self) -> bool:
        """Whether the source adds a bias (a JAX source never does)."""
        return self.canonical.bias

    @property
    def call(self) -> str:
        """The target's call, as code."""
        return call(self.target, self.params, self.rank)

    def weight(self, w: Any) -> np.ndarray:
        """The source's weight in the target's layout: a new C-contiguous array."""
        w = np.asarray(w)
        expected = self.weight_shape(self.source)
        if w.shape != expected:
            raise ValueError(f"Conversion.weight: the {self.source} weight must have shape {expected}, "
                             f"got {w.shape}")
        torch_w = self.source_layout.to_torch_weight(w)
        return np.array(self.target_layout.from_torch_weight(torch_w), order="C", copy=True)

    def weight_shape(self, framework: str | None = None) -> tuple[int, ...]:
        """The weight's shape in the source's (default) or the target's layout."""
        layout = self.source_layout if framework in (None, self.source) else self.target_layout
        c = self.canonical
        torch_shape = (c.in_channels, c.out_channels // c.groups, *c.kernel)
        return tuple(torch_shape[i] for i in np.argsort(layout.weight))

    def bias(self, b: Any) -> np.ndarray | None:
        """The bias for the target (None for JAX, which adds none: :meth:`output` adds it)."""
        if b is None or self.target == "jax":
            return None
        return np.array(b, copy=True)

    def input(self, x: Any) -> np.ndarray:
        """The source's input in the target's data layout: a new C-contiguous array."""
        x = np.transpose(np.asarray(x), self.source_layout.data_in)
        return np.array(np.transpose(x, np.argsort(self.target_layout.data_in)), order="C", copy=True)

    def output(self, y: Any, bias: Any = None) -> np.ndarray:
        """The target's output in the source's data layout, fixup applied.

        ``bias``: the source's bias, added where the target did not add it: everywhere for a JAX
        target (``lax.conv_transpose`` has none), on appended fixup pixels otherwise (zero without it).
        """
        y = np.transpose(np.asarray(y), self.target_layout.data_out)
        if bias is not None and self.target == "jax":
            y = y + np.asarray(bias, y.dtype).reshape(-1, *(1,) * self.rank)
        if self.fixup is not None:
            y = apply_fixup(y, self.fixup, bias)
        return np.array(np.transpose(y, np.argsort(self.source_layout.data_out)), order="C")

    def explain(self) -> str:
        """What changed and why, with the output-size arithmetic of both sides."""
        lines = [self.call,
                 f"weight: {self.source} {_weight_words(self.source, self.source_layout)} -> "
                 f"{self.target} {_weight_words(self.target, self.target_layout)} "
                 f"(Conversion.weight)"]
        if self.source_layout.data_in != self.target_layout.data_in:
            lines.append(f"data: {self.source}'s axes {self.source_layout.data_in} are (N, C, *spatial); "
                         f"{self.target} takes {self.target_layout.data_in} (Conversion.input / .output)")
        if self.target == "jax" and self.has_bias:
            lines.append("bias: lax.conv_transpose adds none; Conversion.output(y, bias=b) adds it")
        c = self.canonical
        for i, ((b, a), got) in enumerate(zip(c.crop, self.achieved)):
            def side(crop):
                b_, a_ = crop
                return (f"minus {b_} at the start and "
                        + (f"{a_} at the end" if a_ >= 0 else f"plus {-a_} appended at the end"))

            lines.append(f"  dim {i}: the full scatter has (n-1)*{c.stride[i]} + {c.span[i]} pixels; "
                         f"{self.source} keeps it {side((b, a))}; {self.target}'s arguments give "
                         f"it {side(got)}")
            if self.input_size is not None:
                n = self.input_size[i]
                full = full_size(n, c.kernel[i], c.stride[i], c.dilation[i])
                lines.append(f"         n={n}: {self.source} ({n}-1)*{c.stride[i]} + {c.span[i]} - {b} "
                             f"- ({a}) = {full - b - a}; {self.target} {full - got[0] - got[1]}")
        if self.fixup is None:
            lines.append("  exact: the target alone reproduces the source")
        else:
            lines.append(f"  fixup per dimension (crop +, append -): {self.fixup}")
        lines += [f"  {n}" for n in self.notes]
        return "\n".join(lines)


def apply_fixup(y: np.ndarray, fixup, bias=None) -> np.ndarray:
    """Crop (positive) or append (negative) per spatial dimension of a channels-first ``y``.

    Appended pixels hold ``bias`` (per channel), or zero. A new array; ``y`` is not modified.
    """
    rank = len(fixup)
    first = y.ndim - rank
    for i, (b, a) in enumerate(fixup):
        axis = first + i
        y = np.moveaxis(y, axis, -1)
        y = y[..., max(b, 0): y.shape[-1] - max(a, 0)]
        if b < 0 or a < 0:
            y = np.pad(y, [(0, 0)] * (y.ndim - 1) + [(max(-b, 0), max(-a, 0))])
            if bias is not None:
                fill = np.asarray(bias, y.dtype).reshape(-1, *(1,) * (y.ndim - first))
                edge = np.zeros(y.shape[-1], bool)
                edge[: max(-b, 0)] = True
                edge[y.shape[-1] - max(-a, 0):] = True
                y[..., edge] += np.broadcast_to(fill, y[..., edge].shape)
        y = np.moveaxis(y, -1, axis)
    return y


def _params_of(obj: Any, source: str) -> tuple[dict, tuple[int, ...] | None]:
    """A dict of the source's arguments, and the weight shape where ``obj`` is a layer or node."""
    if isinstance(obj, dict):
        return dict(obj), None
    if source in ("tconv", "torch") and hasattr(obj, "kernel_size") and hasattr(obj, "output_padding"):
        params = dict(in_channels=obj.in_channels, out_channels=obj.out_channels,
                      kernel_size=tuple(obj.kernel_size), stride=tuple(obj.stride), padding=obj.padding,
                      output_padding=tuple(obj.output_padding), groups=obj.groups,
                      dilation=tuple(obj.dilation), bias=obj.bias is not None,
                      padding_mode=obj.padding_mode)
        return params, tuple(obj.weight.shape)
    if source == "onnx" and hasattr(obj, "op_type") and hasattr(obj, "attribute"):
        from .onnx import _attributes

        if obj.op_type != "ConvTranspose":
            raise ValueError(f"convert: an onnx source must be a ConvTranspose node, got {obj.op_type}")
        return _attributes(obj), None
    if source == "keras" and hasattr(obj, "get_config"):
        config = obj.get_config()
        kernel = getattr(obj, "kernel", None)
        return config, None if kernel is None else tuple(kernel.shape)
    raise TypeError(f"convert: params must be a dict of {source} arguments"
                    + (" or a ConvTranspose layer" if source in ("tconv", "torch") else "")
                    + f", got {type(obj).__name__}")


def convert(params: Any, source: str, target: str, *, input_shape: Any = None,
            weight_shape: Any = None, exact: bool = False) -> Conversion:
    """Convert a transposed convolution's arguments from ``source`` to ``target`` (see the module).

    ``params``: the source's own arguments by its own names (a dict), or a torch/tconv
    ``ConvTranspose`` layer, an ONNX ``ConvTranspose`` node, a Keras layer. ``weight_shape``: the
    weight's shape in the source's layout; ``input_shape``: the input's, in the source's data
    layout (or its spatial sizes). Channels, kernel sizes and the rank come from whichever says
    them; ONNX ``auto_pad``/``output_shape`` and tconv ``'same'`` need ``input_shape``. With
    ``exact=True`` a conversion that needs a fixup is a ValueError.

    >>> c = convert(dict(filters=64, kernel_size=4, strides=2, padding="same"), "keras", "torch",
    ...             input_shape=(1, 16, 16, 128))
    >>> c.params["padding"], c.params["output_padding"], c.params["in_channels"], c.exact
    ((1, 1), (0, 0), 128, True)
    >>> convert(c.params, "torch", "jax").params["padding"]
    ((2, 2), (2, 2))
    """
    for name, fw in (("source", source), ("target", target)):
        if fw not in FRAMEWORKS:
            raise ValueError(f"convert: {name} must be one of {FRAMEWORKS}, got {fw!r}")
    src, own_weight_shape = _params_of(params, source)
    input_shape = _shape("input_shape", input_shape)
    weight_shape = _shape("weight_shape", weight_shape) or own_weight_shape
    canonical, source_layout, notes = _read(src, source, input_shape, weight_shape)
    out, achieved, target_layout = _write(canonical, target)
    offsets = tuple((w[0] - g[0], w[1] - g[1]) for w, g in zip(canonical.crop, achieved))
    fixup = None if all(f == (0, 0) for f in offsets) else offsets
    if fixup is not None:
        notes = (*notes, f"{target} cannot express this window alone; crop (+) or append bias-valued "
                         f"pixels (-) to its output: {fixup}")
        if exact:
            raise ValueError(f"convert: {source} -> {target} is not exact: {notes[-1]}; the closest "
                             f"exact alternative is {target} with {out} and that fixup, or "
                             f"explicit (before, after) padding in tconv or onnx")
    size = None if input_shape is None else source_layout.spatial(input_shape, canonical.rank)
    return Conversion(source, target, out, canonical, achieved, fixup, source_layout, target_layout,
                      notes, size)
