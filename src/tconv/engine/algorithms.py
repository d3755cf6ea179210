"""The algorithms: plain functions over a :class:`~tconv.core.spec.ConvSpec` and checked arrays.

Symbols (see :mod:`tconv.core.spec`): ``N`` batch, ``G`` groups, ``Cs``/``Cl`` the small/large side's
channels per group, ``n``/``L`` their spatial sizes, ``k`` the kernel, ``s`` the stride, ``d`` the
dilation, ``P_x`` the product of the sizes ``x``. Arrays reaching an algorithm are batched and of
``spec.dtype``, but may be the caller's own (strided, Fortran-ordered, read-only): an algorithm never
writes into them. Weights are ``(G*Cs, Cl, *k)``.

A transposed convolution takes the small side to the large side. The algorithms in
:data:`TRANSPOSED` compute the same numbers (to rounding) seven ways, each ``f(spec, x, w, b=None)``
returning a new ``(N, G*Cl, *L)`` array with the bias ``b`` (if given) added. Three are the seeds'
three views, written plainly in NumPy as references:

- ``scatter``: every input element times the kernel, added into the output at stride offsets;
- ``zero_insertion``: ``s-1`` zeros between input elements, a border of ``d*(k-1) - crop`` on each
  side (``spec.core_crop``: for ``padding_mode='zeros'`` the padding, less ``output_padding`` at the
  end; for the other modes ``-output_padding`` at the end only; a negative border crops the image),
  then a correlation with the flipped kernel;
- ``matrix``: ``y = W^T x`` with ``W`` the dense matrix of the convolution (see :func:`conv_matrix`).

The others are the fast engine: ``gemm`` (:mod:`tconv.engine.fast`: BLAS products of input pixels
with the whole kernel, then compiled col2im, in chunks that large problems share among worker
threads), ``direct`` (compiled output-stationary loops, for few channels per group), ``phase``
(:mod:`tconv.engine.phase`: per output phase an im2col and a product) and ``subpixel``
(:mod:`tconv.engine.subpixel`: all phases in one product, fused in tiles). :func:`choose` picks
one of them, or ``scatter``, for ``algorithm='auto'``.

All but ``matrix`` compute the *core* domain (``spec.core_crop``, ``spec.core_size``): for
``padding_mode='zeros'`` that is the output itself; for the other modes it is the padded domain,
which :func:`tconv.engine.fast.finish` folds back (:func:`tconv.core.padding.fold`) before adding the
bias. ``matrix`` folds ``W`` itself, so its product is the output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from functools import lru_cache
from itertools import product
from math import prod
from types import EllipsisType

import numpy as np

from ..core.padding import fold, pad_or_crop
from ..core.spec import ConvSpec, check_bytes
from . import cost, fast, phase, subpixel
from .taps import reachable_taps
from .threads import get_num_threads

#: The matrix algorithm refuses a problem whose dense matrix would be larger than this many bytes.
MATRIX_LIMIT_BYTES = 256 * 2**20

#: ``scatter`` multiplies as many kernel taps at once as fit in this workspace (or the output's size).
SCATTER_WORKSPACE_BYTES = 64 * 2**20

Slices = tuple[slice, ...]


def _grouped(spec: ConvSpec, a: np.ndarray, channels: int) -> np.ndarray:
    """``(N, C, *sp)`` to ``(N, G, C/G, *sp)``, a view."""
    return a.reshape(a.shape[0], spec.groups, channels // spec.groups, *a.shape[2:])


def _grouped_weight(spec: ConvSpec, w: np.ndarray) -> np.ndarray:
    """``(G*Cs, Cl, *k)`` to ``(G, Cs, Cl, *k)``, a view."""
    return w.reshape(spec.groups, spec.small_channels // spec.groups, *w.shape[1:])


def tap_slices(spec: ConvSpec) -> Iterator[tuple[tuple[int, ...], Slices, Slices]]:
    """For each kernel tap ``t``: the small-side pixels ``i`` it connects and where they land.

    Small pixel ``i`` and tap ``t`` meet core pixel ``j = i*s + t*d - crop_before``; only the ``i``
    whose ``j`` falls inside the core are kept. Yields ``(t, small_slices, core_slices)``, the two
    slice tuples selecting the same number of pixels, in the same order; taps that reach no core
    pixel are skipped.
    """
    per_dim = []
    for n, k, s, d, (cb, _), size in zip(
        spec.small, spec.kernel, spec.stride, spec.dilation, spec.core_crop, spec.core_size
    ):
        options = []
        for t in range(k):
            off = t * d - cb
            lo = max(0, -(off // s))  # the first i with i*s + off >= 0
            hi = min(n - 1, (size - 1 - off) // s)
            if lo <= hi:
                options.append((t, slice(lo, hi + 1), slice(lo * s + off, hi * s + off + 1, s)))
        per_dim.append(options)
    for combo in product(*per_dim):
        yield tuple(c[0] for c in combo), tuple(c[1] for c in combo), tuple(c[2] for c in combo)


def _contract(w_t: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``(G, Cs, Cl)`` tap weights times ``(N, G, Cs, *sp)``: ``(N, G, Cl, *sp)``."""
    return np.einsum("gco,ngc...->ngo...", w_t, a, optimize=True)


_finish = fast.finish


# --------------------------------------------------------------------------- transposed algorithms


def scatter(spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Each input element times the whole kernel, added into the output at stride offsets.

    ``x`` ``(N, G*Cs, *n)``, ``w`` ``(G*Cs, Cl, *k)`` -> ``(N, G*Cl, *L)``. The products of every input
    element with a batch of kernel taps are one matrix product (``cols``); the adding is one strided
    slice per tap. Taps are taken in batches whose ``cols`` stays within the larger of the core's
    size and :data:`SCATTER_WORKSPACE_BYTES` (at least one tap a batch).
    """
    N, G = x.shape[0], spec.groups
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    P_n = prod(spec.small)
    # wt[g, t, o, c] = w[g, c, o, t]: each tap's (Cl, Cs) matrix, taps outermost so batches are slices
    wt = _grouped_weight(spec, w).reshape(G, Cs, Cl, prod(spec.kernel)).transpose(0, 3, 2, 1)
    x_mat = _grouped(spec, x, spec.small_channels).reshape(N, G, Cs, P_n)
    core = np.zeros((N, G, Cl, *spec.core_size), dtype=spec.dtype)
    taps = list(tap_slices(spec))
    per_tap = max(N * G * Cl * P_n * spec.dtype.itemsize, 1)
    batch = max(1, max(core.nbytes, SCATTER_WORKSPACE_BYTES) // per_tap)
    for start in range(0, len(taps), batch):
        chunk = taps[start : start + batch]
        flat = [np.ravel_multi_index(t, spec.kernel) for t, _, _ in chunk]
        # cols[n, g, b, o, i] = sum_c w[g, c, o, t_b] * x[n, g, c, i]: (N, G, B, Cl, *n)
        cols = np.matmul(wt[:, flat].reshape(G, len(chunk) * Cl, Cs), x_mat)
        cols = cols.reshape(N, G, len(chunk), Cl, *spec.small)
        for m, (_, small_sl, core_sl) in enumerate(chunk):
            target: tuple[EllipsisType | slice, ...] = (Ellipsis, *core_sl)
            source: tuple[slice | int, ...] = (slice(None), slice(None), m, slice(None), *small_sl)
            core[target] += cols[source]
    return _finish(spec, core, b)


def insert_zeros(x: np.ndarray, stride: tuple[int, ...]) -> np.ndarray:
    """``s-1`` zeros between neighbouring elements along the last ``len(stride)`` axes:
    ``(..., *n)`` -> ``(..., *((n-1)*s + 1))``.

    >>> insert_zeros(np.array([1., 2., 3.]), (2,))
    array([1., 0., 2., 0., 3.])
    """
    rank = len(stride)
    out = np.zeros((*x.shape[:-rank], *((n - 1) * s + 1 for n, s in zip(x.shape[-rank:], stride))),
                   dtype=x.dtype)
    every_s: tuple[EllipsisType | slice, ...] = (Ellipsis, *(slice(None, None, s) for s in stride))
    out[every_s] = x
    return out


def zero_insertion_border(spec: ConvSpec) -> tuple[tuple[int, int], ...]:
    """The border around the zero-inserted image, per dimension: ``d*(k-1) - crop`` on each side
    (``spec.core_crop``; negative: a crop of the image)."""
    return tuple((d * (k - 1) - cb, d * (k - 1) - ca)
                 for k, d, (cb, ca) in zip(spec.kernel, spec.dilation, spec.core_crop))


def zero_insertion(spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Insert ``s-1`` zeros between inputs, pad by ``d*(k-1) - padding``, correlate with the flipped kernel.

    ``x`` ``(N, G*Cs, *n)`` -> dilated ``(N, G*Cs, *((n-1)*s + 1))`` -> bordered by
    :func:`zero_insertion_border` (``padding_mode='zeros'``:
    ``(d*(k-1) - before, d*(k-1) - after + output_padding)``; a negative border crops) ->
    correlated at stride 1 with the kernel flipped in every spatial dimension -> ``(N, G*Cl, *L)``.
    For the other padding modes the border is ``(d*(k-1), d*(k-1) + output_padding)`` and the
    correlation gives the padded domain, folded back onto the output. Refuses (ValueError) an image
    whose two copies (zero-inserted, then bordered) would need more than half this machine's memory.
    """
    rank = spec.rank
    border = zero_insertion_border(spec)
    image_size = tuple((n - 1) * s + 1 + b + a for n, s, (b, a) in zip(spec.small, spec.stride, border))
    check_bytes("algorithm='zero_insertion'", "the zero-inserted image",
                2 * x.shape[0] * x.shape[1] * prod(image_size) * spec.dtype.itemsize, share=0.5)
    # 1. the "processing image": stride-1 zeros between input elements
    dilated = insert_zeros(x, spec.stride)
    # 2. border of d*(k-1) - crop on each side (output_padding is a smaller crop after)
    image = _grouped(spec, pad_or_crop(dilated, border), spec.small_channels)
    # 3. correlate with the flipped kernel: out[j] = sum_t image[j + t*d] * w[k-1-t]
    reverse: tuple[EllipsisType | slice, ...] = (Ellipsis, *(slice(None, None, -1),) * rank)
    flipped = _grouped_weight(spec, w)[reverse]
    core = np.zeros((x.shape[0], spec.groups, spec.large_channels // spec.groups, *spec.core_size),
                    dtype=spec.dtype)
    for t in np.ndindex(*spec.kernel):
        window = tuple(slice(ti * d, ti * d + size)
                       for ti, d, size in zip(t, spec.dilation, spec.core_size))
        tap: tuple[EllipsisType | int, ...] = (Ellipsis, *t)
        pixels: tuple[EllipsisType | slice, ...] = (Ellipsis, *window)
        core += _contract(flipped[tap], image[pixels])
    return _finish(spec, core, b)


def conv_matrix(spec: ConvSpec, w: np.ndarray) -> np.ndarray:
    """The dense matrix ``W`` of the convolution that this transposed convolution transposes.

    Shape ``(C_small*P_n, C_large*P_L)``, row-major over ``(channel, *spatial)`` on both sides, so that,
    per sample and bias aside, ``conv(big)`` is ``W @ big.ravel()`` (cut to the small size ``n``:
    where ``output_padding >= stride``, which dilation allows, the convolution has a tail past it) and
    ``conv_transpose(small)`` is ``W.T @ small.ravel()``. The padding mode is part of ``W`` (its columns
    over the padded domain folded by :func:`tconv.core.padding.fold`). Refuses (ValueError) a problem
    whose matrix over the core domain (before folding) would exceed :data:`MATRIX_LIMIT_BYTES`.

    >>> from tconv.core.spec import transposed_spec
    >>> K = np.array([[[[1., 2.], [3., 4.]]]])
    >>> conv_matrix(transposed_spec("demo", np.zeros((1, 1, 2, 2)), K, None), K)[0]   # D2L 14.10.3
    array([1., 2., 0., 3., 4., 0., 0., 0., 0.])
    """
    G = spec.groups
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    rows, cols = spec.small_channels * prod(spec.small), spec.large_channels * prod(spec.core_size)
    need = rows * cols * spec.dtype.itemsize
    if need > MATRIX_LIMIT_BYTES:
        raise ValueError(
            f"algorithm='matrix': the dense convolution matrix would have shape ({rows}, {cols}) "
            f"and need {need / 2**20:.1f} MiB, above the {MATRIX_LIMIT_BYTES // 2**20} MiB limit "
            f"(tconv.engine.algorithms.MATRIX_LIMIT_BYTES); use algorithm='scatter' or 'auto'"
        )
    # Per dimension the (i, t, j) triples with j = i*s + t*d - crop_before inside the core.
    triples = []
    for n, k, s, d, (cb, _), size in zip(
        spec.small, spec.kernel, spec.stride, spec.dilation, spec.core_crop, spec.core_size
    ):
        i, t = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
        j = i * s + t * d - cb
        keep = (j >= 0) & (j < size)
        triples.append((i[keep], t[keep], j[keep]))
    pick = [g.ravel() for g in np.meshgrid(*(np.arange(len(tr[0])) for tr in triples), indexing="ij")]
    flat = [
        np.ravel_multi_index([tr[part][p] for tr, p in zip(triples, pick)], sizes)
        for part, sizes in ((0, spec.small), (1, spec.kernel), (2, spec.core_size))
    ]
    # One tap joins a given (i, j) at most, so plain assignment places every weight.
    blocks = np.zeros((G, Cs, prod(spec.small), Cl, prod(spec.core_size)), dtype=spec.dtype)
    wk = _grouped_weight(spec, w).reshape(G, Cs, Cl, prod(spec.kernel))
    blocks[:, :, flat[0], :, flat[2]] = np.moveaxis(wk[..., flat[1]], -1, 0)
    dense = np.zeros((G, Cs, prod(spec.small), G, Cl, *spec.core_size), dtype=spec.dtype)
    for g in range(G):
        dense[g, :, :, g] = blocks[g].reshape(Cs, prod(spec.small), Cl, *spec.core_size)
    dense = dense.reshape(spec.small_channels, prod(spec.small), spec.large_channels, *spec.core_size)
    if spec.padding_mode != "zeros":
        dense = fold(dense, spec.pads, spec.padding_mode)
    return dense.reshape(spec.small_channels * prod(spec.small), spec.large_channels * prod(spec.large))


def matrix(spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """``y = W^T x`` with ``W`` from :func:`conv_matrix`: ``(N, C_small*P_n) @ W`` -> ``(N, C_large, *L)``,
    plus the bias."""
    W = conv_matrix(spec, w)
    y = (x.reshape(x.shape[0], -1) @ W).reshape(x.shape[0], spec.large_channels, *spec.large)
    return y if b is None else y + b.reshape(-1, *(1,) * spec.rank)


#: Transposed-convolution algorithms by name; each ``f(spec, x, w, b=None) -> y`` adds the bias ``b``
#: ``(G*Cl,)`` when given (see the module docstring).
TRANSPOSED: dict[str, Callable[[ConvSpec, np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]] = {
    "scatter": scatter,
    "zero_insertion": zero_insertion,
    "matrix": matrix,
    "gemm": fast.gemm,
    "direct": fast.direct,
    "phase": phase.phase,
    "subpixel": subpixel.subpixel,
}

#: The names ``algorithm=`` accepts.
ALGORITHMS: tuple[str, ...] = ("auto", *TRANSPOSED)


#: A 1x1 input in a batch of ``N`` is multiplied by the whole kernel, one product with the weight as
#: it lies, while ``N * (taps - taps kept) <= UNCUT_TAPS * taps``: the cut kernel is a copy of the
#: taps kept (a layer checks them on every call, the functional API copies them), which reads about
#: the whole weight, more than the product spends on the cropped taps in a small batch. Measured as
#: layers (ms, cut -> whole): 384 -> 192 channels k3 padding 1 3-d, N=1 0.68 -> 0.12, N=8
#: 0.79 -> 0.46, N=32 0.92 -> 1.28; 256 -> 128 k7 padding 3 2-d, N=1 0.18 -> 0.10, N=8
#: 0.24 -> 0.37; 512 -> 256 k4 padding 1 2-d, N=16 1.23 -> 0.82.
UNCUT_TAPS = 6


@lru_cache(maxsize=4096)
def trimmed(spec: ConvSpec) -> tuple[ConvSpec, tuple[tuple[int, int], ...]] | None:
    """The same problem without the kernel taps that reach only cropped pixels, or None if every tap
    reaches the output: ``(spec with the kernel cut to the taps that reach, the taps [lo, hi) kept
    per dimension)``. Remembered per spec.

    With much padding on a small image (a 7-tap kernel, padding 3, a 2x2 input and output), most
    taps meet only pixels the padding crops; an algorithm that multiplies every input pixel by the
    whole kernel wastes that work (there 49 taps for 9). Per dimension the taps kept are
    :func:`tconv.engine.taps.reachable_taps` (never cut before the padding allows: the crop before
    stays non-negative), and the padding shrinks by what was cut on each side, so every output
    pixel's sum is the same. ``padding_mode='zeros'`` only (the other modes crop nothing); not for a
    1x1 input in a small batch (see :data:`UNCUT_TAPS`), one product of the whole weight.

    >>> import numpy as np
    >>> from tconv.core.spec import transposed_spec
    >>> spec = transposed_spec("doc", np.zeros((1, 64, 2, 2)), np.zeros((64, 8, 7, 7)), None, 1, 3)
    >>> tight, window = trimmed(spec)
    >>> tight.kernel, tight.pads, tight.large == spec.large, window
    ((3, 3), ((1, 1), (1, 1)), True, ((2, 5), (2, 5)))
    """
    if spec.padding_mode != "zeros":
        return None
    window = []
    for n, k, s, d, (cb, _), size in zip(spec.small, spec.kernel, spec.stride, spec.dilation,
                                         spec.core_crop, spec.core_size):
        lo, hi = reachable_taps(n, k, s, d, cb, size)
        if hi <= lo:  # nothing reaches: leave it to the algorithms (an all-zero output)
            return None
        window.append((min(lo, cb // d), hi))
    if all(lo == 0 and hi == k for (lo, hi), k in zip(window, spec.kernel)):
        return None
    full, kept = prod(spec.kernel), prod(hi - lo for lo, hi in window)
    if fast.single_product(spec) == "single_pixel" and (spec.batch or 1) * (full - kept) <= UNCUT_TAPS * full:
        return None
    pads = tuple((b - lo * d, a - (k - hi) * d)
                 for (b, a), (lo, hi), k, d in zip(spec.pads, window, spec.kernel, spec.dilation))
    tight = dataclasses.replace(spec, kernel=tuple(hi - lo for lo, hi in window), pads=pads)
    return tight, tuple(window)


def choose(spec: ConvSpec) -> str:
    """The algorithm ``auto`` runs for ``spec``.

    - ``scatter`` for tiny problems (under :data:`SMALL_WORK` multiply-adds): NumPy only, so a first
      small call in a new process loads no compiled code (numba's import alone takes ~0.6 s);
    - ``gemm`` when it is a single matrix product (a 1x1 input, or kernel 1 with stride 1):
      nothing can do less;
    - otherwise the fastest of ``gemm``, ``phase``, ``direct`` and ``subpixel`` by the cost model of
      :mod:`tconv.engine.cost` (each one's time estimated from the shapes and two figures of this
      machine, measured once per process).

    Only the batch, the sizes, the channels and the groups count. The measurements behind the model
    are in the README ("How `auto` chooses").

    >>> import numpy as np
    >>> from tconv.core.spec import transposed_spec
    >>> choose(transposed_spec("doc", np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)), None))
    'scatter'
    """
    if multiply_adds(spec) < SMALL_WORK:
        return "scatter"
    return _modelled(spec)


@lru_cache(maxsize=4096)
def _modelled(spec: ConvSpec) -> str:
    """``choose`` past the tiny problems, remembered per spec (the estimate costs 0.1-0.5 ms)."""
    if fast.single_product(spec):
        return "gemm"
    times = cost.estimates(spec)
    return min(times, key=times.__getitem__)


#: A layer measures, besides ``auto``'s pick, the algorithms estimated within this factor of it.
CONTEND = 2.0


def contenders(spec: ConvSpec) -> tuple[str, ...]:
    """``choose(spec)`` first, then the others the cost model estimates within :data:`CONTEND` times
    its estimate (cheapest first, three in all at most): what a layer times on its first call of a
    geometry (:mod:`tconv.core.layers`), since the model's estimates are off by up to ~2x (``subpixel``
    on seeded random layers: estimated 1.6-1.9x ``gemm``'s, measured 0.5-0.8x). Only the
    pick where ``choose`` decides without the model (tiny problems, one product) or was overridden.
    """
    pick = choose(spec)
    if multiply_adds(spec) < SMALL_WORK or fast.single_product(spec) or pick != _modelled(spec):
        return (pick,)
    times = cost.estimates(spec)
    near = sorted((n for n, t in times.items() if n != pick and t <= CONTEND * times[pick]),
                  key=times.__getitem__)
    return (pick, *near[:2])


def variants(spec: ConvSpec, names: tuple[str, ...]) -> tuple[Callable, ...]:
    """Other ways of running the contenders ``names`` that a layer times beside them: ``gemm``
    shared among the workers below :data:`tconv.engine.fast.PARALLEL_MIN_WORK`
    (:func:`tconv.engine.fast.gemm_shared`), where sharing wins on some layers and loses on others.

    Not ``gemm`` as one job above it: run as a layer's contender it was kept where it ran up to 1.6x
    slower than ``gemm`` (BLAS's threads, left spinning after its threaded products, slowed the
    workers of ``gemm``'s runs timed after it for over 10 ms), for 1.2x where it won.
    """
    if ("gemm" in names and get_num_threads() > 1 and multiply_adds(spec) < fast.PARALLEL_MIN_WORK
            and not fast.single_product(spec)):
        return (fast.gemm_shared,)
    return ()


#: ``auto`` runs the NumPy-only ``scatter`` below this many multiply-adds.
SMALL_WORK = 1 << 16


def multiply_adds(spec: ConvSpec) -> int:
    """The multiply-adds of either direction: :attr:`tconv.core.spec.ConvSpec.multiply_adds`."""
    return spec.multiply_adds
