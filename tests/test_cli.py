"""The command line: golden outputs for the seed examples, every command, figures and the page."""

from __future__ import annotations

import html
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
    for command in ("explain", "shape", "solve", "overlap", "tour", "demo", "bench", "apply"):
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
    if CHROMIUM:  # and screenshots of the page, PNGs of the window's size
        from PIL import Image

        from tconv.explainer.page import PAGE_SCREENSHOTS

        for name, width, height, _ in PAGE_SCREENSHOTS:
            assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            with Image.open(tmp_path / name) as im:
                assert im.size == (width, height)
    else:
        assert "the page's screenshots were skipped" in out


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

BROWSER_MISSING = ("Chromium is not installed, so the HTML page is not tested in a browser; install it "
                   "with `sudo apt-get install chromium` (Debian, Ubuntu), or let `make test` do it as "
                   "root or with passwordless sudo")


def need_chromium() -> str:
    """Chromium's path; without it, skip, or fail under TCONV_REQUIRE_BROWSER=1 (make test as root, CI)."""
    if CHROMIUM:
        return CHROMIUM
    if os.environ.get("TCONV_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{BROWSER_MISSING} (TCONV_REQUIRE_BROWSER=1: a missing browser is a failure)")
    pytest.skip(BROWSER_MISSING)


def test_a_missing_browser_skips_unless_required(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", None)
    monkeypatch.delenv("TCONV_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"sudo apt-get install chromium"):
        need_chromium()
    monkeypatch.setenv("TCONV_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match=r"TCONV_REQUIRE_BROWSER=1: a missing browser is a fail"):
        need_chromium()
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", "/usr/bin/chromium")
    assert need_chromium() == "/usr/bin/chromium"


def _dump_dom(path: Path, fragment: str, tmp_path: Path) -> str:
    """The page's DOM after headless Chromium has run it with ``#fragment``."""
    done = subprocess.run(
        [need_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", f"file://{path}#{fragment}"],
        capture_output=True, text=True, timeout=120)
    assert "<html" in done.stdout, done.stderr[-2000:]
    return done.stdout


def _page_state(path: Path, fragment: str, tmp_path: Path) -> dict:
    """The page's ``<pre id="state-json">`` after Chromium has run it with ``#fragment``."""
    match = re.search(r'<pre id="state-json"[^>]*>([^<]*)</pre>', _dump_dom(path, fragment, tmp_path))
    assert match
    return json.loads(html.unescape(match.group(1)))


@pytest.mark.parametrize("fragment, args", [
    ("", dict()),
    ("stride=2", dict(stride=2)),
    ("stride=3&padding=1&output_padding=2", dict(stride=3, padding=1, output_padding=2)),
    ("input_size=3x4&kernel_size=3x2&stride=2x1&dilation=2&padding=1x0",
     dict(stride=(2, 1), dilation=2, padding=(1, 0))),
    ("input_size=5&kernel_size=3&stride=2&padding=1&output_padding=1",  # one value: a 1-d page
     dict(stride=2, padding=1, output_padding=1)),
])
def test_html_page_in_headless_chromium(tmp_path, fragment, args):
    """The page, started from an Explanation, sets its controls from the fragment; numbers are tconv's."""
    need_chromium()
    D2L = np.array([[0.0, 1.0], [2.0, 3.0]])
    page = tmp_path / "page.html"
    from tconv.explainer.page import write_page

    write_page(explain(D2L, D2L), str(page))
    state = _page_state(page, fragment, tmp_path)
    assert state["error"] is None
    x, w = np.array(state["input"], dtype=float), np.array(state["weight"], dtype=float)
    if "input_size" in fragment:  # other sizes use the values 1..n
        assert x.ravel().tolist() == list(range(1, x.size + 1))
        assert w.ravel().tolist() == list(range(1, w.size + 1))
        assert x.shape[1:] == tuple(int(v) for v in fragment.split("&")[0].split("=")[1].split("x"))
    else:
        assert x.tolist() == [D2L.tolist()] and w.tolist() == [[D2L.tolist()]]
    expected = tconv.conv_transpose(x, w, **args)
    np.testing.assert_array_equal(np.array(state["output"]), expected)


def test_convert_command(capsys):
    code, out = run(["convert", "--from", "keras", "--to", "torch",
                     "Conv2DTranspose(64, 4, strides=2, padding='same')", "--in-channels", "128",
                     "--input-size", "16x16"], capsys)
    assert code == 0
    assert out.splitlines()[0] == (
        "torch.nn.ConvTranspose2d(in_channels=128, out_channels=64, kernel_size=(4, 4), stride=(2, 2), "
        "padding=(1, 1), output_padding=(0, 0), groups=1, bias=True, dilation=(1, 1))")
    assert "weight: keras (*k, C_out, C_in) -> torch (C_in, C_out/groups, *k)" in out and "exact" in out
    assert "n=16: keras (16-1)*2 + 4 - 1 - (1) = 32; torch 32" in out
    code, out = run(["convert", "--from", "torch", "--to", "keras",
                     "ConvTranspose2d(128, 64, 3, stride=2, padding=1, output_padding=1)"], capsys)
    assert "fixup per dimension (crop +, append -): ((1, 0), (1, 0))" in out
    assert cli.main(["convert", "--from", "onnx", "--to", "torch", "--in-channels", "1",
                     "--out-channels", "1", "ConvTranspose(kernel_shape=[3], auto_pad='SAME_UPPER')"]) == 2
    err = capsys.readouterr().err
    assert "pass input_shape" in err and "(on the command line: --input-size or --input-shape)" in err
    assert cli.main(["convert", "--from", "torch", "--to", "keras", "not a call("]) == 2


def test_convert_takes_input_and_weight_shapes_as_convert_does(capsys):
    """--input-shape/--weight-shape are convert()'s input_shape/weight_shape, in the source's layouts."""
    code, out = run(["convert", "--from", "jax", "--to", "torch", "conv_transpose(strides=(2,), "
                     "padding='SAME')", "--weight-shape", "4x3x5"], capsys)  # jax default: (k, I, O)
    assert code == 0
    assert out.splitlines()[0].startswith("torch.nn.ConvTranspose1d(in_channels=3, out_channels=5, "
                                          "kernel_size=(4,)")
    code, out = run(["convert", "--from", "keras", "--to", "torch", "Conv2DTranspose(64, 3, strides=2)",
                     "--input-shape", "1x16x16x128"], capsys)  # channels-last: 128 channels
    assert code == 0 and "in_channels=128" in out.splitlines()[0]


def test_every_convert_example_in_the_help_runs(capsys):
    import shlex

    lines = [line.strip() for line in cli.CONVERT_EXAMPLES.splitlines() if "tconv convert" in line]
    assert len(lines) == 20  # every ordered pair of the five frameworks
    for line in lines:
        assert cli.main(shlex.split(line)[1:]) == 0, line
        assert capsys.readouterr().out.strip()


# --------------------------------------------------------------------------- one value, every dimension


def printed_output(out: str) -> np.ndarray:
    """The ``Output y (shape)`` block that ``tconv explain`` prints last, as an array."""
    head, body = out[out.index("Output y"):].split("\n", 1)
    shape = tuple(int(v) for v in re.search(r"\(([\d, ]+)\)", head).group(1).split(","))
    values = [float(v) for line in body.splitlines() if not line.strip().startswith("[")
              for v in line.split()]
    return np.array(values).reshape(shape)


def _range(*shape):
    return np.arange(1.0, np.prod(shape) + 1).reshape(shape)


@pytest.mark.parametrize("args, x, w, kwargs", [
    # the example: it failed with "a weight of shape (3,)"
    (["--input-size", "3x3", "--kernel-size", "3", "--stride", "2"], _range(3, 3), _range(3, 3),
     dict(stride=2)),
    (["--input-size", "4", "--kernel-size", "2,3", "--stride", "2", "--padding", "1x0",
      "--output-padding", "1", "--dilation", "2"], _range(4, 4), _range(2, 3),
     dict(stride=2, padding=(1, 0), output_padding=1, dilation=2)),
    (["--input-size", "2", "--kernel-size", "2", "--stride", "1x2x1"], _range(2, 2, 2), _range(2, 2, 2),
     dict(stride=(1, 2, 1))),
    (["--input-size", "5", "--kernel-size", "3", "--stride", "2"], _range(5), _range(3), dict(stride=2)),
    # a matrix (given or the default) is 2-d: the sizes follow it
    (["--input", "1 2; 3 4", "--kernel-size", "3", "--stride", "2", "--padding", "1"],
     np.array([[1.0, 2], [3, 4]]), _range(3, 3), dict(stride=2, padding=1)),
    (["--kernel-size", "3", "--dilation", "2"], np.array([[0.0, 1], [2, 3]]), _range(3, 3),
     dict(dilation=2)),
])
def test_explain_one_value_means_every_dimension(args, x, w, kwargs, capsys):
    code, out = run(["explain", "--color", "never", "--views", "none", *args], capsys)
    assert code == 0
    expected = tconv.conv_transpose(x[None, None], w[None, None], **kwargs)[0]
    got = printed_output(out)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_shape_one_value_means_every_dimension(capsys):
    from tconv.explainer import output_shape

    code, out = run(["shape", "--input-size", "16", "--kernel-size", "4x3", "--stride", "2",
                     "--padding", "1,0", "--dilation", "1"], capsys)
    assert code == 0
    size, forms = output_shape((16, 16), (4, 3), 2, (1, 0))
    assert size == (32, 33) and f"output size {size[0]}x{size[1]}" in out
    assert f"dim 1: {forms[1]}" in out
    code, out = run(["shape", "--input-size", "8x8x8", "--kernel-size", "2", "--stride", "2"], capsys)
    assert "output size 16x16x16" in out and "dim 2: (8-1)*2" in out


@pytest.mark.parametrize("args, message", [
    (["shape", "--input-size", "4x4", "--kernel-size", "3x3x3"],
     "--kernel-size has 3 values but --input-size has 2"),
    (["shape", "--input-size", "4", "--kernel-size", "3", "--stride", "2x2", "--dilation", "1,1,1"],
     "--dilation has 3 values but --stride has 2"),
    (["explain", "--input", "1 2; 3 4", "--stride", "2x2x2"], "--stride has 3 values but --input is 2-d"),
    (["explain", "--kernel-size", "2x2x2"],
     "--kernel-size has 3 values but the default input (0 1; 2 3) is 2-d"),
    (["overlap", "--kernel", "3x3", "--stride", "2x2x2"], "--stride has 3 values but --kernel has 2"),
    (["solve", "--input", "4x4", "--output", "8x8x8"], "--output has 3 values but --input has 2"),
    (["convert", "--from", "onnx", "--to", "torch", "--in-channels", "1", "--out-channels", "1",
      "--input-size", "8x8x8", "ConvTranspose(kernel_shape=[3, 3], auto_pad='SAME_UPPER')"],
     "--input-size has 3 values but the layer is 2-d"),
])
def test_mismatched_lengths_name_the_option(args, message, capsys):
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "give one value (for every dimension) or one per dimension" in err


def test_a_matrix_and_a_size_for_one_thing_is_an_error(capsys):
    assert cli.main(["explain", "--input", "1 2; 3 4", "--input-size", "2"]) == 2
    assert "give --input (a matrix) or --input-size, not both" in capsys.readouterr().err


def test_overlap_and_solve_per_dimension(capsys):
    code, out = run(["overlap", "--kernel", "3x4", "--stride", "2"], capsys)
    assert code == 0
    taps = "kernel taps per output position (position mod 2)"
    assert f"dim 0: kernel 3, stride 2, dilation 1: {taps}: 2 1" in out
    assert f"dim 1: kernel 4, stride 2, dilation 1: {taps}: 2 2" in out
    assert "checkerboard" in out
    code, out = run(["overlap", "--kernel", "4", "--stride", "2x4"], capsys)
    assert "dim 1: kernel 4, stride 4" in out and out.rstrip().endswith("even coverage")
    code, out = run(["solve", "--input", "16", "--output", "32x16", "--top", "1"], capsys)
    assert code == 0
    assert "dim 0: 10 ways to map 16 -> 32" in out
    assert re.search(r"^dim 1: \d+ ways to map 16 -> 16", out, re.M)
    code, out = run(["solve", "--input", "16", "--output", "32x32", "--top", "1"], capsys)
    assert out.startswith("every dimension: 10 ways to map 16 -> 32")


def test_convert_input_size_one_value_means_every_dimension(capsys):
    layer = "ConvTranspose(kernel_shape=[3, 3], strides=[2, 2], auto_pad='SAME_UPPER')"
    common = ["convert", "--from", "onnx", "--to", "torch", "--in-channels", "4", "--out-channels", "4",
              layer]
    code, one = run([*common, "--input-size", "7"], capsys)
    assert code == 0
    _, each = run([*common, "--input-size", "7x7"], capsys)
    assert one == each
    assert one.count("n=7: onnx (7-1)*2 + 3") == 2  # both dimensions know the size
    # the kernel size of a jax call (its arguments do not hold it) broadcasts the same way
    jax = ["convert", "--from", "jax", "--to", "torch", "--in-channels", "3", "--out-channels", "5",
           "conv_transpose(strides=(2, 2), padding='SAME')"]
    _, one = run([*jax, "--kernel-size", "4"], capsys)
    _, each = run([*jax, "--kernel-size", "4x4"], capsys)
    assert one == each and "kernel_size=(4, 4)" in one.splitlines()[0]


def test_every_explain_example_in_the_help_runs(tmp_path, capsys, monkeypatch):
    import shlex

    monkeypatch.chdir(tmp_path)  # the last example writes its files here
    lines = [line.split("#")[0] for line in cli.EXPLAIN_EXAMPLES.splitlines() if "tconv explain" in line]
    assert len(lines) == 7
    for line in lines:
        assert cli.main(shlex.split(line)[1:]) == 0, line
        assert "Output y" in capsys.readouterr().out


@pytest.mark.parametrize("fragment, args", [
    ("stride=2&output_padding=2", dict(stride=2, output_padding=2)),   # the output_padding rule
    ("padding=3", dict(padding=3)),                                     # nothing left of the output
])
def test_the_page_refuses_what_tconv_refuses(tmp_path, fragment, args):
    """The page's JavaScript is the deliberate second implementation of the rules: where tconv raises,
    the page shows an error instead of numbers."""
    D2L = np.array([[0.0, 1.0], [2.0, 3.0]])
    with pytest.raises(ValueError):
        tconv.conv_transpose(D2L[None, None], D2L[None, None], **args)
    page = tmp_path / "page.html"
    from tconv.explainer.page import write_page

    write_page(explain(D2L, D2L), str(page))
    dom = _dump_dom(page, fragment, tmp_path)
    error = re.search(r'<div id="error"[^>]*>([^<]*)</div>', dom)
    assert error and error.group(1).strip(), dom[-2000:]
    with pytest.raises(ValueError) as refused:  # the layer the page shows, called as the page calls it
        tconv.ConvTranspose2d(1, 1, 2, bias=False, **args)(D2L[None])
    assert html.unescape(error.group(1)) == str(refused.value)


# --------------------------------------------------------------------------- tconv apply: zarr -> zarr


@pytest.fixture
def zarr_input(tmp_path, monkeypatch):
    """A small chunked zarr array x.zarr (2, 4, 20, 17; chunks smaller than the kernel's reach along
    the rows), a transposed weight w.npy (4, 3, 3, 3), a convolution weight k.npy (5, 4, 3, 3) and a
    bias b.npy (3,), in tmp_path (the working folder); the arrays."""
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("distributed")
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 20, 17)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    k = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    zarr.create_array("x.zarr", shape=x.shape, chunks=(1, 4, 2, 9), dtype=x.dtype)[...] = x
    for name, a in (("w", w), ("k", k), ("b", b)):
        np.save(f"{name}.npy", a)
    return x, w, k, b


def test_apply_writes_what_conv_transpose_computes(zarr_input, capsys):
    import zarr

    x, w, _, b = zarr_input
    code = cli.main(["apply", "--input", "x.zarr", "--weight", "w.npy", "--bias", "b.npy", "--stride", "2",
                     "--padding", "1x0", "--output-padding", "1", "--dilation", "1,2", "--output", "y.zarr",
                     "--workers", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    expected = tconv.conv_transpose(x, w, b, 2, (1, 0), 1, 1, (1, 2))
    got = zarr.open_array("y.zarr", mode="r")
    assert got.shape == expected.shape == (2, 3, 40, 38)
    np.testing.assert_allclose(got[...], expected, rtol=1e-5, atol=1e-5)
    assert "x.zarr -> tconv.conv_transpose -> y.zarr: 2x3x40x38 float32" in out
    assert "computing on a local cluster of 1 workers" in out and "wrote y.zarr in " in out
    assert "100% Completed" in err  # the progress bar, on stderr

    # again into the same store: refused, before any cluster starts
    assert cli.main(["apply", "--input", "x.zarr", "--weight", "w.npy", "--output", "y.zarr"]) == 2
    assert "--output: 'y.zarr' exists; --overwrite replaces it" in capsys.readouterr().err


def test_apply_conv_from_a_group_with_a_padding_mode(zarr_input, capsys):
    import zarr

    x, _, k, _ = zarr_input
    group = zarr.open_group("g.zarr", mode="w")
    group.create_array("raw", shape=x.shape, chunks=(2, 4, 7, 5), dtype=x.dtype)[...] = x
    group.create_array("smooth", shape=(3,), dtype="i8")  # replaced with --overwrite
    argv = ["apply", "--conv", "--input", "g.zarr", "--component", "raw", "--weight", "k.npy",
            "--padding", "same", "--padding-mode", "reflect", "--output", "g.zarr",
            "--output-component", "smooth", "--workers", "1", "--no-progress"]
    assert cli.main(argv) == 2
    assert "--output: 'g.zarr' exists; --overwrite replaces it" in capsys.readouterr().err
    assert cli.main([*argv, "--overwrite"]) == 0
    out, err = capsys.readouterr()
    assert "g.zarr -> tconv.conv -> g.zarr: 2x5x20x17 float32" in out and "Completed" not in err
    got = zarr.open_group("g.zarr", mode="r")["smooth"][...]
    np.testing.assert_allclose(got, tconv.conv(x, k, None, 1, "same", padding_mode="reflect"),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("args, message", [
    (["--weight", "missing.npy"], "--weight: cannot read 'missing.npy' as a .npy array"),
    (["--input", "missing.zarr"], "--input: no zarr array or group at 'missing.zarr'"),
    (["--component", "raw"], "--component: 'x.zarr' is one array, not a group"),
    (["--stride", "2x2x2"], "--stride has 3 values but --weight is 2-d"),
    (["--stride", "2", "--output-padding", "2"], "conv_transpose: output_padding must be smaller than "
                                                 "either stride or dilation"),
    (["--conv", "--weight", "k.npy", "--output-padding", "1"], "--output-padding is for a transposed "
                                                                "convolution, not with --conv"),
    (["--groups", "3"], "conv_transpose: in_channels (4) must be divisible by groups (3)"),
    (["--bias", "k.npy"], "conv_transpose: bias must have shape (3,)"),
    (["--memory-limit", "lots"], "--memory-limit must be bytes like 2GiB"),
    (["--workers", "0"], "--workers must be a positive int, got 0"),
    (["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "--workers: for the local cluster"),
])
def test_apply_refuses_bad_arguments_naming_them(zarr_input, capsys, args, message):
    base = {"--input": "x.zarr", "--weight": "w.npy", "--output": "y.zarr"}
    argv = ["apply"]
    for flag, value in base.items():
        if flag not in args:
            argv += [flag, value]
    assert cli.main([*argv, *args, "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists("y.zarr")  # nothing written


def test_apply_refuses_a_group_without_a_component(zarr_input, capsys):
    import zarr

    zarr.open_group("g.zarr", mode="w").create_array("raw", shape=(1, 4, 3), dtype="f4")
    assert cli.main(["apply", "--input", "g.zarr", "--weight", "w.npy", "--output", "y.zarr"]) == 2
    assert ("--input: 'g.zarr' is a zarr group: name one of its arrays with --component (arrays: raw)"
            in capsys.readouterr().err)
    with pytest.raises(SystemExit):  # argparse: exit 2, the choices named
        cli.main(["apply", "--input", "x.zarr", "--weight", "w.npy", "--output", "y.zarr",
                  "--padding-mode", "mirror"])
    assert "--padding-mode: invalid choice: 'mirror'" in capsys.readouterr().err


def test_a_closed_pipe_ends_the_command_quietly():
    """``tconv solve ... | head``: the reader stops reading (here: before anything is written);
    tconv ends without a traceback, with SIGPIPE's status."""
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "tconv.cli", "solve", "--input", "16", "--output", "32"],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert done.stderr == "" and done.returncode == 141
