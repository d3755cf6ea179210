"""The sub-pixel (stride-phase) algorithm: every output pixel written once, by BLAS.

Symbols as in :mod:`tconv.engine.algorithms`. Large pixel ``j`` of the core domain meets small pixel
``i`` through tap ``t`` when ``j = i*s + t*d - p`` (``p`` the crop before, ``spec.core_crop``). Group
the large pixels by their *phase* ``q = (j + p) mod s`` per dimension: the taps that reach phase
``q`` are those with ``t*d ≡ q (mod s)``, and writing ``t*d = q + s*u`` and ``j + p = q + s*m``, the
pixel is ``sum over those taps of x[m - u] * w[t]`` — a stride-1 correlation of the *input* with the
phase's few taps. So per phase (``s**rank`` of them):

1. ``cols (G, Cs*T, N*M)``: for each of the phase's ``T`` taps, the input shifted by ``-u`` (zeros
   outside it) — an im2col of the small side, ``T ≈ prod(k/s)`` taps deep, samples side by side;
2. ``W_q (G, Cl, Cs*T)``: the phase's taps of the weight (kept in a layer's
   :class:`tconv.engine.packing.WeightCache` between calls);
3. ``out = W_q @ cols (G, Cl, N*M)``, the bias added, written once into the output's phase view
   (every ``s``-th pixel from the phase's first).

Nothing is accumulated into the output (no col2im read-modify-write), the product's inner dimension
is ``Cs*T`` rather than ``Cs``, and nothing is zero-inserted. XNNPACK's deconvolution and oneDNN's
are built the same way (subconvolutions per output phase).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from itertools import product
from math import prod
from types import EllipsisType

import numpy as np

from ..core.spec import ConvSpec
from .fast import PARALLEL_MIN_WORK, _run, correlate, finish
from .packing import WeightCache, packed, packs_weight
from .taps import dim_phases
from .threads import get_num_threads

#: The columns and product of one step (a chunk of samples or of one sample's rows, one phase, one
#: group) take at most about this many bytes (a sample larger than that is cut into rows: before,
#: a step held a whole sample's columns, whatever their size) ...
PHASE_CHUNK_BYTES = 16 * 2**20

#: ... and, from this many bytes up, at most the input's and output's bytes over twice the workers,
#: so that the steps running at once hold less than input + output beside the output. Not lower:
#: thinner steps make thinner products (a 512-channel 1-d layer, 283 pixels: 5.3 ms and 6.2x its
#: input + output in columns with whole samples; 7.6 ms and 1.8x at a 256 KiB floor, 5.1 ms and
#: 5.5x at this one).
PHASE_MIN_CHUNK_BYTES = 4 * 2**20

#: From this many input channels per group the im2col copies runs of channels (the input moved to
#: channels-last once); below it, runs along the input's last dimension. A first rule from loaded
#: development timings (dcgan_g2, 512 channels: 61 ms vs 91 ms rows; dw_bilinear, 1 channel: rows
#: 59 ms vs 225 ms) — issue #10's cost model is to replace it.
CHANNELS_LAST_MIN = 16


@packs_weight
def phase(spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
          cache: WeightCache | None = None) -> np.ndarray:
    """The sub-pixel algorithm (see the module): per output phase, im2col of the input and one
    batched BLAS product, written once into the output's phase view, bias included.

    ``x`` ``(N, G*Cs, *n)``, ``w`` ``(G*Cs, Cl, *k)`` -> ``(N, G*Cl, *L)``. Each phase's ``W_q`` is
    kept in ``cache`` when given (:mod:`tconv.engine.packing`), made for this call otherwise.
    With stride 1 there is one phase, an ordinary convolution: :func:`_one_phase`.
    """
    from . import kernels  # numba loads on the first call, not at import

    if all(s == 1 for s in spec.stride):
        return _one_phase(spec, x, w, b, cache)

    N, G, rank = x.shape[0], spec.groups, spec.rank
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    per_dim = [dim_phases(n, k, s, d, cb, size) for n, k, s, d, (cb, _), size in zip(
        spec.small, spec.kernel, spec.stride, spec.dilation, spec.core_crop, spec.core_size)]
    # zeros around the input so that every tap's shifted window lies inside it
    pads = []
    for n, phases in zip(spec.small, per_dim):
        reach = [(base - u, base - u + count) for _, count, base, taps in phases for _, u in taps]
        pads.append((max([0] + [-lo for lo, _ in reach]), max([0] + [hi - n for _, hi in reach])))
    xg = x.reshape(N, G, Cs, *spec.small)
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(spec.small, pads))
    inner = tuple(slice(lo, lo + n) for n, (lo, _) in zip(spec.small, pads))
    lead = (1,) * (3 - rank)  # kernels take three spatial dimensions
    channels_last = Cs >= CHANNELS_LAST_MIN
    # the input copied once, padded and in the kernels' layout (before: padded, then moved
    # channels-last, two copies)
    if channels_last:  # one contiguous block per group: each im2col copy is a run of Cs channels
        x3 = np.zeros((G, N, *padded, Cs), spec.dtype)  # (G, N, *padded, Cs)
        x3[(slice(None), slice(None), *inner)] = np.moveaxis(xg, 2, -1).swapaxes(0, 1)
        x3 = x3.reshape(G, N, *lead, *padded, Cs)
    else:  # rows of the input's last dimension
        if padded != tuple(spec.small):
            xp = np.zeros((N, G, Cs, *padded), spec.dtype)
            interior: tuple[EllipsisType | slice, ...] = (Ellipsis, *inner)
            xp[interior] = xg
        else:
            xp = np.ascontiguousarray(xg)
        x3 = xp.reshape(N, G * Cs, *lead, *padded)
    wg = w.reshape(G, Cs, Cl, *spec.kernel)
    fuse = b is not None and spec.padding_mode == "zeros"
    bias = b.reshape(G, Cl).astype(spec.dtype, copy=False) if fuse and b is not None else None
    core = np.empty((N, G, Cl, *spec.core_size), spec.dtype)
    budget = min(PHASE_CHUNK_BYTES, max(PHASE_MIN_CHUNK_BYTES,
                                        (x.nbytes + core.nbytes) // (2 * get_num_threads())))
    steps = []  # (view, counts, w_q, shifts, starts, n0, n1, g): each writes its own pixels
    for combo in product(*per_dim):
        firsts, counts, bases, taps = zip(*combo)
        view = tuple(slice(f, f + s * (c - 1) + 1, s) for f, c, s in zip(firsts, counts, spec.stride))
        T = prod(len(t) for t in taps)
        if T == 0:  # no tap reaches these pixels: zeros (and the bias)
            pixels: tuple[EllipsisType | slice, ...] = (Ellipsis, *view)
            core[pixels] = 0 if bias is None else bias.reshape(G, Cl, *(1,) * rank)
            continue
        ts = tuple(tuple(t for t, _ in tp) for tp in taps)
        w_q = packed(cache, ("phase", w.dtype.str, G, channels_last, ts),
                     partial(_phase_weight, wg, ts, channels_last))
        # the kernels' rank-3 geometry: every tap's shift, and where the phase starts in x3
        shifts = np.array([(0,) * len(lead) + tuple(u for _, u in tap) for tap in product(*taps)],
                          dtype=np.int64)
        starts = (0,) * len(lead) + tuple(lo + base for (lo, _), base in zip(pads, bases))
        # a step's columns and product: samples while whole ones fit the budget, else rows of
        # the phase's first dimension (input rows advance one per phase row)
        pixel = (Cs * T + Cl) * spec.dtype.itemsize
        step = max(1, budget // max(1, pixel * prod(counts)))
        rows = counts[0] if step > 1 else max(1, budget // max(1, pixel * prod(counts[1:])))
        first = len(lead)
        for r0 in range(0, counts[0], rows):
            r1 = min(counts[0], r0 + rows)
            part = (slice(view[0].start + spec.stride[0] * r0,
                          view[0].start + spec.stride[0] * (r1 - 1) + 1, spec.stride[0]), *view[1:])
            at = starts[:first] + (starts[first] + r0,) + starts[first + 1:]
            steps += [(part, (r1 - r0, *counts[1:]), w_q, shifts, at, n0, min(N, n0 + step), g)
                      for n0 in range(0, N, step) for g in range(G)]

    def run(mine):
        for view, counts, w_q, shifts, starts, n0, n1, g in mine:
            M, T = prod(counts), len(shifts)
            if channels_last:
                # a row of T*Cs per output pixel of the phase, samples stacked; BLAS reads both
                # operands transposed: (Cl, T*Cs) @ (T*Cs, n*M), so the result's rows are pixels
                cols = np.empty((n1 - n0, *lead, *counts, T, Cs), spec.dtype)
                kernels.phase_cols_last(x3[g], cols, n0, shifts, *starts)
                out = w_q[g].T @ cols.reshape((n1 - n0) * M, T * Cs).T
                if bias is not None:
                    out += bias[g][:, None]
                out = np.moveaxis(out.reshape(Cl, n1 - n0, *counts), 1, 0)
            else:
                # (Cl, Cs*T) @ (Cs*T, n*M): a column per output pixel of the phase
                cols = np.empty((Cs, T, n1 - n0, *lead, *counts), spec.dtype)
                kernels.phase_cols(x3, cols, n0, g * Cs, Cs, shifts, *starts)
                out = w_q[g] @ cols.reshape(Cs * T, (n1 - n0) * M)
                if bias is not None:
                    out += bias[g][:, None]
                out = np.moveaxis(out.reshape(Cl, n1 - n0, *counts), 1, 0)
            core[(slice(n0, n1), g, slice(None), *view)] = out

    # the steps write disjoint pixels: the workers share them, each with one-thread BLAS, so one's
    # copying overlaps another's multiplying
    workers = 1 if spec.multiply_adds < PARALLEL_MIN_WORK else min(get_num_threads(), len(steps))
    _run([lambda mine=steps[i::workers]: run(mine) for i in range(workers) if steps[i::workers]])
    return finish(spec, core, None if fuse else b)


def _phase_weight(wg: np.ndarray, taps: tuple[tuple[int, ...], ...], channels_last: bool) -> np.ndarray:
    """The taps ``taps`` (per dimension, the tap indices of one phase) of ``wg`` ``(G, Cs, Cl, *k)``:
    ``(G, T*Cs, Cl)``, rows ``(tap, c)``, for the channels-last im2col; else ``(G, Cl, Cs*T)``,
    columns ``(c, tap)``."""
    G, Cs, Cl = wg.shape[:3]
    T = prod(len(t) for t in taps)
    index: tuple[slice | np.ndarray, ...] = (slice(None), slice(None), slice(None), *np.ix_(*taps))
    w_q = wg[index].reshape(G, Cs, Cl, T)
    if channels_last:
        return w_q.transpose(0, 3, 1, 2).reshape(G, T * Cs, Cl)  # rows (tap, c)
    return w_q.transpose(0, 2, 1, 3).reshape(G, Cl, Cs * T)  # columns (c, tap)


def _one_phase(spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
               cache: WeightCache | None) -> np.ndarray:
    """Stride 1: the transposed convolution is the convolution of the input with the kernel flipped
    in every dimension (its channels swapped), padded by ``d*(k-1) - crop`` on each side (a negative
    border crops). :func:`tconv.engine.fast.correlate` computes it as it computes any convolution
    (im2col of the input in cache-sized chunks, one product each, written once), into the core; the
    padding modes fold it as usual.
    """
    G = spec.groups
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    pads = tuple((d * (k - 1) - cb, d * (k - 1) - ca)
                 for k, d, (cb, ca) in zip(spec.kernel, spec.dilation, spec.core_crop))
    conv = dataclasses.replace(spec, transposed=False, small_channels=G * Cl, large_channels=G * Cs,
                               small=spec.core_size, large=spec.small, pads=pads, padding_mode="zeros")

    def flipped():  # (G*Cl, Cs, *k), every kernel axis reversed
        flip = (Ellipsis, *(slice(None, None, -1),) * spec.rank)
        wc = w.reshape(G, Cs, Cl, *spec.kernel).swapaxes(1, 2)[flip]
        return np.ascontiguousarray(wc).reshape(G * Cl, Cs, *spec.kernel)

    core, _ = correlate(conv, x, packed(cache, ("flipped", spec.dtype.str, G), flipped))
    return finish(spec, core, b)
