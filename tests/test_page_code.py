"""The explainer page's code panel (src/tconv/explainer/assets/code.js): ``tconvCode(params)`` run in
headless Chromium once for a grid of layers (1-d and 2-d, channels and groups, every padding form and
mode, output_padding, dilation, invalid settings; and 250 drawn at random), each text checked against
``tconv.interop.convert`` (the call line is ``Conversion.call``, the fixup and refusals in its words)
and run: the PyTorch and ONNX snippets here, the Keras and JAX ones in a child process (XLA's compiler
has aborted a test process before, see jaxkeras.py), each output equal to ``tconv.conv_transpose``.
"""

from __future__ import annotations

import html
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_cli import need_chromium

import tconv
from tconv.core.shapes import same_transposed
from tconv.explainer.steps import output_shape
from tconv.interop import convert

CODE_JS = Path(tconv.__file__).parent / "explainer" / "assets" / "code.js"
TARGETS = ("torch", "keras", "onnx", "jax")


def P(rank=2, **kw):
    """The page's params object, with the page's kind of defaults."""
    p = dict(rank=rank, input_size=[3] * rank, kernel_size=[3] * rank, stride=[1] * rank,
             padding=[0] * rank, output_padding=[0] * rank, dilation=[1] * rank, padding_mode="zeros",
             in_channels=1, out_channels=1, groups=1)
    p.update(kw)
    return p


VALID = {
    "1d": P(1, input_size=[5], stride=[2], padding=[1], output_padding=[1]),
    "1d same": P(1, input_size=[4], stride=[2], padding="same"),
    "1d same short kernel": P(1, input_size=[4], kernel_size=[2], stride=[3], padding="same"),
    "1d dilation output_padding": P(1, input_size=[4], dilation=[2], output_padding=[1], in_channels=2),
    "1d circular": P(1, input_size=[4], stride=[2], padding=[2], padding_mode="circular", out_channels=2),
    "1d reflect same": P(1, input_size=[4], stride=[2], padding="same", padding_mode="reflect"),
    "1d replicate dilated": P(1, input_size=[4], dilation=[2], padding=[1], output_padding=[1],
                              padding_mode="replicate"),
    "2d groups": P(input_size=[4, 5], kernel_size=[3, 2], stride=[2, 1], padding=[1, 0],
                   output_padding=[1, 0], in_channels=2, out_channels=4, groups=2),
    "2d same": P(input_size=[3, 4], kernel_size=[4, 3], stride=[2, 2], padding="same", in_channels=2,
                 out_channels=3),
    "2d replicate": P(input_size=[3, 4], stride=[2, 1], padding=[1, 2], output_padding=[1, 0],
                      padding_mode="replicate", out_channels=2),
    "2d reflect same": P(input_size=[3, 3], kernel_size=[3, 2], stride=[2, 3], padding="same",
                         padding_mode="reflect"),
    "2d circular groups": P(input_size=[4, 3], stride=[1, 2], dilation=[2, 1], padding=[2, 1],
                            output_padding=[1, 1], padding_mode="circular", in_channels=2,
                            out_channels=2, groups=2),
    "2d stride and dilation": P(input_size=[3, 4], stride=[2, 2], dilation=[2, 2], padding=[1, 1]),
    "2d wide padding": P(input_size=[5, 5], padding=[3, 3], in_channels=2, out_channels=2),
    "2d padding pairs": P(input_size=[3, 4], stride=[2, 2], padding=[[1, 0], [0, 2]], out_channels=2),
    "2d same no bias": dict(P(input_size=[3, 4], stride=[2, 2], padding="same"), bias=False),
}

INVALID = {
    "output_padding too large": P(1, stride=[2], output_padding=[2]),
    "empty output": P(1, input_size=[1], kernel_size=[1], padding=[1]),
    "groups": P(in_channels=3, out_channels=2, groups=2),
    "reflect border": P(1, input_size=[4], padding=[2], padding_mode="reflect"),
    "same with output_padding": P(1, stride=[2], padding="same", output_padding=[1]),
    "kernel 0": P(kernel_size=[0, 3]),
}




def _random_grid(count: int, seed: int) -> dict:
    """Layers drawn over the page's whole parameter space, valid or not (text checks only)."""
    rng = np.random.default_rng(seed)
    grid = {}
    for i in range(count):
        rank = int(rng.integers(1, 3))

        def dims(lo, hi, size=rank):
            return [int(v) for v in rng.integers(lo, hi + 1, size)]
        groups = int(rng.integers(1, 3))
        padding = "same" if rng.random() < 0.25 else dims(0, 3)
        if padding != "same" and rng.random() < 0.2:
            padding = [dims(0, 2, 2) for _ in range(rank)]
        grid[f"random {i}"] = P(
            rank, input_size=dims(1, 5), kernel_size=dims(1, 4), stride=dims(1, 3), dilation=dims(1, 3),
            padding=padding, output_padding=dims(0, 2) if rng.random() < 0.5 else [0] * rank,
            padding_mode=str(rng.choice(["zeros", "zeros", "circular", "reflect", "replicate"])),
            in_channels=groups * int(rng.integers(1, 3)) + int(rng.random() < 0.1),
            out_channels=groups * int(rng.integers(1, 3)), groups=groups)
    return grid


RANDOM = _random_grid(250, 12)


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    """``tconvCode(p)`` for every layer of the grid, from one headless Chromium run."""
    need_chromium()
    tmp = tmp_path_factory.mktemp("code")
    grid = {**VALID, **INVALID, **RANDOM}
    page = tmp / "harness.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body><pre id='out'></pre>"
        f"<script>{CODE_JS.read_text()}</script><script>var grid = {json.dumps(grid)}, got = {{}};"
        "try { for (var k in grid) got[k] = tconvCode(grid[k]); } catch (e) { got = 'ERROR ' + e.stack; }"
        "document.getElementById('out').textContent = JSON.stringify(got);</script></body></html>")
    done = subprocess.run(
        [need_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp / 'profile'}", "--dump-dom", f"file://{page}"],
        capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="out">(.*?)</pre>', done.stdout, re.S)
    assert match, done.stderr[-2000:]
    got = json.loads(html.unescape(match.group(1)))
    assert isinstance(got, dict), got
    return got


# --------------------------------------------------------------------------- what convert says


def layer_args(p: dict) -> dict:
    """The page's params as tconv's arguments (convert's and conv_transpose's names)."""
    def per_dim(v):
        return tuple(tuple(e) if isinstance(e, list) else e for e in v) if isinstance(v, list) else v
    return dict(in_channels=p["in_channels"], out_channels=p["out_channels"],
                kernel_size=tuple(p["kernel_size"]), stride=tuple(p["stride"]), padding=per_dim(p["padding"]),
                output_padding=tuple(p["output_padding"]), groups=p["groups"],
                bias=p.get("bias", True), dilation=tuple(p["dilation"]), padding_mode=p["padding_mode"])


def input_shape(p: dict) -> tuple[int, ...]:
    return (1, p["in_channels"], *p["input_size"])


def expected(p: dict, target: str):
    """``(conversion or None, the refusals the text must state)``: convert's for the page's layer;
    for a padding mode other than zeros (which convert refuses), convert's for the zeros layer without
    padding that the text folds."""
    args = layer_args(p)
    refusals = []
    if args["padding_mode"] != "zeros":
        with pytest.raises(ValueError) as refused:
            convert(args, "tconv", target, input_shape=input_shape(p))
        refusals.append(f"{target}: {refused.value}")
        if args["padding"] == "same":
            extra = tuple(same_transposed(n, k, s, d)[1] for n, k, s, d in zip(
                p["input_size"], p["kernel_size"], p["stride"], p["dilation"]))
        else:
            extra = args["output_padding"]
        args.update(padding=0, output_padding=extra, padding_mode="zeros")
    try:
        return convert(args, "tconv", target, input_shape=input_shape(p)), refusals
    except ValueError as e:
        return None, [*refusals, f"{target}: {e}"]


def page_arrays(p: dict, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(input_shape(p)).astype(np.float32)
    w = rng.standard_normal((p["in_channels"], p["out_channels"] // p["groups"], *p["kernel_size"]))
    b = rng.standard_normal(p["out_channels"])
    return x, w.astype(np.float32), b.astype(np.float32)


def reference(p: dict, x, w, b):
    args = layer_args(p)
    return tconv.conv_transpose(
        x.astype(np.float64), w.astype(np.float64), b.astype(np.float64) if args["bias"] else None,
        args["stride"], args["padding"], args["output_padding"], args["groups"], args["dilation"],
        padding_mode=args["padding_mode"])


# --------------------------------------------------------------------------- the texts against convert


def refusal(p: dict) -> str | None:
    """Why the page's layer is invalid, in the library's words (None: it is valid): convert's
    refusal, or for a border a padding mode cannot copy, conv_transpose's."""
    args = layer_args(p)
    try:
        convert({**args, "padding_mode": "zeros"}, "tconv", "torch", input_shape=input_shape(p))
    except ValueError as e:
        return str(e)
    try:
        reference(p, *page_arrays(p, 0))
    except ValueError as e:
        return str(e)
    return None


def check_texts(p: dict, got: dict) -> None:
    """Each of ``tconvCode(p)``'s texts is convert's call (the torch one its first line), with
    convert's fixup note where it has one and convert's refusals; an invalid layer's texts are the
    refusal alone."""
    message = refusal(p)
    if message is not None:
        for target in TARGETS:
            assert got[target] == f"# {target}: {message}"
        return
    for target in TARGETS:
        text = got[target]
        lines = text.splitlines()
        c, refusals = expected(p, target)
        for line in refusals:
            assert f"# {line}" in lines, (target, text)
        if c is None:
            assert all(line.startswith("# ") for line in lines), text
            continue
        call = {"torch": c.call.replace("torch.nn.", "nn.", 1), "keras": "layer = " + c.call,
                "onnx": "node = " + c.call, "jax": "y = " + c.call}[target]
        if target == "torch":
            assert lines[0] == call  # tests and the page eval the first line
        else:
            assert any(line.split("  #")[0] == call for line in lines), (call, text)
        fixup = [line for line in lines if "cannot express this window alone" in line]
        if c.fixup is None:
            assert not fixup, text
        else:
            assert fixup == [f"# {c.notes[-1]}"], text  # convert's note, word for word


@pytest.mark.parametrize("name", VALID)
def test_each_text_is_converts_call_with_its_fixup_and_refusals(texts, name):
    assert refusal(VALID[name]) is None
    check_texts(VALID[name], texts[name])


@pytest.mark.parametrize("name", INVALID)
def test_an_invalid_layer_is_refused_in_the_librarys_words(texts, name):
    assert refusal(INVALID[name]) is not None
    check_texts(INVALID[name], texts[name])


def test_random_layers_texts_are_converts(texts):
    """Layers drawn over the whole parameter space: the texts as convert writes them (or refuses)."""
    valid = 0
    for name, p in RANDOM.items():
        check_texts(p, texts[name])
        valid += refusal(p) is None
    assert 50 <= valid <= 200, valid  # both kinds well represented


@pytest.mark.parametrize("name", VALID)
def test_the_torch_expression_builds_converts_module(texts, name):
    import torch

    c, _ = expected(VALID[name], "torch")
    module = eval(texts[name]["torch"].splitlines()[0], {"nn": torch.nn})
    for key, value in c.params.items():
        got = getattr(module, key)
        if key == "bias":
            got = got is not None
        assert got == value, (key, got, value)


@pytest.mark.parametrize("name", VALID)
def test_the_onnx_node_has_converts_attributes(texts, name):
    import onnx

    c, _ = expected(VALID[name], "onnx")
    line = next(t for t in texts[name]["onnx"].splitlines() if t.startswith("node = "))
    node = eval(line.removeprefix("node = "), {"onnx": onnx})
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs == c.params


@pytest.mark.parametrize("name", VALID)
def test_formula_is_tconvs_per_dimension(texts, name):
    p = VALID[name]
    padding = p["padding"] if p["padding"] == "same" else tuple(
        tuple(v) if isinstance(v, list) else v for v in p["padding"])
    sizes, forms = output_shape(tuple(p["input_size"]), tuple(p["kernel_size"]), tuple(p["stride"]),
                                padding, tuple(p["output_padding"]), tuple(p["dilation"]))
    lines = texts[name]["formula"].splitlines()
    assert lines[0] == ("out = (in-1)*stride - pad_before - pad_after + dilation*(kernel-1) + "
                        "output_padding + 1")
    assert lines[1:1 + len(forms)] == [f"dim {i}: {f}" for i, f in enumerate(forms)]
    assert sizes == reference(p, *page_arrays(p, 0)).shape[2:]


# --------------------------------------------------------------------------- the texts, run


def _run_torch(text: str, x, w, b):
    import torch

    first, rest = text.split("\n", 1)
    layer = eval(first, {"nn": torch.nn})
    state = {"weight": torch.from_numpy(w)}
    if layer.bias is not None:
        state["bias"] = torch.from_numpy(b)
    layer.load_state_dict(state)
    scope = {"torch": torch, "nn": torch.nn, "layer": layer, "x": torch.from_numpy(x)}
    with torch.no_grad():
        exec(rest, scope)
    return scope["y"].numpy()


def _run(text: str, x, w, b):
    scope = {"x": x, "w": w, "b": b}
    exec(text, scope)
    return np.asarray(scope["y"])


def _runnable(p: dict, target: str) -> bool:
    return expected(p, target)[0] is not None


@pytest.mark.parametrize("name", VALID)
def test_torch_and_onnx_texts_compute_tconvs_output(texts, name):
    p = VALID[name]
    x, w, b = page_arrays(p, 1)
    want = reference(p, x, w, b)
    np.testing.assert_allclose(_run_torch(texts[name]["torch"], x, w, b), want, rtol=1e-5, atol=1e-5)
    got = _run(texts[name]["onnx"], x, w, b)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


_CHILD = """
import os, pickle, sys
os.environ.setdefault("KERAS_BACKEND", "jax")
import keras
import numpy as np
# set_weights replaces the layer's random initial kernel: drawing it costs ~1.5 s of XLA compiling a layer
keras.initializers.GlorotUniform.__call__ = lambda self, shape, dtype=None: np.zeros(shape, "float32")
cases = pickle.load(open(sys.argv[1], "rb"))
out = {}
for key, (text, x, w, b) in cases.items():
    scope = {"x": x, "w": w, "b": b}
    exec(text, scope)
    out[key] = np.asarray(scope["y"])
pickle.dump(out, open(sys.argv[2], "wb"))
"""


#: The Keras and JAX texts run (each eager op compiles; these cover every kind of text: crop and
#: append fixups, each padding mode's fold, 1-d and 2-d, no bias; the rest share their code).
RUN_IN_CHILD = {
    "keras": ("1d", "1d dilation output_padding", "1d reflect same", "2d padding pairs", "2d wide padding",
              "2d same no bias"),
    "jax": ("1d", "1d circular", "1d reflect same", "1d replicate dilated", "2d same",
            "2d stride and dilation", "2d same no bias"),
}


def test_keras_and_jax_texts_compute_tconvs_output(texts, tmp_path):
    """Keras and JAX texts, run in one child process."""
    cases, want = {}, {}
    for target, names in RUN_IN_CHILD.items():
        for name in names:
            p = VALID[name]
            assert _runnable(p, target), (name, target)
            x, w, b = page_arrays(p, 2)
            cases[name, target] = (texts[name][target], x, w, b)
            want[name, target] = reference(p, x, w, b)
    (tmp_path / "in.pkl").write_bytes(pickle.dumps(cases))
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", _CHILD, tmp_path / "in.pkl", tmp_path / "out.pkl"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    got = pickle.loads((tmp_path / "out.pkl").read_bytes())
    for key in cases:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-4, err_msg=str(key))
