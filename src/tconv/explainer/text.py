"""Text rendering of an :class:`~tconv.explainer.Explanation`, readable in an 80-column terminal.

Grids are aligned; several grids sit side by side when they fit in the width; with ``color`` the
element being explained and where it lands are highlighted (ANSI), otherwise plain text.
"""

from __future__ import annotations

import re
import textwrap

import numpy as np

from .steps import Explanation

WIDTH = 80
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
BOLD, HILITE, DIM, RESET = "\x1b[1m", "\x1b[1;33m", "\x1b[2m", "\x1b[0m"


def _fmt(v: float) -> str:
    return f"{v:.4g}" if v != int(v) or abs(v) >= 1e6 else str(int(v))


def grid(a: np.ndarray, mark: np.ndarray | None = None, dim: np.ndarray | None = None,
         color: bool = False) -> list[str]:
    """A 1-d or 2-d array as aligned rows (higher ranks: one block per leading index).

    ``mark``/``dim`` (boolean, same shape): cells to highlight / to show faint (e.g. inserted zeros;
    without colour they are shown as ``.``).
    """
    a = np.asarray(a, dtype=float)
    while a.ndim > 2 and a.shape[0] == 1:  # a lone channel needs no heading
        a = a[0]
        mark = None if mark is None else mark[0]
        dim = None if dim is None else dim[0]
    if a.ndim > 2:
        lines = []
        for idx in np.ndindex(*a.shape[:-2]):
            lines.append(f"[{', '.join(map(str, idx))}]")
            lines += grid(a[idx], None if mark is None else mark[idx],
                          None if dim is None else dim[idx], color)
        return lines
    a2 = np.atleast_2d(a)
    m2 = None if mark is None else np.atleast_2d(mark)
    d2 = None if dim is None else np.atleast_2d(dim)
    cells = [[_fmt(v) for v in row] for row in a2]
    if d2 is not None and not color:
        cells = [[("." if d2[i, j] else c) for j, c in enumerate(row)] for i, row in enumerate(cells)]
    width = max(len(c) for row in cells for c in row)
    lines = []
    for i, row in enumerate(cells):
        parts = []
        for j, c in enumerate(row):
            c = c.rjust(width)
            if color and m2 is not None and m2[i, j]:
                c = HILITE + c + RESET
            elif color and d2 is not None and d2[i, j]:
                c = DIM + c + RESET
            parts.append(c)
        lines.append(" ".join(parts))
    return lines


def _visible(s: str) -> int:
    return len(_ANSI.sub("", s))


def side_by_side(blocks: list[tuple[str, list[str]]], width: int = WIDTH, gap: int = 4) -> list[str]:
    """Titled blocks of lines next to each other, wrapping onto new rows past ``width`` columns."""
    out: list[str] = []
    row: list[tuple[str, list[str]]] = []

    def flush():
        if not row:
            return
        widths = [max([len(t)] + [_visible(s) for s in lines]) for t, lines in row]
        height = max(len(lines) for _, lines in row)
        out.append((" " * gap).join(t.ljust(w) for (t, _), w in zip(row, widths)).rstrip())
        for k in range(height):
            parts = []
            for (_, lines), w in zip(row, widths):
                s = lines[k] if k < len(lines) else ""
                parts.append(s + " " * (w - _visible(s)))
            out.append((" " * gap).join(parts).rstrip())
        row.clear()

    used = 0
    for title, lines in blocks:
        w = max([len(title)] + [_visible(s) for s in lines])
        if row and used + gap + w > width:
            flush()
            used = 0
        used += (gap if row else 0) + w
        row.append((title, lines))
    flush()
    return out


def _params(e: Explanation) -> str:
    pads = e.pads if any(b != a for b, a in e.pads) else tuple(b for b, _ in e.pads)
    return (f"stride={e.stride}, padding={pads}, output_padding={e.output_padding}, "
            f"dilation={e.dilation}, groups={e.groups}")


def render(e: Explanation, views: tuple[str, ...] = ("scatter", "zero", "matrix"),
           color: bool = False, max_steps: int = 16) -> str:
    """The whole explanation as text."""
    h = (lambda s: BOLD + s + RESET) if color else (lambda s: s)
    L = []
    C_in, C_out = e.input.shape[0], e.output.shape[0]
    L.append(h(f"Transposed convolution, {e.rank}-d, {C_in} -> {C_out} channels"))
    L += textwrap.wrap(_params(e), WIDTH, initial_indent="  ", subsequent_indent="  ")
    L.append("")
    L.append(h("Output size, per dimension:"))
    L.append("  out = (in-1)*stride - pad_before - pad_after + dilation*(kernel-1)")
    L.append("        + output_padding + 1")
    for i, f in enumerate(e.sizes):
        L.append(f"  dim {i}: {f.text}")
    L.append("")
    blocks = [(f"input x {tuple(e.input.shape)}", grid(e.input, color=color)),
              (f"kernel w {tuple(e.weight.shape)}", grid(e.weight, color=color))]
    L += side_by_side(blocks)
    L.append("")
    if "scatter" in views:
        L += _scatter(e, h, color, max_steps)
    if "zero" in views:
        L += _zero(e, h, color)
    if "matrix" in views:
        L += _matrix(e, h, color)
    if C_in > 1 or C_out > 1:
        L.append(h("Channels: each input channel's share of each output channel (they add up):"))
        for c in range(C_in):
            blocks = [(f"x[{c}] -> y[{o}]", grid(e.pieces[c, o], color=color))
                      for o in range(C_out) if e.pieces[c, o].any() or e.groups == 1]
            L += side_by_side(blocks)
        L.append("")
    L.append(h(f"Output y {tuple(e.output.shape)}  (= tconv.conv_transpose, every view agrees):"))
    L += ["  " + s for s in grid(e.output, color=color)]
    return "\n".join(L) + "\n"


def _scatter(e, h, color, max_steps) -> list[str]:
    L = [h("Scatter view: each input element times the kernel, added into the output"),
         h("at index*stride:")]
    steps = e.steps
    shown = steps if len(steps) <= max_steps else steps[: max_steps - 1] + (steps[-1],)
    for k, st in enumerate(shown):
        if len(steps) > max_steps and k == max_steps - 1:
            L.append(f"  ... {len(steps) - max_steps} more steps ...")
        idx = ", ".join(map(str, st.index))
        mark = np.zeros(st.running.shape, bool)
        span = st.product.shape[1:]
        box = tuple(slice(o, o + s) for o, s in zip(st.origin, span))
        mark[(slice(st.out_channels[0], st.out_channels[1]), *box)] = True
        title = f"x[{st.channel}][{idx}] = {_fmt(st.value)} at {st.origin}"
        L += side_by_side([(title, grid(st.product, color=color)),
                           ("running sum", grid(st.running, mark=mark, color=color))])
    crop = ", ".join(f"{b} before / {a} after" if a >= 0 else f"{b} before / {-a} added after"
                     for b, a in e.crop)
    L += textwrap.wrap(f"Full output {tuple(e.full.shape)}; crop (padding, output_padding) per "
                       f"dimension: {crop}", WIDTH, initial_indent="  ", subsequent_indent="  ")
    L.append("")
    return L


def _zero(e, h, color) -> list[str]:
    z = e.zero_insertion
    border = ", ".join(f"{b} / {a}" for b, a in z.border)
    L = [h("Zero-insertion view: stride-1 zeros between inputs, a border of"),
         h("dilation*(k-1) - padding (negative: a crop), output_padding more at the end,"),
         h("then correlate with the flipped kernel:"),
         f"  border before / after per dimension: {border}"]
    L += side_by_side([(f"processing image {tuple(z.image.shape)}",
                        grid(z.image, dim=~z.is_input, color=color)),
                       ("flipped kernel", grid(z.flipped, color=color))])
    L.append("  (. marks an inserted zero or the border)" if not color else "")
    return L


def _matrix(e, h, color) -> list[str]:
    L = [h("Matrix view: y = W^T x, W the matrix of the convolution that maps y back to x:")]
    if e.matrix is None:
        L.append(f"  {e.matrix_note}")
        return L + [""]
    W = e.matrix.W
    L += textwrap.wrap(e.matrix_note, WIDTH, initial_indent="  ", subsequent_indent="  ")
    if W.shape[1] <= 24 and W.shape[0] <= 24:
        L += side_by_side([(f"W {W.shape}", grid(W, color=color))])
    for name, vec in (("x (flattened)", e.matrix.x), ("W^T x", e.matrix.y)):
        L += textwrap.wrap(f"{name}: " + " ".join(_fmt(v) for v in vec), WIDTH,
                           initial_indent="  ", subsequent_indent="    ")
    L.append("")
    return L
