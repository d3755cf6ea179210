"""The seeds' worked examples recomputed: ``tconv tour`` (:func:`tour`: input, parameters, output and
whether it matches what the seed printed) and ``tconv demo`` (:func:`demo`: the views of the default
example and of every seed example, figures, an animation, the interactive page and its screenshots;
what ``make demo`` runs)."""

from __future__ import annotations

import sys

import numpy as np

from ..core import layers
from ..core.functional import conv, conv_transpose
from ..core.spec import transposed_spec
from ..engine.algorithms import conv_matrix
from .examples import D2L_MATRIX, EXAMPLES, SHAPE_EXAMPLES


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


def demo(out_dir: str, out=None) -> int:
    """``make demo``: explain the default example, then every seed example; figures and a page."""
    import os

    from .figures import save_figure, save_gif
    from .page import screenshot_page, write_page
    from .steps import explain
    from .text import render

    out = out or sys.stdout
    os.makedirs(out_dir, exist_ok=True)
    D2L = np.array([[0.0, 1.0], [2.0, 3.0]])
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
