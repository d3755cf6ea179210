"""Convert a transposed convolution between PyTorch, ONNX, Keras, JAX and tconv, exactly.

Every framework's arguments are read into one canonical description — what the output is as a
window of the *full* scatter result ``(n-1)*stride + dilation*(k-1) + 1`` per dimension: ``crop``
``(before, after)`` pixels removed from it (``after`` negative: zeros appended, as output_padding
does) — and written back out in the target's own names and value forms. Where the target cannot
express the window, ``Conversion.fixup`` says what to crop from (positive) or append to (negative)
the target's output per dimension; appended pixels hold the bias.

Conventions (crop, from each framework's own definition):

- torch ``padding=p, output_padding=op``: ``(p, p - op)``; weight ``(C_in, C_out/g, *k)``.
- onnx ``pads=[b.., e..], output_padding, output_shape, auto_pad``: as :func:`tconv.onnx.resolve`;
  ``SAME_*`` and ``output_shape`` need the input size. Weight as torch.
- keras ``padding='valid'|'same', output_padding`` (jax backend): the jax padding Keras computes,
  ``(lo, hi)`` on the zero-inserted input, gives ``(k_eff-1-lo, k_eff-1-hi)``. Kernel
  ``(*k, C_out, C_in)``; data channels-last by default. No groups.
- jax ``lax.conv_transpose(padding='SAME'|'VALID'|[(lo, hi)..], rhs_dilation, transpose_kernel,
  dimension_numbers)``: ``(k_eff-1-lo, k_eff-1-hi)``. jax's default numbers are TensorFlow's
  (channels-last, an ``...IO`` kernel ``(*k, C_out, C_in)`` with ``transpose_kernel=True``); with
  ``('NC..', 'OI..', 'NC..')`` the kernel is torch's weight as is; without ``transpose_kernel`` the
  kernel has in/out swapped and is flipped. tconv writes channels-first numbers. No groups.
- tconv: ``padding`` pairs and ``output_padding``: ``(b, a - op)``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.shapes import effective_kernel

FRAMEWORKS = ("torch", "onnx", "keras", "jax", "tconv")


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
        return tuple((ni - 1) * s + e - b - a for ni, s, e, (b, a) in zip(n, self.stride, self.span,
                                                                         self.crop))


def _rank(p: dict, key: str, source: str, input_shape) -> int:
    """The spatial rank: from a tuple kernel size, ``rank``, or ``input_shape`` (N, C, *spatial)."""
    k = p[key]
    if not isinstance(k, (int, np.integer)):
        return len(k)
    if "rank" in p:
        return int(p["rank"])
    if input_shape is not None and len(input_shape) >= 3:
        return len(input_shape) - 2
    raise ValueError(f"convert: {source} {key}={k} is one int: give rank= (1, 2 or 3) or input_shape")


def _tuple(name: str, value, rank: int, framework: str) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * rank
    try:
        values = tuple(int(v) for v in value)
    except TypeError:
        values = ()
    if len(values) != rank:
        raise ValueError(f"convert: {framework} {name} must be an int or {rank} ints, got {value!r}")
    return values


def _need(input_shape, what: str, framework: str, rank: int) -> tuple[int, ...]:
    if input_shape is None:
        raise ValueError(f"convert: {framework} {what} depends on the input size: pass input_shape "
                         f"(the spatial sizes, or the whole input shape)")
    return _spatial(tuple(input_shape), rank, framework == "keras")


def _spatial(shape: tuple[int, ...], rank: int, channels_last: bool) -> tuple[int, ...]:
    """The spatial sizes of ``input_shape``: given alone, or within a whole (N, C, ...) shape."""
    if len(shape) == rank:
        return shape
    return shape[1:1 + rank] if channels_last else shape[-rank:]


# --------------------------------------------------------------------------- reading


def _read(params: dict, source: str, input_shape) -> Canonical:
    p = dict(params)
    if source in ("torch", "tconv"):
        k = p["kernel_size"]
        rank = _rank(p, "kernel_size", source, input_shape)
        kernel = _tuple("kernel_size", k, rank, source)
        stride = _tuple("stride", p.get("stride", 1), rank, source)
        dilation = _tuple("dilation", p.get("dilation", 1), rank, source)
        op = _tuple("output_padding", p.get("output_padding", 0), rank, source)
        pad = p.get("padding", 0)
        if source == "torch":
            pads = tuple((q, q) for q in _tuple("padding", pad, rank, source))
        else:
            from ..core.spec import padding_pairs

            pads = padding_pairs("convert", pad, rank)
            if isinstance(pads, str):
                from ..core.shapes import same_pads

                if pads == "valid":
                    pads = ((0, 0),) * rank
                else:
                    n = _need(input_shape, "padding='same'", source, rank)
                    pads = tuple(same_pads(ni * s, k_, s, d) for ni, k_, s, d in
                                 zip(n, kernel, stride, dilation))
                    op = tuple(ni * s - ((ni - 1) * s + effective_kernel(k_, d) - b - a)
                               for ni, s, k_, d, (b, a) in zip(n, stride, kernel, dilation, pads))
        for o, s, d in zip(op, stride, dilation):
            if o >= max(s, d) or o < 0:
                raise ValueError(f"convert: {source} output_padding must be smaller than stride or "
                                 f"dilation, got output_padding={op}, stride={stride}")
        crop = tuple((b, a - o) for (b, a), o in zip(pads, op))
        return Canonical(rank, p["in_channels"], p["out_channels"], p.get("groups", 1), kernel,
                         stride, dilation, crop, p.get("bias", True))
    if source == "onnx":
        from .onnx import resolve

        kernel = tuple(p["kernel_shape"])
        rank = len(kernel)
        needs = p.get("auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER") or "output_shape" in p
        n = _need(input_shape, "auto_pad SAME / output_shape", source, rank) if needs else (1,) * rank
        attrs = {k: v for k, v in p.items() if k not in ("in_channels", "out_channels", "bias")}
        r = resolve("ConvTranspose", attrs, n, kernel)
        crop = tuple((b, a - o) for (b, a), o in zip(r["padding"], r["output_padding"]))
        return Canonical(rank, p["in_channels"], p["out_channels"], p.get("group", 1), kernel,
                         tuple(r["stride"]), tuple(r["dilation"]), crop, p.get("bias", True))
    if source == "keras":
        k = p["kernel_size"]
        rank = _rank(p, "kernel_size", source, input_shape)
        kernel = _tuple("kernel_size", k, rank, source)
        stride = _tuple("strides", p.get("strides", 1), rank, source)
        dilation = _tuple("dilation_rate", p.get("dilation_rate", 1), rank, source)
        padding = p.get("padding", "valid").lower()
        if padding not in ("valid", "same"):
            raise ValueError(f"convert: keras padding must be 'valid' or 'same', got {padding!r}")
        op = p.get("output_padding")
        ops = (None,) * rank if op is None else _tuple("output_padding", op, rank, source)
        for o, s in zip(ops, stride):
            if o is not None and not 0 <= o < s:
                raise ValueError(f"convert: keras output_padding must be smaller than strides, got "
                                 f"output_padding={op}, strides={stride}")
        crop = tuple(_keras_crop(k_, s, d, padding, o) for k_, s, d, o in zip(kernel, stride,
                                                                                 dilation, ops))
        if p.get("groups", 1) != 1:
            raise ValueError("convert: keras Conv*DTranspose has no groups")
        return Canonical(rank, p["in_channels"], p["filters"], 1, kernel, stride, dilation, crop,
                         p.get("use_bias", True))
    if source == "jax":
        kernel = tuple(p["kernel_size"])
        rank = len(kernel)
        dn = p.get("dimension_numbers")
        if dn is not None and tuple(dn) not in (_jax_channels_first(rank), _jax_channels_last(rank)):
            raise ValueError(f"convert: jax dimension_numbers must be {_jax_channels_first(rank)}, "
                             f"{_jax_channels_last(rank)} or None (jax's default, the latter), "
                             f"got {dn!r}")
        stride = _tuple("strides", p.get("strides", 1), rank, source)
        dilation = _tuple("rhs_dilation", p.get("rhs_dilation") or 1, rank, source)
        padding = p.get("padding", "VALID")
        spans = [effective_kernel(k_, d) for k_, d in zip(kernel, dilation)]
        if isinstance(padding, str):
            if padding not in ("SAME", "VALID"):
                raise ValueError(f"convert: jax padding must be 'SAME', 'VALID' or (lo, hi) pairs, "
                                 f"got {padding!r}")
            pairs = [_jax_padding(e, s, padding) for e, s in zip(spans, stride)]
        else:
            pairs = [tuple(int(v) for v in pr) for pr in padding]
            if len(pairs) != rank or any(len(pr) != 2 for pr in pairs):
                raise ValueError(f"convert: jax padding needs {rank} (lo, hi) pairs, got {padding!r}")
        crop = tuple((e - 1 - lo, e - 1 - hi) for e, (lo, hi) in zip(spans, pairs))
        return Canonical(rank, p["in_channels"], p["out_channels"], 1, kernel, stride, dilation,
                         crop, p.get("bias", True))
    raise ValueError(f"convert: source must be one of {FRAMEWORKS}, got {source!r}")


def _keras_crop(k: int, s: int, d: int, padding: str, op: int | None) -> tuple[int, int]:
    """Keras 3 (jax backend): the jax padding of the zero-inserted input, as a crop."""
    e = effective_kernel(k, d)
    if padding == "valid":
        op = max(e, s) - e if op is None else op
        lo, hi = e - 1, e - 1 + op
    else:
        pad_len = s + e - 2 if op is None else e + e % 2 - 2 + op
        lo = min(pad_len // 2 + pad_len % 2, e - 1)
        hi = pad_len - lo
    return e - 1 - lo, e - 1 - hi


def _jax_channels_first(rank: int) -> tuple[str, str, str]:
    """jax's dimension_numbers for channels-first data and a torch-layout (``OI...``) kernel."""
    sp = "DHW"[3 - rank:]
    return ("NC" + sp, "OI" + sp, "NC" + sp)


def _jax_channels_last(rank: int) -> tuple[str, str, str]:
    """jax's default (TensorFlow's) dimension_numbers: channels-last data, an ``...IO`` kernel."""
    sp = "DHW"[3 - rank:]
    return ("N" + sp + "C", sp + "IO", "N" + sp + "C")


def _jax_padding(e: int, s: int, padding: str) -> tuple[int, int]:
    """``jax.lax.conv_transpose``'s SAME/VALID padding for an effective kernel ``e``."""
    if padding == "SAME":
        pad_len = e + s - 2
        lo = e - 1 if s > e - 1 else -(-pad_len // 2)
    else:
        pad_len = e + s - 2 + max(e - s, 0)
        lo = e - 1
    return lo, pad_len - lo


# --------------------------------------------------------------------------- writing


def _write(c: Canonical, target: str):
    """``(params, achieved crop)``: the target's arguments whose window is closest to ``c.crop``."""
    if target in ("tconv", "onnx"):
        pads, ops = [], []
        for (b, a), s, d in zip(c.crop, c.stride, c.dilation):
            limit = s if target == "onnx" else max(s, d)  # ONNX Runtime wants output_padding < stride
            b_, o = max(b, 0), min(max(-a, 0), limit - 1)
            pads.append((b_, max(a, 0)))
            ops.append(o)
        got = tuple((b, a - o) for (b, a), o in zip(pads, ops))
        if target == "tconv":
            params = dict(in_channels=c.in_channels, out_channels=c.out_channels,
                          kernel_size=c.kernel, stride=c.stride, padding=tuple(pads),
                          output_padding=tuple(ops), groups=c.groups, dilation=c.dilation,
                          bias=c.bias)
        else:
            params = dict(in_channels=c.in_channels, out_channels=c.out_channels,
                          kernel_shape=list(c.kernel), strides=list(c.stride),
                          pads=[b for b, _ in pads] + [a for _, a in pads],
                          output_padding=list(ops), dilations=list(c.dilation), group=c.groups,
                          bias=c.bias)
        return params, got
    if target == "torch":
        ps, ops, got = [], [], []
        for (b, a), s, d in zip(c.crop, c.stride, c.dilation):
            best = None
            for p in range(0, max(b, 0) + 1):
                for o in range(max(s, d)):
                    g = (p, p - o)
                    if g[0] <= max(b, 0) and (g[1] <= a or g[1] <= 0):
                        score = (abs(g[0] - b) + abs(g[1] - a), -p)
                        if best is None or score < best[0]:
                            best = (score, p, o, g)
            _, p, o, g = best
            ps.append(p)
            ops.append(o)
            got.append(g)
        return dict(in_channels=c.in_channels, out_channels=c.out_channels, kernel_size=c.kernel,
                    stride=c.stride, padding=tuple(ps), output_padding=tuple(ops),
                    groups=c.groups, dilation=c.dilation, bias=c.bias), tuple(got)
    if target in ("keras", "jax") and c.groups != 1:
        raise ValueError(f"convert: {target} has no grouped transposed convolution (groups={c.groups})")
    if target == "keras":
        if any(s > 1 for s in c.stride) and any(d > 1 for d in c.dilation):
            raise ValueError(f"convert: keras refuses strides > 1 with dilation_rate > 1 (strides="
                             f"{c.stride}, dilation_rate={c.dilation})")
        options = []
        for padding, op in itertools.product(("valid", "same"), (None, *range(max(c.stride)))):
            if op is not None and any(op >= s for s in c.stride):
                continue
            got = tuple(_keras_crop(k, s, d, padding, op)
                        for k, s, d in zip(c.kernel, c.stride, c.dilation))
            options.append((_distance(got, c.crop), padding, op, got))
        _, padding, op, got = min(options, key=lambda t: (t[0], t[1] != "same", t[2] is not None))
        return dict(filters=c.out_channels, in_channels=c.in_channels, kernel_size=c.kernel,
                    strides=c.stride, padding=padding, output_padding=op,
                    dilation_rate=c.dilation, use_bias=c.bias,
                    data_format="channels_last"), got
    if target == "jax":
        pairs = tuple((e - 1 - b, e - 1 - a) for e, (b, a) in zip(c.span, c.crop))
        return dict(in_channels=c.in_channels, out_channels=c.out_channels, kernel_size=c.kernel,
                    strides=c.stride, padding=pairs, rhs_dilation=c.dilation,
                    dimension_numbers=_jax_channels_first(c.rank), transpose_kernel=True,
                    bias=c.bias), c.crop
    raise ValueError(f"convert: target must be one of {FRAMEWORKS}, got {target!r}")


def _distance(got, want) -> int:
    """How far a target window is from the wanted one; a window that cuts away computed pixels
    the source keeps cannot be fixed up (only pixels past the full result can be appended)."""
    cuts = any(g[0] > max(w[0], 0) or g[1] > max(w[1], 0) for g, w in zip(got, want))
    return (1 << 20) * cuts + sum(abs(g[0] - w[0]) + abs(g[1] - w[1]) for g, w in zip(got, want))


# --------------------------------------------------------------------------- text forms

_LAYOUT = {
    "torch": "(C_in, C_out/groups, *k)", "onnx": "(C_in, C_out/groups, *k)",
    "tconv": "(C_in, C_out/groups, *k)", "keras": "(*k, C_out, C_in)",
    "jax": "(C_in, C_out, *k) as 'OI...' (channels-first) or (*k, C_out, C_in) as '...IO' "
           "(the default), with transpose_kernel=True",
}


def constructor(framework: str, params: dict, rank: int) -> str:
    """The target's own call, as code."""
    p = dict(params)
    if framework in ("torch", "tconv"):
        mod = "torch.nn" if framework == "torch" else "tconv"
        return (f"{mod}.ConvTranspose{rank}d({p['in_channels']}, {p['out_channels']}, "
                f"kernel_size={p['kernel_size']}, stride={p['stride']}, padding={p['padding']}, "
                f"output_padding={p['output_padding']}, groups={p['groups']}, bias={p['bias']}, "
                f"dilation={p['dilation']})")
    if framework == "keras":
        return (f"keras.layers.Conv{rank}DTranspose({p['filters']}, {p['kernel_size']}, "
                f"strides={p['strides']}, padding={p['padding']!r}, "
                f"output_padding={p['output_padding']}, dilation_rate={p['dilation_rate']}, "
                f"use_bias={p['use_bias']})")
    if framework == "onnx":
        attrs = ", ".join(f"{k}={v}" for k, v in p.items() if k not in ("in_channels", "out_channels",
                                                                         "bias"))
        return f"ConvTranspose({attrs})  # inputs x, W{', B' if p.get('bias', True) else ''}"
    return (f"jax.lax.conv_transpose(x, w, strides={p['strides']}, padding={p['padding']}, "
            f"rhs_dilation={p['rhs_dilation']}, dimension_numbers={p['dimension_numbers']}, "
            f"transpose_kernel=True)" + (" + b[:, None...]" if p.get("bias", True) else ""))


def weight_note(source: str, target: str, params_source: dict) -> str:
    """How the weight moves, in words and NumPy."""
    steps = []
    if source == "keras":
        steps.append("np.moveaxis(w, (-1, -2), (0, 1))")
    if source == "jax" and _channels_last("jax", params_source):
        steps.append("np.moveaxis(w, (-1, -2), (0, 1))")
    if source == "jax" and not params_source.get("transpose_kernel", True):
        steps.append("np.flip(w, spatial axes).swapaxes(0, 1)")
    if target == "keras":
        steps.append("np.moveaxis(w, (0, 1), (-1, -2))")
    how = " then ".join(steps) if steps else "unchanged"
    return f"weight {source} {_LAYOUT[source]} -> {target} {_LAYOUT[target]}: {how}"


# --------------------------------------------------------------------------- the conversion


@dataclass(frozen=True)
class Conversion:
    """The target's arguments, how to move the weight, bias and data, and any fixup.

    ``fixup``: None, or per spatial dimension ``(before, after)`` to crop from (positive) or append
    to (negative, bias-valued pixels) the target's output so that it equals the source's.
    """

    source: str
    target: str
    params: dict
    canonical: Canonical
    achieved: tuple[tuple[int, int], ...]
    fixup: tuple[tuple[int, int], ...] | None
    notes: tuple[str, ...] = field(default=())
    input_size: tuple[int, ...] | None = None
    params_source: dict = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return self.fixup is None

    # weights: every framework's layout from/to torch's (C_in, C_out/g, *k)
    def weight(self, w: Any) -> np.ndarray:
        """The source's weight in the target's layout."""
        return _from_torch_layout(_to_torch_layout(np.asarray(w), self.source, self.params_source),
                                  self.target)

    def bias(self, b: Any) -> np.ndarray | None:
        return None if b is None else np.asarray(b)

    def input(self, x: Any) -> np.ndarray:
        """The source's input in the target's data layout (channels-first/last)."""
        return _layout(np.asarray(x), _channels_last(self.source, self.params_source),
                       _channels_last(self.target, self.params))

    def output(self, y: Any, bias: Any = None) -> np.ndarray:
        """The target's output in the source's data layout, fixup applied (appended pixels hold
        ``bias``, zero without it)."""
        y = _layout(np.asarray(y), _channels_last(self.target, self.params), False)
        if self.fixup is not None:
            y = apply_fixup(y, self.fixup, bias)
        return _layout(y, False, _channels_last(self.source, self.params_source))

    def explain(self) -> str:
        """What changed and why, with the output-size arithmetic of both sides."""
        lines = [constructor(self.target, self.params, self.canonical.rank),
                 weight_note(self.source, self.target, self.params_source)]
        if _channels_last(self.source, self.params_source) != _channels_last(self.target, self.params):
            lines.append("data: channels-last <-> channels-first (Conversion.input / .output)")
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
                full = (n - 1) * c.stride[i] + c.span[i]
                lines.append(f"         n={n}: {self.source} ({n}-1)*{c.stride[i]} + {c.span[i]} - {b} "
                             f"- ({a}) = {full - b - a}; {self.target} {full - got[0] - got[1]}")
        if self.fixup is None:
            lines.append("  exact: the target alone reproduces the source")
        else:
            lines.append(f"  fixup per dimension (crop +, append -): {self.fixup}")
        lines += [f"  {n}" for n in self.notes]
        return "\n".join(lines)


def _channels_last(framework: str, params: dict) -> bool:
    if framework == "keras":
        return params.get("data_format", "channels_last") == "channels_last"
    if framework == "jax":  # jax's default dimension_numbers are TensorFlow's, channels-last
        dn = params.get("dimension_numbers")
        return dn is None or tuple(dn)[0].endswith("C")
    return False


def _layout(a: np.ndarray, src_last: bool, dst_last: bool) -> np.ndarray:
    if src_last == dst_last:
        return a
    return np.moveaxis(a, -1, 1) if src_last else np.moveaxis(a, 1, -1)


def _to_torch_layout(w: np.ndarray, framework: str, params: dict) -> np.ndarray:
    if framework == "keras":  # (*k, C_out, C_in)
        return np.moveaxis(w, (-1, -2), (0, 1))
    if framework == "jax":
        if _channels_last("jax", params):  # an ...IO kernel: (*k, C_out, C_in) when transposed
            w = np.moveaxis(w, (-1, -2), (0, 1))
            if not params.get("transpose_kernel", True):  # (*k, C_in, C_out), flipped
                w = np.flip(w, tuple(range(2, w.ndim))).swapaxes(0, 1)
            return w
        if not params.get("transpose_kernel", True):
            return np.flip(w, tuple(range(2, w.ndim))).swapaxes(0, 1)
    return w


def _from_torch_layout(w: np.ndarray, framework: str) -> np.ndarray:
    if framework == "keras":
        return np.ascontiguousarray(np.moveaxis(w, (0, 1), (-1, -2)))
    return np.ascontiguousarray(w)


def apply_fixup(y: np.ndarray, fixup, bias=None) -> np.ndarray:
    """Crop (positive) or append (negative) per spatial dimension of a channels-first ``y``.

    Appended pixels hold ``bias`` (per channel), or zero.
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


def _params_of(layer_or_params, source: str) -> dict:
    if isinstance(layer_or_params, dict):
        return dict(layer_or_params)
    obj = layer_or_params
    if source in ("tconv", "torch") and hasattr(obj, "kernel_size") and hasattr(obj, "output_padding"):
        return dict(in_channels=obj.in_channels, out_channels=obj.out_channels,
                    kernel_size=obj.kernel_size, stride=obj.stride, padding=obj.padding,
                    output_padding=obj.output_padding, groups=obj.groups, dilation=obj.dilation,
                    bias=obj.bias is not None)
    raise TypeError(f"convert: layer_or_params must be a dict of {source} arguments or a "
                    f"ConvTranspose layer, got {type(obj).__name__}")


def convert(layer_or_params, source: str, target: str, *, input_shape=None,
            exact: bool = False) -> Conversion:
    """Convert a transposed convolution's arguments from ``source`` to ``target`` (see the module).

    ``layer_or_params``: the source's arguments by its own names (``in_channels``/``out_channels``
    are needed where the framework keeps them elsewhere: onnx, keras ``in_channels``, jax), or a
    tconv/torch ConvTranspose layer. ``input_shape``: needed by ONNX ``auto_pad``/``output_shape``
    and tconv ``'same'``. With ``exact=True`` a conversion that needs a fixup is a ValueError.

    >>> c = convert(dict(filters=64, in_channels=128, kernel_size=4, strides=2, padding="same",
    ...                  rank=2), "keras", "torch")
    >>> c.params["padding"], c.params["output_padding"], c.exact
    ((1, 1), (0, 0), True)
    """
    for name, fw in (("source", source), ("target", target)):
        if fw not in FRAMEWORKS:
            raise ValueError(f"convert: {name} must be one of {FRAMEWORKS}, got {fw!r}")
    src = _params_of(layer_or_params, source)
    for key in ("in_channels",) + (("out_channels",) if source != "keras" else ("filters",)):
        if key not in src:
            raise ValueError(f"convert: {source} arguments need {key!r}")
    canonical = _read(src, source, input_shape)
    params, achieved = _write(canonical, target)
    fixup = tuple((w[0] - g[0], w[1] - g[1]) for w, g in zip(canonical.crop, achieved))
    fixup = None if all(f == (0, 0) for f in fixup) else fixup
    notes = ()
    if fixup is not None:
        notes = (f"{target} cannot express this window alone; crop (+) or append bias-valued "
                 f"pixels (-) to its output: {fixup}",)
        if exact:
            raise ValueError(f"convert: {source} -> {target} is not exact: {notes[0]}; the closest "
                             f"exact alternative is {target} with {params} and that fixup, or "
                             f"explicit (before, after) padding in tconv or onnx")
    size = None if input_shape is None else _spatial(
        tuple(input_shape), canonical.rank, _channels_last(source, src))
    return Conversion(source, target, params, canonical, achieved, fixup, notes, size, src)
