"""The ``tconv`` command.

``tconv tour`` recomputes every worked example of the seed documents and prints input, parameters,
output and whether it matches what the seed printed (``make demo`` runs it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from . import __version__, layers
from .algorithms import conv_matrix
from .examples import D2L_MATRIX, EXAMPLES, SHAPE_EXAMPLES
from .functional import conv, conv_transpose
from .spec import transposed_spec


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tconv",
        description="Transposed convolution from first principles on NumPy.",
        epilog="example: tconv tour",
    )
    parser.add_argument("--version", action="version", version=f"tconv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tour", help="recompute every worked example of the seed documents")
    bench = sub.add_parser(
        "bench", help="time tconv against PyTorch and ONNX Runtime on the layer suite",
        description="Runs every layer of the suite through tconv (auto), PyTorch and ONNX Runtime "
                    "with the same inputs and threads; prints a table and optionally writes it.",
        epilog="example: tconv bench --output benchmarks/results   (writes results.md and .json)")
    bench.add_argument("--layers", help="a JSON layer list (default: benchmarks/layers.json)")
    bench.add_argument("--only", help="comma-separated layer names")
    bench.add_argument("--threads", type=int, default=2, help="threads for every system (default 2)")
    bench.add_argument("--seconds", type=float, default=1.0,
                       help="minimum timing per system and layer (default 1)")
    bench.add_argument("--no-backward", action="store_true", help="skip the backward table")
    bench.add_argument("--output", help="write OUTPUT.md and OUTPUT.json")
    args = parser.parse_args(argv)
    if args.command == "tour":
        return 1 if tour() else 0
    if args.command == "bench":
        from . import bench as bench_module

        return bench_module.main(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
