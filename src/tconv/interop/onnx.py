"""ONNX: read ``Conv``/``ConvTranspose`` nodes as tconv layers, run a node, write a layer as a model.

``onnx`` is optional (``pip install tconv[onnx]``); importing tconv never needs it.

A ``ConvTranspose`` node is resolved as ONNX Runtime computes it (the runtime the models are run in),
which departs from the ONNX text in two places. Per spatial dimension, with
``full = (n-1)*stride + dilation*(k-1) + 1`` and ``op = output_padding``:

- explicit ``pads`` ``(begin, end)`` (default 0): ``begin`` cropped at the start, ``end - op`` at the
  end (a negative crop appends pixels); ``auto_pad='VALID'``: ``pads`` ignored, nothing cropped;
- ``output_shape`` (``pads`` ignored): ``total = max(0, full + op - output_shape)`` is cropped, the odd
  pixel at the end for ``SAME_UPPER`` and at the start otherwise; an output larger than
  ``full + op`` is extended at the end (as the ONNX reference's own node tests have it), and ONNX
  Runtime refuses one larger than ``full + stride - 1`` (the ONNX text sets no such limit);
- ``auto_pad='SAME_UPPER'``/``'SAME_LOWER'``: the same with ``output_shape = n*stride``, so when the
  dilated kernel is shorter than the stride ONNX Runtime returns ``full + op`` pixels, fewer than the
  ``n*stride`` of the ONNX text.

``Conv``'s ``SAME_*`` pad to ``ceil(n/stride)`` outputs. These depend on the input size, which
:func:`load` reads from the model's shapes.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..core import layers
from ..core.shapes import effective_kernel, full_size, same_pads


class OnnxRuntimeSemantics(UserWarning):
    """A node is read as ONNX Runtime computes it, which here departs from the ONNX text."""


def _onnx():
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - exercised only without onnx
        raise ImportError("tconv.onnx needs the onnx package: pip install tconv[onnx]") from exc
    return onnx


def _attributes(node) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def transposed_window(n: int, k: int, s: int, d: int, op: int, auto_pad: str,
                      pads: tuple[int, int] | None, output_shape: int | None,
                      name: str = "tconv.onnx") -> tuple[tuple[int, int], str]:
    """One dimension of a ``ConvTranspose`` node as ONNX Runtime computes it (see the module).

    Returns the crop ``(before, after)`` of the full scatter result (``after`` negative: pixels
    appended at the end) and a note, empty unless ONNX Runtime departs from the ONNX text here.

    >>> transposed_window(3, k=1, s=2, d=1, op=0, auto_pad="SAME_UPPER", pads=None, output_shape=None)
    ((0, 0), 'SAME_UPPER with a dilated kernel (1) shorter than the stride (2): ONNX Runtime clamps \
the total padding at 0 and returns 5 pixels; the ONNX text says input*stride = 6')
    """
    full = full_size(n, k, s, d)
    note = ""
    if output_shape is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        if full + op < n * s:
            note = (f"{auto_pad} with a dilated kernel ({effective_kernel(k, d)}) shorter than the "
                    f"stride ({s}): ONNX Runtime clamps the total padding at 0 and returns {full + op} "
                    f"pixels; the ONNX text says input*stride = {n * s}")
        output_shape = min(n * s, full + op)
    if output_shape is not None:
        if output_shape > full + s - 1:
            raise ValueError(f"{name}: output_shape {output_shape} is more than stride - 1 pixels "
                             f"past the full result ({full}); ONNX Runtime refuses it")
        total = max(0, full + op - output_shape)
        begin = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
        return (begin, full - begin - output_shape), note
    begin, end = pads if pads is not None and auto_pad == "NOTSET" else (0, 0)
    return (begin, end - op), note


def resolve(op_type: str, attrs: dict, in_size: tuple[int, ...], kernel: tuple[int, ...],
            name: str | None = None) -> dict:
    """The tconv arguments (stride, padding pairs, output_padding, dilation, groups) of one node,
    and ``notes`` where ONNX Runtime departs from the ONNX text (see the module). ``name`` starts
    the error messages."""
    from ..core.spec import int_tuple

    rank = len(kernel)
    name = name or f"tconv.onnx {op_type}"

    def ints(key: str, length: int, minimum: int, default: int) -> tuple[int, ...]:
        """An attribute of ``length`` ints (a list, as ONNX stores it), each ``>= minimum``."""
        value = attrs.get(key, [default] * length)
        if not isinstance(value, (list, tuple, np.ndarray)):
            raise TypeError(f"{name}: {key} must be a list of {length} ints, got {value!r}")
        return int_tuple(name, key, tuple(value), length, minimum)

    s = ints("strides", rank, 1, 1)
    d = ints("dilations", rank, 1, 1)
    auto = attrs.get("auto_pad", "NOTSET")
    if auto not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise ValueError(f"{name}: auto_pad must be NOTSET, SAME_UPPER, SAME_LOWER or VALID, got {auto!r}")
    if "kernel_shape" in attrs and ints("kernel_shape", rank, 1, 1) != tuple(kernel):
        raise ValueError(f"{name}: kernel_shape {attrs['kernel_shape']} does not match the weight's "
                         f"{kernel}")
    group = int_tuple(name, "group", attrs.get("group", 1), 1, 1)[0]
    pads: tuple[tuple[int, int], ...] | None = None
    if "pads" in attrs:
        flat = ints("pads", 2 * rank, 0, 0)
        pads = tuple(zip(flat[:rank], flat[rank:]))
    if op_type == "Conv":
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pairs = [same_pads(n, k, si, di) for n, k, si, di in zip(in_size, kernel, s, d)]
            if auto == "SAME_LOWER":
                pairs = [(a, b) for b, a in pairs]
        else:
            pairs = list(pads) if pads is not None and auto == "NOTSET" else [(0, 0)] * rank
        return dict(stride=s, padding=tuple(pairs), dilation=d, groups=group, notes=())
    op = ints("output_padding", rank, 0, 0)
    stated = attrs.get("output_shape")
    out_shape: tuple[int | None, ...]
    if stated is None:
        out_shape = (None,) * rank
    else:  # the spatial sizes, or a whole shape's last ones
        full = isinstance(stated, (list, tuple, np.ndarray)) and len(stated) == rank + 2
        out_shape = ints("output_shape", rank + 2 if full else rank, 1, 1)[-rank:]
    pairs, extra, notes = [], [], []
    for i in range(rank):
        (begin, after), note = transposed_window(
            in_size[i], kernel[i], s[i], d[i], op[i], auto, None if pads is None else pads[i],
            out_shape[i], name)
        pairs.append((begin, max(after, 0)))
        extra.append(max(-after, 0))
        if note:
            notes.append(f"dim {i}: {note}")
    return dict(stride=s, padding=tuple(pairs), output_padding=tuple(extra), dilation=d,
                groups=group, notes=tuple(notes))


def layer_from_node(node, weight: np.ndarray, bias: np.ndarray | None, in_size: tuple[int, ...]):
    """A tconv layer doing what ``node`` does to inputs of spatial size ``in_size``."""
    if node.op_type not in ("Conv", "ConvTranspose"):
        raise ValueError(f"tconv.onnx: only Conv and ConvTranspose nodes, got {node.op_type}")
    weight = np.asarray(weight)
    rank = weight.ndim - 2
    kernel = weight.shape[2:]
    args = resolve(node.op_type, _attributes(node), tuple(in_size), tuple(kernel))
    for note in args.pop("notes"):  # tconv follows ONNX Runtime; say where that is not the ONNX text
        warnings.warn(f"tconv.onnx: node {node.name or node.op_type!r}, {note}", OnnxRuntimeSemantics,
                      stacklevel=3)
    transposed = node.op_type == "ConvTranspose"
    groups = args["groups"]
    in_ch, out_ch = ((weight.shape[0], weight.shape[1] * groups) if transposed
                     else (weight.shape[1] * groups, weight.shape[0]))
    cls = getattr(layers, f"{'ConvTranspose' if transposed else 'Conv'}{rank}d")
    dtype = weight.dtype if weight.dtype in (np.float32, np.float64) else np.float32
    layer = cls(in_ch, out_ch, kernel, bias=bias is not None, dtype=dtype, **args)
    state = {"weight": weight}
    if bias is not None:
        state["bias"] = np.asarray(bias)
    layer.load_state_dict(state)
    return layer


def _model(path_or_model):
    onnx = _onnx()
    if isinstance(path_or_model, (str, Path)):
        return onnx.load(str(path_or_model))
    return path_or_model


def load(path_or_model) -> list:
    """The ``Conv`` and ``ConvTranspose`` nodes of an ONNX model as tconv layers, in graph order.

    Weights and biases come from the initializers; the input size (needed by ``auto_pad`` and
    ``output_shape``) from the model's shapes (inferred where not stated).
    """
    onnx = _onnx()
    model = _model(path_or_model)
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    shapes = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
    found = []
    for node in g.node:
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        if len(node.input) < 2 or node.input[1] not in inits:
            raise ValueError(f"tconv.onnx.load: node {node.name or node.op_type!r} takes its weight "
                             f"{node.input[1] if len(node.input) > 1 else '?'!r} from a graph input, "
                             f"not an initializer; use run_node with the arrays")
        w = inits[node.input[1]]
        b = inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        shape = shapes.get(node.input[0])
        if shape is None or any(v is None for v in shape[2:]):
            raise ValueError(f"tconv.onnx.load: the input size of node {node.name or node.op_type!r} "
                             f"is not known from the model's shapes")
        in_size = cast("tuple[int, ...]", shape[2:])  # every one known: checked just above
        found.append(layer_from_node(node, w, b, in_size))
    return found


def run_node(node, inputs) -> np.ndarray:
    """Run one ``Conv``/``ConvTranspose`` node with tconv: ``inputs`` = ``[x, weight(, bias)]``."""
    x = np.asarray(inputs[0])
    layer = layer_from_node(node, inputs[1], inputs[2] if len(inputs) > 2 else None, x.shape[2:])
    return layer(x)


def to_onnx(layer, path: str | Path | None, input_shape: tuple[int, ...]):
    """A one-node ONNX model computing ``layer`` on inputs of ``input_shape``; written to ``path``.

    Returns the model. A configuration ONNX cannot express (a padding mode other than zeros,
    output_padding not below the stride, which ONNX Runtime refuses) is a ValueError.
    """
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    name = f"{type(layer).__name__}.to_onnx"
    if layer.padding_mode != "zeros":
        raise ValueError(f"{name}: ONNX has no padding_mode {layer.padding_mode!r} (zeros only)")
    rank = layer.weight.ndim - 2
    x = np.zeros(tuple(input_shape), layer.dtype)
    if x.ndim != rank + 2:
        raise ValueError(f"{name}: input_shape must be (N, C, *spatial) with {rank} spatial sizes, "
                         f"got {tuple(input_shape)}")
    # the spec resolves 'same', 'valid' and every padding form into explicit pairs
    if layer.transposed:
        from ..core.spec import transposed_spec

        spec = transposed_spec(name, x, layer.weight, None, layer.stride, layer.padding,
                               layer.output_padding, layer.groups, layer.dilation)
        pairs, extra = spec.pads, spec.extra
        if any(e >= s for e, s in zip(extra, spec.stride)):
            raise ValueError(f"{name}: output_padding {extra} must be smaller than the stride "
                             f"{spec.stride} for ONNX Runtime")
    else:
        from ..core.spec import conv_spec

        spec = conv_spec(name, x, layer.weight, None, layer.stride, layer.padding, layer.dilation,
                         layer.groups)
        pairs, extra = spec.pads, None
    attrs: dict[str, Any] = dict(strides=list(spec.stride), dilations=list(spec.dilation),
                                 group=spec.groups, kernel_shape=list(spec.kernel),
                                 pads=[b for b, _ in pairs] + [a for _, a in pairs])
    if extra is not None:
        attrs["output_padding"] = list(extra)
    dtype = TensorProto.FLOAT if layer.dtype == np.float32 else TensorProto.DOUBLE
    inits = [numpy_helper.from_array(layer.weight, "w")]
    inputs = ["x", "w"]
    if layer.bias is not None:
        inits.append(numpy_helper.from_array(layer.bias, "b"))
        inputs.append("b")
    node = helper.make_node("ConvTranspose" if layer.transposed else "Conv", inputs, ["y"], **attrs)
    graph = helper.make_graph(
        [node], type(layer).__name__, [helper.make_tensor_value_info("x", dtype, list(input_shape))],
        [helper.make_tensor_value_info("y", dtype, list(spec.out_shape))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save(model, str(path))
    return model
