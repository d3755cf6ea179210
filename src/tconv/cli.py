"""The ``tconv`` command: its arguments parsed and checked, each command handed to the capability it
belongs to (``tour`` and ``demo``: :mod:`tconv.explainer.tour`; ``explain``, ``shape``, ``solve``,
``overlap``: :mod:`tconv.explainer`; ``convert``: :mod:`tconv.interop`; ``bench``: :mod:`tconv.bench`;
``apply``: :mod:`tconv.scale.run`). Bad arguments exit with status 2 and a message naming the option.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

import numpy as np

from . import __version__
from .explainer.words import LANGS


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


def _ints(value: PerDim) -> tuple[int, ...]:
    """A resolved option argparse parsed as sizes (:func:`parse_size`): a tuple of ints."""
    assert isinstance(value, tuple), value
    return value


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
        _filled(_ints(o["--input-size"]), args.values) if args.input_size else default)
    w = args.kernel if args.kernel is not None else (
        _filled(_ints(o["--kernel-size"]), args.kernel_values) if args.kernel_size else default)
    e = explain(x, w, *_geometry_of(o), lang=args.lang)
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
    from .explainer.text import shape_report

    _, o = per_dimension({"--input-size": args.input_size, "--kernel-size": args.kernel_size,
                          "--stride": args.stride, "--padding": args.padding,
                          "--output-padding": args.output_padding, "--dilation": args.dilation})
    print("\n".join(shape_report(_ints(o["--input-size"]), _ints(o["--kernel-size"]), *_geometry_of(o))))
    return 0


def cmd_solve(args) -> int:
    from .explainer.text import solve_report

    _, o = per_dimension({"--input": args.input, "--output": args.output})
    lines, missing = solve_report(_ints(o["--input"]), _ints(o["--output"]), args.max_kernel, args.max_stride,
                                  args.max_padding, args.max_dilation, args.top)
    print("\n".join(lines))
    return 1 if missing else 0


def cmd_overlap(args) -> int:
    from .explainer.text import overlap_report

    _, o = per_dimension({"--kernel": args.kernel, "--stride": args.stride, "--dilation": args.dilation})
    print("\n".join(overlap_report(_ints(o["--kernel"]), _ints(o["--stride"]), _ints(o["--dilation"]))))
    return 0


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
        sizes, input_size = o["--kernel-size"], o["--input-size"]
        missing = [flag for flag, v in (("--in-channels", c_in), ("--out-channels", c_out),
                                        ("--kernel-size", sizes)) if v is None]
        if not missing:
            weight_shape = weight_shape_of(params, args.source, c_in, c_out, _ints(sizes))
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
        from .bench import dask

        return dask.main(args)
    from . import bench

    return bench.main(args)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``tconv`` command: its exit status (0 done, 1 a seed example not reproduced, 2 refused)."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here rather than at the interpreter's exit
        return code
    except BrokenPipeError:
        # the reader stopped reading (tconv solve ... | head): end quietly, as shell tools do, with
        # the status of a process ended by SIGPIPE; stdout goes nowhere, so the exit flush is silent
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13


def _main(argv: Sequence[str] | None) -> int:
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
                                                             "(default 5, in two rounds, each after two "
                                                             "warm-up runs; with --dask 3, after one)")
    bench.add_argument("--no-backward", action="store_true", help="skip the backward table")
    bench.add_argument("--profile", action="store_true",
                       help="also time each layer's matrix products alone (the algorithm auto runs, "
                            "BLAS with the same threads): how much of its time they take, and the rest")
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
    ex.add_argument("--lang", choices=LANGS, default="en",
                    help="the words of the text: English, Korean or Japanese (the numbers are the same)")
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
        from .explainer.tour import tour

        return 1 if tour() else 0
    if args.command == "demo":
        from .explainer.tour import demo

        return demo(args.out)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
