"""The ``tconv`` command.

``tconv tour`` recomputes every worked example of the seed documents and prints input, parameters,
output and whether it matches what the seed printed (``make demo`` runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

import numpy as np

from . import __version__
from .core import layers
from .core.functional import conv, conv_transpose
from .core.spec import transposed_spec
from .engine.algorithms import conv_matrix
from .explainer.examples import D2L_MATRIX, EXAMPLES, SHAPE_EXAMPLES


def grid(a: np.ndarray, indent: str = "    ") -> str:
    """A 2-d array as aligned rows; higher ranks as one block per leading index."""
    a = np.asarray(a)
    if a.ndim > 2:
        return "\n".join(
            f"{indent}[{', '.join(map(str, idx))}]\n{grid(a[idx], indent + '  ')}"
            for idx in np.ndindex(*a.shape[:-2])
        )
    a = np.atleast_2d(a)
    cells = [[f"{v:g}" for v in row] for row in a]
    width = max(len(c) for row in cells for c in row)
    return "\n".join(indent + " ".join(c.rjust(width) for c in row) for row in cells)


def _call(ex) -> str:
    args = "".join(f", {k}={v}" for k, v in ex.params.items())
    return f"tconv.{ex.op}(input, weight{args})"


def tour(out=None) -> int:
    """Print every seed example recomputed by tconv; returns the number that did not match."""
    out = out or sys.stdout
    bad = 0
    for ex in EXAMPLES:
        x, w, expected = ex.arrays()
        y = (conv_transpose if ex.op == "conv_transpose" else conv)(x, w, **ex.params)
        shown = np.round(y, ex.decimals) if ex.decimals is not None else y
        ok = shown.shape == expected.shape and np.allclose(shown, expected, atol=1e-5)
        bad += not ok
        print(f"== {ex.name}  [seed {ex.source}]", file=out)
        print(f"  {_call(ex)}", file=out)
        print(f"  input {x.shape}:\n{grid(x[0])}", file=out)
        print(f"  weight {w.shape}:\n{grid(w)}", file=out)
        print(f"  output {y.shape}:\n{grid(shown[0])}", file=out)
        print(f"  matches the seed: {'yes' if ok else 'NO'}\n", file=out)

    # D2L 14.10.3: the convolution matrix, and the transposed convolution as W^T y
    K = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    Y = conv(np.arange(9.0).reshape(1, 1, 3, 3), K)
    W = conv_matrix(transposed_spec("tour", Y, K, None), K)
    Z = conv_transpose(Y, K)
    ok = np.array_equal(W, D2L_MATRIX) and np.allclose(Z.ravel(), W.T @ Y.ravel())
    bad += not ok
    print("== d2l-matrix  [seed 002 (D2L 14.10.3, connection to matrix transposition)]", file=out)
    print(f"  W = conv_matrix(...) {W.shape}:\n{grid(W)}", file=out)
    print(f"  conv_transpose(Y) == (W.T @ Y.ravel()).reshape(3, 3):\n{grid(Z[0, 0])}", file=out)
    print(f"  matches the seed: {'yes' if ok else 'NO'}\n", file=out)

    for source, stack, in_shape, out_shape in SHAPE_EXAMPLES:
        x = np.random.default_rng(0).random(in_shape, dtype=np.float32)
        shapes = [x.shape]
        for cls, kwargs in stack:
            x = getattr(layers, cls)(**kwargs, rng=0)(x)
            shapes.append(x.shape)
        ok = x.shape == out_shape
        bad += not ok
        print(f"== shapes  [seed {source}]", file=out)
        print("  " + " -> ".join(f"{c}" for c, _ in stack) + ": " + " -> ".join(map(str, shapes)),
              file=out)
        print(f"  matches the seed: {'yes' if ok else 'NO'}\n", file=out)

    total = len(EXAMPLES) + 1 + len(SHAPE_EXAMPLES)
    print(f"{total - bad} of {total} seed examples reproduced exactly.", file=out)
    return bad


def parse_matrix(text: str) -> np.ndarray:
    """``"0 1; 2 3"`` -> a 2-d array (rows split by ``;``, values by spaces or commas)."""
    rows = [r.replace(",", " ").split() for r in text.split(";") if r.strip()]
    if not rows or any(len(r) != len(rows[0]) for r in rows):
        raise argparse.ArgumentTypeError(f"a matrix is rows of equal length separated by ';', got {text!r}")
    try:
        return np.array([[float(v) for v in r] for r in rows])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number in {text!r}") from exc


def _dims(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in re.split(r"[x,]", text.strip().lower()))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{what} is an int, or one int per dimension like 4x4 or 4,4, got {text!r}") from exc
    return values


def parse_size(text: str) -> tuple[int, ...]:
    """``"4"`` -> (4,); ``"4x4"`` or ``"4,4"`` -> (4, 4); positive."""
    sizes = _dims(text, "a size")
    if min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return sizes


def parse_ints(text: str) -> tuple[int, ...]:
    """``"2"`` -> (2,); ``"2,1"`` or ``"2x1"`` -> (2, 1)."""
    return _dims(text, "a value")


def parse_padding(text: str) -> tuple[int, ...] | str:
    """As :func:`parse_ints`; ``same`` and ``valid`` pass through."""
    return text if text in ("same", "valid") else _dims(text, "padding")


PerDim = tuple[int, ...] | str | None


def per_dimension(options: dict[str, PerDim], rank: int | None = None,
                  rank_from: str = "") -> tuple[int, dict[str, PerDim]]:
    """Resolve per-dimension command-line options to one spatial rank, as PyTorch's ``kernel_size=3``.

    ``options`` maps an option's name to its values (``None``: not given; a string such as
    ``'same'``: passed through). A single value stands for every dimension. The rank is ``rank``
    when something else fixes it (an ``--input`` matrix, the layer; ``rank_from`` names it), else
    the length of the options given as several values, else 1. Options given as several values
    must all have that length: otherwise a ValueError naming the option.

    >>> per_dimension({"--input-size": (3, 3), "--kernel-size": (3,), "--padding": "same"})
    (2, {'--input-size': (3, 3), '--kernel-size': (3, 3), '--padding': 'same'})
    >>> per_dimension({"--stride": (2,)}, rank=3, rank_from="--input")[1]
    {'--stride': (2, 2, 2)}
    >>> per_dimension({"--stride": (2, 1), "--dilation": (1, 1, 1)})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: --dilation has 3 values but --stride has 2: give one value (for every dimension) or ...
    """
    several = [(name, len(v)) for name, v in options.items() if isinstance(v, tuple) and len(v) > 1]
    if rank is None:
        rank, rank_from = (several[0][1], several[0][0]) if several else (1, "")
        if several:
            rank_from = f"{rank_from} has {rank}"
    else:
        rank_from = f"{rank_from} is {rank}-d"
    for name, n in several:
        if n != rank:
            raise ValueError(f"{name} has {n} values but {rank_from}: give one value (for every "
                             f"dimension) or one per dimension")
    return rank, {name: v * rank if isinstance(v, tuple) and len(v) == 1 else v
                  for name, v in options.items()}


def _filled(size: tuple[int, ...], how: str) -> np.ndarray:
    return np.ones(size) if how == "ones" else np.arange(1.0, np.prod(size) + 1).reshape(size)


def _geometry(p: argparse.ArgumentParser) -> None:
    every = "an int for every dimension, or one per dimension (2x1 or 2,1)"
    p.add_argument("--stride", type=parse_ints, default=(1,), help=f"{every}; default 1")
    p.add_argument("--padding", type=parse_padding, default=(0,), help=f"{every}, same or valid; default 0")
    p.add_argument("--output-padding", type=parse_ints, default=(0,), help=f"{every}; default 0")
    p.add_argument("--dilation", type=parse_ints, default=(1,), help=f"{every}; default 1")


EXPLAIN_EXAMPLES = """examples:
  tconv explain                                   # D2L Fig. 14.10.1: [[0,1],[2,3]] with [[0,1],[2,3]]
  tconv explain --stride 2                        # D2L Fig. 14.10.2
  tconv explain --input-size 3x3 --kernel-size 3 --stride 2     # 3 and 2 in both dimensions
  tconv explain --input-size 8 --kernel-size 4 --stride 2       # one dimension
  tconv explain --input "1 2; 3 4" --kernel "1 0; 0 1" --stride 2 --padding 1 --output-padding 1
  tconv explain --input-size 4x4 --values ones --kernel-size 3x3 --kernel-values ones --padding 2
  tconv explain --stride 2 --save steps.png --gif steps.gif --html explain.html
"""


def _geometry_of(options: dict[str, PerDim]) -> tuple:
    """stride, padding, output_padding, dilation from resolved options."""
    return tuple(options[k] for k in ("--stride", "--padding", "--output-padding", "--dilation"))


def cmd_explain(args) -> int:
    from .explainer.steps import explain
    from .explainer.text import render

    # an --input or --kernel matrix (or the default one) is 2-d and fixes the rank; sizes alone do not
    fixed = []
    for matrix, size, name in ((args.input, args.input_size, "input"),
                               (args.kernel, args.kernel_size, "kernel")):
        if matrix is not None and size is not None:
            raise ValueError(f"explain: give --{name} (a matrix) or --{name}-size, not both")
        if size is None:
            fixed.append(f"--{name}" if matrix is not None else f"the default {name} (0 1; 2 3)")
    _, o = per_dimension({"--input-size": args.input_size, "--kernel-size": args.kernel_size,
                          "--stride": args.stride, "--padding": args.padding,
                          "--output-padding": args.output_padding, "--dilation": args.dilation},
                         2 if fixed else None, fixed[0] if fixed else "")
    default = parse_matrix("0 1; 2 3")
    x = args.input if args.input is not None else (
        _filled(o["--input-size"], args.values) if args.input_size else default)
    w = args.kernel if args.kernel is not None else (
        _filled(o["--kernel-size"], args.kernel_values) if args.kernel_size else default)
    e = explain(x, w, *_geometry_of(o))
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    views = tuple(v.strip() for v in args.views.split(","))
    sys.stdout.write(render(e, views=views, color=color, max_steps=args.max_steps))
    if args.save:
        from .explainer.figures import save_figure

        save_figure(e, args.save)
        print(f"wrote {args.save}")
    if args.gif:
        from .explainer.figures import save_gif

        save_gif(e, args.gif)
        print(f"wrote {args.gif}")
    if args.html:
        from .explainer.page import write_page

        write_page(e, args.html)
        print(f"wrote {args.html}")
    return 0


def cmd_shape(args) -> int:
    from .explainer.steps import output_shape, round_trip

    _, o = per_dimension({"--input-size": args.input_size, "--kernel-size": args.kernel_size,
                          "--stride": args.stride, "--padding": args.padding,
                          "--output-padding": args.output_padding, "--dilation": args.dilation})
    stride, padding, output_padding, dilation = _geometry_of(o)
    kernel = o["--kernel-size"]
    size, forms = output_shape(o["--input-size"], kernel, stride, padding, output_padding, dilation)
    print(f"output size {'x'.join(map(str, size))}")
    for i, f in enumerate(forms):
        print(f"  dim {i}: {f}")
    if not isinstance(padding, str):
        r = round_trip(size, kernel, stride, padding, dilation)
        print(f"a Conv with these arguments maps {'x'.join(map(str, size))} back to "
              f"{'x'.join(map(str, r.conv_output))}")
        for i, c in enumerate(r.collisions):
            if len(c) > 1:
                print(f"  dim {i}: input sizes {', '.join(map(str, c))} all convolve to "
                      f"{r.conv_output[i]}; output_padding picks one (why it exists)")
    return 0


def cmd_solve(args) -> int:
    from .explainer.steps import solve

    rank, o = per_dimension({"--input": args.input, "--output": args.output})
    # dimensions asking the same question share one answer
    dims: dict[tuple[int, int], list[int]] = {}
    for i, pair in enumerate(zip(o["--input"], o["--output"])):
        dims.setdefault(pair, []).append(i)
    missing = 0
    for (n_in, n_out), which in dims.items():
        where = "" if rank == 1 else (
            "every dimension: " if len(which) == rank else f"dim {', '.join(map(str, which))}: ")
        found = solve(n_in, n_out, args.max_kernel, args.max_stride, args.max_padding, args.max_dilation)
        if not found:
            missing += 1
            print(f"{where}no (kernel, stride, padding, output_padding, dilation) within the bounds "
                  f"maps {n_in} -> {n_out}")
            continue
        print(f"{where}{len(found)} ways to map {n_in} -> {n_out}, even kernel coverage first:")
        print("  kernel stride padding output_padding dilation  coverage")
        for sol in found[: args.top]:
            print(f"  {sol.kernel:6} {sol.stride:6} {sol.padding:7} {sol.output_padding:14} "
                  f"{sol.dilation:8}  {'even' if sol.even else 'uneven (checkerboard)'}")
    return 1 if missing else 0


def cmd_overlap(args) -> int:
    import textwrap

    from .explainer.steps import overlap

    rank, o = per_dimension({"--kernel": args.kernel, "--stride": args.stride, "--dilation": args.dilation})
    uneven = False
    for i, (k, s_, d) in enumerate(zip(o["--kernel"], o["--stride"], o["--dilation"])):
        ov = overlap(k, s_, d)
        uneven |= not ov.even
        print(f"{'' if rank == 1 else f'dim {i}: '}kernel {k}, stride {s_}, dilation {d}: kernel taps "
              f"per output position (position mod {s_}): {' '.join(map(str, ov.counts))}")
    print("even coverage" if not uneven else textwrap.fill(
          "uneven coverage: neighbouring outputs get different numbers of taps, the source of "
          "checkerboard artifacts (Odena et al., Distill 2016); use a kernel divisible by the "
          "stride", 80))
    return 0


def demo(out_dir: str, out=None) -> int:
    """``make demo``: explain the default example, then every seed example; figures and a page."""
    import os

    from .explainer.figures import save_figure, save_gif
    from .explainer.page import write_page
    from .explainer.steps import explain
    from .explainer.text import render

    out = out or sys.stdout
    os.makedirs(out_dir, exist_ok=True)
    D2L = parse_matrix("0 1; 2 3")
    e = explain(D2L, D2L)
    print("== tconv explain  (D2L Fig. 14.10.1, the default example)\n", file=out)
    out.write(render(e, color=out.isatty() if hasattr(out, "isatty") else False))
    save_figure(e, os.path.join(out_dir, "d2l-fig-14.10.1.png"))
    save_gif(e, os.path.join(out_dir, "d2l-fig-14.10.1.gif"))
    page = os.path.join(out_dir, "explain.html")
    write_page(e, page)
    for ex in EXAMPLES:
        if ex.op != "conv_transpose":
            continue
        x, w, expected = ex.arrays()
        e = explain(x[0], w, **{k: v for k, v in ex.params.items()})
        ok = np.allclose(np.round(e.output, ex.decimals or 6), expected[0], atol=1e-5)
        print(f"\n== {ex.name}  [seed {ex.source}]  {_call(ex)}", file=out)
        for i, f in enumerate(e.sizes):
            print(f"  dim {i}: {f.text}", file=out)
        print(f"  output {e.output.shape}, matches the seed: {'yes' if ok else 'NO'}", file=out)
        print(grid(np.round(e.output, 4), indent="    "), file=out)
        save_figure(e, os.path.join(out_dir, f"{ex.name}.png"))
    print(file=out)
    bad = tour(out=open(os.devnull, "w"))
    print(f"{len(EXAMPLES) + 1 + len(SHAPE_EXAMPLES) - bad} of {len(EXAMPLES) + 1 + len(SHAPE_EXAMPLES)}"
          f" seed examples reproduced exactly (tconv tour shows them all).", file=out)
    shots = screenshot_page(page, out_dir, out)
    page_words = "an interactive page (explain.html)" + (" and its screenshots" if shots else "")
    print(f"figures, an animation, {page_words} are in {os.path.abspath(out_dir)}/", file=out)
    return 1 if bad else 0


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


_CONVERT_SOURCES = {
    "torch": ("\"ConvTranspose2d(128, 64, 3, stride=2, padding=1, output_padding=1)\"", ""),
    "tconv": ("\"ConvTranspose1d(16, 8, 4, stride=2, padding=((1, 2),))\"", ""),
    "keras": ("\"Conv2DTranspose(64, 4, strides=2, padding='same')\"", " --in-channels 128"),
    "onnx": ("\"ConvTranspose(kernel_shape=[3, 3], strides=[2, 2], auto_pad='SAME_UPPER')\"",
             " --in-channels 4 --out-channels 4 --input-size 8"),
    "jax": ("\"conv_transpose(strides=(2,), padding='SAME')\"",
            " --kernel-size 4 --in-channels 3 --out-channels 5"),
}
CONVERT_EXAMPLES = "examples (every pair):\n" + "\n".join(
    f"  tconv convert --from {s} --to {t} {layer}{extra}"
    for s, (layer, extra) in _CONVERT_SOURCES.items() for t in _CONVERT_SOURCES if t != s) + "\n"


_SIGNATURES = {
    "torch": ["in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
              "groups", "bias", "dilation"],
    "keras": ["filters", "kernel_size", "strides", "padding", "output_padding", "data_format",
              "dilation_rate"],
}
_SIGNATURES["tconv"] = _SIGNATURES["torch"]


def parse_layer(text: str, framework: str) -> tuple[dict, int | None]:
    """``"Conv2DTranspose(64, 4, strides=2)"`` -> ``({"filters": 64, ...}, 2)``."""
    import ast

    try:
        call = ast.parse(text.strip(), mode="eval").body
        if not isinstance(call, ast.Call):
            raise ValueError
        name = ast.unparse(call.func).split(".")[-1]
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"convert: the layer must be a call with literal arguments, like "
                         f"\"Conv2DTranspose(64, 4, strides=2, padding='same')\", got {text!r}") from exc
    names = _SIGNATURES.get(framework, [])
    if len(args) > len(names):
        raise ValueError(f"convert: {framework} takes its arguments by name here, got {text!r}")
    kwargs.update(zip(names, args))
    rank = re.search(r"([123])[dD]", name)
    return kwargs, int(rank.group(1)) if rank else None


#: Arguments given one value per dimension, in every framework's names (padding is left out: its
#: pairs and ONNX's pads are not one value a dimension).
_PER_DIMENSION_ARGS = ("kernel_size", "kernel_shape", "stride", "strides", "dilation", "dilations",
                       "dilation_rate", "rhs_dilation", "output_padding")


def _layer_rank(params: dict) -> int | None:
    """The layer's spatial rank from an argument given as a sequence (or jax's dimension numbers)."""
    for key in _PER_DIMENSION_ARGS:
        if isinstance(params.get(key), (tuple, list)):
            return len(params[key])
    if params.get("dimension_numbers"):
        return len(params["dimension_numbers"][0]) - 2
    return None


def cmd_convert(args) -> int:
    from .interop.convert import convert, weight_shape_of

    params, named_rank = parse_layer(args.layer, args.source)
    if args.source in ("torch", "tconv"):  # their own arguments
        for key, value in (("in_channels", args.in_channels), ("out_channels", args.out_channels)):
            if value is not None:
                params.setdefault(key, value)
    input_size = args.input_size
    weight_shape = args.weight_shape
    if weight_shape is None:  # work it out from the channel counts and the kernel size
        c_in = params.get("in_channels", args.in_channels)
        c_out = params.get("out_channels", params.get("filters", args.out_channels))
        known = named_rank if named_rank is not None else _layer_rank(params)
        if known is None and args.input_shape is not None:
            known = len(args.input_shape) - 2
        kernel_arg = params.get("kernel_size", params.get("kernel_shape"))
        if kernel_arg is not None and args.kernel_size is not None:
            raise ValueError("convert: the layer's call gives the kernel size: leave out --kernel-size")
        kernel = (tuple(kernel_arg) if isinstance(kernel_arg, (tuple, list))
                  else None if kernel_arg is None else (int(kernel_arg),))
        rank, o = per_dimension({"--input-size": input_size, "--kernel-size": args.kernel_size or kernel},
                                known, "the layer")
        if known is None and not any(isinstance(v, tuple) and len(v) > 1 for v in o.values()):
            raise ValueError("convert: the layer's rank is not known: name it (ConvTranspose2d, "
                             "Conv2DTranspose), give a per-dimension argument as a tuple, --input-size "
                             "8x8 or --weight-shape")
        kernel, input_size = o["--kernel-size"], o["--input-size"]
        missing = [flag for flag, v in (("--in-channels", c_in), ("--out-channels", c_out),
                                        ("--kernel-size", kernel)) if v is None]
        if not missing:
            weight_shape = weight_shape_of(params, args.source, c_in, c_out, kernel)
        elif args.input_shape is None:  # nothing else can say them
            what = ", ".join(m[2:].replace("-", " ") for m in missing)
            raise ValueError(f"convert: the {args.source} layer's call does not say its {what}: give "
                             f"{' and '.join(missing)}, or --weight-shape / --input-shape")
    try:
        c = convert(params, args.source, args.target, input_shape=args.input_shape or input_size,
                    weight_shape=weight_shape)
    except ValueError as exc:
        flags = {"input_shape": "--input-size or --input-shape",
                 "weight_shape": "--weight-shape, or --in-channels, --out-channels and --kernel-size"}
        said = [flag for name, flag in flags.items() if f"pass {name}" in str(exc)
                or f"or {name}" in str(exc)]
        if said:
            raise ValueError(f"{exc} (on the command line: {'; '.join(said)})") from exc
        raise
    print(c.explain())
    return 0


def cmd_apply(args) -> int:
    """``tconv apply``: a zarr array through a transposed convolution (or ``--conv``) into another
    zarr array, block by block on a dask cluster, a progress bar on stderr."""
    import time

    from .scale import run

    weight = run.load_npy(args.weight, "--weight")
    bias = None if args.bias is None else run.load_npy(args.bias, "--bias")
    if weight.ndim < 3:
        raise ValueError(f"--weight must have 3 to 5 axes (channels, channels, *kernel), got shape "
                         f"{weight.shape}")
    _, o = per_dimension({"--stride": args.stride, "--padding": args.padding,
                          "--output-padding": args.output_padding, "--dilation": args.dilation},
                         weight.ndim - 2, "--weight")
    stride, padding, output_padding, dilation = _geometry_of(o)
    if args.scheduler is not None:
        given = [flag for flag, v in (("--workers", args.workers), ("--memory-limit", args.memory_limit),
                                      ("--threads-per-worker", args.threads_per_worker)) if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: for the local cluster; the cluster at --scheduler "
                             f"has its own workers")
    memory_limit = run.parse_memory_limit(args.memory_limit or "auto")
    # every argument is checked before a cluster starts or anything is written
    y = run.convolved(run.open_zarr(args.input, args.component), weight, bias, transposed=not args.conv,
                      stride=stride, padding=padding, output_padding=output_padding, groups=args.groups,
                      dilation=dilation, padding_mode=args.padding_mode)
    run.check_output(args.output, args.output_component, args.overwrite)
    what = "tconv.conv" if args.conv else "tconv.conv_transpose"
    print(f"{args.input} -> {what} -> {args.output}: {run.describe(y)}", flush=True)
    start = time.perf_counter()
    with run.connect(args.scheduler, args.workers, args.threads_per_worker or 1, memory_limit) as client:
        where = args.scheduler or f"a local cluster of {len(client.scheduler_info()['workers'])} workers"
        print(f"computing on {where}", flush=True)
        store = run.stored(y, args.output, args.output_component, args.overwrite)
        run.compute(client, store, progress=not args.no_progress)
    print(f"wrote {args.output} in {time.perf_counter() - start:.1f} s")
    return 0


APPLY_EXAMPLES = """examples:
  tconv apply --input x.zarr --weight w.npy --bias b.npy --stride 2 --padding 1 --output y.zarr
  tconv apply --input volumes.zarr --component raw --weight w.npy --stride 2 --output up.zarr
  tconv apply --conv --input y.zarr --weight k.npy --padding same --padding-mode reflect --output z.zarr
  tconv apply ... --workers 4 --memory-limit 2GiB             # the local cluster
  tconv apply ... --scheduler tcp://scheduler:8786             # a running cluster (paths it can read)
"""


def cmd_bench(args) -> int:
    if args.dask:
        from . import bench_dask

        return bench_dask.main(args)
    from . import bench

    return bench.main(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tconv",
        description="Transposed convolution from first principles on NumPy.",
        epilog="example: tconv tour",
    )
    parser.add_argument("--version", action="version", version=f"tconv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tour", help="recompute every worked example of the seed documents")
    dm = sub.add_parser("demo", help="explain the default and the seed examples; figures and a page")
    dm.add_argument("--out", default="tconv-demo", help="folder for the figures and the page")
    bench = sub.add_parser(
        "bench", help="time tconv against PyTorch, ONNX Runtime and OpenVINO on the layer suite",
        description="Runs every layer of the suite through tconv (auto), PyTorch, ONNX Runtime and "
                    "OpenVINO with the same inputs and threads, next to each layer's limit on this "
                    "machine (max of FLOPs / sgemm rate and bytes / copy bandwidth, both measured); "
                    "prints a table and optionally writes it.",
        epilog="examples: tconv bench --output benchmarks/results   (writes results.md and .json)\n"
               "          tconv bench --random 11 16 --no-backward   (16 seeded random layers)\n"
               "          tconv bench --dask --output benchmarks/dask  (dask on a LocalCluster vs memory)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    suite = bench.add_mutually_exclusive_group()
    suite.add_argument("--layers", help="a JSON layer list, or a results .json of an earlier run "
                                        "(default: the suite shipped with tconv)")
    suite.add_argument("--random", nargs=2, type=int, metavar=("SEED", "COUNT"),
                       help="COUNT seeded random realistic layers (1d/2d/3d, 0.02-3 GFLOP each) "
                            "instead of the suite")
    bench.add_argument("--only", help="comma-separated layer names")
    bench.add_argument("--list", action="store_true", help="print the layers' parameters, time nothing")
    bench.add_argument("--algorithm", default="auto",
                       help="tconv's algorithm for the forward table (default auto; see tconv.ALGORITHMS)")
    bench.add_argument("--threads", type=int, default=2, help="threads for every system (default 2)")
    bench.add_argument("--seconds", type=float, default=1.0,
                       help="minimum timing per system and layer (default 1)")
    bench.add_argument("--runs", type=int, default=None, help="minimum timed runs per system and layer "
                                                             "(default 5, after two warm-up runs; "
                                                             "with --dask 3, after one)")
    bench.add_argument("--no-backward", action="store_true", help="skip the backward table")
    bench.add_argument("--output", help="write OUTPUT.md and OUTPUT.json")
    bench.add_argument("--dask", action="store_true",
                       help="instead: tconv on dask arrays (zarr to zarr) on a LocalCluster of --threads "
                            "worker processes against the same in memory, and each worker's peak memory "
                            "per chunk size (default layers unet_up4, k3s2_op1, hifigan_1d)")
    bench.add_argument("--chunk-mb", help="with --dask: input chunk sizes in MiB (default 4,16,64)")
    bench.add_argument("--dask-mb", type=float, help="with --dask: input size in MiB each layer is "
                                                     "enlarged to by its batch (default 256)")
    bench.add_argument("--no-progress", action="store_true",
                       help="with --dask: no progress bar (it goes to stderr)")
    ap = sub.add_parser(
        "apply", help="a zarr array through a (transposed) convolution into zarr, on a dask cluster",
        description="Reads the zarr array --input (N, C_in, *spatial), or (C_in, *spatial), lazily in "
                    "its stored chunks, applies tconv.conv_transpose (or tconv.conv with --conv) with "
                    "the weight and bias of .npy files, block by block on a dask cluster (a local one "
                    "of worker processes, or --scheduler), and writes the zarr array --output. A "
                    "progress bar goes to stderr. The weight is (C_in, C_out/groups, *kernel) as "
                    "PyTorch's ConvTranspose's ((C_out, C_in/groups, *kernel) with --conv); its rank "
                    "sets the rank of the per-dimension options.",
        epilog=APPLY_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True, help="a zarr array, or a group with --component")
    ap.add_argument("--component", help="the array's name inside the --input group")
    ap.add_argument("--weight", required=True, help="the weight, a .npy file")
    ap.add_argument("--bias", help="the bias, a .npy file (default: none)")
    ap.add_argument("--output", required=True, help="the zarr array to write (an error if it exists)")
    ap.add_argument("--output-component", help="write the array under this name inside --output")
    ap.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    ap.add_argument("--conv", action="store_true", help="an ordinary convolution (tconv.conv) instead")
    _geometry(ap)
    ap.add_argument("--groups", type=int, default=1, help="default 1")
    ap.add_argument("--padding-mode", default="zeros", choices=["zeros", "circular", "reflect", "replicate"],
                    help="default zeros; the others fold (transposed) or pad (--conv) across the whole "
                         "array")
    ap.add_argument("--scheduler", metavar="ADDRESS",
                    help="a running dask scheduler, e.g. tcp://scheduler:8786 (default: a local cluster)")
    ap.add_argument("--workers", type=int, help="local cluster: worker processes (default: the CPUs)")
    ap.add_argument("--threads-per-worker", type=int, help="local cluster: threads per worker (default 1; "
                                                            "tconv runs one thread per task)")
    ap.add_argument("--memory-limit", help="local cluster: memory per worker, e.g. 2GiB (default auto: "
                                           "the machine's memory shared by the workers)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ex = sub.add_parser("explain", help="explain a transposed convolution step by step",
                        description="Every output number of a transposed convolution, three ways: "
                                    "scatter, zero-insertion, matrix.\nA matrix (--input, --kernel, "
                                    "or the default) is 2-d. Sizes and the other options take one\n"
                                    "value per dimension (4x4, or 4,4), which sets the rank (1, 2 or "
                                    "3), or one value for every\ndimension, as PyTorch's kernel_size=3.",
                        epilog=EXPLAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("--input", type=parse_matrix, help='a matrix, e.g. "0 1; 2 3" (the default)')
    ex.add_argument("--input-size", type=parse_size, help="or a size, e.g. 4x4 (or 4: for every dimension)")
    ex.add_argument("--values", choices=["range", "ones"], default="range",
                    help="input values for --input-size: 1..n (range) or ones")
    ex.add_argument("--kernel", type=parse_matrix, help='a matrix, e.g. "0 1; 2 3" (the default)')
    ex.add_argument("--kernel-size", type=parse_size, help="or a size, e.g. 3x3 (or 3: for every dimension)")
    ex.add_argument("--kernel-values", choices=["range", "ones"], default="range")
    _geometry(ex)
    ex.add_argument("--views", default="scatter,zero,matrix", help="which views to print")
    ex.add_argument("--max-steps", type=int, default=16, help="scatter steps to print")
    ex.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    ex.add_argument("--save", help="draw the views to FILE.png or FILE.svg (matplotlib)")
    ex.add_argument("--gif", help="animate the scatter steps to FILE.gif")
    ex.add_argument("--html", help="write a self-contained interactive page to FILE.html")
    sh = sub.add_parser("shape", help="output size of a transposed convolution, formula filled in",
                        epilog="example: tconv shape --input-size 16x16 --kernel-size 4 --stride 2 "
                               "--padding 1")
    sh.add_argument("--input-size", type=parse_size, required=True, help="e.g. 16x16, or 16")
    sh.add_argument("--kernel-size", type=parse_size, required=True, help="e.g. 4 (every dimension) or 4x3")
    _geometry(sh)
    so = sub.add_parser("solve", help="every (kernel, stride, padding, ...) mapping a size to another",
                        epilog="example: tconv solve --input 16 --output 32")
    so.add_argument("--input", type=parse_size, required=True, help="input size, e.g. 16 or 16x8")
    so.add_argument("--output", type=parse_size, required=True, help="output size, e.g. 32 or 32x16")
    so.add_argument("--max-kernel", type=int, default=7)
    so.add_argument("--max-stride", type=int, default=4)
    so.add_argument("--max-padding", type=int, default=3)
    so.add_argument("--max-dilation", type=int, default=2)
    so.add_argument("--top", type=int, default=20, help="how many to print")
    cv = sub.add_parser("convert", help="convert a transposed convolution between frameworks",
                        description="Reads a layer in the source framework's own terms and prints "
                                    "the target's call, the weight transform, any fixup, and why.",
                        epilog=CONVERT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    cv.add_argument("--from", dest="source", required=True,
                    choices=["torch", "onnx", "keras", "jax", "tconv"])
    cv.add_argument("--to", dest="target", required=True,
                    choices=["torch", "onnx", "keras", "jax", "tconv"])
    cv.add_argument("layer", help="the source layer as a call, e.g. \"Conv2DTranspose(64, 4)\"")
    cv.add_argument("--in-channels", type=int, help="where the source's call does not say it")
    cv.add_argument("--out-channels", type=int, help="where the source's call does not say it")
    cv.add_argument("--kernel-size", type=parse_size,
                    help="where the source's call does not say it (jax): 4, or 4x3 per dimension")
    cv.add_argument("--input-size", type=parse_size,
                    help="spatial input size (8x8, or 8 for every dimension), needed by ONNX "
                         "auto_pad/output_shape")
    cv.add_argument("--input-shape", type=parse_size,
                    help="the whole input shape in the source's data layout, as convert(input_shape=) "
                         "takes it, e.g. 1x16x16x128 for keras")
    cv.add_argument("--weight-shape", type=parse_size,
                    help="the weight's shape in the source's layout, as convert(weight_shape=) takes "
                         "it; then --in-channels/--out-channels/--kernel-size are not needed")
    ov = sub.add_parser("overlap", help="kernel taps per output position: checkerboard or not",
                        epilog="example: tconv overlap --kernel 3 --stride 2")
    ov.add_argument("--kernel", type=parse_size, required=True, help="e.g. 3, or 3x4 per dimension")
    ov.add_argument("--stride", type=parse_size, required=True, help="e.g. 2, or 2x1 per dimension")
    ov.add_argument("--dilation", type=parse_size, default=(1,), help="default 1")
    args = parser.parse_args(argv)
    handlers = {"explain": cmd_explain, "shape": cmd_shape, "solve": cmd_solve, "overlap": cmd_overlap,
                "convert": cmd_convert, "bench": cmd_bench, "apply": cmd_apply}
    if args.command in handlers:
        try:
            return handlers[args.command](args)
        except (ValueError, TypeError) as exc:
            print(f"tconv: {exc}", file=sys.stderr)
            return 2
        except ImportError as exc:
            # a dependency found missing or mismatched by tconv's own check says how to fix it;
            # any other ImportError is a defect and keeps its traceback
            from .scale.run import DependencyError  # loads no dask

            if not isinstance(exc, DependencyError):
                raise
            print(f"tconv: {exc}", file=sys.stderr)
            return 2
    if args.command == "tour":
        return 1 if tour() else 0
    if args.command == "demo":
        return demo(args.out)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
