"""One self-contained HTML page (no network, no server) that explains a 1-d or 2-d transposed convolution.

What the page shows (issue #12), for any layer a person sets up in it:

- three synchronised views side by side: the **scatter** (each input element times the kernel,
  added at ``index*stride`` into the full result, with the running sum, the crop by padding and the
  output_padding strip), **zero insertion** (the processing image: ``stride-1`` zeros between input
  elements and a border of ``dilation*(kernel-1) - padding``, a negative border drawn as a crop, with
  the flipped, dilated kernel sliding over it) and the **matrix** ``W`` with ``y = W^T x``;
- **where a number comes from**: clicking (or hovering, or focusing) an output pixel highlights the
  input elements and kernel taps that make it in every view and writes the sum out,
  ``y[2,3] = x[1,1]·w[0,1] + x[1,2]·w[0,0] = ...``;
- controls: 1-d or 2-d; input and kernel size per dimension (``4x5``); stride, padding (a number,
  per dimension, ``same`` or ``valid``), output_padding and dilation per dimension; padding_mode
  (zeros, circular, reflect, replicate: the border is folded back onto the pixels it copies, as
  :func:`tconv.core.padding.fold` does); in/out channels and groups (a grid of kernels per group);
  values typed into any input or kernel cell, or a preset (1..n, ones, random, and each of the
  seeds' worked examples from :mod:`tconv.explainer.examples` by name);
- an animation through the scatter (one input element at a time) or the slide (one output pixel at
  a time), with play / pause / step, a speed control and the keyboard (space, the arrow keys);
- the checkerboard: kernel taps per output pixel, and the verdict of ``tconv overlap``
  (:func:`tconv.explainer.steps.overlap` per dimension);
- the layer in PyTorch, Keras, ONNX and JAX (``assets/code.js``, following
  :mod:`tconv.interop.convert`) and the output-size formula with the numbers filled in, each with a
  copy button;
- errors in tconv's own words: where ``tconv.ConvTranspose{1,2}d(...)`` would refuse the layer (or
  the call on an input of that size), the page shows the same message and no numbers.

The contract tests rely on (see the issue; ``tests/test_page.py``):

- the URL fragment holds the whole state, keys named as tconv's arguments with per-dimension
  values joined by ``x`` (``#input_size=4x5&kernel_size=3x2&stride=2x1&padding=1x0&output_padding=1x0
  &dilation=1x1&padding_mode=zeros&in_channels=2&out_channels=4&groups=2&select=0x1``; also
  ``rank``, ``preset``, ``seed``, ``x``/``w`` (values, flat), ``channel``, ``step``, ``anim``); one value
  means every dimension, as tconv's int does, and an ``input_size`` of one value (with no ``rank``)
  makes a 1-d page. A person's changes push history entries, so the back button restores the
  previous state;
- after every change the page writes its state as JSON into ``<pre id="state-json" hidden>``:
  ``params``, ``input``, ``weight``, ``output``, ``matrix`` (``x.ravel() @ W == y.ravel()``),
  ``zero_insertion`` (input channel 0's processing image, its border and the flipped, dilated kernel
  ``w[0, 0]``; correlating the two gives the one-channel output, or for the other padding modes the
  padded domain before the fold), ``selected`` (the pixel, its ``[input index, weight index,
  product]`` terms and their sum), ``code``, ``overlap`` and ``error`` (null, or tconv's message;
  then every other field is null);
- element ids: the controls ``#rank``, ``#input_size``, ``#kernel_size``, ``#stride``, ``#padding``,
  ``#output_padding``, ``#dilation``, ``#padding_mode``, ``#in_channels``, ``#out_channels``,
  ``#groups``, ``#preset``; ``#play``, ``#pause``, ``#step-forward``, ``#step-back``, ``#speed``;
  output cells ``td[data-pixel="i,j"][data-channel="o"]``; editable input and kernel cells
  ``td[data-tensor][data-index]``; ``#error``, ``#formula``, ``#code-torch``, ``#code-keras``,
  ``#code-onnx``, ``#code-jax`` and their ``button.copy``.

Why JavaScript repeats tconv's rules: the page works offline from disk, with no Python behind it,
so it cannot call tconv. ``assets/math.js`` is tconv's one deliberate second implementation of the
rules — the argument checks and their messages (:mod:`tconv.core.spec`, the layers' constructor),
the output size and ``'same'`` (:mod:`tconv.core.shapes`), the fold (:mod:`tconv.core.padding`),
the zero-insertion geometry and ``W`` (:mod:`tconv.engine.algorithms`) and the overlap count
(:mod:`tconv.explainer.steps`) — each function names the Python one it mirrors. Everything the page
draws comes from one list of contributions ``x[c, i]·w[c, o, t]`` (where each lands, and which output
pixel it reaches after the crop or fold), so the views cannot disagree with each other. The tests
keep it in step with tconv: they drive the page in headless Chromium through fragments and real
input events and compare ``state-json`` (numbers, terms, matrix, zero-insertion image, messages)
with :func:`tconv.conv_transpose`, the layers and PyTorch over a grid of configurations.

:func:`page` starts the page from an :class:`~tconv.explainer.steps.Explanation`: its sizes,
geometry, channels, groups and values.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np

from ..core.shapes import same_transposed
from .examples import EXAMPLES
from .steps import Explanation

_ASSETS = ("page.html", "page.css", "math.js", "code.js", "ui.js")

#: What the page shows in place of the code panel when ``assets/code.js`` is missing.
_NO_CODE = "/* assets/code.js was not found when this page was written: the code panel is missing */"


def _asset(name: str) -> str | None:
    path = resources.files("tconv.explainer").joinpath("assets", name)
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _shipped(assets: dict[str, str | None], name: str) -> str:
    """An asset the page cannot go without (every wheel ships it; only code.js may be missing)."""
    text = assets[name]
    if text is None:  # pragma: no cover - a broken installation
        raise RuntimeError(f"page: tconv/explainer/assets/{name} is missing from this installation")
    return text


def _dims(values, always_each: bool = False) -> str:
    """A per-dimension control's text: ``2`` when every dimension is 2 (tconv's int), else ``4x5``."""
    values = [int(v) for v in values]
    if not always_each and len(set(values)) == 1:
        return str(values[0])
    return "x".join(map(str, values))


def _padding(e: Explanation) -> str:
    """The padding control's text: per dimension, or 'same' where the (before, after) pairs are
    what 'same' gives (the page has no control for other unequal pairs)."""
    if all(b == a for b, a in e.pads):
        return _dims([b for b, _ in e.pads])
    n, k = e.input.shape[1:], e.weight.shape[2:]
    same = tuple(same_transposed(ni, ki, s, d)[0] for ni, ki, s, d in zip(n, k, e.stride, e.dilation))
    pairs = tuple(map(tuple, e.pads))
    if pairs == same and e.output.shape[1:] == tuple(ni * s for ni, s in zip(n, e.stride)):
        return "same"
    raise ValueError(f"page: the page shows equal padding on both sides of a dimension, or 'same'; got the "
                     f"(before, after) pairs {pairs}")


def _start(e: Explanation) -> dict:
    """The controls' texts and the values of ``e``."""
    if e.rank not in (1, 2):
        raise ValueError(f"page: the page shows 1-d and 2-d transposed convolutions, got a {e.rank}-d one")
    padding = _padding(e)
    return {
        "fields": {
            "rank": str(e.rank),
            "input_size": _dims(e.input.shape[1:], always_each=True),
            "kernel_size": _dims(e.weight.shape[2:], always_each=True),
            "stride": _dims(e.stride),
            "padding": padding,
            "output_padding": "0" if padding == "same" else _dims(e.output_padding),
            "dilation": _dims(e.dilation),
            "padding_mode": "zeros",
            "in_channels": str(e.input.shape[0]),
            "out_channels": str(e.weight.shape[1] * e.groups),
            "groups": str(e.groups),
        },
        "x": e.input.ravel().tolist(),
        "w": e.weight.ravel().tolist(),
        "preset": "arange",
    }


def _examples() -> list[dict]:
    """The seeds' worked transposed convolutions, as presets: their controls and values."""
    out = []
    for ex in EXAMPLES:
        if ex.op != "conv_transpose":
            continue
        x = np.asarray(ex.input, dtype=np.float64)[0]
        w = np.asarray(ex.weight, dtype=np.float64)
        p = ex.params
        out.append({
            "name": ex.name,
            "source": ex.source,
            "fields": {
                "rank": "2", "input_size": _dims(x.shape[1:], True), "kernel_size": _dims(w.shape[2:], True),
                "stride": str(p.get("stride", 1)), "padding": str(p.get("padding", 0)),
                "output_padding": str(p.get("output_padding", 0)), "dilation": str(p.get("dilation", 1)),
                "padding_mode": "zeros", "in_channels": str(x.shape[0]), "out_channels": str(w.shape[1]),
                "groups": "1",
            },
            "x": x.ravel().tolist(),
            "w": w.ravel().tolist(),
        })
    return out


def _script(text: str, name: str) -> str:
    if "</script" in text.lower():
        raise ValueError(f"page: assets/{name} contains '</script', which would end its inline script")
    return text


def page(e: Explanation) -> str:
    """The HTML page, one self-contained file, starting from ``e`` (1-d or 2-d, any channels and groups)."""
    start = _start(e)
    start["examples"] = _examples()
    assets = {name: _asset(name) for name in _ASSETS}
    code = assets["code.js"]
    start["codeMissing"] = code is None
    html, css, math_js, ui_js = (_shipped(assets, name)
                                 for name in ("page.html", "page.css", "math.js", "ui.js"))
    for marker, value in (
        ("/*__CSS__*/", css),
        ("/*__START__*/", "const START = " + json.dumps(start).replace("</", "<\\/") + ";"),
        ("/*__MATH_JS__*/", _script(math_js, "math.js")),
        ("/*__CODE_JS__*/", _NO_CODE if code is None else _script(code, "code.js")),
        ("/*__UI_JS__*/", _script(ui_js, "ui.js")),
    ):
        if marker not in html:  # pragma: no cover - the template and this list go together
            raise RuntimeError(f"page: assets/page.html lacks {marker}")
        html = html.replace(marker, value, 1)
    return html


def write_page(e: Explanation, path: str) -> None:
    """Write :func:`page` to ``path``."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(page(e))


#: The page's screenshots ``tconv demo`` takes: (file name, window width, height, URL fragment). The
#: selected one, tall enough for the sum written out and the checkerboard, is README's docs/explain-page.png.
PAGE_SCREENSHOTS = (
    ("explain-1200x900.png", 1200, 900, ""),
    ("explain-selected.png", 1200, 1240,
     "input_size=3x3&kernel_size=3x3&stride=2&padding=1&output_padding=1&select=2x3"),
    ("explain-narrow.png", 420, 900, ""),
)


def screenshot_page(page: str, out_dir: str, out=None, shots=PAGE_SCREENSHOTS) -> list[str]:
    """PNG screenshots of the HTML page ``page`` in headless Chromium (its ``--screenshot`` flag), one
    per ``(name, width, height, fragment)`` of ``shots``, into ``out_dir``; the paths written. Without
    Chromium (``chromium`` or ``chromium-browser`` on PATH) none: a note on ``out`` says so."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    out = out or sys.stdout
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("no Chromium found (chromium or chromium-browser on PATH): the page's screenshots were "
              "skipped; install it (sudo apt-get install chromium), or run make demo, which does", file=out)
        return []
    url = "file://" + os.path.abspath(page)
    written = []
    with tempfile.TemporaryDirectory(prefix="tconv-chromium-") as profile:
        for name, width, height, fragment in shots:
            path = os.path.abspath(os.path.join(out_dir, name))
            if os.path.exists(path):
                os.remove(path)
            try:
                done = subprocess.run(
                    [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                     f"--screenshot={path}", url + (f"#{fragment}" if fragment else "")],
                    capture_output=True, text=True, timeout=120)
                failed = "" if os.path.exists(path) else (done.stderr.strip()[-500:]
                                                          or f"exit {done.returncode}")
            except (OSError, subprocess.TimeoutExpired) as exc:
                failed = str(exc)
            if failed:
                print(f"screenshot {name}: Chromium ({chromium}) wrote no PNG: {failed}", file=out)
            else:
                written.append(path)
                print(f"screenshot of the page at {width}x{height}{f' (#{fragment})' if fragment else ''}: "
                      f"{path}", file=out)
    return written
