"""The explainer page (``tconv explain --html``) in headless Chromium (issue #12's "Done when").

The page is driven as a person drives it — real mouse and keyboard events through the DevTools
protocol (tests/browser.py: typing into the controls, choosing in its selects, clicking and hovering
output cells, its play and step buttons) — and through URL fragments, over a grid of configurations
(1-d and 2-d, channels and groups, padding as a number, per dimension and 'same', every padding mode,
output_padding, dilation, invalid settings). Every view it writes into ``#state-json`` is compared with
references that do not share its code: tconv, PyTorch (zeros mode, and the adjoint of its padded
convolution for the other modes), brute-force loops written here, and the PyTorch module its code
panel builds, run on the page's own input and weights.

One browser for the module; most configurations are loaded by fragment.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from browser import Browser
from oracle import torch_conv_transpose, torch_transposed_mode
from test_cli import need_chromium

import tconv
from tconv.core.spec import transposed_spec
from tconv.engine.algorithms import conv_matrix
from tconv.explainer import explain
from tconv.explainer import overlap as tconv_overlap
from tconv.explainer.examples import EXAMPLES
from tconv.explainer.page import write_page
from tconv.interop.convert import apply_fixup, convert

GEOMETRY = ("input_size", "kernel_size", "stride", "padding", "output_padding", "dilation")
COUNTS = ("in_channels", "out_channels", "groups")

# one browser for the module: under pytest-xdist (make test) its tests share one worker
pytestmark = pytest.mark.xdist_group("page")


# --------------------------------------------------------------------------- the page and the browser


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("page") / "explain.html"
    D2L = np.array([[0.0, 1.0], [2.0, 3.0]])
    write_page(explain(D2L, D2L), str(path))
    return path


@pytest.fixture(scope="module")
def browser():
    with Browser(need_chromium()) as b:
        yield b


@pytest.fixture
def b(browser, page):
    """The module's browser; the page's own errors (uncaught, console.error) fail the test."""
    browser.errors.clear()
    browser.set_viewport(1200, 900)
    yield browser
    assert not browser.errors, f"the page reported errors: {browser.errors}"


def load(b: Browser, page: Path, fragment: str = "") -> dict:
    b.open(f"file://{page}" + (f"#{fragment}" if fragment else ""))
    return b.state()


# --------------------------------------------------------------------------- references


def fragment_values(fragment: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in fragment.split("&") if part)


def per_dim(text: str) -> int | tuple[int, ...]:
    """A control's text as the page passes it to tconv: one value an int, several a tuple."""
    values = tuple(int(v) for v in text.split("x"))
    return values[0] if len(values) == 1 else values


def fold_index(q: int, size: int, mode: str) -> int | None:
    """Where padded position ``q`` of a domain of ``size`` folds to (None: dropped), from the modes'
    definitions (PyTorch's F.pad), not tconv's code."""
    if 0 <= q < size:
        return q
    if mode == "zeros":
        return None
    if mode == "circular":
        return q % size
    if mode == "replicate":
        return min(max(q, 0), size - 1)
    return -q if q < 0 else 2 * (size - 1) - q  # reflect


def contributions(x, w, stride, pads, dilation, groups, mode, large):
    """Every (output index, input index, weight index, product) of the transposed convolution, by
    brute force: x[c, i] * w[c, o_g, t] lands at i*stride + t*dilation - before (then folded)."""
    C_in, *n = x.shape
    Cs, Cl, k = C_in // groups, w.shape[1], w.shape[2:]
    for c in range(C_in):
        g = c // Cs
        for i in itertools.product(*map(range, n)):
            for t in itertools.product(*map(range, k)):
                at = [fold_index(ii * s + tt * d - bf, L, mode)
                      for ii, tt, s, d, (bf, _), L in zip(i, t, stride, dilation, pads, large)]
                if None in at:
                    continue
                for og in range(Cl):
                    yield (g * Cl + og, *at), (c, *i), (c, og, *t), x[(c, *i)] * w[(c, og, *t)]


class Reference:
    """tconv's, PyTorch's and brute force's answers for the page's params, input and weight."""

    def __init__(self, state: dict):
        p = self.params = state["params"]
        self.rank = p["rank"]
        self.x = np.array(state["input"], dtype=float)
        self.w = np.array(state["weight"], dtype=float)
        self.kw = dict(stride=tuple(p["stride"]),
                       padding="same" if p["padding"] == "same" else tuple(p["padding"]),
                       output_padding=tuple(p["output_padding"]), groups=p["groups"],
                       dilation=tuple(p["dilation"]), padding_mode=p["padding_mode"])
        self.spec = transposed_spec("page", self.x[None], self.w, None, self.kw["stride"], self.kw["padding"],
                                    self.kw["output_padding"], self.kw["groups"], self.kw["dilation"],
                                    None, self.kw["padding_mode"])
        self.pads = self.spec.pads
        self.large = self.spec.large
        self.y = tconv.conv_transpose(self.x[None], self.w, **self.kw)[0]

    def brute(self, x=None, w=None, groups=None, mode=None):
        x = self.x if x is None else x
        w = self.w if w is None else w
        groups = self.kw["groups"] if groups is None else groups
        mode = self.kw["padding_mode"] if mode is None else mode
        y = np.zeros((w.shape[1] * groups, *self.large))
        for out, _, _, v in contributions(x, w, self.kw["stride"], self.pads, self.kw["dilation"],
                                          groups, mode, self.large):
            y[out] += v
        return y

    def torch(self):
        """PyTorch: conv_transpose (zeros) or the adjoint of its padded convolution (other modes; None
        where that convolution does not give the input's size back)."""
        s, d, g, mode = self.kw["stride"], self.kw["dilation"], self.kw["groups"], self.kw["padding_mode"]
        if mode == "zeros":  # the full result, cropped by (before, after - output_padding): a negative
            full = torch_conv_transpose(self.x[None], self.w, None, s, 0, 0, g, d)[0]  # crop appends zeros
            for axis, ((bf, af), op) in enumerate(zip(self.pads, self.spec.extra), start=1):  # 'same' too
                end = full.shape[axis] - af + op
                full = np.moveaxis(np.moveaxis(full, axis, 0)[bf:end], 0, axis)
                widths = [(0, 0)] * full.ndim
                widths[axis] = (0, max(end - bf - full.shape[axis], 0))
                full = np.pad(full, widths)
            return full
        back = tuple((L + bf + af - dd * (k - 1) - 1) // ss + 1 for L, (bf, af), dd, k, ss in zip(
            self.large, self.pads, d, self.w.shape[2:], s))
        if back != self.x.shape[1:]:  # output_padding >= stride: the padded convolution has a tail
            return None
        return torch_transposed_mode(self.x[None], self.w, s, self.pads, d, g, mode, self.large)[0]


def close(got, expected, what: str) -> None:
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9 * scale, err_msg=what)


def correlate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Valid correlation, stride 1, by loops over the kernel's taps."""
    out_shape = tuple(a - b + 1 for a, b in zip(image.shape, kernel.shape))
    out = np.zeros(out_shape)
    for t in itertools.product(*map(range, kernel.shape)):
        out += kernel[t] * image[tuple(slice(tt, tt + o) for tt, o in zip(t, out_shape))]
    return out


def fold_domain(z: np.ndarray, pads, mode: str) -> np.ndarray:
    """Fold a padded domain ``(*(L + before + after))`` onto ``(*L)`` with :func:`fold_index`."""
    large = tuple(n - bf - af for n, (bf, af) in zip(z.shape, pads))
    out = np.zeros(large)
    for q in itertools.product(*map(range, z.shape)):
        at = [fold_index(qq - bf, L, mode) for qq, (bf, _), L in zip(q, pads, large)]
        if None not in at:
            out[tuple(at)] += z[q]
    return out


def check_state(state: dict, fragment: str) -> None:
    """Every view of a valid configuration against the references."""
    assert state["error"] is None, state["error"]
    raw = fragment_values(fragment)
    p = state["params"]
    # the params are the fragment's
    for key in GEOMETRY:
        if key in raw:
            if raw[key] == "same":
                assert p[key] == "same"
            else:
                v = per_dim(raw[key])
                assert p[key] == ([v] * p["rank"] if isinstance(v, int) else list(v)), key
    for key in COUNTS:
        if key in raw:
            assert p[key] == int(raw[key]), key
    if "padding_mode" in raw:
        assert p["padding_mode"] == raw["padding_mode"]
    if "rank" in raw:
        assert p["rank"] == int(raw["rank"])
    ref = Reference(state)
    x, w, G = ref.x, ref.w, p["groups"]
    assert x.shape == (p["in_channels"], *p["input_size"])
    assert w.shape == (p["in_channels"], p["out_channels"] // G, *p["kernel_size"])

    # output: tconv, brute force, PyTorch
    close(state["output"], ref.y, "output vs tconv.conv_transpose")
    close(state["output"], ref.brute(), "output vs brute force")
    torch_y = ref.torch()
    if torch_y is not None:
        close(state["output"], torch_y, "output vs PyTorch")
    y = ref.y

    # matrix: x.ravel() @ W == y.ravel(), and W is tconv's convolution matrix
    if state["matrix"] is not None:
        W = np.array(state["matrix"], dtype=float)
        assert W.shape == (x.size, y.size)
        close(x.ravel() @ W, y.ravel(), "x.ravel() @ W")
        close(W, conv_matrix(ref.spec, w), "W vs tconv.engine.algorithms.conv_matrix")
    else:
        assert x.size * y.size > 65536

    # zero insertion: the image correlated with w[0, 0] flipped and dilated is a one-channel layer's
    zi = state["zero_insertion"]
    d = ref.kw["dilation"]
    flipped = w[0, 0][(slice(None, None, -1),) * ref.rank]
    dilated = np.zeros(tuple(dd * (kk - 1) + 1 for dd, kk in zip(d, flipped.shape)))
    dilated[tuple(slice(None, None, dd) for dd in d)] = flipped
    close(zi["kernel"], dilated, "zero_insertion kernel: w[0, 0] flipped and dilated")
    image = np.array(zi["image"], dtype=float)
    is_input = np.array(zi["is_input"], dtype=bool)
    assert is_input.shape == image.shape
    assert not image[~is_input].any(), "inserted zeros and border must be zeros"
    one = dict(ref.kw, groups=1)
    y1 = tconv.conv_transpose(x[None, :1], w[:1, :1], **one)[0, 0]
    close(y1, ref.brute(x[:1], w[:1, :1], groups=1)[0], "one-channel layer vs brute force")
    corr = correlate(image, dilated)
    if p["padding_mode"] == "zeros":
        assert zi["result"] == "output"
        close(corr, y1, "zero insertion image * flipped kernel vs the one-channel layer")
    else:
        assert zi["result"] == "padded"
        close(fold_domain(corr, ref.pads, p["padding_mode"]), y1,
              "zero insertion image * flipped kernel, folded, vs the one-channel layer")

    # overlap: taps per output pixel (one channel in and out, after the crop or fold) by brute force;
    # per dimension tconv.explainer.overlap
    taps = np.zeros(ref.large, dtype=int)
    for out, _, _, _ in contributions(np.ones((1, *p["input_size"])), np.ones((1, 1, *p["kernel_size"])),
                                      ref.kw["stride"], ref.pads, d, 1, p["padding_mode"], ref.large):
        taps[out[1:]] += 1
    ov = state["overlap"]
    np.testing.assert_array_equal(np.array(ov["taps"]), taps, err_msg="overlap taps")
    expected_dims = [tconv_overlap(k, s, dd) for k, s, dd in zip(p["kernel_size"], p["stride"], d)]
    assert [(o["counts"], o["even"]) for o in ov["per_dimension"]] == [
        (list(e.counts), e.even) for e in expected_dims]
    assert ov["even"] == all(e.even for e in expected_dims)

    # the selected pixel: its terms are the brute-force contributions, their sum the output
    sel = state["selected"]
    if "select" in raw:
        assert sel is not None and sel["pixel"] == list(per_dim(raw["select"]) if "x" in raw["select"]
                                                         else [int(raw["select"])])
    if sel is not None:
        check_selected(ref, sel)

    # code: the PyTorch expression, run on the page's input with the page's weights
    code = state["code"]
    assert all(isinstance(code[k], str) and code[k].strip() for k in ("torch", "keras", "onnx", "jax"))
    check_torch_code(ref, code["torch"], state["output"])
    # the formula, per dimension in tconv explain's words
    if p["padding_mode"] == "zeros":
        e = explain(x, w, **{k: v for k, v in ref.kw.items() if k != "padding_mode"})
        formula = state.get("formula") or code.get("formula", "")
        for f in e.sizes:
            assert f.text in formula, (f.text, formula)


def check_selected(ref: Reference, sel: dict) -> None:
    o, pixel = sel.get("channel", 0), tuple(sel["pixel"])
    expected = sorted((tuple(i), tuple(t), v) for out, i, t, v in contributions(
        ref.x, ref.w, ref.kw["stride"], ref.pads, ref.kw["dilation"], ref.kw["groups"],
        ref.kw["padding_mode"], ref.large) if out == (o, *pixel))
    got = sorted((tuple(i), tuple(t), v) for i, t, v in sel["terms"])
    assert [g[:2] for g in got] == [e[:2] for e in expected], "selected terms (input index, weight index)"
    close([g[2] for g in got], [e[2] for e in expected], "selected terms' products")
    close(sel["sum"], ref.y[(o, *pixel)], "selected sum vs the output pixel")


def check_torch_code(ref: Reference, text: str, page_output) -> None:
    mode = ref.kw["padding_mode"]
    if mode != "zeros":  # PyTorch's ConvTranspose has no other mode: the text must say which it lacks
        assert mode in text, text
        return
    module = eval(text.strip().splitlines()[0], {"nn": torch.nn, "torch": torch})
    module = module.double()
    with torch.no_grad():
        assert tuple(module.weight.shape) == ref.w.shape, (text, module.weight.shape)
        module.weight.copy_(torch.from_numpy(ref.w))
        if module.bias is not None:
            module.bias.zero_()
        y = module(torch.from_numpy(ref.x[None])).numpy()
    params = dict(in_channels=ref.x.shape[0], out_channels=ref.w.shape[1] * ref.kw["groups"],
                  kernel_size=ref.w.shape[2:], **{k: v for k, v in ref.kw.items() if k != "padding_mode"})
    fixup = convert(params, "tconv", "torch", input_shape=(1, *ref.x.shape)).fixup
    close((y if fixup is None else apply_fixup(y, fixup))[0], page_output,
          f"the torch code {text.splitlines()[0]} (fixup {fixup})")


# --------------------------------------------------------------------------- the grid, by fragment

VALID = [
    # 1-d
    "rank=1&input_size=5&kernel_size=3&stride=2",
    "rank=1&input_size=4&kernel_size=3&stride=2&padding=1&output_padding=1&select=3",
    "rank=1&input_size=4&kernel_size=2&stride=3&dilation=2&padding=1&output_padding=2",
    "rank=1&input_size=5&kernel_size=4&stride=2&padding=same&select=0",
    "rank=1&input_size=4&kernel_size=3&padding=1&padding_mode=circular&select=0",
    "rank=1&input_size=5&kernel_size=3&stride=2&padding=2&padding_mode=reflect&select=1",
    "rank=1&input_size=3&kernel_size=2&stride=2&padding=1&padding_mode=replicate&in_channels=2&out_channels=3",
    "rank=1&input_size=4&kernel_size=3&stride=2&in_channels=4&out_channels=2&groups=2&select=4",
    "rank=1&input_size=3&kernel_size=1&stride=2&padding=same&in_channels=2&select=5",  # 'same' appends
    "rank=1&input_size=3&kernel_size=2&dilation=3&output_padding=2&padding=1&padding_mode=circular&select=0",
    # 2-d
    "input_size=2x2&kernel_size=2x2",
    "input_size=3x4&kernel_size=3x2&stride=2x1&padding=1x0&output_padding=1x0&select=2x1",
    # the issue's own example
    "input_size=4x5&kernel_size=3x2&stride=2x1&padding=1x0&output_padding=1x0&dilation=1x1&padding_mode=zeros"
    "&in_channels=2&out_channels=4&groups=2&select=0x1",
    "input_size=3x3&kernel_size=3x3&stride=2&padding=1&select=2x2",
    "input_size=3x3&kernel_size=4x3&stride=2x2&padding=same&select=1x4",
    "input_size=3x3&kernel_size=3x3&stride=2x2&dilation=2x1&output_padding=1x1",
    "input_size=3x3&kernel_size=3x2&stride=1x2&dilation=3x1&output_padding=2x1&select=0x0",
    "input_size=4x4&kernel_size=3x3&padding=2x0&select=1x3",
    "input_size=3x4&kernel_size=3x3&stride=2x1&padding=1x2&padding_mode=circular&select=0x1",
    "input_size=3x3&kernel_size=3x2&stride=2x2&padding=2x1&padding_mode=reflect&select=0x0",
    "input_size=2x3&kernel_size=3x3&stride=2x1&padding=1x1&output_padding=1x0&padding_mode=replicate"
    "&in_channels=2&out_channels=2&select=3x2",
    "input_size=3x3&kernel_size=3x3&stride=2x2&padding=same&padding_mode=circular&select=5x5",
    "input_size=2x3&kernel_size=2x2&stride=2x2&in_channels=3&out_channels=2&select=1x1",
    "input_size=3x3&kernel_size=2x2&stride=2x2&in_channels=2&out_channels=4&groups=2&select=2x3",
    "input_size=3x2&kernel_size=2x3&stride=3x2&dilation=2x2&padding=1x2&output_padding=2x1",
]


@pytest.mark.parametrize("fragment", VALID)
def test_views_match_tconv_and_pytorch(b, page, fragment):
    check_state(load(b, page, fragment), fragment)


def expected_error(raw: dict[str, str], rank: int) -> str:
    """What tconv says for the layer the page's controls describe (see the module docstring)."""
    kw = {k: per_dim(raw[k]) for k in ("kernel_size", "stride", "output_padding", "dilation") if k in raw}
    kw.setdefault("kernel_size", 2)
    if "padding" in raw:
        kw["padding"] = raw["padding"] if raw["padding"] == "same" else per_dim(raw["padding"])
    if "padding_mode" in raw:
        kw["padding_mode"] = raw["padding_mode"]
    C_in, C_out = int(raw.get("in_channels", 1)), int(raw.get("out_channels", 1))
    size = per_dim(raw["input_size"])
    size = (size,) * rank if isinstance(size, int) else size
    layer = getattr(tconv, f"ConvTranspose{rank}d")
    with pytest.raises((ValueError, TypeError)) as info:
        layer(C_in, C_out, groups=int(raw.get("groups", 1)), bias=False, **kw)(np.zeros((C_in, *size)))
    return str(info.value)


INVALID = [
    "rank=1&input_size=3&kernel_size=2&stride=2&output_padding=2",
    "rank=1&input_size=2&kernel_size=2&padding=3",
    "rank=1&input_size=3&kernel_size=2&in_channels=3&out_channels=2&groups=2",
    "input_size=2x2&kernel_size=2x2&stride=2x2&padding=same&output_padding=1x0",
    "input_size=3x3&kernel_size=3x3&padding=2x0&padding_mode=reflect",
    "input_size=2x2&kernel_size=2x2&stride=3x1&padding=2x0&padding_mode=circular",
    "input_size=3x3&kernel_size=2x2&stride=0x1",
    "input_size=3x3&kernel_size=3x3&stride=1x2&dilation=1x1&output_padding=0x2",
]


@pytest.mark.parametrize("fragment", INVALID)
def test_invalid_settings_show_tconvs_error(b, page, fragment):
    raw = fragment_values(fragment)
    rank = int(raw.get("rank", 2))
    message = expected_error(raw, rank)
    state = load(b, page, fragment)
    assert state["error"] == message
    assert all(v is None for k, v in state.items() if k != "error"), "nothing stale beside the error"
    shown = b.eval("(() => { const e = document.getElementById('error'); const r = e.getBoundingClientRect();"
                   " return [e.textContent, r.width > 0 && r.height > 0]; })()")
    assert message in shown[0] and shown[1], shown


def test_an_error_clears_when_the_setting_is_fixed(b, page):
    state = load(b, page, "rank=1&input_size=3&kernel_size=2&stride=2&output_padding=2")
    assert state["error"]
    b.type("#output_padding", "1")
    state = b.state()
    check_state(state, "rank=1&input_size=3&kernel_size=2&stride=2&output_padding=1")


# --------------------------------------------------------------------------- real input events


def test_typing_into_the_controls(b, page):
    """Each control typed into (click, select all, type, Enter or Tab), the views follow."""
    load(b, page, "input_size=3x3&kernel_size=2x2")
    typed = {}
    for control, text, then in [("#stride", "2x1", "Enter"), ("#kernel_size", "3x2", "Tab"),
                                ("#padding", "1x0", "Enter"), ("#output_padding", "1x0", "Tab"),
                                ("#dilation", "1x2", "Enter"), ("#input_size", "2x4", "Enter"),
                                ("#in_channels", "2", "Tab"), ("#out_channels", "4", "Enter"),
                                ("#groups", "2", "Enter")]:
        b.type(control, text, then=then)
        typed[control[1:]] = text
        fragment = "&".join(f"{k}={v}" for k, v in typed.items())
        check_state(b.state(), fragment)
    # the URL holds the state: loading it afresh gives the same page
    state = b.state()
    b.open(b.url())
    assert b.state() == state


def test_padding_mode_and_same_through_the_keyboard(b, page):
    load(b, page, "input_size=3x3&kernel_size=3x3&stride=2x2&padding=1x1")
    for mode in ("reflect", "circular", "replicate", "zeros"):
        b.select("#padding_mode", mode)
        check_state(b.state(), f"input_size=3x3&kernel_size=3x3&stride=2x2&padding=1x1&padding_mode={mode}")
    b.type("#padding", "same")
    check_state(b.state(), "input_size=3x3&kernel_size=3x3&stride=2x2&padding=same")
    b.type("#padding", "2")  # one number: every dimension
    check_state(b.state(), "input_size=3x3&kernel_size=3x3&stride=2x2&padding=2")


def test_rank_switch(b, page):
    load(b, page, "input_size=3x3&kernel_size=2x2")
    if b.eval("document.getElementById('rank').tagName") == "SELECT":
        b.select("#rank", "1")
    else:
        b.click("#rank [value='1'], #rank input[value='1']")
    state = b.state()
    assert state["params"]["rank"] == 1
    check_state(state, "rank=1")


def test_clicking_and_hovering_output_pixels(b, page):
    fragment = "input_size=3x3&kernel_size=3x3&stride=2x2&padding=1x1&in_channels=2&out_channels=2"
    load(b, page, fragment)
    for pixel in ("0,0", "2,3", "4,4"):
        b.click(f'[data-pixel="{pixel}"][data-channel="0"]')
        state = b.state()
        assert state["selected"]["pixel"] == [int(v) for v in pixel.split(",")]
        check_state(state, fragment)
    b.click('[data-pixel="1,2"][data-channel="1"]')
    state = b.state()
    assert (state["selected"]["channel"], state["selected"]["pixel"]) == (1, [1, 2])
    check_selected(Reference(state), state["selected"])
    # hovering shows where another pixel comes from (the sum written out), leaving the selection
    ref = Reference(state)
    for o, pixel in ((0, (3, 1)), (1, (4, 0))):
        b.hover(f'[data-pixel="{pixel[0]},{pixel[1]}"][data-channel="{o}"]')
        assert written_terms(b.eval("document.getElementById('where').textContent")) == brute_terms(
            ref, o, pixel), f"the sum written out for y[{o}, {pixel}]"
        assert b.state()["selected"]["pixel"] == [1, 2]
    b.hover("h1")  # the mouse leaves: the selected pixel's sum again
    where = b.eval("document.getElementById('where').textContent")
    assert written_terms(where) == brute_terms(ref, 1, (1, 2))


def written_terms(text: str) -> tuple[tuple, list, float]:
    """``y[o,i,j] = x[c,i,j]·w[c,o,i,j] + ... = v·v + ... = sum`` as (y index, [(x index, w index)], sum)."""
    lines = text.replace("\u00b7", "*").split("=")
    head = tuple(int(v) for v in re.search(r"y\[([\d,\s]+)\]", lines[0]).group(1).split(","))
    pairs = [(tuple(int(v) for v in xi.split(",")), tuple(int(v) for v in wi.split(",")))
             for xi, wi in re.findall(r"x\[([\d,\s]+)\]\s*\*\s*w\[([\d,\s]+)\]", lines[1])]
    return head, sorted(pairs), float(re.match(r"\s*(-?[\d.e+-]+)", lines[-1]).group(1))


def brute_terms(ref: Reference, o: int, pixel: tuple[int, ...]) -> tuple[tuple, list, float]:
    pairs = sorted((i, t) for out, i, t, _ in contributions(
        ref.x, ref.w, ref.kw["stride"], ref.pads, ref.kw["dilation"], ref.kw["groups"],
        ref.kw["padding_mode"], ref.large) if out == (o, *pixel))
    return (o, *pixel), pairs, float(ref.y[(o, *pixel)])


def test_editing_cells(b, page):
    """Click an input or a kernel cell and type a value: the values and every view follow; a value
    that is no number is refused in Python's words, naming the cell, and can be fixed in place."""
    fragment = "input_size=2x3&kernel_size=2x2&stride=2x1&in_channels=2&out_channels=2"
    load(b, page, fragment)
    b.type('[data-tensor="x"][data-index="1,0,2"]', "7.5")
    b.type('[data-tensor="w"][data-index="0,1,1,0"]', "-2", then="Tab")
    state = b.state()
    assert state["input"][1][0][2] == 7.5 and state["weight"][0][1][1][0] == -2
    check_state(state, fragment)
    b.type('[data-tensor="x"][data-index="0,1,1"]', "abc")
    with pytest.raises(ValueError) as python:
        float("abc")
    state = b.state()
    assert state["error"] == f"x[0, 1, 1]: {python.value}"
    assert b.eval("document.getElementById('error').textContent").strip() == state["error"]
    b.type('[data-tensor="x"][data-index="0,1,1"]', "1e-3")
    state = b.state()
    assert state["input"][0][1][1] == 0.001 and state["input"][1][0][2] == 7.5
    check_state(state, fragment)


def test_copy_buttons(b, page):
    load(b, page, "input_size=2x3&kernel_size=2x2&stride=2x1&padding=same")
    b.send("Browser.grantPermissions", permissions=["clipboardReadWrite", "clipboardSanitizedWrite"])
    for target in ("formula", "code-torch", "code-keras", "code-onnx", "code-jax"):
        b.click(f'button.copy[data-target="{target}"]')
        assert b.eval("navigator.clipboard.readText()") == b.eval(
            f"document.getElementById('{target}').textContent"), target


@pytest.mark.parametrize("preset", ["ones", "random"])
def test_presets(b, page, preset):
    fragment = "input_size=2x3&kernel_size=2x2&in_channels=2&out_channels=2"
    load(b, page, fragment)
    b.select("#preset", b.eval(f"[...document.getElementById('preset').options].map(o => o.value)"
                               f".find(v => v.toLowerCase().includes({json.dumps(preset)}))"))
    state = b.state()
    check_state(state, fragment)
    if preset == "ones":
        assert (np.array(state["input"]) == 1).all() and (np.array(state["weight"]) == 1).all()


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.op == "conv_transpose"], ids=lambda e: e.name)
def test_seed_examples_as_presets(b, page, example):
    load(b, page)
    b.select("#preset", example.name)
    state = b.state()
    x, w, expected = example.arrays()
    np.testing.assert_allclose(state["input"], x[0], rtol=1e-7)  # the seeds' values, as float32
    np.testing.assert_allclose(state["weight"], w, rtol=1e-7)
    np.testing.assert_allclose(np.round(state["output"], example.decimals or 6), expected[0], rtol=1e-6)
    check_state(state, "")


def test_step_play_pause_and_keyboard(b, page):
    load(b, page, "input_size=2x3&kernel_size=2x2&stride=2x2&step=0")
    state = b.state()
    assert (state["step"], state["steps"]) == (0, 6)
    b.click("#step-forward")
    b.click("#step-forward")
    assert b.state()["step"] == 2
    b.click("#step-back")
    assert b.state()["step"] == 1
    b.key("Enter")  # the focused button (step-back), by the keyboard
    assert b.state()["step"] == 0
    b.eval("document.getElementById('step-forward').focus()")
    b.key("Space")
    assert b.state()["step"] == 1
    b.click("h1")  # nothing focused: the arrow keys step
    b.key("ArrowRight")
    b.key("ArrowRight")
    assert b.state()["step"] == 3
    b.key("ArrowLeft")
    assert b.state()["step"] == 2
    # play at the highest speed runs to the end; pause stops it
    b.eval("document.getElementById('speed').focus()")
    b.key("End")
    b.click("#play")
    deadline = time.monotonic() + 15
    while b.state()["step"] < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b.state()["step"] == 6
    b.click("#step-back")
    b.click("#step-back")
    b.click("#play")
    b.click("#pause")
    paused = b.state()["step"]
    time.sleep(0.5)
    assert b.state()["step"] == paused
    check_state(b.state(), "input_size=2x3&kernel_size=2x2&stride=2x2")


def test_back_and_forward_buttons_restore_the_states(b, page):
    first = load(b, page, "input_size=3x3&kernel_size=2x2&stride=2x2")
    b.type("#stride", "3x1")
    changed = b.state()
    assert changed["params"]["stride"] == [3, 1] and "stride=3x1" in b.url()
    b.select("#padding_mode", "circular")
    last = b.state()
    b.back()
    assert b.state() == changed
    b.back()
    assert b.state() == first
    b.forward()
    b.forward()
    assert b.state() == last


# --------------------------------------------------------------------------- layout, size, offline

TITLES = """(() => [...document.querySelectorAll('h2, h3')].filter(e => e.offsetParent !== null)
    .map(e => { const r = e.getBoundingClientRect();
                return [e.textContent.trim(), r.left, r.top, r.right, r.bottom]; }))()"""


@pytest.mark.parametrize("width", [1200, 420])
def test_panel_titles_do_not_overlap(b, page, width, tmp_path):
    load(b, page, "input_size=3x4&kernel_size=3x2&stride=2x1&in_channels=2&out_channels=2&select=1x1")
    b.set_viewport(width, 900)
    titles = b.eval(TITLES)
    assert len(titles) >= 3
    for (n1, *a), (n2, *c) in itertools.combinations(titles, 2):
        overlap_x = min(a[2], c[2]) - max(a[0], c[0])
        overlap_y = min(a[3], c[3]) - max(a[1], c[1])
        assert overlap_x <= 0.5 or overlap_y <= 0.5, f"titles {n1!r} and {n2!r} overlap at {width}px"
    if width == 1200:
        sizes = b.eval("[document.body.scrollWidth, document.documentElement.clientWidth]")
        assert sizes[0] <= sizes[1], f"the body overflows horizontally at 1200px: {sizes}"
    b.screenshot(tmp_path / f"page-{width}.png")


def test_one_small_file_that_works_offline(b, page):
    html = page.read_text(encoding="utf-8")
    assert page.stat().st_size < 2 * 2**20
    for pattern in (r"""<(?:script|img|iframe|audio|video|source|embed)\b[^>]*\bsrc\s*=\s*["']?\s*"""
                    r"""(?:https?:)?//""",
                    r"""<link\b[^>]*\bhref\s*=\s*["']?\s*(?:https?:)?//""",
                    r"""url\(\s*["']?\s*(?:https?:)?//""", r"@import", r"\bfetch\s*\(", r"XMLHttpRequest"):
        found = re.search(pattern, html, re.IGNORECASE)
        assert found is None, f"a resource from outside: {html[found.start() - 80:found.end() + 80]!r}"
    load(b, page)
    resources = b.eval("performance.getEntriesByType('resource').map(e => e.name)")
    assert all(not r.startswith(("http:", "https:")) for r in resources), resources
