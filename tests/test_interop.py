"""convert(): the real libraries are the oracle. Run the source framework, convert, run the target
framework with the converted arguments and weight (plus fixup), compare — all pairs, both ways."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import multiprocessing  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from concurrent.futures.process import BrokenProcessPool  # noqa: E402

import jaxkeras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import tconv  # noqa: E402
from tconv.interop.convert import FRAMEWORKS, convert  # noqa: E402

WITHOUT = ("in_channels", "out_channels", "bias", "rank")

_executor = None


def remote(framework, p, x, w, b):
    """JAX/Keras in a child process (see jaxkeras.py); a crashed child is restarted once."""
    global _executor
    for attempt in range(2):
        if _executor is None:
            _executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        try:
            return _executor.submit(jaxkeras.compute, framework, p, x, w, b).result(timeout=600)
        except BrokenProcessPool:
            _executor = None
            if attempt:
                raise


def run(framework: str, p: dict, x: np.ndarray, w: np.ndarray, b: np.ndarray | None):
    """The framework itself computing a transposed convolution with arguments ``p``."""
    rank = w.ndim - 2
    if framework == "torch":
        fn = getattr(torch.nn.functional, f"conv_transpose{rank}d")
        return fn(torch.tensor(x), torch.tensor(w), None if b is None else torch.tensor(b),
                  p["stride"], p["padding"], p["output_padding"], p.get("groups", 1),
                  p.get("dilation", 1)).numpy()
    if framework == "tconv":
        return tconv.conv_transpose(x, w, b, p["stride"], p["padding"], p["output_padding"],
                                    p.get("groups", 1), p.get("dilation", 1))
    if framework == "onnx":
        import onnxruntime as ort
        from onnx import TensorProto, helper

        attrs = {k: v for k, v in p.items() if k not in WITHOUT}
        names = ["x", "w"] + (["b"] if b is not None else [])
        inits = [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel())]
        if b is not None:
            inits.append(helper.make_tensor("b", TensorProto.FLOAT, b.shape, b))
        graph = helper.make_graph(
            [helper.make_node("ConvTranspose", names, ["y"], **attrs)], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        options = ort.SessionOptions()
        options.log_severity_level = 3
        return ort.InferenceSession(model.SerializeToString(), options,
                                    providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    if framework in ("jax", "keras"):
        return remote(framework, p, x, w, b)
    raise AssertionError(framework)


@st.composite
def native(draw, framework: str):
    """A configuration in ``framework``'s own terms, with its weight layout and data layout."""
    rank = draw(st.sampled_from([1, 2, 3]))
    k = tuple(draw(st.integers(1, 4 if rank < 3 else 2)) for _ in range(rank))
    s = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    d = tuple(draw(st.integers(1, 2)) for _ in range(rank)) if framework != "keras" else (1,) * rank
    groups = draw(st.sampled_from([1, 1, 2])) if framework in ("torch", "onnx", "tconv") else 1
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    n = tuple(draw(st.integers(2, 5 if rank < 3 else 3)) for _ in range(rank))
    bias = draw(st.booleans())
    if framework in ("torch", "tconv"):
        p = dict(in_channels=c_in, out_channels=c_out, kernel_size=k, stride=s,
                 dilation=d, bias=bias, groups=groups,
                 output_padding=tuple(draw(st.integers(0, si - 1)) for si in s))
        if framework == "torch":
            p["padding"] = tuple(draw(st.integers(0, 2)) for _ in range(rank))
        else:
            p["padding"] = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(rank))
    elif framework == "onnx":
        p = dict(in_channels=c_in, out_channels=c_out, kernel_shape=list(k), strides=list(s),
                 dilations=list(d), bias=bias, group=groups)
        form = draw(st.sampled_from(["pads", "SAME_UPPER", "SAME_LOWER", "output_shape"]))
        if form == "pads":
            p["pads"] = [draw(st.integers(0, 2)) for _ in range(2 * rank)]
            p["output_padding"] = [draw(st.integers(0, si - 1)) for si in s]
        elif form == "output_shape":
            full = [(ni - 1) * si + di * (ki - 1) + 1 for ni, si, di, ki in zip(n, s, d, k)]
            p["output_shape"] = [f + draw(st.integers(0, si - 1)) for f, si in zip(full, s)]
        else:
            p["auto_pad"] = form
            # ONNX Runtime returns fewer than in*stride pixels when the kernel is shorter than the
            # stride; keep to kernels that cover it
            assume(all(di * (ki - 1) + 1 >= si for di, ki, si in zip(d, k, s)))
    elif framework == "keras":
        padding = draw(st.sampled_from(["valid", "same"]))
        op = draw(st.one_of(st.none(), st.just(tuple(draw(st.integers(0, si - 1)) for si in s))))
        p = dict(filters=c_out, in_channels=c_in, kernel_size=k, strides=s, padding=padding,
                 output_padding=op, dilation_rate=d, use_bias=bias)
    else:
        spans = [di * (ki - 1) + 1 for di, ki in zip(d, k)]
        padding = draw(st.one_of(st.sampled_from(["SAME", "VALID"]), st.just(tuple(
            (draw(st.integers(0, e)), draw(st.integers(0, e))) for e in spans))))
        sp = "DHW"[3 - rank:]
        first = draw(st.booleans())  # channels-first, or jax's own default (channels-last)
        p = dict(in_channels=c_in, out_channels=c_out, kernel_size=k, strides=s, padding=padding,
                 rhs_dilation=d, transpose_kernel=draw(st.booleans()), bias=bias,
                 dimension_numbers=("NC" + sp, "OI" + sp, "NC" + sp) if first else None)
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    x = rng.standard_normal((2, c_in, *n)).astype(np.float32)
    w = rng.standard_normal((c_in, c_out // groups, *k)).astype(np.float32)  # torch layout
    b = rng.standard_normal(c_out).astype(np.float32) if bias else None
    if framework == "jax" and not p["transpose_kernel"]:  # in/out swapped, flipped
        w = np.flip(w, tuple(range(2, w.ndim))).swapaxes(0, 1)
    if framework == "keras" or (framework == "jax" and p["dimension_numbers"] is None):
        x, w = np.moveaxis(x, 1, -1), np.moveaxis(w, (0, 1), (-1, -2))
    return p, x, np.ascontiguousarray(w), b


PAIRS = [(s, t) for s in FRAMEWORKS for t in FRAMEWORKS if s != t]


@pytest.mark.parametrize("source, target", PAIRS, ids=[f"{s}->{t}" for s, t in PAIRS])
@settings(max_examples=int(os.environ.get("TCONV_PAIR_EXAMPLES", "12")), deadline=None)
@given(data=st.data())
def test_conversion_reproduces_the_source(source, target, data):
    p, x, w, b = data.draw(native(source))
    try:
        expected = run(source, p, x, w, b)
    except Exception:  # the source framework refuses its own configuration: not a case
        assume(False)
    assume(min(expected.shape) > 0)
    try:
        c = convert(p, source, target, input_shape=x.shape)
    except ValueError as exc:  # what the target cannot do at all
        assert target in ("keras", "jax") and (
            "strides > 1 with dilation_rate > 1" in str(exc) or "no grouped" in str(exc)), exc
        return
    got = run(target, c.params, c.input(x), c.weight(w), c.bias(b))
    result = c.output(got, bias=b)
    assert result.shape == expected.shape, c.explain()
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-4, err_msg=c.explain())


def test_exact_and_its_refusal():
    c = convert(dict(filters=8, in_channels=4, kernel_size=4, strides=2, padding="same", rank=2),
                "keras", "torch")
    assert c.exact and c.params["padding"] == (1, 1)
    with pytest.raises(ValueError, match="not exact"):
        convert(dict(filters=8, in_channels=4, kernel_size=3, strides=2, padding="same", rank=2),
                "keras", "torch", exact=True)
    assert "fixup" in convert(dict(filters=8, in_channels=4, kernel_size=3, strides=2,
                                   padding="same", rank=2), "keras", "torch").explain()


@pytest.mark.parametrize("call, match", [
    (lambda: convert({}, "caffe", "torch"), r"source must be one of"),
    (lambda: convert(dict(in_channels=1, out_channels=1, kernel_shape=[3], auto_pad="SAME_UPPER"),
                     "onnx", "torch"), r"depends on the input size: pass input_shape"),
    (lambda: convert(dict(filters=1, in_channels=1, kernel_size=3, padding="full", rank=1), "keras",
                     "torch"), r"keras padding must be 'valid' or 'same'"),
    (lambda: convert(dict(in_channels=1, out_channels=1, kernel_size=3, stride=2,
                          output_padding=2, rank=1), "torch", "onnx"),
     r"output_padding must be smaller"),
    (lambda: convert(dict(in_channels=2, out_channels=2, kernel_size=3, groups=2, rank=1), "torch",
                     "keras"), r"keras has no grouped"),
    (lambda: convert(dict(in_channels=1, out_channels=1, kernel_size=3), "torch", "tconv"),
     r"give rank="),
    (lambda: convert(dict(out_channels=1, kernel_size=3, rank=1), "torch", "tconv"),
     r"need 'in_channels'"),
])
def test_bad_conversions_are_clear(call, match):
    with pytest.raises(ValueError, match=match):
        call()
