"""An explanation in a notebook (tconv.explainer.notebook): its HTML is the page ``tconv explain
--html`` writes, in a sandboxed iframe that runs in a browser beside another without interfering;
its PNG and text; and ``show`` for explain's arguments or a layer and an input shape."""

from __future__ import annotations

import html
import re
import sys
import types

import numpy as np
import pytest
import torch
from browser import Browser
from test_cli import need_chromium

import tconv
from tconv.cli import main
from tconv.explainer import explain, show
from tconv.explainer.page import page
from tconv.explainer.text import render

pytestmark = pytest.mark.xdist_group("page")  # the browser tests share one worker with the page's

D2L = np.array([[0.0, 1.0], [2.0, 3.0]])


def _srcdoc(frame: str) -> str:
    """The one iframe's srcdoc attribute, unescaped."""
    assert frame.count("<iframe") == 1
    match = re.search(r'srcdoc="([^"]*)"', frame)
    assert match is not None
    return html.unescape(match.group(1))


def test_the_html_is_the_page_of_tconv_explain_html_in_a_sandboxed_frame(tmp_path, capsys):
    e = explain(D2L, D2L, stride=2, padding=1, output_padding=1)
    frame = e._repr_html_()
    assert re.search(r'<iframe [^>]*sandbox="allow-scripts"', frame)  # scripts, no same origin
    assert "height: 1000px" in frame
    written = tmp_path / "explain.html"
    assert main(["explain", "--input", "0 1; 2 3", "--kernel", "0 1; 2 3", "--stride", "2",
                 "--padding", "1", "--output-padding", "1", "--html", str(written)]) == 0
    capsys.readouterr()
    assert _srcdoc(frame) == written.read_text(encoding="utf-8") == page(e)
    assert "http://" not in _srcdoc(frame) and "https://" not in _srcdoc(frame)  # nothing fetched


def test_what_the_page_cannot_show_falls_back_to_the_picture_and_the_text():
    e3 = explain(np.ones((1, 2, 2, 2)), np.ones((1, 1, 2, 2, 2)), stride=2)  # 3-d: no page
    assert e3._repr_html_() is None
    assert e3._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    lopsided = explain(D2L, D2L, padding=((1, 0), (0, 0)))  # unequal padding the page has no control for
    assert lopsided._repr_html_() is None


def test_the_picture_leaves_the_notebook_s_backend_alone():
    import matplotlib

    before = matplotlib.get_backend()
    png = explain(D2L, D2L, stride=2)._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert matplotlib.get_backend() == before
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []  # nothing left for pyplot to show again at the end of a cell


def test_the_text_is_the_terminal_s():
    e = explain(D2L, D2L, stride=2)
    printed = []
    e._repr_pretty_(types.SimpleNamespace(text=printed.append), False)
    assert printed == [render(e).rstrip("\n")]
    # D2L's stride-2 example (fig. 14.10.3), as the terminal prints it
    assert printed[0].endswith("  0 0 0 1\n  0 0 2 3\n  0 2 0 3\n  4 6 6 9")


@pytest.fixture(scope="module")
def browser():
    with Browser(need_chromium(), height=2200) as b:
        yield b


def test_two_frames_in_one_document_run_apart(browser, tmp_path):
    """A notebook's output area: two explanations' frames in one document. Each page computes its
    own layer (its output as tconv's), and clicking a pixel in one selects nothing in the other."""
    one = explain(D2L, D2L, stride=2, padding=1, output_padding=1)
    rng = np.random.default_rng(0)
    x, w = rng.integers(-3, 4, (2, 3, 4)).astype(float), rng.integers(-2, 3, (2, 3, 2, 3)).astype(float)
    two = explain(x, w, stride=(1, 2), padding=(0, 1), dilation=(2, 1))
    doc = tmp_path / "notebook.html"
    doc.write_text(f"<!DOCTYPE html><html><body><div>{one._repr_html_()}</div><div>{two._repr_html_()}</div>"
                   f"</body></html>", encoding="utf-8")
    browser.open(f"file://{doc}")
    frames = browser.frames()
    assert len(frames) == 2
    for frame, e in zip(frames, (one, two)):
        state = browser.frame_state(frame)
        assert state["error"] is None and state["selected"] is None
        np.testing.assert_allclose(np.array(state["output"]), e.output, atol=1e-9)
        np.testing.assert_allclose(np.array(state["weight"]), e.weight, atol=0)
    # click output pixel (1, 2) of channel 0 in the second frame, at its place in the document
    cell = 'td[data-pixel="1,2"][data-channel="0"]'
    browser.eval("document.querySelectorAll('iframe')[1].scrollIntoView()")
    left, top = browser.eval("(() => { const r = document.querySelectorAll('iframe')[1]"
                             ".getBoundingClientRect(); return [r.left, r.top]; })()")
    x, y = browser.frame_eval(frames[1], f"""(() => {{ const el = document.querySelector('{cell}');
        el.scrollIntoView({{block: 'center'}}); const r = el.getBoundingClientRect();
        return [r.left + r.width / 2, r.top + r.height / 2]; }})()""")
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        browser.send("Input.dispatchMouseEvent", type=kind, x=left + x, y=top + y, button="left",
                     clickCount=1)
    second, first = browser.frame_state(frames[1]), browser.frame_state(frames[0])
    assert second["selected"] is not None and first["selected"] is None
    terms = second["selected"]
    assert pytest.approx(sum(t[2] for t in terms["terms"])) == two.output[0, 1, 2] == terms["sum"]
    assert not browser.errors


def test_show_displays_in_ipython_and_prints_elsewhere(monkeypatch, capsys):
    show(D2L, D2L, stride=2)
    assert capsys.readouterr().out == render(explain(D2L, D2L, stride=2))
    shown = []
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: object()  # a running shell
    display = types.ModuleType("IPython.display")
    display.display = shown.append
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    assert show(D2L, D2L, stride=2) is None
    assert capsys.readouterr().out == ""
    (e,) = shown
    np.testing.assert_array_equal(e.output, explain(D2L, D2L, stride=2).output)


@pytest.mark.parametrize("shape", [(3, 2), (2, 3, 2), (1, 2, 3, 2)])
def test_show_a_tconv_or_torch_layer_on_an_input_shape(shape, capsys):
    layer = tconv.ConvTranspose2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 0), output_padding=(1, 0),
                                  groups=2, rng=0)
    show(layer, shape)
    text = capsys.readouterr().out
    x = np.arange(1, 13, dtype=np.float64).reshape(1, 2, 3, 2)
    expected = layer(x.astype(np.float32)) - layer.bias.reshape(-1, 1, 1)  # the bias is left out
    assert f"Output y {expected.shape[1:]}" in text
    torch_layer = torch.nn.ConvTranspose2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 0),
                                           output_padding=(1, 0), groups=2, bias=False).double()
    with torch.no_grad():
        torch_layer.weight.copy_(torch.from_numpy(layer.weight))
        reference = torch_layer(torch.from_numpy(x)).numpy()
    from tconv.explainer.notebook import _layer_problem

    for which in (layer, torch_layer):
        xs, w, geometry = _layer_problem(which, shape)
        np.testing.assert_allclose(explain(xs, w, **geometry).output, reference[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(reference[0], expected[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("args, error, message", [
    ((types.SimpleNamespace(weight=np.ones((1, 1, 2, 2))), (2, 2)), TypeError,
     "show: a layer must be a ConvTranspose1d/2d/3d"),
    ((tconv.ConvTranspose2d(2, 2, 3, rng=0), (2, 2, 2, 2)), ValueError, "one sample"),
    ((tconv.ConvTranspose2d(2, 2, 3, rng=0), (3, 2, 2)), ValueError, r"C_in=2"),
    ((tconv.ConvTranspose2d(2, 2, 3, rng=0), "big"), TypeError, r"input shape must be a tuple of ints"),
    ((tconv.ConvTranspose2d(2, 2, 3, rng=0), (2.5, 2)), TypeError, r"input shape must be a tuple of ints"),
    ((tconv.ConvTranspose2d(2, 2, 3, rng=0, padding_mode="circular"), (2, 2)), ValueError, "circular"),
])
def test_show_refuses_what_it_cannot_explain(args, error, message):
    with pytest.raises(error, match=message):
        show(*args)


def test_in_a_real_kernel_an_explanation_displays_as_page_picture_and_text():
    """A notebook run by nbclient in an IPython kernel: ``show`` and an explanation as a cell's value
    each give one display with the page (HTML), the picture (PNG) and the text, and nothing else."""
    import nbclient
    import nbformat

    cells = [
        "import numpy as np\nfrom tconv.explainer import explain, show\n"
        "x = np.array([[0.0, 1.0], [2.0, 3.0]])",
        "show(x, x, stride=2)",
        "explain(x, x, stride=2, padding=1)",
        "import matplotlib.pyplot as plt\nplt.get_fignums()",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    for index, e in ((1, explain(D2L, D2L, stride=2)), (2, explain(D2L, D2L, stride=2, padding=1))):
        (out,) = nb.cells[index].outputs
        assert out.output_type == ("display_data" if index == 1 else "execute_result")
        assert {"text/html", "image/png", "text/plain"} <= set(out.data)
        assert _srcdoc(out.data["text/html"]) == page(e)
        assert out.data["text/plain"] == render(e).rstrip("\n")
    assert nb.cells[3].outputs[0].data["text/plain"] == "[]"  # no pyplot figure left to show twice
