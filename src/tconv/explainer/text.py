"""Text rendering of an :class:`~tconv.explainer.Explanation`, readable in an 80-column terminal.

Grids are aligned; several grids sit side by side when they fit in the width; with ``color`` the
element being explained and where it lands are highlighted (ANSI), otherwise plain text.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator

import numpy as np

from .steps import Explanation, matrix_note
from .words import check_lang, width, words

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
    """Terminal columns, without colour codes, a wide (CJK) character two."""
    return width(_ANSI.sub("", s))


def _pad(s: str, columns: int) -> str:
    return s + " " * (columns - _visible(s))


def side_by_side(blocks: list[tuple[str, list[str]]], width: int = WIDTH, gap: int = 4) -> list[str]:
    """Titled blocks of lines next to each other, wrapping onto new rows past ``width`` columns."""
    out: list[str] = []
    row: list[tuple[str, list[str]]] = []

    def flush():
        if not row:
            return
        widths = [max([_visible(t)] + [_visible(s) for s in lines]) for t, lines in row]
        height = max(len(lines) for _, lines in row)
        out.append((" " * gap).join(_pad(t, w) for (t, _), w in zip(row, widths)).rstrip())
        for k in range(height):
            parts = [_pad(lines[k] if k < len(lines) else "", w) for (_, lines), w in zip(row, widths)]
            out.append((" " * gap).join(parts).rstrip())
        row.clear()

    used = 0
    for title, lines in blocks:
        w = max([_visible(title)] + [_visible(s) for s in lines])
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


def _tokens(text: str) -> Iterator[str]:
    """Where lines may break: runs of spaces, each wide (CJK) character, runs of anything else."""
    for run in re.findall(r" +|[^ ]+", text):
        narrow = ""
        for ch in run:
            if width(ch) == 2:
                if narrow:
                    yield narrow
                narrow = ""
                yield ch
            else:
                narrow += ch
        if narrow:
            yield narrow


def _wrap(text: str) -> list[str]:
    """``text`` in lines of at most :data:`WIDTH` terminal columns, indented by two: broken at
    spaces, and between any two CJK characters (Japanese runs have no spaces)."""
    lines = ["  "]
    for token in _tokens(text):
        if token.startswith(" "):
            if _visible(lines[-1]) + len(token) >= WIDTH:
                lines.append("  ")
            elif lines[-1].strip():
                lines[-1] += token
            continue
        if lines[-1].strip() and _visible(lines[-1]) + _visible(token) > WIDTH:
            lines.append("  ")
        lines[-1] += token
    return [line.rstrip() for line in lines]


def render(e: Explanation, views: tuple[str, ...] = ("scatter", "zero", "matrix"),
           color: bool = False, max_steps: int = 16, lang: str | None = None) -> str:
    """The whole explanation as text, its words in ``lang`` (default: the explanation's own,
    ``explain(..., lang=)``; ``"en"``, ``"ko"`` or ``"ja"``), the numbers the same in each."""
    lang = e.lang if lang is None else check_lang("render", lang)
    W = words(lang)
    h = (lambda s: BOLD + s + RESET) if color else (lambda s: s)
    L = []
    C_in, C_out = e.input.shape[0], e.output.shape[0]
    L.append(h(W["title"].format(rank=e.rank, c_in=C_in, c_out=C_out)))
    L += textwrap.wrap(_params(e), WIDTH, initial_indent="  ", subsequent_indent="  ")
    L.append("")
    L.append(h(W["size"]))
    L.append("  out = (in-1)*stride - pad_before - pad_after + dilation*(kernel-1)")
    L.append("        + output_padding + 1")
    for i, f in enumerate(e.sizes):
        L.append(f"  {W['dim'].format(i=i)}: {f.text}")
    L.append("")
    blocks = [(W["input"].format(shape=tuple(e.input.shape)), grid(e.input, color=color)),
              (W["kernel"].format(shape=tuple(e.weight.shape)), grid(e.weight, color=color))]
    L += side_by_side(blocks)
    L.append("")
    if "scatter" in views:
        L += _scatter(e, W, h, color, max_steps)
    if "zero" in views:
        L += _zero(e, W, h, color)
    if "matrix" in views:
        L += _matrix(e, W, h, color, lang)
    if C_in > 1 or C_out > 1:
        L.append(h(W["channels"]))
        for c in range(C_in):
            blocks = [(f"x[{c}] -> y[{o}]", grid(e.pieces[c, o], color=color))
                      for o in range(C_out) if e.pieces[c, o].any() or e.groups == 1]
            L += side_by_side(blocks)
        L.append("")
    L.append(h(W["output"].format(shape=tuple(e.output.shape))))
    L += ["  " + s for s in grid(e.output, color=color)]
    return "\n".join(L) + "\n"


def _scatter(e, W, h, color, max_steps) -> list[str]:
    L = [h(line) for line in W["scatter"].split("\n")]
    steps = e.steps
    shown = steps if len(steps) <= max_steps else steps[: max_steps - 1] + (steps[-1],)
    for k, st in enumerate(shown):
        if len(steps) > max_steps and k == max_steps - 1:
            L.append("  " + W["more"].format(n=len(steps) - max_steps))
        idx = ", ".join(map(str, st.index))
        mark = np.zeros(st.running.shape, bool)
        span = st.product.shape[1:]
        box = tuple(slice(o, o + s) for o, s in zip(st.origin, span))
        mark[(slice(st.out_channels[0], st.out_channels[1]), *box)] = True
        title = W["step"].format(c=st.channel, index=idx, value=_fmt(st.value), origin=st.origin)
        L += side_by_side([(title, grid(st.product, color=color)),
                           (W["running"], grid(st.running, mark=mark, color=color))])
    crop = ", ".join(W["crop_item"].format(b=b, a=a) if a >= 0 else W["crop_added"].format(b=b, a=-a)
                     for b, a in e.crop)
    L += _wrap(W["crop"].format(shape=tuple(e.full.shape), crop=crop))
    L.append("")
    return L


def _zero(e, W, h, color) -> list[str]:
    z = e.zero_insertion
    border = ", ".join(f"{b} / {a}" for b, a in z.border)
    L = [h(line) for line in W["zero"].split("\n")]
    L.append("  " + W["border"].format(border=border))
    L += side_by_side([(W["image"].format(shape=tuple(z.image.shape)),
                        grid(z.image, dim=~z.is_input, color=color)),
                       (W["flipped"], grid(z.flipped, color=color))])
    L.append("  " + W["dots"] if not color else "")
    return L


def _matrix(e, W, h, color, lang) -> list[str]:
    L = [h(W["matrix"])] + _wrap(matrix_note(e.spec, lang))
    if e.matrix is None:
        return L + [""]
    M = e.matrix.W
    if M.shape[1] <= 24 and M.shape[0] <= 24:
        L += side_by_side([(f"W {M.shape}", grid(M, color=color))])
    for name, vec in ((W["flat"], e.matrix.x), ("W^T x", e.matrix.y)):
        L += textwrap.wrap(f"{name}: " + " ".join(_fmt(v) for v in vec), WIDTH,
                           initial_indent="  ", subsequent_indent="    ")
    L.append("")
    return L


def _joined(size) -> str:
    return "x".join(map(str, size))


def shape_report(input_size: tuple[int, ...], kernel: tuple[int, ...], stride, padding, output_padding,
                 dilation) -> list[str]:
    """``tconv shape``: the output size with each dimension's formula filled in, and what a Conv with
    the same arguments maps it back to (where several input sizes collide, output_padding picks one).

    >>> print("\\n".join(shape_report((3,), (3,), (2,), (1,), (0,), (1,))))
    output size 5
      dim 0: (3-1)*2 - 1 - 1 + 1*(3-1) + 0 + 1 = 5
    a Conv with these arguments maps 5 back to 3
      dim 0: input sizes 5, 6 all convolve to 3; output_padding picks one (why it exists)
    """
    from .steps import output_shape, round_trip

    size, forms = output_shape(input_size, kernel, stride, padding, output_padding, dilation)
    lines = [f"output size {_joined(size)}"] + [f"  dim {i}: {f}" for i, f in enumerate(forms)]
    if not isinstance(padding, str):
        r = round_trip(size, kernel, stride, padding, dilation)
        lines.append(f"a Conv with these arguments maps {_joined(size)} back to {_joined(r.conv_output)}")
        lines += [f"  dim {i}: input sizes {', '.join(map(str, c))} all convolve to {r.conv_output[i]}; "
                  f"output_padding picks one (why it exists)"
                  for i, c in enumerate(r.collisions) if len(c) > 1]
    return lines


def solve_report(inputs: tuple[int, ...], outputs: tuple[int, ...], max_kernel: int, max_stride: int,
                 max_padding: int, max_dilation: int, top: int) -> tuple[list[str], int]:
    """``tconv solve``: every (kernel, stride, padding, output_padding, dilation) within the bounds that
    maps ``inputs[i]`` to ``outputs[i]``, the ``top`` first of each (even kernel coverage first);
    dimensions asking the same question share one answer. Returns the lines and how many questions
    have no answer."""
    from .steps import solve

    rank = len(inputs)
    dims: dict[tuple[int, int], list[int]] = {}
    for i, pair in enumerate(zip(inputs, outputs)):
        dims.setdefault(pair, []).append(i)
    lines, missing = [], 0
    for (n_in, n_out), which in dims.items():
        where = "" if rank == 1 else (
            "every dimension: " if len(which) == rank else f"dim {', '.join(map(str, which))}: ")
        found = solve(n_in, n_out, max_kernel, max_stride, max_padding, max_dilation)
        if not found:
            missing += 1
            lines.append(f"{where}no (kernel, stride, padding, output_padding, dilation) within the bounds "
                         f"maps {n_in} -> {n_out}")
            continue
        lines.append(f"{where}{len(found)} ways to map {n_in} -> {n_out}, even kernel coverage first:")
        lines.append("  kernel stride padding output_padding dilation  coverage")
        lines += [f"  {sol.kernel:6} {sol.stride:6} {sol.padding:7} {sol.output_padding:14} "
                  f"{sol.dilation:8}  {'even' if sol.even else 'uneven (checkerboard)'}"
                  for sol in found[:top]]
    return lines, missing


def overlap_report(kernels: tuple[int, ...], strides: tuple[int, ...],
                   dilations: tuple[int, ...]) -> list[str]:
    """``tconv overlap``: per dimension, how many kernel taps reach each output position (by position
    mod stride), and whether the coverage is even (uneven: checkerboard artifacts).

    >>> overlap_report((3,), (2,), (1,))[0]
    'kernel 3, stride 2, dilation 1: kernel taps per output position (position mod 2): 2 1'
    """
    from .steps import overlap

    rank, lines, uneven = len(kernels), [], False
    for i, (k, s, d) in enumerate(zip(kernels, strides, dilations)):
        ov = overlap(k, s, d)
        uneven |= not ov.even
        lines.append(f"{'' if rank == 1 else f'dim {i}: '}kernel {k}, stride {s}, dilation {d}: kernel taps "
                     f"per output position (position mod {s}): {' '.join(map(str, ov.counts))}")
    lines.append("even coverage" if not uneven else textwrap.fill(
        "uneven coverage: neighbouring outputs get different numbers of taps, the source of "
        "checkerboard artifacts (Odena et al., Distill 2016); use a kernel divisible by the "
        "stride", 80))
    return lines
