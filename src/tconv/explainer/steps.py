"""Explain a transposed convolution: every output number, three ways, and the size arithmetic.

:func:`explain` returns an :class:`Explanation`; the CLI, the figures and the HTML page only render
it. Where its numbers come from:

- ``output`` is :func:`tconv.conv_transpose` with ``algorithm='scatter'``; ``sizes`` and ``crop``
  come from the validated spec (:func:`tconv.core.spec.transposed_spec`);
- the scatter view (``steps``, ``full``) is recomputed here, one input element at a time, by a loop
  of its own (the ``scatter`` algorithm instead multiplies tap by tap, in batches);
- the zero-insertion view builds its image with the algorithm's helpers
  (:func:`~tconv.engine.algorithms.insert_zeros`, :func:`~tconv.engine.algorithms.zero_insertion_border`,
  :func:`~tconv.core.padding.pad_or_crop`); its ``output`` is the ``zero_insertion`` algorithm's;
- the matrix view's ``W`` is :func:`~tconv.engine.algorithms.conv_matrix`'s, and ``y = W^T x`` is
  multiplied here;
- ``pieces`` are the ``scatter`` algorithm run with one input channel's weights at a time.

Every view's result is checked against ``output`` before :func:`explain` returns (a disagreement
would be a bug in tconv, a RuntimeError), which is what the text rendering's "every view agrees"
rests on; the tests check each view against PyTorch too.
Planning helpers: :func:`output_shape`, :func:`round_trip`, :func:`solve`, :func:`overlap`.

>>> import numpy as np
>>> e = explain(np.array([[0., 1.], [2., 3.]]), np.array([[0., 1.], [2., 3.]]))   # D2L Fig. 14.10.1
>>> e.output[0].tolist()
[[0.0, 0.0, 1.0], [0.0, 4.0, 6.0], [4.0, 12.0, 9.0]]
>>> e.sizes[0].text
'(2-1)*1 - 0 - 0 + 1*(2-1) + 0 + 1 = 3'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from math import prod
from typing import Any

import numpy as np

from ..core.functional import conv_transpose
from ..core.shapes import conv_size, effective_kernel, full_size, output_padding_limit, transposed_size
from ..core.spec import ConvSpec, as_array, int_tuple, transposed_spec
from ..engine import algorithms
from .words import check_lang, words

#: explain() shows the scatter steps one input element at a time up to this many elements.
MAX_STEPS = 4096
#: The matrix view is shown up to this many matrix entries.
MAX_MATRIX_ENTRIES = 1 << 16


@dataclass(frozen=True)
class SizeFormula:
    """One dimension's output size, with PyTorch's formula filled in."""

    n: int
    kernel: int
    stride: int
    pads: tuple[int, int]
    dilation: int
    output_padding: int
    size: int

    @property
    def text(self) -> str:
        b, a = self.pads
        return (f"({self.n}-1)*{self.stride} - {b} - {a} + {self.dilation}*({self.kernel}-1) + "
                f"{self.output_padding} + 1 = {self.size}")


@dataclass(frozen=True)
class ScatterStep:
    """Input element ``x[c, *index]`` times the kernel, landing at ``origin`` of the full output."""

    channel: int
    index: tuple[int, ...]
    value: float
    origin: tuple[int, ...]  # where kernel tap 0 lands in the full (uncropped) output: index*stride
    product: np.ndarray  # (C_out/groups, *span): value * kernel, dilated taps placed
    out_channels: tuple[int, int]  # the output channels (first, last+1) this group feeds
    running: np.ndarray  # (C_out, *full): the sum after this step


@dataclass(frozen=True)
class ZeroInsertion:
    """The zero-insertion view: a processing image correlated with the flipped kernel."""

    dilated: np.ndarray  # (C_in, *((n-1)*s+1)): s-1 zeros between input elements
    border: tuple[tuple[int, int], ...]  # d*(k-1) - crop per side (negative: a crop of the image)
    image: np.ndarray  # (C_in, *...): dilated, then bordered (or cropped)
    is_input: np.ndarray  # bool mask over image: which pixels are input elements
    flipped: np.ndarray  # the weight flipped in every spatial dimension
    output: np.ndarray  # (C_out, *out): the zero_insertion algorithm's result


@dataclass(frozen=True)
class MatrixView:
    """``W`` (the convolution's matrix, ``(C_in*P_in, C_out*P_out)``) and ``y = W^T x``."""

    W: np.ndarray
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Explanation:
    """Everything :func:`explain` found; see its docstring."""

    input: np.ndarray  # (C_in, *in)
    weight: np.ndarray  # (C_in, C_out/groups, *k)
    stride: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    sizes: tuple[SizeFormula, ...]
    full: np.ndarray  # (C_out, *full): the scatter before cropping
    crop: tuple[tuple[int, int], ...]  # cropped from the full scatter per side; negative: appended
    steps: tuple[ScatterStep, ...]
    zero_insertion: ZeroInsertion
    matrix: MatrixView | None
    matrix_note: str
    pieces: np.ndarray  # (C_in, C_out, *out): each input channel's share of each output channel
    output: np.ndarray  # (C_out, *out) == conv_transpose(...)
    spec: ConvSpec = field(repr=False)
    lang: str = "en"  # the words of its text (tconv.explainer.words.LANGS)

    @property
    def rank(self) -> int:
        return self.weight.ndim - 2

    # how a notebook shows it: the page, a picture, the text (see DISPLAYS)
    def _repr_html_(self) -> str | None:
        return DISPLAYS["text/html"](self) if "text/html" in DISPLAYS else None

    def _repr_png_(self) -> bytes | None:
        return DISPLAYS["image/png"](self) if "image/png" in DISPLAYS else None

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(DISPLAYS["text/plain"](self) if "text/plain" in DISPLAYS else repr(self))


#: How a notebook shows an :class:`Explanation`, per MIME type: a function of it returning the
#: data, or None when it cannot. Filled by :mod:`tconv.explainer.notebook` (imported with the
#: package), which holds the renderers; the views' modules import this one, not the other way.
DISPLAYS: dict[str, Callable[[Explanation], Any]] = {}


def _as_problem(input: Any, weight: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(C_in, *in)`` and ``(C_in, C_out/groups, *k)`` float64; a plain matrix pair is 1 channel."""
    x = as_array("explain", "input", input).astype(np.float64)
    w = as_array("explain", "weight", weight).astype(np.float64)
    if w.ndim == x.ndim and w.ndim in (1, 2, 3):  # a bare grid and a bare kernel
        x, w = x[None], w[None, None]
    if x.ndim == w.ndim and x.shape[0] == 1:  # a batch of one
        x = x[0]
    if x.ndim != w.ndim - 1:
        raise ValueError(
            f"explain: input must be (C_in, *spatial) (or a bare grid with a bare kernel) for a weight "
            f"of shape {w.shape}, got input of shape {x.shape}"
        )
    return x, w


def explain(
    input: Any,
    weight: Any,
    stride: int | tuple[int, ...] = 1,
    padding: int | str | tuple = 0,
    output_padding: int | tuple[int, ...] = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    *,
    lang: str = "en",
) -> Explanation:
    """Explain ``conv_transpose(input, weight, ...)`` step by step.

    ``input``: ``(C_in, *in)``, a batch of one, or a bare grid (then ``weight`` is a bare kernel of
    the same rank, one channel in and out). ``weight``: ``(C_in, C_out/groups, *k)``. Padding as in
    :func:`tconv.conv_transpose` (zeros mode only). Computed in float64. Refuses (ValueError) an
    input of more than :data:`MAX_STEPS` elements. Returns an :class:`Explanation` (where each part
    comes from: see the module docstring):

    - ``sizes``: the output size per dimension, formula filled in;
    - ``steps``: the scatter view, one input element at a time: the kernel scaled by it, where it
      lands (``index*stride``), and the running sum over the full output; then ``crop`` (padding
      and the output_padding strip; a negative crop appends zeros) gives ``output``;
    - ``zero_insertion``: the processing image (``s-1`` zeros between input elements, a border of
      ``d*(k-1) - padding``, output_padding more on the far side; a negative border is a crop), the
      flipped kernel, the output;
    - ``matrix``: the convolution matrix ``W`` and ``y = W^T x`` (None, with ``matrix_note`` saying
      why, when ``W`` would have more than :data:`MAX_MATRIX_ENTRIES` entries);
    - ``pieces``: each (input channel, output channel) share; they sum to ``output``.

    ``lang`` (``"en"``, ``"ko"`` or ``"ja"``): the language of its text
    (:func:`tconv.explainer.text.render`); the numbers are the same in each.
    """
    lang = check_lang("explain", lang)
    x, w = _as_problem(input, weight)
    rank = w.ndim - 2
    spec = transposed_spec("explain", x, w, None, stride, padding, output_padding, groups, dilation)
    n_steps = prod(x.shape)
    if n_steps > MAX_STEPS:
        raise ValueError(
            f"explain: the input has {n_steps} elements; step-by-step explanations are limited to "
            f"{MAX_STEPS} (tconv.explainer.steps.MAX_STEPS): explain a smaller example"
        )
    xb = x[None]
    output = conv_transpose(x, w, None, spec.stride, spec.pads, spec.extra, spec.groups,
                            spec.dilation, algorithm="scatter")
    ops = tuple(e for e in spec.extra)
    sizes = tuple(
        SizeFormula(n, k, s, p, d, o, L)
        for n, k, s, p, d, o, L in zip(spec.small, spec.kernel, spec.stride, spec.pads,
                                       spec.dilation, ops, spec.large)
    )

    # the scatter view, element by element, over the full (uncropped) output
    full = tuple(full_size(n, k, s, d)
                 for n, k, s, d in zip(spec.small, spec.kernel, spec.stride, spec.dilation))
    G = spec.groups
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    running = np.zeros((spec.large_channels, *full))
    steps = []
    span = tuple(effective_kernel(k, d) for k, d in zip(spec.kernel, spec.dilation))
    taps = tuple(slice(None, None, d) for d in spec.dilation)
    for c in range(spec.small_channels):
        g = c // Cs
        for index in np.ndindex(*spec.small):
            value = float(x[(c, *index)])
            prod_ = np.zeros((Cl, *span))
            prod_[(slice(None), *taps)] = value * w[c]
            origin = tuple(i * s for i, s in zip(index, spec.stride))
            box = tuple(slice(o, o + sp) for o, sp in zip(origin, span))
            running[(slice(g * Cl, (g + 1) * Cl), *box)] += prod_
            steps.append(ScatterStep(c, tuple(index), value, origin, prod_, (g * Cl, (g + 1) * Cl),
                                     running.copy()))
    crop = spec.core_crop  # explain() is zeros mode: the crop of the output itself

    # the zero-insertion view, built with the zero_insertion algorithm's helpers; its output is the
    # algorithm's
    dil = algorithms.insert_zeros(x, spec.stride)
    mask = algorithms.insert_zeros(np.ones(x.shape, bool), spec.stride)
    border = algorithms.zero_insertion_border(spec)
    from ..core.padding import pad_or_crop

    image = pad_or_crop(dil, border)
    is_input = pad_or_crop(mask, border)
    flipped = w[(slice(None), slice(None), *(slice(None, None, -1),) * rank)]
    zi_out = algorithms.zero_insertion(spec, xb, w)[0]
    zero_insertion = ZeroInsertion(dil, border, image, is_input.astype(bool), flipped, zi_out)

    # the matrix view
    rows, cols = matrix_shape(spec)
    matrix = None
    if rows * cols <= MAX_MATRIX_ENTRIES:
        W = algorithms.conv_matrix(spec, w)
        matrix = MatrixView(W, x.ravel(), W.T @ x.ravel())
    note = matrix_note(spec)

    # each (input channel, output channel) share
    pieces = np.zeros((spec.small_channels, spec.large_channels, *spec.large))
    for c in range(spec.small_channels):
        g = c // Cs
        wc = np.zeros_like(w)
        wc[c] = w[c]
        part = algorithms.scatter(spec, xb, wc)[0]
        pieces[c, g * Cl:(g + 1) * Cl] = part[g * Cl:(g + 1) * Cl]

    # every view must give the output: the text says so, so it is checked here, each time
    views = {"scatter steps": pad_or_crop(running, tuple((-b, -a) for b, a in crop)),
             "zero-insertion": zi_out, "channel pieces": pieces.sum(axis=0)}
    if matrix is not None:
        views["matrix"] = matrix.y.reshape(output.shape)
    for view, value in views.items():
        if not np.allclose(value, output, rtol=1e-9, atol=1e-9 * max(1.0, float(np.abs(output).max()))):
            raise RuntimeError(f"explain: the {view} view disagrees with conv_transpose (a bug in tconv)")
    return Explanation(x, w, spec.stride, spec.pads, ops, spec.dilation, G, sizes, running, crop,
                       tuple(steps), zero_insertion, matrix, note, pieces, output, spec, lang)


def matrix_shape(spec: ConvSpec) -> tuple[int, int]:
    """The convolution matrix ``W``'s shape: ``(C_in * prod(in), C_out * prod(out))``."""
    return spec.small_channels * prod(spec.small), spec.large_channels * prod(spec.large)


def matrix_note(spec: ConvSpec, lang: str = "en") -> str:
    """What the matrix view says of ``W`` in ``lang``: its shape, or why it is not shown (more than
    :data:`MAX_MATRIX_ENTRIES` entries).

    >>> from tconv.core.spec import transposed_spec
    >>> spec = transposed_spec("doc", np.zeros((1, 2, 2)), np.zeros((1, 1, 2, 2)), None, 2)
    >>> matrix_note(spec).split(";")[0]
    'W is the 4x16 matrix of the convolution that maps the output back to the input'
    >>> matrix_note(spec, "ja").split("、")[0]
    'W は出力を入力に戻す畳み込みの 4x16 行列で'
    """
    rows, cols = matrix_shape(spec)
    if rows * cols <= MAX_MATRIX_ENTRIES:
        return words(lang)["matrix_note"].format(rows=rows, cols=cols)
    return words(lang)["matrix_big"].format(entries=rows * cols, rows=rows, cols=cols,
                                            limit=MAX_MATRIX_ENTRIES)


# --------------------------------------------------------------------------- planning helpers


def output_shape(
    input_size: int | tuple[int, ...],
    kernel_size: int | tuple[int, ...],
    stride: int | tuple[int, ...] = 1,
    padding: int | tuple = 0,
    output_padding: int | tuple[int, ...] = 0,
    dilation: int | tuple[int, ...] = 1,
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The output size of a transposed convolution per dimension, and each formula filled in.

    >>> output_shape((4, 4), 3, stride=2, padding=1, output_padding=1)
    ((8, 8), ('(4-1)*2 - 1 - 1 + 1*(3-1) + 1 + 1 = 8', '(4-1)*2 - 1 - 1 + 1*(3-1) + 1 + 1 = 8'))
    """
    sizes = (input_size,) if isinstance(input_size, int) else tuple(input_size)
    rank = len(sizes)
    x = np.zeros((1, *sizes))
    w = np.zeros((1, 1, *int_tuple("output_shape", "kernel_size", kernel_size, rank, 1)))
    spec = transposed_spec("output_shape", x, w, None, stride, padding, output_padding, 1, dilation)
    forms = tuple(SizeFormula(n, k, s, p, d, o, L).text for n, k, s, p, d, o, L in zip(
        spec.small, spec.kernel, spec.stride, spec.pads, spec.dilation, spec.extra, spec.large))
    return spec.large, forms


@dataclass(frozen=True)
class RoundTrip:
    """A convolution's input size, its output size, and the transposed convolution that restores it."""

    input_size: tuple[int, ...]
    conv_output: tuple[int, ...]
    output_padding: tuple[int, ...]
    collisions: tuple[tuple[int, ...], ...]  # per dimension: every input size with the same output


def round_trip(
    input_size: int | tuple[int, ...],
    kernel_size: int | tuple[int, ...],
    stride: int | tuple[int, ...] = 1,
    padding: int | tuple[int, ...] = 0,
    dilation: int | tuple[int, ...] = 1,
) -> RoundTrip:
    """The output_padding that makes ``ConvTranspose`` restore a ``Conv``'s input size, and why.

    With stride > 1 the convolution's ``floor`` forgets a remainder, so several input sizes collide
    on one output size; output_padding says which to restore.

    >>> r = round_trip(7, kernel_size=3, stride=2, padding=1)
    >>> r.conv_output, r.output_padding, r.collisions
    ((4,), (0,), ((7, 8),))
    """
    sizes = (input_size,) if isinstance(input_size, int) else tuple(input_size)
    rank = len(sizes)
    k = int_tuple("round_trip", "kernel_size", kernel_size, rank, 1)
    s = int_tuple("round_trip", "stride", stride, rank, 1)
    p = int_tuple("round_trip", "padding", padding, rank, 0)
    d = int_tuple("round_trip", "dilation", dilation, rank, 1)
    outs, ops, collide = [], [], []
    for L, ki, si, pi, di in zip(sizes, k, s, p, d):
        n = conv_size(L, ki, si, (pi, pi), di)
        if n < 1:
            raise ValueError(f"round_trip: a convolution of size {L} with kernel {ki} gives no output")
        outs.append(n)
        ops.append(L - transposed_size(n, ki, si, (pi, pi), di))
        lo = transposed_size(n, ki, si, (pi, pi), di)
        collide.append(tuple(v for v in range(max(lo, 1), lo + si)
                             if conv_size(v, ki, si, (pi, pi), di) == n))
    return RoundTrip(sizes, tuple(outs), tuple(ops), tuple(collide))


@dataclass(frozen=True)
class Solution:
    """One way to map an input size to an output size (one dimension)."""

    kernel: int
    stride: int
    padding: int
    output_padding: int
    dilation: int
    even: bool  # every output pixel is reached by the same number of kernel taps (no checkerboard)


def solve(in_size: int, out_size: int, max_kernel: int = 7, max_stride: int = 4,
          max_padding: int = 3, max_dilation: int = 2) -> list[Solution]:
    """Every (kernel, stride, padding, output_padding, dilation) within the bounds mapping in -> out.

    Ranked: even kernel coverage first (kernel a multiple of the stride, so no checkerboard
    artifacts), then smaller kernels, strides, paddings.

    >>> solve(16, 32)[0]
    Solution(kernel=2, stride=2, padding=0, output_padding=0, dilation=1, even=True)
    """
    for name, v in (("in_size", in_size), ("out_size", out_size)):
        if int_tuple("solve", name, v, 1, 1)[0] != v:  # pragma: no cover - int_tuple raises
            raise ValueError
    found = []
    for k, s, p, d in product(range(1, max_kernel + 1), range(1, max_stride + 1),
                              range(0, max_padding + 1), range(1, max_dilation + 1)):
        if d > 1 and k == 1:
            continue
        op = out_size - transposed_size(in_size, k, s, (p, p), d)
        if 0 <= op < output_padding_limit(s, d):
            found.append(Solution(k, s, p, op, d, overlap(k, s, d).even))
    found.sort(key=lambda sol: (not sol.even, sol.output_padding, sol.kernel, sol.stride, sol.padding,
                                sol.dilation))
    return found


@dataclass(frozen=True)
class Overlap:
    """How many kernel taps reach each output position, one stride period (in the interior)."""

    counts: tuple[int, ...]  # per residue r = j mod stride
    even: bool


def overlap(kernel: int, stride: int, dilation: int = 1) -> Overlap:
    """Taps per output position in the interior, by position modulo the stride (Odena et al. 2016).

    Uneven counts make checkerboard artifacts: some output pixels receive more kernel taps than
    their neighbours.

    >>> overlap(3, 2)
    Overlap(counts=(2, 1), even=False)
    >>> overlap(4, 2).even
    True
    """
    for name, v, lo in (("kernel", kernel, 1), ("stride", stride, 1), ("dilation", dilation, 1)):
        int_tuple("overlap", name, v, 1, lo)
    counts = [0] * stride
    for t in range(kernel):
        counts[(t * dilation) % stride] += 1
    return Overlap(tuple(counts), len(set(counts)) == 1)
