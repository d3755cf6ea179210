"""The fast engine: BLAS for the products, compiled loops (:mod:`tconv.engine.kernels`) for the rest.

``gemm`` (general) and ``direct`` (few channels per group) are transposed-convolution algorithms in
the registry of :mod:`tconv.engine.algorithms`, with the same contract as the reference ones:
``f(spec, x, w, b) -> y``; ``gemm`` also takes ``cache=`` (a layer's
:class:`tconv.engine.packing.WeightCache`), where it keeps the weight it reorders. :func:`correlate`
computes a convolution (a transposed convolution's input-gradient, and :func:`tconv.conv`) and weight
gradients the same way, the mirror image (im2col, then products).

How the time is spent (symbols as in :mod:`tconv.engine.algorithms`): per chunk of ``M`` input
pixels, ``cols = every input pixel times the whole kernel`` is one BLAS product of ``M x Cs`` by
``Cs x Cl*P_k``; col2im then adds each of those ``Cl*P_k*M`` numbers into the output at its stride
offset. Nothing is zero-inserted and nothing is multiplied by an inserted zero; ``cols`` is kept
within :data:`GEMM_CHUNK_BYTES` so col2im reads it back from cache. Above :data:`PARALLEL_MIN_WORK`
the chunks are shared among up to :func:`tconv.get_num_threads` workers, each running a one-thread
BLAS product and a compiled col2im: one's adding overlaps another's multiplying, and no spinning
BLAS thread competes with a compiled loop for a core. Below it, or with one thread, everything runs
in the calling thread. BLAS never runs threads of its own (see :func:`_run`).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from functools import lru_cache, partial
from math import prod
from typing import cast

import numpy as np

from ..core.padding import fold
from ..core.spec import ConvSpec
from .packing import WeightCache, packed, packs_weight
from .taps import phase_table, reach_table
from .threads import blas_limit, get_num_threads

#: Columns of one chunk take at most this many bytes (per worker) ...
GEMM_CHUNK_BYTES = 4 * 2**20

#: ... and at most this many where a column has at most :data:`GEMM_FEW_ROWS` rows (few output
#: channels times taps): such a product writes about as much as it computes, and col2im then reads
#: its result back from a nearer cache (dcgan_g5, 3 output channels, 48 rows: 5.5 -> 4.0 ms; a
#: 2-channel 3-d layer, 16 rows: 6.4 -> 4.2). With more rows smaller chunks were slower (unet3d_up
#: 4.8 -> 5.3 ms, r2024_13 3.0 -> 3.2).
GEMM_FEW_ROWS_BYTES = 2**20
GEMM_FEW_ROWS = 64

#: Channels-last adding (inner loop over output channels) from this many output channels per group
#: when the input's last dimension is shorter than :data:`PLANES_MIN_ROW` or its stride is 1;
#: otherwise plane by plane. (Stride 1, measured: dilated 5.05 -> 4.4 ms, a 1-d layer 1.38 -> 1.33;
#: with stride 2 on long rows channels-last was slower, 3.0 -> 3.7 ms.)
CHANNELS_LAST_MIN = 16
PLANES_MIN_ROW = 20

#: Below this many multiply-adds one worker in the calling thread is faster than two (fcn_up2,
#: 8M multiply-adds: 0.50 ms with one, 0.53 ms with two).
PARALLEL_MIN_WORK = 1 << 24

#: Workers split a sample's output channels only when the largest share is at most this much above
#: an even one (3 channels on two workers: 2 and 1, balance 0.75); else one job multiplies.
SPLIT_MIN_BALANCE = 0.85

#: When a whole batch fits in one chunk, it is cut into one chunk per worker (the workers then take
#: samples) if sharing out its output channels instead would leave each worker's product fewer than
#: this many rows (channels times taps). Measured on 50 seeded layers so affected: with up to 384
#: rows a worker, samples were 0.99-1.80x as fast (2 channels, k6: 6 rows a worker, 1.02 -> 0.57
#: ms); from 432 rows, 0.45-1.08x (channel ranges kept each worker's product large).
SAMPLES_FIRST_ROWS = 400

#: From a weight this many times the input and output's bytes, ``gemm``'s channels-last products
#: use it as it lies at any size (see :data:`AS_IT_LIES_BYTES`; a reordered copy kept by a layer is
#: checked on every call). Before channels-last could take the weight as it lies, such layers added
#: plane by plane; channels-last as it lies was faster on 14 of the 15 seeded layers that moved
#: (1.01-2.29x, r7919_12 2.03 -> 0.89 ms, r39119_10 1.59 -> 0.84; r60601_12 0.35 -> 0.43).
WEIGHT_DOMINATES = 10

#: A chunk of several samples is multiplied sample by sample, each in place, when a sample has at
#: least this many pixels; smaller ones are gathered into one matrix first (dcgan_g2's 4x4 images:
#: 24 ms gathered, 36 ms sample by sample).
STACKED_MIN_PIXELS = 128

#: From a weight of this many bytes, and more than the input and output, the channels-last products
#: use it as it lies, columns (channel, tap), and col2im reads a pixel's channels ``taps`` apart: a
#: reordered copy would double what a call reads of the weight, and a layer checks the weight it was
#: copied from on every call (layers, ms: r65537_5, 9.6 MB weight for 1.2 MB of activations,
#: 2.75-3.50 -> 1.65-1.76; r65537_14, 4.9 MB for 1.4 MB, 6.2 -> 5.6). With a weight smaller than the
#: activations the copy costs less than the slower adding (dcgan_g3, 2 MB: 26.4 -> 28.9).
AS_IT_LIES_BYTES = 2**21

#: ``auto`` runs ``direct`` when a group has at most this many input channels.
DIRECT_MAX_CHANNELS = 4


def finish(spec: ConvSpec, core: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """The core ``(N, [G, Cl | G*Cl], *core)`` to the output ``(N, G*Cl, *L)``: fold, add the bias."""
    y = core.reshape(core.shape[0], spec.large_channels, *spec.core_size)
    if spec.padding_mode != "zeros":
        y = fold(y, spec.pads, spec.padding_mode)
    if b is not None:
        y += b.reshape(-1, *(1,) * spec.rank)
    return y


# --------------------------------------------------------------------------- geometry helpers


def rank3(spec: ConvSpec) -> dict:
    """The geometry padded to three spatial dimensions with leading singletons, as kernels take it."""
    extra = 3 - spec.rank

    def pad3(values, fill):
        return (fill,) * extra + tuple(values)

    return dict(
        small=pad3(spec.small, 1), kernel=pad3(spec.kernel, 1), stride=pad3(spec.stride, 1),
        dilation=pad3(spec.dilation, 1), crop=pad3((cb for cb, _ in spec.core_crop), 0),
        core=pad3(spec.core_size, 1),
    )


def bands(spec: ConvSpec, g3: dict, batch: int, unit: int, skip_empty: bool = True,
          parts: int = 1) -> list[tuple]:
    """Chunks of about ``GEMM_CHUNK_BYTES / unit`` input pixels (fewer for few rows: see
    :data:`GEMM_FEW_ROWS_BYTES`), and at least ``parts`` of them when the batch allows (so that
    ``parts`` workers can take whole samples).

    Each is ``(first sample, samples, offsets, shape, reach)``: the chunk's first input coordinate
    and size per padded dimension, and the output range ``(lo, hi)`` per dimension it can reach.
    Whole samples when one fits, else bands along the first real spatial dimension. Bands that
    reach no output pixel (cropped away) are left out unless ``skip_empty`` is false.
    """
    lead = 3 - spec.rank
    rows, band = g3["small"][lead], prod(g3["small"][lead + 1 :])
    columns = max(1, GEMM_CHUNK_BYTES // unit)
    if unit <= GEMM_FEW_ROWS * spec.dtype.itemsize:  # a product that writes about as much as it reads
        columns = max(1, min(columns, GEMM_FEW_ROWS_BYTES // unit))
    s, d, p, k, L = g3["stride"], g3["dilation"], g3["crop"], g3["kernel"], g3["core"]
    out = []
    if columns >= rows * band:
        step = max(1, min(columns // (rows * band), -(-batch // parts)))
        spans = [(n, min(step, batch - n), 0, rows) for n in range(0, batch, step)]
    else:
        step = max(1, columns // band)
        spans = [(n, 1, r, min(step, rows - r)) for n in range(batch) for r in range(0, rows, step)]
    for first, samples, r_first, nrows in spans:
        lo = max(0, r_first * s[lead] - p[lead])
        hi = min(L[lead], (r_first + nrows - 1) * s[lead] + (k[lead] - 1) * d[lead] - p[lead] + 1)
        if hi <= lo and skip_empty:
            continue
        reach = [(0, size) for size in L]
        reach[lead] = (lo, hi)
        offsets, shape = [0, 0, 0], list(g3["small"])
        offsets[lead], shape[lead] = r_first, nrows
        out.append((first, samples, tuple(offsets), tuple(shape), reach))
    return out


# --------------------------------------------------------------------------- workspaces

_local = threading.local()

#: Each thread keeps one workspace of up to this many bytes between calls (a fresh 4 MiB buffer
#: costs a thousand page faults per call, measured at 2-4 ms); larger ones are not kept.
KEEP_WORKSPACE_BYTES = 4 * GEMM_CHUNK_BYTES


def workspace(size: int, dtype: np.dtype) -> np.ndarray:
    """A scratch array of ``size`` elements, reused by this thread across calls when small enough."""
    nbytes = size * np.dtype(dtype).itemsize
    if nbytes > KEEP_WORKSPACE_BYTES:
        return np.empty(size, dtype)
    buf = getattr(_local, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _local.buf = np.empty(max(nbytes, GEMM_CHUNK_BYTES), np.uint8)
    return buf[:nbytes].view(dtype)


# --------------------------------------------------------------------------- workers

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _workers(count: int) -> ThreadPoolExecutor:
    """The worker pool, with room for ``count`` jobs at once (replaced by a larger one if needed)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < count:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(count, thread_name_prefix="tconv")
        return _pool


#: Held by the call that is running: the engine serves one call at a time (see :func:`_run`);
#: re-entrant for :func:`exclusive`.
_gate = threading.RLock()
#: The calls inside :func:`_run` (running or waiting for ``_gate``).
_callers = 0
_callers_lock = threading.Lock()


def exclusive() -> AbstractContextManager:
    """``with exclusive():`` no other thread's call runs in the engine inside the block (they wait
    their turn); this thread's own calls run as usual. For timing algorithms (a layer's measured
    choice) undisturbed by concurrent callers."""
    return _gate


#: OpenBLAS multiplies a product of fewer multiply-adds on one thread whatever its count
#: (``SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD``): a single job whose work is below this has
#: nothing to hold BLAS to (doing so costs ~8 us of a ~40 us small call).
BLAS_SERIAL_WORK = 65536 * 4


def _run(jobs: list, work: int | None = None) -> None:
    """Run ``jobs`` (callables), each with one-thread BLAS: one in this thread; several on the
    workers (the first in this thread when no other call is waiting).

    BLAS never runs its own threads here: after a threaded product they spin for a while (OpenBLAS:
    ~0.1 s) and take the cores from the workers of the calls that follow (a DCGAN generator's five
    layers called in turn took 147 ms against 86 ms for the five alone; with one-thread BLAS,
    87 ms). A problem worth sharing is shared by the workers instead. ``work``: the call's
    multiply-adds, when known (a single job under :data:`BLAS_SERIAL_WORK` leaves BLAS's count be).

    Calls from several threads at once take turns, each using the whole thread count while it runs:
    together they then make as many calls as one caller alone would (measured: six threads calling
    eight mixed layers and their gradients made 1.04x the calls of one), where running them side by
    side on two cores made 0.35-0.46x (caches and BLAS buffers thrashed, threads on threads). A call
    that asked for one thread (:func:`tconv.engine.threads.thread_num_threads`, as each dask task
    does) does not wait: it runs in its own thread beside the others, as its scheduler intends. No
    jobs (every chunk's pixels cropped away) is nothing to do.
    """
    if not jobs:
        return
    if get_num_threads() == 1:  # then there is one job (one share)
        with blas_limit(1):
            for job in jobs:
                job()
        return
    global _callers
    with _callers_lock:
        _callers += 1
    try:
        with _gate:
            if len(jobs) == 1:
                if work is not None and work < BLAS_SERIAL_WORK:  # too small for BLAS to thread
                    jobs[0]()
                else:
                    with blas_limit(1):
                        jobs[0]()
                return
            # alone, the first job runs in this thread and the others on the workers: a thread
            # fewer to wake and to wait for (on a small layer a noticeable part of the call); with
            # other callers waiting, all go to the workers (this thread's Python then does not
            # contend with theirs: six callers made 0.71x the calls of one, against 0.83x)
            inline = _callers == 1
            pool = _workers(len(jobs) - inline)
            with blas_limit(1):
                futures = [pool.submit(job) for job in jobs[inline:]]
                try:
                    if inline:
                        jobs[0]()
                finally:
                    wait(futures)  # all of them, so none still runs when BLAS's count is restored
    finally:
        with _callers_lock:
            _callers -= 1
    for future in futures:
        future.result()


def _split(chunks: list, channels: int, work: int, n: int | None = None,
           min_work: int | None = None) -> list[tuple[list, int, int]]:
    """Share ``chunks`` and output channels among up to :func:`get_num_threads` workers, so no two
    write one pixel.

    Chunks of different samples are disjoint; bands of one sample are not (a kernel wider than the
    stride reaches across the band edge), so a sample is split by output channels instead; whichever
    way gives more workers (samples on a tie). Under ``min_work`` (:data:`PARALLEL_MIN_WORK`)
    multiply-adds, with one thread, or where the channels split unevenly
    (:data:`SPLIT_MIN_BALANCE`), everything stays with one worker.
    """
    n = get_num_threads() if n is None else n
    if n == 1 or work < (PARALLEL_MIN_WORK if min_work is None else min_work):
        return [(chunks, 0, channels)]
    firsts = sorted({c[0] for c in chunks})
    by_samples, by_channels = min(n, len(firsts)), min(n, channels)
    if by_samples >= 2 and by_samples >= by_channels:
        owner = {f: i % by_samples for i, f in enumerate(firsts)}
        return [([c for c in chunks if owner[c[0]] == w], 0, channels) for w in range(by_samples)]
    if by_channels >= 2 and channels / (by_channels * -(-channels // by_channels)) >= SPLIT_MIN_BALANCE:
        edges = [channels * w // by_channels for w in range(by_channels + 1)]
        return [(chunks, edges[w], edges[w + 1]) for w in range(by_channels)]
    return [(chunks, 0, channels)]


# --------------------------------------------------------------------------- transposed convolution


def single_product(spec: ConvSpec) -> str | None:
    """``'single_pixel'`` (a 1x1 input whose output is the kernel's footprint, cropped at either
    end) or ``'pointwise'`` (kernel 1, stride 1: a channel mix) when ``gemm`` computes ``spec`` as one
    matrix product and nothing else; None otherwise."""
    if spec.padding_mode != "zeros":
        return None
    if prod(spec.small) == 1 and all(
        d == 1 and cb >= 0 and ca >= 0 for d, (cb, ca) in zip(spec.dilation, spec.core_crop)
    ):
        return "single_pixel"
    if all(k == 1 and s == 1 for k, s in zip(spec.kernel, spec.stride)):
        return "pointwise"
    return None


@packs_weight
def gemm(spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
         cache: WeightCache | None = None, min_work: int | None = None) -> np.ndarray:
    """BLAS products of input pixels with the whole kernel, then compiled col2im (see the module).

    The adding runs plane by plane (inner loop along the input's last dimension; with a last
    stride above 1 and kernel != stride gathered per phase, each pixel written once) or, for many
    output channels on short rows or with a last stride of 1, channels-last (inner loop along the
    channels); a 1x1 input needs no adding at all; where every output pixel meets exactly one tap
    (kernel == stride) each pixel is written once, bias included. Channels-last multiplies the
    weight reordered taps-outer, one copy per worker's channel range: kept in ``cache`` when given
    (:mod:`tconv.engine.packing`), made for this call otherwise; or, a weight that outweighs the
    activations and is large or many times them (:data:`AS_IT_LIES_BYTES`,
    :data:`WEIGHT_DOMINATES`), as it lies. The other paths use the weight as it is. Under
    ``min_work`` (:data:`PARALLEL_MIN_WORK`) multiply-adds the call runs as one job.
    """
    Cl = spec.large_channels // spec.groups
    shortcut = single_product(spec)
    if shortcut == "single_pixel":
        return _single_pixel(spec, x, w, b)
    if shortcut == "pointwise":
        return _pointwise(spec, x, w, b)
    channels_last = Cl >= CHANNELS_LAST_MIN and (
        spec.small[-1] < PLANES_MIN_ROW or spec.stride[-1] == 1)
    # channels-last reorders the weight unless it outweighs the activations and is large or many
    # times them (AS_IT_LIES_BYTES, WEIGHT_DOMINATES): then it is multiplied as it lies
    activations = x.nbytes + prod(spec.out_shape) * spec.dtype.itemsize
    reorder = channels_last and (w.nbytes < activations or (
        w.nbytes < AS_IT_LIES_BYTES and w.nbytes < WEIGHT_DOMINATES * activations))
    return _gemm(spec, x, w, b, channels_last, cache,
                 PARALLEL_MIN_WORK if min_work is None else min_work, reorder)


@packs_weight
def gemm_shared(spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
                cache: WeightCache | None = None) -> np.ndarray:
    """:func:`gemm` with its work shared among the workers at any size (two samples or channel
    ranges on two workers, each with one-thread BLAS, where ``gemm`` runs a small problem as one
    job). Neither wins everywhere under :data:`PARALLEL_MIN_WORK` (on small seeded
    layers, measured: 0.94 -> 0.74 ms, 1.06 -> 0.78, 0.87 -> 0.65; but 0.31 -> 0.55, 0.33 -> 0.52),
    so a layer times both (:func:`tconv.engine.algorithms.variants`)."""
    return gemm(spec, x, w, b, cache=cache, min_work=0)


#: Kernel 1 with fewer pixels per sample than this multiplies the whole batch as one product (the
#: input moved samples-inside, in this thread's kept workspace): a product per sample with so few
#: columns runs well below BLAS's rate. Measured as layers (ms, per sample -> one product): 8 samples
#: of 4x4, 192 -> 512 channels, 0.75 -> 0.41; 16 of 9x9, 384 -> 192, 2.6 -> 1.5; level at 256
#: pixels (8 of 16x16, 192 -> 192: 1.7 and 1.8), per sample ahead above (8 of 24x24: 2.7-3.5
#: against 3.6-4.5).
POINTWISE_FEW_PIXELS = 256

#: Kernel 1 multiplies straight into the output, in column blocks of about this many bytes, each
#: block's bias added while it is in cache (8 samples of 84x84, 64 -> 384 channels in 8 groups:
#: 31 -> 22 ms, where a product beside the output, then copied, made a second fresh array).
POINTWISE_BLOCK_BYTES = 2**18


def _pointwise(spec, x, w, b):
    """Kernel 1, stride 1: output pixel ``j`` is input pixel ``j + crop`` times the weight, so the
    output is one product per sample and group, ``(Cl, Cs) @ (Cs, P)``, written once into the output
    (bias added block by block); a batch of few pixels per sample is one product per group,
    ``(Cl, Cs) @ (Cs, N*P)``. Pixels past the input (output_padding) hold the bias alone."""
    N, G = x.shape[0], spec.groups
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    # the input pixels the output keeps, and where they land
    src = tuple(slice(max(cb, 0), n - max(ca, 0)) for n, (cb, ca) in zip(spec.small, spec.core_crop))
    dst = tuple(slice(max(-cb, 0), max(-cb, 0) + sl.stop - sl.start)
                for sl, (cb, _) in zip(src, spec.core_crop))
    kept = tuple(sl.stop - sl.start for sl in src)
    P = prod(kept)
    xs = x.reshape(N, G, Cs, *spec.small)[(Ellipsis, *src)].reshape(N, G, Cs, P)
    wt = w.reshape(G, Cs, Cl).transpose(0, 2, 1)  # (G, Cl, Cs)
    bias = None if b is None else b.reshape(G, Cl, 1)
    y = np.empty((N, G, Cl, *spec.large), dtype=spec.dtype)
    inner = y[(Ellipsis, *dst)]
    whole = inner.shape[3:] == spec.large
    if not whole:  # pixels no input reaches
        y[...] = 0 if b is None else b.reshape(G, Cl, *(1,) * spec.rank)
    work = N * G * Cl * Cs * P
    if N > 1 and P < POINTWISE_FEW_PIXELS:
        # both in this thread's kept workspace: fresh, they cost more in page faults than the product
        space = workspace(G * (Cs + Cl) * N * P, spec.dtype)
        xt = space[: G * Cs * N * P].reshape(G, Cs, N * P)
        xt.reshape(G, Cs, N, P)[...] = xs.transpose(1, 2, 0, 3)
        out = space[G * Cs * N * P :].reshape(G, Cl, N * P)

        def batched(lo, hi):  # the columns (n, j) in [lo, hi)
            np.matmul(wt, xt[..., lo:hi], out=out[..., lo:hi])
            if bias is not None:
                out[..., lo:hi] += bias

        _run([partial(batched, lo, hi) for lo, hi in _ranges(N * P, work)], work)
        inner[...] = out.reshape(G, Cl, N, *kept).transpose(2, 0, 1, *range(3, 3 + spec.rank))
        return y.reshape(N, spec.large_channels, *spec.large)
    target = y.reshape(N, G, Cl, P) if whole else np.empty((N, G, Cl, P), dtype=spec.dtype)
    block = max(64, POINTWISE_BLOCK_BYTES // (G * Cl * spec.dtype.itemsize))

    def product(lo, hi):  # every sample's pixels [lo, hi), in blocks
        for n in range(N):
            for c0 in range(lo, hi, block):
                c1 = min(hi, c0 + block)
                part = target[n, ..., c0:c1]
                np.matmul(wt, xs[n, ..., c0:c1], out=part)
                if bias is not None:
                    part += bias

    _run([partial(product, lo, hi) for lo, hi in _ranges(P, work)], work)
    if not whole:
        inner[...] = target.reshape(N, G, Cl, *kept)
    return y.reshape(N, spec.large_channels, *spec.large)


def _ranges(columns: int, work: int) -> list[tuple[int, int]]:
    """``[0, columns)`` in one range per worker from :data:`PARALLEL_MIN_WORK` multiply-adds (the
    workers share a single product by its columns, or ``direct``'s output planes), else one."""
    n = max(1, min(columns, get_num_threads() if work >= PARALLEL_MIN_WORK else 1))
    edges = [columns * i // n for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _single_pixel(spec, x, w, b):
    """A 1x1 input: ``y[n, (o, t)] = x[n, :] @ W[:, (o, t)]`` is the output itself, one product,
    cropped to ``t`` in ``[crop before, crop before + L)``."""
    N, G = x.shape[0], spec.groups
    Cs = spec.small_channels // G
    y = np.empty((N, G, spec.large_channels // G * prod(spec.kernel)), dtype=spec.dtype)
    xg, w2 = x.reshape(N, G, Cs), w.reshape(G, Cs, -1)

    def product(lo, hi):  # the columns (o, t) in [lo, hi)
        for g in range(G):
            np.matmul(xg[:, g], w2[g][:, lo:hi], out=y[:, g, lo:hi])

    work = spec.multiply_adds
    _run([partial(product, lo, hi) for lo, hi in _ranges(y.shape[2], work)], work)
    y = y.reshape(N, spec.large_channels, *spec.kernel)
    if spec.large != spec.kernel:
        y = np.ascontiguousarray(y[(Ellipsis, *(slice(cb, cb + L) for (cb, _), L
                                               in zip(spec.core_crop, spec.large)))])
    return finish(spec, y, b)


def _gemm_plan(spec: ConvSpec, N: int, channels_last: bool, min_work: int) -> tuple:
    """What ``_gemm`` needs besides the arrays, for a batch of ``N``: ``(g3, assign, shares,
    tables)``, each share ``(chunks, channel lo, hi, product scratch, phase-sum scratch)`` (in
    elements), made once per geometry, thread count and chunk settings (a small call spent half its
    time making them)."""
    return _made_gemm_plan(spec, N, channels_last, get_num_threads(),
                           (GEMM_CHUNK_BYTES, GEMM_FEW_ROWS_BYTES, GEMM_FEW_ROWS), min_work)


@lru_cache(maxsize=256)
def _made_gemm_plan(spec: ConvSpec, N: int, channels_last: bool, threads: int, chunking: tuple,
                    parallel_min_work: int) -> tuple:
    g3 = rank3(spec)
    G = spec.groups
    Cl = spec.large_channels // G
    P_k = prod(spec.kernel)
    # kernel == stride: every output pixel meets one tap, so each is written once, bias included
    assign = not channels_last and all(
        k == s and d == 1 and ca >= 0
        for k, s, d, (_, ca) in zip(spec.kernel, spec.stride, spec.dilation, spec.core_crop))
    work = spec.multiply_adds
    # a batch in one chunk is cut so the workers take samples, not channel ranges, where a channel
    # range would give a product of few rows (see SAMPLES_FIRST_ROWS)
    by_samples = work >= parallel_min_work and threads <= Cl and Cl // threads * P_k < SAMPLES_FIRST_ROWS
    chunks = bands(spec, g3, N, Cl * P_k * spec.dtype.itemsize, parts=threads if by_samples else 1)
    shares = _split(chunks, Cl, work, threads, parallel_min_work)
    s, d, p, k, L = g3["stride"], g3["dilation"], g3["crop"], g3["kernel"], g3["core"]
    tables = [a for dim in range(3)
              for a in reach_table(g3["small"][dim], k[dim], s[dim], d[dim], p[dim], L[dim])
              ] if channels_last else []
    # each share with its scratch: the products of its largest chunk, and the plane path's
    # per-phase sums of a plane's visited rows (see kernels.col2im_phased)
    scratch = []
    for mine, lo, hi in shares:
        if not mine:
            continue
        products = (hi - lo) * P_k * max(m * prod(sh) for _, m, _, sh, _ in mine)
        phased = 0 if channels_last or assign or s[2] == 1 else max(
            (r[0][1] - r[0][0]) * (r[1][1] - r[1][0]) * s[2] * (sh[2] + (k[2] - 1) * d[2] // s[2] + 1)
            for _, _, _, sh, r in mine)
        scratch.append((mine, lo, hi, products, phased))
    return g3, assign, scratch, tables


def _gemm(spec, x, w, b, channels_last, cache, min_work, reorder):
    from . import kernels

    N, G = x.shape[0], spec.groups
    g3, assign, shares, tables = _gemm_plan(spec, N, channels_last, min_work)
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    P_k = prod(spec.kernel)
    x3 = np.ascontiguousarray(x).reshape(N, G * Cs, *g3["small"])
    y = np.empty((N, spec.large_channels, *g3["core"]), dtype=spec.dtype)
    fuse = b is not None and spec.padding_mode == "zeros"
    bias = b if fuse else np.zeros(spec.large_channels, spec.dtype)
    if not assign:
        y[...] = bias.reshape(-1, 1, 1, 1)
    s, d, p, k = g3["stride"], g3["dilation"], g3["crop"], g3["kernel"]
    w4 = w.reshape(G, Cs, Cl, P_k)
    reordered = {}
    if reorder:
        # W[g, c, (t, o)], taps outer, channels inner: one copy per channel range the workers take
        # (one for all of them when they share the channels), made here, not in the workers
        for lo, hi in {(lo, hi) for _, lo, hi, _, _ in shares}:
            reordered[lo, hi] = packed(
                cache, ("gemm-channels-last", w.dtype.str, G, lo, hi),
                lambda lo=lo, hi=hi: w4[:, :, lo:hi].transpose(0, 1, 3, 2).reshape(G, Cs, P_k * (hi - lo)))

    def worker(mine, o_lo, o_hi, products, sums):
        width = o_hi - o_lo
        if reorder:
            wg = reordered[o_lo, o_hi]
        else:  # W[g, c, (o, t)]: the weight's own layout, a view
            wg = w4[:, :, o_lo:o_hi].reshape(G, Cs, width * P_k)
        buf = workspace(products + sums, spec.dtype)
        phased = buf[products:]
        for first, samples, offsets, shape, reach in mine:
            M = samples * prod(shape)
            box = tuple(slice(f, f + n) for f, n in zip(offsets, shape))
            for g in range(G):
                part = x3[(slice(first, first + samples), slice(g * Cs, (g + 1) * Cs), *box)]
                c_first = g * Cl + o_lo
                out = buf[: M * width * P_k]
                # a chunk of several samples is whole samples: with large enough images each
                # sample's (Cs, P) view is multiplied as it lies by a stacked product, rather than
                # copied into one (Cs, M) matrix (on a 320-channel layer that copy took two thirds of
                # the time); small images are copied, since many thin products are slower
                stacked = samples == 1 or M // samples >= STACKED_MIN_PIXELS
                if channels_last:
                    # (M, Cs) @ (Cs, P_k*width): rows input pixels, columns (tap, channel)
                    if stacked:
                        cols = np.matmul(part.reshape(samples, Cs, M // samples).transpose(0, 2, 1),
                                         wg[g], out=out.reshape(samples, M // samples, P_k * width))
                    else:
                        cols = np.matmul(part.transpose(0, 2, 3, 4, 1).reshape(M, Cs), wg[g],
                                         out=out.reshape(M, P_k * width))
                    # columns (tap, channel) reordered, else (channel, tap) as the weight lies
                    kernels.col2im_gather(cols.reshape(samples, *shape, *k, width), y, first,
                                          c_first, *offsets, *tables, *reach[0], *reach[1],
                                          *reach[2], *((width, 1) if reorder else (1, P_k)))
                else:
                    # (width*P_k, Cs) @ (Cs, M): rows (channel, tap), columns input pixels
                    cols = out.reshape(width * P_k, samples, M // samples)
                    if stacked:  # each sample's product written into its columns
                        np.matmul(wg[g].T, part.reshape(samples, Cs, M // samples),
                                  out=cols.transpose(1, 0, 2))
                    else:
                        np.matmul(wg[g].T, part.transpose(1, 0, 2, 3, 4).reshape(Cs, M),
                                  out=cols.reshape(width * P_k, M))
                    # a last stride > 1 gathered per phase of the last dimension, written once;
                    # with kernel == stride each pixel is written once anyway: plainly, one pass
                    # (gathered, 3 passes: k2s2/k4s4 layers 1.03-1.28x as fast plainly)
                    if s[2] > 1 and not assign:
                        kernels.col2im_phased(cols.reshape(width, *k, samples, *shape), y, first,
                                              c_first, *offsets, *s, *d, *p, *reach[0],
                                              *reach[1], *reach[2], phased)
                    else:
                        kernels.col2im(cols.reshape(width, *k, samples, *shape), y, first, c_first,
                                       *offsets, *s, *d, *p, bias, assign)

    _run([partial(worker, *share) for share in shares if share[2] > share[1]], spec.multiply_adds)
    return finish(spec, y, None if fuse else b)


def direct(spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Compiled output-stationary loops, every pixel written once: for few channels per group
    (depthwise). See :func:`tconv.engine.kernels.direct`. Above :data:`PARALLEL_MIN_WORK` the output
    planes are shared among the workers in contiguous ranges."""
    from . import kernels

    g3 = rank3(spec)
    s, d, p, k, L, n = g3["stride"], g3["dilation"], g3["crop"], g3["kernel"], g3["core"], g3["small"]
    tab0, cnt0 = reach_table(n[0], k[0], s[0], d[0], p[0], L[0])
    tab1, cnt1 = reach_table(n[1], k[1], s[1], d[1], p[1], L[1])
    ptab, pcnt = phase_table(n[2], k[2], s[2], d[2], p[2], L[2])
    core = np.empty((x.shape[0], spec.large_channels, *g3["core"]), dtype=spec.dtype)  # each pixel written
    x5 = np.ascontiguousarray(x).reshape(*x.shape[:2], *n)
    w5 = np.ascontiguousarray(w).reshape(*w.shape[:2], *k)
    _run([partial(kernels.direct, x5, w5, core, spec.groups, tab0, cnt0, tab1, cnt1, ptab, pcnt, s[2],
                  p[2], lo, hi) for lo, hi in _ranges(x.shape[0] * spec.large_channels, spec.multiply_adds)
          if hi > lo])
    return finish(spec, core, b)


# --------------------------------------------------------------------------- the other direction


def correlate(spec: ConvSpec, large: np.ndarray, w: np.ndarray, small: np.ndarray | None = None,
              convolve: bool = True):
    """The convolution of the large side, and (given ``small``) the weight's gradient, by im2col.

    ``large`` ``(N, G*Cl, *L)``; per chunk of small-side pixels, ``cols = im2col(large)``
    ``(Cl*P_k, M)``, then ``out = W_g (Cs, Cl*P_k) @ cols`` is the convolution ``(N, G*Cs, *n)``
    and, with ``small`` ``(N, G*Cs, *n)``, ``grad_w += small (Cs, M) @ cols^T``. Returns
    ``(out, grad_w or None)``. The convolution is a transposed convolution's input-gradient (and
    :func:`tconv.conv`); ``grad_w`` is either direction's weight gradient. ``convolve=False`` skips
    the convolution (``out`` is then None).
    """
    from ..core.padding import pad
    from . import kernels

    g3 = rank3(spec)
    N, G = large.shape[0], spec.groups
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    P_k = prod(spec.kernel)
    core = large if spec.padding_mode == "zeros" else pad(large, spec.pads, spec.padding_mode)
    big = np.ascontiguousarray(core).reshape(N, G * Cl, *g3["core"])
    out = np.empty((N, G * Cs, *g3["small"]), dtype=spec.dtype) if convolve else None
    sm = None if small is None else np.ascontiguousarray(small).reshape(N, G * Cs, *g3["small"])
    w2 = w.reshape(G, Cs, Cl * P_k)
    # every small-side pixel is an output here, even one whose window lies wholly in the padding
    chunks = bands(spec, g3, N, Cl * P_k * spec.dtype.itemsize, skip_empty=False)
    geometry = (*g3["stride"], *g3["dilation"], *g3["crop"])
    # small-side chunks never overlap, so any share of them is race-free; each worker keeps its own
    # weight-gradient sum
    work = spec.multiply_adds
    n = get_num_threads() if work >= PARALLEL_MIN_WORK else 1
    shares = [chunks[i::n] for i in range(n)]
    grads = [np.zeros((G, Cs, Cl * P_k), dtype=spec.dtype) if small is not None else None
             for _ in shares]

    def worker(mine, gw):
        buf = workspace(Cl * P_k * max(m * prod(sh) for _, m, _, sh, _ in mine), spec.dtype)
        for first, samples, offsets, shape, _ in mine:
            M = samples * prod(shape)
            box = tuple(slice(f, f + n) for f, n in zip(offsets, shape))
            for g in range(G):
                cols = buf[: Cl * P_k * M].reshape(Cl, *g3["kernel"], samples, *shape)
                kernels.im2col(big, cols, first, g * Cl, *offsets, *geometry)
                cols = cols.reshape(Cl * P_k, M)
                if out is not None:
                    target = out[(slice(first, first + samples), slice(g * Cs, (g + 1) * Cs), *box)]
                    result = w2[g] @ cols  # (Cs, M)
                    target[...] = np.moveaxis(result.reshape(Cs, samples, *shape), 0, 1)
                if gw is not None:
                    part = sm[(slice(first, first + samples), slice(g * Cs, (g + 1) * Cs), *box)]
                    X = (part[0].reshape(Cs, M) if samples == 1
                         else part.transpose(1, 0, 2, 3, 4).reshape(Cs, M))
                    gw[g] += X @ cols.T

    _run([lambda m=m, gw=gw: worker(m, gw) for m, gw in zip(shares, grads) if m], work)
    grad_w = None
    if small is not None:
        partials = cast("list[np.ndarray]", grads)  # given small, every share has its sum
        grad_w = sum(partials[1:], partials[0]).reshape(spec.weight_shape)  # zeros where a share had no work
    if out is not None:
        out = out.reshape(N, spec.small_channels, *spec.small)
    return out, grad_w
