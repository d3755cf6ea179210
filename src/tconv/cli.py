"""The ``tconv`` command.

``tconv tour`` recomputes every worked example of the seed documents and prints input, parameters,
output and whether it matches what the seed printed (``make demo`` runs it).
"""

from __future__ import annotations

import argparse
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


def parse_size(text: str) -> tuple[int, ...]:
    """``"4x4"`` -> (4, 4)."""
    try:
        sizes = tuple(int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"a size is like 4 or 4x4, got {text!r}") from exc
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return sizes


def parse_ints(text: str):
    """``"2"`` -> 2, ``"2,3"`` -> (2, 3); ``same``/``valid`` pass through."""
    if text in ("same", "valid"):
        return text
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"an int or ints separated by ',', got {text!r}") from exc
    return values[0] if len(values) == 1 else values


def _filled(size: tuple[int, ...], how: str) -> np.ndarray:
    return np.ones(size) if how == "ones" else np.arange(1.0, np.prod(size) + 1).reshape(size)


def _geometry(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stride", type=parse_ints, default=1, help="int or ints per dim (2 or 2,1)")
    p.add_argument("--padding", type=parse_ints, default=0, help="int, ints per dim, same or valid")
    p.add_argument("--output-padding", type=parse_ints, default=0, help="int or ints per dim")
    p.add_argument("--dilation", type=parse_ints, default=1, help="int or ints per dim")


EXPLAIN_EXAMPLES = """examples:
  tconv explain                                   # D2L Fig. 14.10.1: [[0,1],[2,3]] with [[0,1],[2,3]]
  tconv explain --stride 2                        # D2L Fig. 14.10.2
  tconv explain --input "1 2; 3 4" --kernel "1 0; 0 1" --stride 2 --padding 1 --output-padding 1
  tconv explain --input-size 4x4 --values ones --kernel-size 3x3 --kernel-values ones --padding 2
  tconv explain --stride 2 --save steps.png --gif steps.gif --html explain.html
"""


def cmd_explain(args) -> int:
    from .explainer.steps import explain
    from .explainer.text import render

    x = args.input if args.input is not None else (
        _filled(args.input_size, args.values) if args.input_size else parse_matrix("0 1; 2 3"))
    w = args.kernel if args.kernel is not None else (
        _filled(args.kernel_size, args.kernel_values) if args.kernel_size else parse_matrix("0 1; 2 3"))
    e = explain(x, w, args.stride, args.padding, args.output_padding, args.dilation)
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

    size, forms = output_shape(args.input_size, args.kernel_size, args.stride, args.padding,
                               args.output_padding, args.dilation)
    print(f"output size {'x'.join(map(str, size))}")
    for i, f in enumerate(forms):
        print(f"  dim {i}: {f}")
    if not isinstance(args.padding, str):
        r = round_trip(size, args.kernel_size, args.stride, args.padding, args.dilation)
        print(f"a Conv with these arguments maps {'x'.join(map(str, size))} back to "
              f"{'x'.join(map(str, r.conv_output))}")
        for i, c in enumerate(r.collisions):
            if len(c) > 1:
                print(f"  dim {i}: input sizes {', '.join(map(str, c))} all convolve to "
                      f"{r.conv_output[i]}; output_padding picks one (why it exists)")
    return 0


def cmd_solve(args) -> int:
    from .explainer.steps import solve

    found = solve(args.input, args.output, args.max_kernel, args.max_stride, args.max_padding,
                  args.max_dilation)
    if not found:
        print(f"no (kernel, stride, padding, output_padding, dilation) within the bounds maps "
              f"{args.input} -> {args.output}")
        return 1
    print(f"{len(found)} ways to map {args.input} -> {args.output}, even kernel coverage first:")
    print("  kernel stride padding output_padding dilation  coverage")
    for s in found[: args.top]:
        print(f"  {s.kernel:6} {s.stride:6} {s.padding:7} {s.output_padding:14} {s.dilation:8}  "
              f"{'even' if s.even else 'uneven (checkerboard)'}")
    return 0


def cmd_overlap(args) -> int:
    from .explainer.steps import overlap

    o = overlap(args.kernel, args.stride, args.dilation)
    import textwrap

    print(f"kernel {args.kernel}, stride {args.stride}, dilation {args.dilation}: kernel taps per "
          f"output position (position mod {args.stride}): {' '.join(map(str, o.counts))}")
    print("even coverage" if o.even else textwrap.fill(
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
    write_page(e, os.path.join(out_dir, "explain.html"))
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
    print(f"figures, an animation and an interactive page (explain.html) are in {os.path.abspath(out_dir)}/",
          file=out)
    return 1 if bad else 0


_CONVERT_SOURCES = {
    "torch": ("\"ConvTranspose2d(128, 64, 3, stride=2, padding=1, output_padding=1)\"", ""),
    "tconv": ("\"ConvTranspose1d(16, 8, 4, stride=2, padding=((1, 2),))\"", ""),
    "keras": ("\"Conv2DTranspose(64, 4, strides=2, padding='same')\"", " --in-channels 128"),
    "onnx": ("\"ConvTranspose(kernel_shape=[3, 3], strides=[2, 2], auto_pad='SAME_UPPER')\"",
             " --in-channels 4 --out-channels 4 --input-size 8x8"),
    "jax": ("\"conv_transpose(kernel_size=(4,), strides=(2,), padding='SAME')\"",
            " --in-channels 3 --out-channels 5"),
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
    import re

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


def cmd_convert(args) -> int:
    from .interop.convert import convert

    params, rank = parse_layer(args.layer, args.source)
    if rank is not None:
        params.setdefault("rank", rank)
    for key, value in (("in_channels", args.in_channels), ("out_channels", args.out_channels)):
        if value is not None:
            params.setdefault(key, value)
    if args.source == "keras":
        params.setdefault("in_channels", args.in_channels or 1)
    input_shape = None
    if args.input_size:
        input_shape = tuple(args.input_size)  # spatial sizes alone
        params.setdefault("rank", len(args.input_size))
    c = convert(params, args.source, args.target, input_shape=input_shape)
    print(c.explain())
    return 0


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
        "bench", help="time tconv against PyTorch and ONNX Runtime on the layer suite",
        description="Runs every layer of the suite through tconv (auto), PyTorch and ONNX Runtime "
                    "with the same inputs and threads; prints a table and optionally writes it.",
        epilog="example: tconv bench --output benchmarks/results   (writes results.md and .json)")
    bench.add_argument("--layers", help="a JSON layer list (default: the suite shipped with tconv)")
    bench.add_argument("--only", help="comma-separated layer names")
    bench.add_argument("--threads", type=int, default=2, help="threads for every system (default 2)")
    bench.add_argument("--seconds", type=float, default=1.0,
                       help="minimum timing per system and layer (default 1)")
    bench.add_argument("--no-backward", action="store_true", help="skip the backward table")
    bench.add_argument("--output", help="write OUTPUT.md and OUTPUT.json")
    ex = sub.add_parser("explain", help="explain a transposed convolution step by step",
                        description="Every output number of a (2-d) transposed convolution, three "
                                    "ways: scatter, zero-insertion, matrix.",
                        epilog=EXPLAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("--input", type=parse_matrix, help='a matrix, e.g. "0 1; 2 3" (the default)')
    ex.add_argument("--input-size", type=parse_size, help="or a size, e.g. 4x4")
    ex.add_argument("--values", choices=["range", "ones"], default="range",
                    help="input values for --input-size: 1..n (range) or ones")
    ex.add_argument("--kernel", type=parse_matrix, help='a matrix, e.g. "0 1; 2 3" (the default)')
    ex.add_argument("--kernel-size", type=parse_size, help="or a size, e.g. 3x3")
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
    sh.add_argument("--input-size", type=parse_size, required=True)
    sh.add_argument("--kernel-size", type=parse_ints, required=True)
    _geometry(sh)
    so = sub.add_parser("solve", help="every (kernel, stride, padding, ...) mapping a size to another",
                        epilog="example: tconv solve --input 16 --output 32")
    so.add_argument("--input", type=int, required=True)
    so.add_argument("--output", type=int, required=True)
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
    cv.add_argument("--input-size", type=parse_size,
                    help="spatial input size, needed by ONNX auto_pad/output_shape")
    ov = sub.add_parser("overlap", help="kernel taps per output position: checkerboard or not",
                        epilog="example: tconv overlap --kernel 3 --stride 2")
    ov.add_argument("--kernel", type=int, required=True)
    ov.add_argument("--stride", type=int, required=True)
    ov.add_argument("--dilation", type=int, default=1)
    args = parser.parse_args(argv)
    handlers = {"explain": cmd_explain, "shape": cmd_shape, "solve": cmd_solve, "overlap": cmd_overlap,
                "convert": cmd_convert}
    if args.command in handlers:
        try:
            return handlers[args.command](args)
        except (ValueError, TypeError) as exc:
            print(f"tconv: {exc}", file=sys.stderr)
            return 2
    if args.command == "tour":
        return 1 if tour() else 0
    if args.command == "demo":
        return demo(args.out)
    if args.command == "bench":
        from . import bench as bench_module

        return bench_module.main(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
