"""tconv.onnx against the ConvTranspose/Conv node tests that ship inside the onnx package, and
to_onnx through ONNX Runtime; layers to and from torch."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases

import tconv
import tconv.interop.onnx as tonnx
from tconv.interop import from_torch, to_onnx, to_torch

with warnings.catch_warnings():  # building every node test case warns about unrelated ops
    warnings.simplefilter("ignore")
    CASES = [c for c in collect_testcases(None)
             if c.name.startswith("test_convtranspose") or c.name.startswith("test_conv_")]


def test_the_onnx_node_tests_are_found():
    names = {c.name for c in CASES}
    assert {"test_convtranspose_output_shape", "test_convtranspose_autopad_same",
            "test_convtranspose_pads", "test_conv_with_autopad_same"} <= names
    assert len(CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_run_node_matches_the_onnx_test_data(case):
    inputs, outputs = case.data_sets[0]
    y = tonnx.run_node(case.model.graph.node[0], inputs)
    assert y.shape == outputs[0].shape
    np.testing.assert_allclose(y, outputs[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_load_reads_nodes_as_layers(case):
    """The same models with their weights moved into initializers, as real models have them."""
    inputs, outputs = case.data_sets[0]
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    graph = model.graph
    for value, name in zip(inputs[1:], [i.name for i in graph.input][1:]):
        graph.initializer.append(numpy_helper.from_array(value, name))
    keep = [i for i in graph.input if i.name == graph.input[0].name]
    del graph.input[:]
    graph.input.extend(keep)
    (layer,) = tonnx.load(model)
    assert type(layer).__name__.startswith(graph.node[0].op_type)
    np.testing.assert_allclose(layer(inputs[0]), outputs[0], rtol=1e-5, atol=1e-5)


@st.composite
def layer_configs(draw):
    rank = draw(st.sampled_from([1, 2, 3]))
    transposed = draw(st.booleans())
    groups = draw(st.sampled_from([1, 2]))
    k = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    s = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    d = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    pad = draw(st.one_of(st.integers(0, 2), st.just("same") if transposed else st.just("valid"),
                         st.just(tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2)))
                                       for _ in range(rank)))))
    kw = dict(stride=s, padding=pad, dilation=d, groups=groups, bias=draw(st.booleans()))
    if transposed and pad != "same":
        kw["output_padding"] = tuple(draw(st.integers(0, si - 1)) for si in s)
    size = tuple(draw(st.integers(3, 6)) for _ in range(rank))
    cls = getattr(tconv, f"{'ConvTranspose' if transposed else 'Conv'}{rank}d")
    return cls, groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2)), k, kw, size


def _nonempty(transposed, size, k, kw) -> bool:
    """Whether the layer has an output: plain arithmetic on PyTorch's size formulas."""
    pad = kw["padding"]
    for i, (n, ki, si, di) in enumerate(zip(size, k, kw["stride"], kw["dilation"])):
        if pad == "same":
            continue
        b, a = (0, 0) if pad == "valid" else (pad, pad) if isinstance(pad, int) else pad[i]
        span = di * (ki - 1) + 1
        if transposed and (n - 1) * si - b - a + span + kw.get("output_padding", (0,) * 3)[i] < 1:
            return False
        if not transposed and n + b + a < span:
            return False
    return True


@given(cfg=layer_configs())
def test_to_onnx_runs_in_onnxruntime_to_the_same_numbers(cfg, tmp_path_factory):
    cls, c_in, c_out, k, kw, size = cfg
    assume(_nonempty(cls.transposed, size, k, kw))  # worked out here, not by tconv
    layer = cls(c_in, c_out, k, rng=0, **kw)
    x = np.random.default_rng(1).standard_normal((2, c_in, *size)).astype(np.float32)
    expected = layer(x)
    path = tmp_path_factory.mktemp("onnx") / "layer.onnx"
    to_onnx(layer, path, x.shape)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    got = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    (back,) = tonnx.load(str(path))
    np.testing.assert_allclose(back(x), expected, rtol=1e-6, atol=1e-6)


def test_what_onnx_cannot_express_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="ONNX has no padding_mode 'circular'"):
        to_onnx(tconv.ConvTranspose2d(2, 2, 3, padding=1, padding_mode="circular"),
                tmp_path / "m.onnx", (1, 2, 4, 4))
    with pytest.raises(ValueError, match="must be smaller than the stride"):
        to_onnx(tconv.ConvTranspose1d(1, 1, 3, stride=1, dilation=3, output_padding=2),
                tmp_path / "m.onnx", (1, 1, 4))


@pytest.mark.parametrize("name, args", [
    ("ConvTranspose2d", dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1,
                             output_padding=1, groups=2)),
    ("ConvTranspose1d", dict(in_channels=3, out_channels=2, kernel_size=4, dilation=2, bias=False)),
    ("Conv3d", dict(in_channels=2, out_channels=4, kernel_size=2, padding=1,
                    padding_mode="circular")),
    ("Conv2d", dict(in_channels=2, out_channels=2, kernel_size=3, padding="same")),
])
def test_from_torch_and_to_torch(name, args):
    module = getattr(torch.nn, name)(**args).double()
    layer = from_torch(module)
    assert type(layer) is getattr(tconv, name)
    assert repr(layer) == repr(module)
    rank = int(name[-2])
    x = np.random.default_rng(0).standard_normal((1, args["in_channels"], *(5,) * rank))
    np.testing.assert_allclose(layer(x), module(torch.tensor(x)).detach().numpy(), rtol=1e-10)
    back = to_torch(layer)
    assert repr(back) == repr(module)
    np.testing.assert_allclose(back(torch.tensor(x)).detach().numpy(), layer(x), rtol=1e-10)


def test_to_torch_refuses_what_torch_cannot_build():
    with pytest.raises(ValueError, match="no asymmetric padding"):
        to_torch(tconv.ConvTranspose1d(1, 1, 3, padding=((1, 2),)))
    with pytest.raises(ValueError, match="refuses"):
        to_torch(tconv.ConvTranspose2d(1, 1, 3, padding=1, padding_mode="reflect"))
    with pytest.raises(TypeError, match="ConvTranspose1d/2d/3d module, got Linear"):
        from_torch(torch.nn.Linear(1, 1))


def _ort(attrs: dict, x: np.ndarray, w: np.ndarray, b: np.ndarray):
    """ONNX Runtime running one ConvTranspose node with ``attrs``."""
    from onnx import TensorProto, helper

    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return node, session.run(None, {"x": x})[0]


@pytest.mark.filterwarnings("ignore::tconv.interop.onnx.OnnxRuntimeSemantics")
@given(n=st.integers(1, 5), k=st.integers(1, 4), s=st.integers(1, 4), d=st.integers(1, 2),
       data=st.data())
def test_run_node_computes_what_onnx_runtime_computes(n, k, s, d, data):
    """Where ONNX Runtime departs from the ONNX text too: SAME_* with a kernel shorter than the
    stride (the total padding clamped at 0), output_shape past the full result (appended at the end),
    output_shape with pads (the pads ignored, the crop split with the odd pixel at the start)."""
    op = data.draw(st.integers(0, s - 1))
    full = (n - 1) * s + d * (k - 1) + 1
    form = data.draw(st.sampled_from(["SAME_UPPER", "SAME_LOWER", "VALID", "pads", "output_shape"]))
    attrs = dict(strides=[s], dilations=[d], output_padding=[op])
    if form in ("pads", "output_shape"):
        attrs["pads"] = [data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))]
    else:
        attrs["auto_pad"] = form
    if form == "output_shape":
        attrs["output_shape"] = [data.draw(st.integers(max(1, full - 4), full + s - 1))]
    rng = np.random.default_rng(n * 100 + k)
    x = rng.standard_normal((1, 2, n)).astype(np.float32)
    w = rng.standard_normal((2, 3, k)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    try:
        node, expected = _ort(attrs, x, w, b)
    except Exception:  # ONNX Runtime refuses, e.g. a padding that leaves nothing
        assume(False)
    assume(expected.size > 0)
    np.testing.assert_allclose(tonnx.run_node(node, [x, w, b]), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore::tconv.interop.onnx.OnnxRuntimeSemantics")
def test_an_output_shape_onnx_runtime_refuses_is_refused():
    x, w, b = np.ones((1, 1, 3), np.float32), np.ones((1, 1, 3), np.float32), np.zeros(1, np.float32)
    attrs = dict(strides=[2], output_shape=[9])  # full result 7: at most 7 + 2 - 1 = 8
    with pytest.raises(Exception, match="output_shape is inconsistent"):
        _ort(attrs, x, w, b)
    from onnx import helper

    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **attrs)
    with pytest.raises(ValueError, match="output_shape 9 is more than stride - 1 pixels past the full "
                                         "result \\(7\\); ONNX Runtime refuses it"):
        tonnx.run_node(node, [x, w, b])
    node, y = _ort(dict(strides=[2], output_shape=[8]), x, w, b)
    np.testing.assert_allclose(tonnx.run_node(node, [x, w, b]), y)


_junk = st.one_of(st.integers(-2, 5), st.lists(st.integers(-2, 5), max_size=5),
                  st.sampled_from(["SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET", "X"]))
_attrs = ["auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "pads",
          "strides"]


@pytest.mark.filterwarnings("ignore::tconv.interop.onnx.OnnxRuntimeSemantics")
@settings(max_examples=300, deadline=None)
@given(attrs=st.dictionaries(st.sampled_from(_attrs), _junk, max_size=4),
       op_type=st.sampled_from(["Conv", "ConvTranspose"]), n=st.integers(1, 4), k=st.integers(1, 3),
       c_in=st.integers(1, 3), c_out=st.integers(1, 3))
def test_any_node_attributes_give_a_result_or_a_clear_error(attrs, op_type, n, k, c_in, c_out):
    """Whatever a node says: tconv runs it or raises ValueError/TypeError naming the node; never
    another exception (3,000 examples clean when this was written)."""
    from onnx import helper

    x, w = np.ones((1, c_in, n), np.float32), np.ones((c_in, c_out, k), np.float32)
    try:
        node = helper.make_node(op_type, ["x", "w"], ["y"], **attrs)
    except ValueError:  # onnx itself cannot store such an attribute (an empty list)
        assume(False)
    try:
        y = tonnx.run_node(node, [x, w])
    except (ValueError, TypeError) as exc:
        assert "tconv.onnx" in str(exc) or "Conv" in str(exc), exc
        return
    assert y.ndim == 3 and y.shape[0] == 1


def test_reading_a_node_where_onnx_runtime_departs_from_the_text_says_so():
    from onnx import helper

    x, w, b = np.ones((1, 1, 4), np.float32), np.ones((1, 1, 2), np.float32), np.zeros(1, np.float32)
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[3], auto_pad="SAME_UPPER")
    with pytest.warns(tonnx.OnnxRuntimeSemantics, match="ONNX Runtime clamps the total padding at 0"):
        y = tonnx.run_node(node, [x, w, b])
    assert y.shape == _ort(dict(strides=[3], auto_pad="SAME_UPPER"), x, w, b)[1].shape == (1, 1, 11)


def test_the_old_import_path_warns_and_gives_the_same_functions():
    import importlib
    import sys

    from tconv.interop import onnx as moved

    sys.modules.pop("tconv.onnx", None)
    with pytest.warns(FutureWarning, match="tconv.onnx has moved to tconv.interop.onnx"):
        old = importlib.import_module("tconv.onnx")
    for name in old.__all__:
        assert getattr(old, name) is getattr(moved, name)
    assert {"load", "run_node", "to_onnx"} <= set(old.__all__)
