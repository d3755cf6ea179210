"""The command line: golden outputs for the seed examples, every command, figures and the page."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tconv
from tconv import cli
from tconv.explainer.steps import explain

GOLDEN = Path(__file__).parent / "golden"

# (name, arguments, rows of the output as the seed printed them)
SEED_RUNS = [
    ("d2l-fig-14.10.1", [], ["0  0  1", "0  4  6", "4 12  9"]),
    ("d2l-fig-14.10.2", ["--stride", "2"], ["0 0 0 1", "0 0 2 3", "0 2 0 3", "4 6 6 9"]),
    ("d2l-padding-1", ["--padding", "1"], ["4"]),
    ("jp-4-4", ["--input", "1 2; 3 4", "--kernel", "1 0; 0 1", "--stride", "2", "--padding", "1",
                "--output-padding", "1"], ["1 0 2", "0 4 0", "3 0 4"]),
    ("ko-in-28", ["--input-size", "4x4", "--values", "ones", "--kernel-size", "3x3",
                  "--kernel-values", "ones", "--stride", "2", "--padding", "2"],
     ["4 2 4 2 4", "2 1 2 1 2"]),
]


def run(args, capsys):
    code = cli.main(args)
    return code, capsys.readouterr().out


@pytest.mark.parametrize("name, args, rows", SEED_RUNS, ids=[r[0] for r in SEED_RUNS])
def test_explain_golden(name, args, rows, capsys):
    code, out = run(["explain", "--color", "never", *args], capsys)
    assert code == 0
    tail = out[out.index("Output y"):]
    for row in rows:  # the seed's numbers, independent of the golden file
        assert row in tail
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("TCONV_UPDATE_GOLDEN"):
        golden.write_text(out)
    assert out == golden.read_text()
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "\x1b[" not in out


def test_colour_highlights_only_when_asked(capsys):
    _, out = run(["explain", "--color", "always"], capsys)
    assert "\x1b[1;33m" in out


def test_shape_solve_overlap(capsys):
    code, out = run(["shape", "--input-size", "16x16", "--kernel-size", "4", "--stride", "2",
                     "--padding", "1"], capsys)
    assert code == 0 and "output size 32x32" in out
    assert "(16-1)*2 - 1 - 1 + 1*(4-1) + 0 + 1 = 32" in out
    code, out = run(["shape", "--input-size", "7", "--kernel-size", "3", "--stride", "2",
                     "--padding", "1"], capsys)
    assert "input sizes 13, 14 all convolve to 7" in out
    code, out = run(["solve", "--input", "16", "--output", "32", "--top", "3"], capsys)
    assert code == 0 and re.search(r"^\s+2\s+2\s+0\s+0\s+1\s+even$", out, re.M)
    code, out = run(["solve", "--input", "16", "--output", "1000"], capsys)
    assert code == 1 and "no (kernel" in out
    code, out = run(["overlap", "--kernel", "3", "--stride", "2"], capsys)
    assert "2 1" in out and "checkerboard" in out
    code, out = run(["overlap", "--kernel", "4", "--stride", "2"], capsys)
    assert "even coverage" in out


def test_bad_arguments_are_clear(capsys):
    assert cli.main(["explain", "--stride", "0"]) == 2
    assert "stride must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["explain", "--input", "1 2; 3"])
    assert "rows of equal length" in capsys.readouterr().err


def test_every_command_has_help():
    for command in ("explain", "shape", "solve", "overlap", "tour", "demo", "bench"):
        done = subprocess.run([sys.executable, "-m", "tconv.cli", command, "--help"],
                              capture_output=True, text=True, check=True)
        assert "usage: tconv" in done.stdout
    done = subprocess.run([sys.executable, "-m", "tconv.cli", "explain", "--help"],
                          capture_output=True, text=True, check=True)
    assert "examples:" in done.stdout and "--save" in done.stdout


def test_figures_and_gif(tmp_path, capsys):
    from PIL import Image

    png, svg, gif = tmp_path / "f.png", tmp_path / "f.svg", tmp_path / "f.gif"
    code, _ = run(["explain", "--stride", "2", "--save", str(png), "--gif", str(gif)], capsys)
    assert code == 0
    with Image.open(png) as im:
        assert im.size == (960, 750)  # 4 columns x 2.4 in, 7.5 in, at 100 dpi
    with Image.open(gif) as im:
        assert im.n_frames == 4  # one frame per input element
    run(["explain", "--save", str(svg)], capsys)
    assert svg.read_text().lstrip().startswith("<?xml")
    assert cli.main(["explain", "--save", str(tmp_path / "f.jpg")]) == 2


def test_demo_writes_figures_and_page(tmp_path, capsys):
    code, out = run(["demo", "--out", str(tmp_path)], capsys)
    assert code == 0
    assert "19 of 19 seed examples reproduced exactly" in out
    assert {"explain.html", "d2l-fig-14.10.1.png", "d2l-fig-14.10.1.gif", "jp-s2-p1-op1.png"} <= {
        p.name for p in tmp_path.iterdir()}
    assert str(tmp_path) in out.splitlines()[-1]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _page_output(path: Path, fragment: str, tmp_path: Path):
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", f"file://{path}#{fragment}"],
        capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="output-json"[^>]*>([^<]*)</pre>', done.stdout)
    assert match, done.stderr[-2000:]
    return np.array(json.loads(match.group(1)), dtype=float)


@pytest.mark.skipif(CHROMIUM is None and os.environ.get("TCONV_NO_BROWSER") == "1",
                    reason="no Chromium (make test installs it)")
@pytest.mark.parametrize("fragment, args", [
    ("", dict()),
    ("stride=2", dict(stride=2)),
    ("stride=3&padding=1&output_padding=2", dict(stride=3, padding=1, output_padding=2)),
    ("in_h=3&in_w=4&k=3&stride=2&dilation=2&padding=1", dict(stride=2, dilation=2, padding=1)),
])
def test_html_page_in_headless_chromium(tmp_path, fragment, args):
    """The page's controls are changed (their input events fired) and its numbers read back."""
    assert CHROMIUM, "Chromium is not installed: make test installs Debian's chromium"
    D2L = np.array([[0.0, 1.0], [2.0, 3.0]])
    page = tmp_path / "page.html"
    from tconv.explainer.page import write_page

    write_page(explain(D2L, D2L), str(page))
    got = _page_output(page, fragment, tmp_path)
    if "in_h=3" in fragment:  # other sizes use the values 1..n
        x, w = np.arange(1.0, 13.0).reshape(3, 4), np.arange(1.0, 10.0).reshape(3, 3)
    else:
        x = w = D2L
    expected = tconv.conv_transpose(x[None, None], w[None, None], **args)[0, 0]
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_convert_command(capsys):
    code, out = run(["convert", "--from", "keras", "--to", "torch",
                     "Conv2DTranspose(64, 4, strides=2, padding='same')", "--in-channels", "128",
                     "--input-size", "16x16"], capsys)
    assert code == 0
    assert out.splitlines()[0] == (
        "torch.nn.ConvTranspose2d(128, 64, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), "
        "output_padding=(0, 0), groups=1, bias=True, dilation=(1, 1))")
    assert "np.moveaxis(w, (-1, -2), (0, 1))" in out and "exact" in out
    assert "n=16: keras (16-1)*2 + 4 - 1 - (1) = 32; torch 32" in out
    code, out = run(["convert", "--from", "torch", "--to", "keras",
                     "ConvTranspose2d(128, 64, 3, stride=2, padding=1, output_padding=1)"], capsys)
    assert "fixup per dimension (crop +, append -): ((1, 0), (1, 0))" in out
    assert cli.main(["convert", "--from", "onnx", "--to", "torch", "--in-channels", "1",
                     "--out-channels", "1", "ConvTranspose(kernel_shape=[3], auto_pad='SAME_UPPER')"]) == 2
    assert "pass input_shape" in capsys.readouterr().err
    assert cli.main(["convert", "--from", "torch", "--to", "keras", "not a call("]) == 2


def test_every_convert_example_in_the_help_runs(capsys):
    import shlex

    lines = [line.strip() for line in cli.CONVERT_EXAMPLES.splitlines() if "tconv convert" in line]
    assert len(lines) == 20  # every ordered pair of the five frameworks
    for line in lines:
        assert cli.main(shlex.split(line)[1:]) == 0, line
        assert capsys.readouterr().out.strip()
