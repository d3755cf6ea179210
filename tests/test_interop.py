"""convert(): the real libraries are the oracle. Each framework is called with its arguments exactly
as given — ``torch.nn.ConvTransposeNd(**p)``, ``onnx.helper.make_node("ConvTranspose", ..., **p)``,
``keras.layers.ConvNDTranspose(**p)``, ``jax.lax.conv_transpose(x, w, **p)``,
``tconv.ConvTransposeNd(**p)`` — first with the source's own arguments (optional ones left out at
random, so every default is exercised), then with ``Conversion.params`` unchanged; the outputs must
agree. All 20 ordered pairs."""

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
from tconv.interop import FRAMEWORKS, convert  # noqa: E402

_executor = None

# XLA's algebraic simplifier (pass "algsimp") aborts the process with a CHECK failure ("Window
# dimensions do not match RHS shape") on some valid convolutions with jaxlib 0.10.2, e.g.
# lax.conv_transpose of a (2, 1, 2, 3) input by a (1, 1, 3, 2) kernel, strides (1, 2), padding
# ((4, 4), (0, 0)), rhs_dilation (2, 1), transpose_kernel=True (XLA_CRASH below). The pass only
# rewrites, so with it off the oracle computes the same convolution.
SAFE_XLA_FLAGS = "--xla_disable_hlo_passes=algsimp"


def _set_xla_flags(flags: str) -> None:
    os.environ["XLA_FLAGS"] = flags  # read when the child first uses JAX


def in_child(fn, *args):
    """``fn(*args)`` in the child process that runs JAX/Keras (see jaxkeras.py). If XLA aborts the
    child, once more in a fresh child with XLA's algebraic simplifier off."""
    global _executor
    spawn = multiprocessing.get_context("spawn")
    try:
        if _executor is None:
            _executor = ProcessPoolExecutor(1, mp_context=spawn)
        return _executor.submit(fn, *args).result(timeout=600)
    except BrokenProcessPool:
        _executor = None
    with ProcessPoolExecutor(1, mp_context=spawn, initializer=_set_xla_flags,
                             initargs=(SAFE_XLA_FLAGS,)) as safe:
        return safe.submit(fn, *args).result(timeout=600)


def remote(framework, p, x, w, b):
    return in_child(jaxkeras.compute, framework, p, x, w, b)


def _layer(cls, p: dict, w: np.ndarray, b: np.ndarray | None, tensor):
    """``cls(**p)`` with the weight (and bias, zero when the source has none) loaded."""
    layer = cls(**p)
    state = {"weight": tensor(w)}
    if layer.bias is not None:
        state["bias"] = tensor(b if b is not None else np.zeros(layer.bias.shape, w.dtype))
    layer.load_state_dict(state)
    return layer


def run(framework: str, p: dict, x: np.ndarray, w: np.ndarray, b: np.ndarray | None):
    """The framework itself, called with ``p`` exactly as given."""
    rank = w.ndim - 2
    if framework == "torch":
        module = _layer(getattr(torch.nn, f"ConvTranspose{rank}d"), p, w, b, torch.tensor)
        with torch.no_grad():
            return module(torch.tensor(x)).numpy()
    if framework == "tconv":
        return _layer(getattr(tconv, f"ConvTranspose{rank}d"), p, w, b, np.asarray)(x)
    if framework == "onnx":
        import onnxruntime as ort
        from onnx import TensorProto, helper

        names = ["x", "w"] + (["b"] if b is not None else [])
        inits = [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel())]
        if b is not None:
            inits.append(helper.make_tensor("b", TensorProto.FLOAT, b.shape, b))
        graph = helper.make_graph(
            [helper.make_node("ConvTranspose", names, ["y"], **p)], "g",
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


def _maybe(draw, p: dict, key: str, value, default=None):
    """Give ``key`` explicitly or leave it to the framework's default (``value`` must then be it)."""
    if value == default and draw(st.booleans()):
        return
    p[key] = value


@st.composite
def native(draw, framework: str):
    """A layer in ``framework``'s own terms: its arguments, input and weight in its own layouts.

    The weight is random in the framework's layout (only its shape is worked out here); the
    framework itself decides what it means.
    """
    rank = draw(st.sampled_from([1, 2, 3]))
    k = tuple(draw(st.integers(1, 4 if rank < 3 else 2)) for _ in range(rank))
    s = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    d = tuple(draw(st.integers(1, 2)) for _ in range(rank)) if framework != "keras" else (1,) * rank
    groups = draw(st.sampled_from([1, 1, 2])) if framework in ("torch", "onnx", "tconv") else 1
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    n = tuple(draw(st.integers(2, 5 if rank < 3 else 3)) for _ in range(rank))
    bias = draw(st.booleans())
    ones = (1,) * rank
    x_shape, w_shape = (2, c_in, *n), (c_in, c_out // groups, *k)
    if framework in ("torch", "tconv"):
        p = dict(in_channels=c_in, out_channels=c_out,
                 kernel_size=k[0] if len(set(k)) == 1 and draw(st.booleans()) else k)
        _maybe(draw, p, "stride", s, ones)
        _maybe(draw, p, "dilation", d, ones)
        _maybe(draw, p, "groups", groups, 1)
        _maybe(draw, p, "bias", bias, True)
        op = tuple(draw(st.integers(0, si - 1)) for si in s)
        _maybe(draw, p, "output_padding", op, (0,) * rank)
        if framework == "torch":
            _maybe(draw, p, "padding", tuple(draw(st.integers(0, 2)) for _ in range(rank)), (0,) * rank)
        else:
            form = draw(st.sampled_from(["pairs", "pairs", "same", "valid"]))
            if form == "pairs":
                p["padding"] = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(rank))
            else:
                p["padding"] = form
                if form == "same":
                    p.pop("output_padding", None)
    elif framework == "onnx":
        p = {}
        _maybe(draw, p, "kernel_shape", list(k), None)
        _maybe(draw, p, "strides", list(s), list(ones))
        _maybe(draw, p, "dilations", list(d), list(ones))
        _maybe(draw, p, "group", groups, 1)
        form = draw(st.sampled_from(["pads", "SAME_UPPER", "SAME_LOWER", "VALID", "output_shape"]))
        op = [draw(st.integers(0, si - 1)) for si in s]
        if form in ("pads", "output_shape"):
            _maybe(draw, p, "pads", [draw(st.integers(0, 2)) for _ in range(2 * rank)], [0] * 2 * rank)
        else:
            p["auto_pad"] = form
        if form == "output_shape":
            # ONNX Runtime accepts up to full + stride - 1 pixels
            full = [(ni - 1) * si + di * (ki - 1) + 1 for ni, si, di, ki in zip(n, s, d, k)]
            p["output_shape"] = [draw(st.integers(max(1, f - 3), f + si - 1)) for f, si in zip(full, s)]
        _maybe(draw, p, "output_padding", op, [0] * rank)
    elif framework == "keras":
        p = dict(filters=c_out, kernel_size=k[0] if len(set(k)) == 1 and draw(st.booleans()) else k)
        _maybe(draw, p, "strides", s, ones)
        _maybe(draw, p, "padding", draw(st.sampled_from(["valid", "same"])), "valid")
        if draw(st.booleans()):
            p["output_padding"] = draw(st.one_of(st.none(), st.just(tuple(
                draw(st.integers(0, si - 1)) for si in s))))
        _maybe(draw, p, "dilation_rate", d, ones)
        _maybe(draw, p, "use_bias", bias, True)
        data_format = draw(st.sampled_from([None, None, "channels_last", "channels_first"]))
        _maybe(draw, p, "data_format", data_format, None)
        if data_format != "channels_first":
            x_shape = (2, *n, c_in)
        w_shape = (*k, c_out, c_in)
    else:
        spans = [di * (ki - 1) + 1 for di, ki in zip(d, k)]
        padding = draw(st.one_of(st.sampled_from(["SAME", "VALID"]), st.just(tuple(
            (draw(st.integers(-1, e)), draw(st.integers(-1, e))) for e in spans))))
        p = dict(strides=s, padding=padding)
        _maybe(draw, p, "rhs_dilation", d, ones)
        if "rhs_dilation" not in p and draw(st.booleans()):
            p["rhs_dilation"] = None  # jax's own default, written out
        transpose_kernel = draw(st.booleans())
        _maybe(draw, p, "transpose_kernel", transpose_kernel, False)
        if draw(st.booleans()):
            p["use_consistent_padding"] = draw(st.booleans())
            if p["use_consistent_padding"] and not isinstance(padding, str):
                p["padding"] = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(rank))
        form = draw(st.sampled_from(["default", "default", "channels_first", "any"]))
        if form == "default":
            _maybe(draw, p, "dimension_numbers", None, None)
            letters = "HWD"[:rank]
            lhs, rhs, out = "N" + letters + "C", letters + "IO", "N" + letters + "C"
        else:
            letters = ("DHW"[3 - rank:] if form == "channels_first" else
                       "".join(draw(st.permutations("ABEFGXYZ"))[:rank]))
            lhs, rhs, out = "NC" + letters, "OI" + letters, "NC" + letters
            if form == "any":
                lhs, rhs, out = ("".join(draw(st.permutations(spec))) for spec in (lhs, rhs, out))
            p["dimension_numbers"] = (lhs, rhs, out)
        size = {"N": 2, "C": c_in, **{c: ni for c, ni in zip(letters, n)}}
        sizes_k = {"O": c_in if transpose_kernel else c_out, "I": c_out if transpose_kernel else c_in,
                   **{c: ki for c, ki in zip(letters, k)}}
        # the kernel's spec orders the spatial dimensions
        order = [c for c in rhs if c not in "OI"]
        size.update({c: ni for c, ni in zip(order, n)})
        sizes_k.update({c: ki for c, ki in zip(order, k)})
        x_shape = tuple(size[c] for c in lhs)
        w_shape = tuple(sizes_k[c] for c in rhs)
        bias = False
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32) if bias else None
    return p, x, w, b


PAIRS = [(s, t) for s in FRAMEWORKS for t in FRAMEWORKS if s != t]


@pytest.mark.parametrize("source, target", PAIRS, ids=[f"{s}->{t}" for s, t in PAIRS])
@settings(max_examples=int(os.environ.get("TCONV_PAIR_EXAMPLES", "12")), deadline=None)
@given(data=st.data())
def test_conversion_reproduces_the_source(source, target, data):
    p, x, w, b = data.draw(native(source))
    given_p = {key: value for key, value in p.items()}
    try:
        expected = run(source, p, x, w, b)
    except Exception:  # the source framework refuses its own configuration: not a case
        assume(False)
    assume(min(expected.shape) > 0)
    try:
        c = convert(p, source, target, input_shape=x.shape, weight_shape=w.shape)
    except ValueError as exc:  # what the target cannot do at all
        assert target in ("keras", "jax") and (
            "strides > 1 with dilation_rate > 1" in str(exc) or "no grouped" in str(exc)), exc
        return
    assert p == given_p  # the caller's arguments are untouched
    got = run(target, c.params, c.input(x), c.weight(w), c.bias(b))
    result = c.output(got, bias=b)
    assert result.shape == expected.shape, c.explain()
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-4, err_msg=c.explain())


XLA_CRASH = dict(in_channels=1, out_channels=1, kernel_size=(3, 2), stride=(1, 2), dilation=(2, 1),
                 padding=(0, 1), bias=False)


def test_torch_to_jax_where_xla_aborts_on_the_plain_call():
    """The configuration hypothesis found on which jaxlib 0.10.2's XLA aborts (see SAFE_XLA_FLAGS):
    the converted arguments still reproduce PyTorch, computed with the simplifier off."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 1, 2, 3)).astype(np.float32)
    w = rng.standard_normal((1, 1, 3, 2)).astype(np.float32)
    expected = run("torch", XLA_CRASH, x, w, None)
    c = convert(XLA_CRASH, "torch", "jax", input_shape=x.shape, weight_shape=w.shape)
    assert c.params["padding"] == ((4, 4), (0, 0)) and c.params["rhs_dilation"] == (2, 1)
    got = in_child(jaxkeras.compute, "jax", c.params, c.input(x), c.weight(w), None)
    np.testing.assert_allclose(c.output(got), expected, rtol=1e-5, atol=1e-5)


def test_each_frameworks_omitted_arguments_are_its_defaults():
    """Left out and given explicitly as the framework's documented default: the same conversion."""
    cases = [
        ("torch", dict(in_channels=4, out_channels=2, kernel_size=3),
         dict(stride=1, padding=0, output_padding=0, groups=1, bias=True, dilation=1)),
        ("keras", dict(filters=2, kernel_size=3),
         dict(strides=1, padding="valid", output_padding=None, data_format="channels_last",
              dilation_rate=1, use_bias=True)),
        ("onnx", dict(), dict(auto_pad="NOTSET", dilations=[1], group=1, kernel_shape=[3],
                              output_padding=[0], pads=[0, 0], strides=[1])),
        ("jax", dict(strides=(1,), padding="VALID"),
         dict(rhs_dilation=None, dimension_numbers=("NHC", "HIO", "NHC"), transpose_kernel=False)),
    ]
    shapes = {"torch": (4, 2, 3), "keras": (3, 2, 4), "onnx": (4, 2, 3), "jax": (3, 4, 2)}
    for source, p, defaults in cases:
        short = convert(p, source, "torch", weight_shape=shapes[source])
        full = convert({**p, **defaults}, source, "torch", weight_shape=shapes[source])
        assert short.params == full.params, source
        w = np.arange(np.prod(shapes[source]), dtype=np.float32).reshape(shapes[source])
        np.testing.assert_array_equal(short.weight(w), full.weight(w))


def test_jax_default_transpose_kernel_is_false_and_flips():
    """jax.lax.conv_transpose(x, w, strides, padding) with nothing else: transpose_kernel=False, so
    the kernel is the forward convolution's (..., I, O) and PyTorch's weight is it flipped."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 6, 3)).astype(np.float32)  # NHC: 6 pixels, 3 channels
    w = rng.standard_normal((4, 3, 5)).astype(np.float32)  # HIO: k=4, C_in=3, C_out=5
    p = dict(strides=(2,), padding="VALID")
    expected = run("jax", p, x, w, None)
    c = convert(p, "jax", "torch", weight_shape=w.shape)
    assert (c.in_channels, c.out_channels, c.kernel_size) == (3, 5, (4,))
    np.testing.assert_array_equal(c.weight(w), np.flip(w, 0).transpose(1, 2, 0))
    got = c.output(run("torch", c.params, c.input(x), c.weight(w), None))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_params_are_usable_as_they_are():
    c = convert(dict(in_channels=4, out_channels=2, kernel_size=(3,), stride=2, padding=1), "torch", "onnx")
    assert set(c.params) <= {"kernel_shape", "strides", "pads", "output_padding", "dilations", "group"}
    assert (c.in_channels, c.out_channels, c.rank, c.has_bias) == (4, 2, 1, True)
    jax_params = convert(dict(in_channels=4, out_channels=2, kernel_size=(3,)), "torch", "jax").params
    assert set(jax_params) <= {"strides", "padding", "rhs_dilation", "dimension_numbers",
                               "transpose_kernel"}
    keras_params = convert(dict(in_channels=4, out_channels=2, kernel_size=(3, 3)), "torch", "keras").params
    assert "in_channels" not in keras_params and keras_params["filters"] == 2
    # the CLI prints the same call
    assert c.call.startswith('onnx.helper.make_node("ConvTranspose"')


def test_channels_and_kernel_come_from_the_shapes():
    keras = dict(filters=8, kernel_size=3, strides=2, padding="same")
    by_input = convert(keras, "keras", "torch", input_shape=(1, 5, 5, 4))
    by_weight = convert(keras, "keras", "torch", weight_shape=(3, 3, 8, 4))
    assert by_input.params == by_weight.params
    assert by_input.params["in_channels"] == 4 and by_input.params["kernel_size"] == (3, 3)
    spatial = convert(dict(in_channels=4, out_channels=2, kernel_size=(3, 3), padding="same", stride=2),
                      "tconv", "torch", input_shape=(5, 5))  # the spatial sizes alone
    assert spatial.input_size == (5, 5) and spatial.fixup == ((0, 1), (0, 1))
    first = convert({**keras, "data_format": "channels_first"}, "keras", "torch", input_shape=(1, 4, 5, 5))
    assert first.params["in_channels"] == 4
    onnx = convert(dict(strides=[2, 2]), "onnx", "torch", weight_shape=(4, 3, 2, 2))
    assert (onnx.params["in_channels"], onnx.params["out_channels"], onnx.params["kernel_size"]) == \
        (4, 3, (2, 2))
    with pytest.raises(ValueError, match="do not say the in_channels: pass weight_shape or input_shape"):
        convert(dict(filters=8, kernel_size=(3, 3)), "keras", "torch")
    with pytest.raises(ValueError, match="do not say the kernel size: pass weight_shape"):
        convert(dict(strides=(2,), padding="SAME"), "jax", "torch", input_shape=(1, 4, 3))
    with pytest.raises(ValueError, match="do not say the rank: pass weight_shape or input_shape"):
        convert(dict(in_channels=1, out_channels=1, kernel_size=3), "torch", "tconv")
    with pytest.raises(ValueError, match="in_channels is 4 by in_channels but 5 by weight_shape"):
        convert(dict(in_channels=4, out_channels=2, kernel_size=3), "torch", "onnx", weight_shape=(5, 2, 3))


def test_jax_accepts_any_spatial_letters():
    for dn in [("NCH", "OIH", "NCH"), ("NCX", "OIX", "NCX"), ("NXYC", "YXIO", "NCXY")]:
        rank = len(dn[0]) - 2
        w_shape = (2, 3, *(2,) * rank) if dn[1].startswith("OI") else (*(2,) * rank, 3, 2)
        c = convert(dict(strides=(2,) * rank, padding="SAME", dimension_numbers=dn), "jax", "torch",
                    weight_shape=w_shape)
        assert c.rank == rank
    with pytest.raises(ValueError, match="same spatial letters"):
        convert(dict(strides=(2,), padding="SAME", dimension_numbers=("NCH", "OIW", "NCH")), "jax",
                "torch", weight_shape=(2, 3, 2))
    with pytest.raises(ValueError, match="'O' and 'I' once"):
        convert(dict(strides=(2,), padding="SAME", dimension_numbers=("NCH", "OOH", "NCH")), "jax",
                "torch", weight_shape=(2, 3, 2))


@pytest.mark.parametrize("source, target", PAIRS, ids=[f"{s}->{t}" for s, t in PAIRS])
def test_weights_and_data_are_new_contiguous_arrays(source, target):
    """Every converted array is one torch.from_numpy (and every framework) takes: C-contiguous,
    writable, not a view of the caller's array (the flipped JAX kernel was a negative-stride view)."""
    p = dict(native_minimal[source])
    if source == "jax":
        p["transpose_kernel"] = False  # the flip
    c = convert(p, source, target, weight_shape=weight_minimal[source], input_shape=input_minimal[source])
    w = np.arange(np.prod(weight_minimal[source]), dtype=np.float32).reshape(weight_minimal[source])
    x = np.ones(input_minimal[source], np.float32)
    before = w.copy()
    for a in (c.weight(w), c.input(x)):
        assert a.flags.c_contiguous and a.flags.writeable and not np.shares_memory(a, w)
        torch.from_numpy(a)
    np.testing.assert_array_equal(w, before)


native_minimal = {
    "torch": dict(in_channels=2, out_channels=3, kernel_size=(2, 3), stride=2),
    "tconv": dict(in_channels=2, out_channels=3, kernel_size=(2, 3), stride=2),
    "onnx": dict(strides=[2, 2]),
    "keras": dict(filters=3, kernel_size=(2, 3), strides=2),
    "jax": dict(strides=(2, 2), padding="VALID"),
}
weight_minimal = {"torch": (2, 3, 2, 3), "tconv": (2, 3, 2, 3), "onnx": (2, 3, 2, 3), "keras": (2, 3, 3, 2),
                  "jax": (2, 3, 2, 3)}
input_minimal = {"torch": (1, 2, 4, 4), "tconv": (1, 2, 4, 4), "onnx": (1, 2, 4, 4), "keras": (1, 4, 4, 2),
                 "jax": (1, 4, 4, 2)}


def test_onnx_runtime_departures_are_followed_and_explained():
    """SAME_* with a kernel shorter than the stride: ONNX Runtime clamps the total padding at 0."""
    p = dict(strides=[3], auto_pad="SAME_UPPER")
    x = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 4)
    w = np.ones((1, 1, 2), np.float32)
    expected = run("onnx", p, x, w, None)
    assert expected.shape == (1, 1, 11)  # not 4*3 = 12, as the ONNX text says
    c = convert(p, "onnx", "torch", weight_shape=w.shape, input_shape=x.shape)
    np.testing.assert_allclose(c.output(run("torch", c.params, x, w, None)), expected)
    assert "ONNX Runtime clamps the total padding at 0" in c.explain()


@pytest.mark.parametrize("call, error, match", [
    (lambda: convert({}, "caffe", "torch"), ValueError, r"source must be one of"),
    (lambda: convert(dict(auto_pad="SAME_UPPER"), "onnx", "torch", weight_shape=(1, 1, 3)), ValueError,
     r"depends on the input size: pass input_shape"),
    (lambda: convert(dict(filters=1, kernel_size=3, padding="full"), "keras", "torch",
                     weight_shape=(3, 1, 1)), ValueError, r"keras padding must be 'valid' or 'same'"),
    (lambda: convert(dict(in_channels=1, out_channels=1, kernel_size=(3,), stride=2, output_padding=2),
                     "torch", "onnx"), ValueError, r"output_padding must be smaller"),
    (lambda: convert(dict(in_channels=2, out_channels=2, kernel_size=(3,), groups=2), "torch", "keras"),
     ValueError, r"keras has no grouped"),
    (lambda: convert(dict(in_channels=1, out_channels=1, kernel_size=(1.7,)), "torch", "tconv"),
     TypeError, r"kernel_size must be an int or a tuple of 1 ints"),
    (lambda: convert(dict(in_channels=1, out_channels=1, kernel_size=(3,), strides=2), "torch", "tconv"),
     TypeError, r"\['strides'\] are not torch arguments"),
    (lambda: convert(dict(strides=(2,), padding=1), "jax", "torch", weight_shape=(1, 1, 2)),
     TypeError, r"jax padding must be 'SAME', 'VALID' or 1 \(lo, hi\) pairs"),
    (lambda: convert(dict(in_channels=1, out_channels=1, kernel_size=(3, 3)), "torch", "onnx",
                     input_shape=(1, 1, 4)), ValueError, r"input_shape must be the whole input shape \(4 "
     r"sizes\) or its 2 spatial sizes"),
    (lambda: convert(dict(in_channels=1, out_channels=1, kernel_size=(3,)), "torch", "onnx",
                     weight_shape=(1, 1, 3, 3)), ValueError,
     r"rank is 1 by the arguments but 2 by weight_shape"),
    (lambda: convert(dict(filters=1, kernel_size=3, activation="relu"), "keras", "torch",
                     weight_shape=(3, 1, 1)), ValueError, r"activation='relu' is not part"),
])
def test_bad_conversions_are_clear(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_exact_and_its_refusal():
    c = convert(dict(filters=8, kernel_size=4, strides=2, padding="same"), "keras", "torch",
                input_shape=(1, 5, 5, 4))
    assert c.exact and c.params["padding"] == (1, 1)
    odd = dict(filters=8, kernel_size=3, strides=2, padding="same")
    with pytest.raises(ValueError, match="not exact"):
        convert(odd, "keras", "torch", input_shape=(1, 5, 5, 4), exact=True)
    c = convert(odd, "keras", "torch", input_shape=(1, 5, 5, 4))
    assert c.fixup == ((0, 1), (0, 1)) and "fixup" in c.explain()


def test_a_keras_layer_object_converts_whole():
    x = np.random.default_rng(3).standard_normal((2, 5, 6, 4)).astype(np.float32)
    expected, got = in_child(jaxkeras.keras_layer_to_torch, dict(
        filters=3, kernel_size=3, strides=2, padding="same", bias_initializer="random_normal"), x)
    assert got.shape == expected.shape == (2, 10, 12, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


_junk = st.one_of(st.none(), st.integers(-2, 4), st.floats(-1, 3), st.text(max_size=3),
                  st.lists(st.integers(-1, 4), max_size=4).map(tuple),
                  st.lists(st.tuples(st.integers(-1, 3), st.integers(-1, 3)), max_size=3).map(tuple),
                  st.sampled_from(["SAME", "VALID", "same", "valid", "SAME_UPPER", "NOTSET"]))
_keys = sorted({"in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
                "groups", "dilation", "filters", "strides", "dilation_rate", "kernel_shape", "pads",
                "auto_pad", "output_shape", "group", "dilations", "rhs_dilation", "dimension_numbers",
                "transpose_kernel", "data_format", "use_bias", "bias"})


@settings(max_examples=300, deadline=None)
@given(source=st.sampled_from(FRAMEWORKS), target=st.sampled_from(FRAMEWORKS), data=st.data(),
       input_shape=st.one_of(st.none(), st.lists(st.integers(0, 5), max_size=5).map(tuple)),
       weight_shape=st.one_of(st.none(), st.lists(st.integers(0, 4), max_size=5).map(tuple)))
def test_any_arguments_give_a_conversion_or_a_clear_error(source, target, data, input_shape,
                                                          weight_shape):
    """Whatever the caller passes: a Conversion, a ValueError or a TypeError saying convert; never
    another exception. Junk alone, or a working layer with some arguments replaced by junk."""
    params = data.draw(st.one_of(
        st.dictionaries(st.sampled_from(_keys), _junk, max_size=6),
        st.dictionaries(st.sampled_from(_keys), _junk, max_size=2).map(
            lambda junk: {**native_minimal[source], **junk})))
    try:
        c = convert(params, source, target, input_shape=input_shape, weight_shape=weight_shape)
    except (ValueError, TypeError) as exc:
        assert "convert" in str(exc), exc
        return
    assert c.rank >= 1 and c.in_channels >= 1 and c.out_channels >= 1
