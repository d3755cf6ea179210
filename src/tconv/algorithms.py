"""The algorithms: plain functions over a :class:`~tconv.spec.ConvSpec` and checked arrays.

Symbols (see :mod:`tconv.spec`): ``N`` batch, ``G`` groups, ``Cs``/``Cl`` the small/large side's
channels per group, ``n``/``L`` their spatial sizes, ``k`` the kernel, ``s`` the stride, ``d`` the
dilation, ``P_x`` the product of the sizes ``x``. Arrays reaching an algorithm are batched and of
``spec.dtype``; weights are ``(G*Cs, Cl, *k)``.

A transposed convolution takes the small side to the large side. Every transposed algorithm in
:data:`TRANSPOSED` computes the same numbers, three ways (the seeds' three views):

- ``scatter``: every input element times the kernel, added into the output at stride offsets;
- ``zero_insertion``: ``s-1`` zeros between input elements, a border of ``d*(k-1) - padding``
  (negative: a crop), ``output_padding`` more at the end, then a correlation with the flipped kernel;
- ``matrix``: ``y = W^T x`` with ``W`` the dense matrix of the convolution (see :func:`conv_matrix`).

All three work in the *core* domain (``spec.core_crop``): for ``padding_mode='zeros'`` that is the
output itself; for the other modes it is the padded domain, folded back by :func:`padding.fold`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import product
from math import prod

import numpy as np

from .padding import fold, pad, pad_or_crop
from .spec import ConvSpec, check_bytes

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


def _finish(spec: ConvSpec, core: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """The core ``(N, [G, Cl | G*Cl], *core)`` to the output ``(N, G*Cl, *L)``: fold, add the bias."""
    y = core.reshape(core.shape[0], spec.large_channels, *spec.core_size)
    if spec.padding_mode != "zeros":
        y = fold(y, spec.pads, spec.padding_mode)
    if b is not None:
        y += b.reshape(-1, *(1,) * spec.rank)
    return y


def core_of_large(spec: ConvSpec, large: np.ndarray) -> np.ndarray:
    """The transpose of :func:`_finish`: the large side ``(N, C, *L)`` in the core domain."""
    if spec.padding_mode == "zeros":
        return large
    return pad(large, spec.pads, spec.padding_mode)


# --------------------------------------------------------------------------- transposed algorithms


def scatter(spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Each input element times the whole kernel, added into the output at stride offsets.

    ``x`` ``(N, G*Cs, *n)``, ``w`` ``(G*Cs, Cl, *k)`` -> ``(N, G*Cl, *L)``. The products of every input
    element with a batch of kernel taps are one matrix product (``cols``); the adding is one strided
    slice per tap. Taps are taken in batches whose ``cols`` stays near the output's size.
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
            core[(Ellipsis, *core_sl)] += cols[(slice(None), slice(None), m, slice(None), *small_sl)]
    return _finish(spec, core, b)


def zero_insertion(spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Insert ``s-1`` zeros between inputs, pad by ``d*(k-1) - padding``, correlate with the flipped kernel.

    ``x`` ``(N, G*Cs, *n)`` -> dilated ``(N, G*Cs, *((n-1)*s + 1))`` -> padded by
    ``(d*(k-1) - before, d*(k-1) - after + output_padding)`` (a negative border crops) ->
    correlated at stride 1 with the kernel flipped in every spatial dimension -> ``(N, G*Cl, *L)``.
    """
    rank = spec.rank
    image_size = tuple(
        (n - 1) * s + 1 + 2 * d * (k - 1) - cb - ca
        for n, s, k, d, (cb, ca) in zip(spec.small, spec.stride, spec.kernel, spec.dilation,
                                       spec.core_crop)
    )
    check_bytes("algorithm='zero_insertion'", "the zero-inserted image",
                2 * x.shape[0] * x.shape[1] * prod(image_size) * spec.dtype.itemsize, share=0.5)
    # 1. the "processing image": stride-1 zeros between input elements
    dilated = np.zeros(
        (*x.shape[:2], *((n - 1) * s + 1 for n, s in zip(spec.small, spec.stride))), dtype=spec.dtype
    )
    dilated[(Ellipsis, *(slice(None, None, s) for s in spec.stride))] = x
    # 2. border of d*(k-1) - crop on each side (output_padding is a smaller crop after)
    border = tuple(
        (d * (k - 1) - cb, d * (k - 1) - ca)
        for k, d, (cb, ca) in zip(spec.kernel, spec.dilation, spec.core_crop)
    )
    image = _grouped(spec, pad_or_crop(dilated, border), spec.small_channels)
    # 3. correlate with the flipped kernel: out[j] = sum_t image[j + t*d] * w[k-1-t]
    flipped = _grouped_weight(spec, w)[(Ellipsis, *(slice(None, None, -1),) * rank)]
    core = np.zeros((x.shape[0], spec.groups, spec.large_channels // spec.groups, *spec.core_size),
                    dtype=spec.dtype)
    for t in np.ndindex(*spec.kernel):
        window = tuple(slice(ti * d, ti * d + size)
                       for ti, d, size in zip(t, spec.dilation, spec.core_size))
        core += _contract(flipped[(Ellipsis, *t)], image[(Ellipsis, *window)])
    return _finish(spec, core, b)


def conv_matrix(spec: ConvSpec, w: np.ndarray) -> np.ndarray:
    """The dense matrix ``W`` of the convolution that this transposed convolution transposes.

    Shape ``(C_small*P_n, C_large*P_L)``, row-major over ``(channel, *spatial)`` on both sides, so that
    ``conv(x) = W @ x.ravel()`` (per sample, bias aside) and ``conv_transpose(y) = W.T @ y.ravel()``.
    The padding mode is part of ``W``. Refuses (ValueError) a matrix over :data:`MATRIX_LIMIT_BYTES`.

    >>> from tconv.spec import transposed_spec
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
            f"(tconv.algorithms.MATRIX_LIMIT_BYTES); use algorithm='scatter' or 'auto'"
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
    """``y = W^T x`` with ``W`` from :func:`conv_matrix`: ``(N, C_small*P_n) @ W`` -> ``(N, C_large, *L)``."""
    W = conv_matrix(spec, w)
    y = (x.reshape(x.shape[0], -1) @ W).reshape(x.shape[0], spec.large_channels, *spec.large)
    return y if b is None else y + b.reshape(-1, *(1,) * spec.rank)


# --------------------------------------------------------------------------- the fast engine


def _rank3(spec: ConvSpec, lead: bool = True) -> dict:
    """The geometry padded to three spatial dimensions with singletons (leading or trailing)."""
    extra = 3 - spec.rank

    def pad3(values, fill):
        values = tuple(values)
        return (fill,) * extra + values if lead else values + (fill,) * extra

    return dict(
        small=pad3(spec.small, 1), kernel=pad3(spec.kernel, 1), stride=pad3(spec.stride, 1),
        dilation=pad3(spec.dilation, 1), crop=pad3((cb for cb, _ in spec.core_crop), 0),
        core=pad3(spec.core_size, 1),
    )


def _reach(n: int, k: int, s: int, d: int, crop: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output coordinate ``j`` in ``[0, size)``: the ``(t, i)`` with ``i*s + t*d - crop == j``.

    Returns ``table (size, most, 2)`` and ``counts (size,)``.
    """
    i, t = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    j = (i * s + t * d - crop).ravel()
    keep = (j >= 0) & (j < size)
    j, t, i = j[keep], t.ravel()[keep], i.ravel()[keep]
    counts = np.bincount(j, minlength=size)
    order = np.argsort(j, kind="stable")
    slot = np.arange(len(j)) - np.repeat(np.cumsum(counts) - counts, counts)
    table = np.zeros((size, max(1, int(counts.max(initial=0))), 2), dtype=np.int64)
    table[j[order], slot, 0] = t[order]
    table[j[order], slot, 1] = i[order]
    return table, counts.astype(np.int64)


def _chunks(batch: int, rows: int, row_pixels: int, columns: int):
    """Split the (sample, first-dimension row) space into chunks of about ``columns`` GEMM columns.

    Yields ``(first sample, samples, first row, rows)``: whole samples when one fits, else row bands
    of one sample.
    """
    per_sample = rows * row_pixels
    if columns >= per_sample:
        step = max(1, columns // per_sample)
        for n in range(0, batch, step):
            yield n, min(step, batch - n), 0, rows
    else:
        step = max(1, columns // row_pixels)
        for n in range(batch):
            for r in range(0, rows, step):
                yield n, 1, r, min(step, rows - r)


#: ``gemm`` multiplies in chunks whose columns take about this much: small enough to be read back
#: from cache by col2im, large enough for BLAS to run at full speed.
GEMM_CHUNK_BYTES = 8 * 2**20

#: ``gemm`` adds channels-last (innermost loop over output channels) from this many output channels
#: per group; below it, plane by plane.
CHANNELS_LAST_MIN = 16

#: Compiled loops run on all cores from this many element operations; below, one core is faster.
PARALLEL_MIN_WORK = 1 << 18


def gemm(spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """One matrix product per chunk of input pixels, then a compiled col2im: the fast general engine.

    Per group and chunk of ``M`` input pixels: ``cols = X^T (M, Cs) @ W (Cs, P_k*Cl)`` (BLAS), every
    input pixel times the whole kernel; then col2im adds each column into the output at its stride
    offsets. Nothing is zero-inserted and nothing is multiplied by an inserted zero; chunks keep
    ``cols`` within :data:`GEMM_CHUNK_BYTES`. With many output channels the adding runs channels-last
    (long contiguous inner loops) and one final pass turns it channels-first, adding the bias.
    """
    Cl = spec.large_channels // spec.groups
    if Cl >= CHANNELS_LAST_MIN:
        return _gemm_channels_last(spec, x, w, b)
    return _gemm_planes(spec, x, w, b)


def _gemm_channels_last(spec, x, w, b):
    from . import kernels

    g3 = _rank3(spec)
    N, G = x.shape[0], spec.groups
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    P_k, P_n = prod(spec.kernel), prod(spec.small)
    lead = 3 - spec.rank  # chunks are bands along the first real spatial dimension
    rows, band = g3["small"][lead], prod(g3["small"][lead + 1 :])
    x3 = np.ascontiguousarray(x).reshape(N, G * Cs, rows, band)
    # W[g, c, (t, o)]: taps outermost, output channels innermost (one copy of the weight)
    wt = w.reshape(G, Cs, Cl, P_k).transpose(0, 1, 3, 2).reshape(G, Cs, P_k * Cl).copy()
    y = np.zeros((N, spec.large_channels, *g3["core"]), dtype=spec.dtype)
    fuse = b is not None and spec.padding_mode == "zeros"
    if fuse:
        y[...] = b.reshape(-1, 1, 1, 1)
    s, d, p, k, L = g3["stride"], g3["dilation"], g3["crop"], g3["kernel"], g3["core"]
    tables = [a for dim in range(3) for a in _reach(g3["small"][dim], k[dim], s[dim], d[dim], p[dim],
                                                    L[dim])]
    columns = max(1, GEMM_CHUNK_BYTES // (P_k * Cl * spec.dtype.itemsize))
    chunks = list(_chunks(N, rows, band, columns))
    buf = np.empty(P_k * Cl * max(m * r * band for _, m, _, r in chunks), dtype=spec.dtype)
    parallel = N * P_n * P_k * Cl >= PARALLEL_MIN_WORK
    col2im = kernels.col2im_gather if parallel else kernels.col2im_gather_serial
    for first, samples, r_first, nrows in chunks:
        M = samples * nrows * band
        # the output coordinates this band can reach, along the banded dimension
        reach = [(0, size) for size in L]
        lo = max(0, r_first * s[lead] - p[lead])
        hi = min(L[lead], (r_first + nrows - 1) * s[lead] + (k[lead] - 1) * d[lead] - p[lead] + 1)
        if hi <= lo:
            continue
        reach[lead] = (lo, hi)
        shape = list(g3["small"])
        shape[lead] = nrows
        offsets = [0, 0, 0]
        offsets[lead] = r_first
        for g in range(G):
            part = x3[first : first + samples, g * Cs : (g + 1) * Cs, r_first : r_first + nrows]
            if samples == 1:
                X = part[0].reshape(Cs, M).T  # a transposed view: BLAS reads it as it is
            else:
                X = part.transpose(0, 2, 3, 1).reshape(M, Cs)  # one copy of the chunk
            cols = np.matmul(X, wt[g], out=buf[: M * P_k * Cl].reshape(M, P_k * Cl))
            col2im(cols.reshape(samples, *shape, *k, Cl), y, first, g * Cl, *offsets, *tables,
                   *reach[0], *reach[1], *reach[2])
    return _finish(spec, y, None if fuse else b)


def _gemm_planes(spec, x, w, b):
    from . import kernels

    g3 = _rank3(spec)
    N, G = x.shape[0], spec.groups
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    P_k = prod(spec.kernel)
    n0, n1, n2 = g3["small"]
    x3 = np.ascontiguousarray(x).reshape(N, G * Cs, *g3["small"])
    core = np.zeros((N, spec.large_channels, *g3["core"]), dtype=spec.dtype)
    columns = max(1, GEMM_CHUNK_BYTES // (Cl * P_k * spec.dtype.itemsize))
    chunks = list(_chunks(N, n0, n1 * n2, columns))
    buf = np.empty(Cl * P_k * max(k * r * n1 * n2 for _, k, _, r in chunks), dtype=spec.dtype)
    w2 = w.reshape(G, Cs, Cl * P_k)
    geometry = (*g3["stride"], *g3["dilation"], *g3["crop"])
    for first, samples, r_first, rows in chunks:
        M = samples * rows * n1 * n2
        for g in range(G):
            part = x3[first : first + samples, g * Cs : (g + 1) * Cs, r_first : r_first + rows]
            if samples == 1:
                X = part[0].reshape(Cs, M)  # a view: rows of one sample are contiguous per channel
            else:
                X = part.transpose(1, 0, 2, 3, 4).reshape(Cs, M)  # one copy of the chunk
            cols = np.matmul(w2[g].T, X, out=buf[: Cl * P_k * M].reshape(Cl * P_k, M))
            kernels.col2im(cols.reshape(Cl, *g3["kernel"], samples, rows, n1, n2), core, first,
                           g * Cl, r_first, *geometry)
    return _finish(spec, core, b)


def direct(spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Compiled scatter loops, one output plane per task: for few channels per group (depthwise)."""
    from . import kernels

    g3 = _rank3(spec)
    core = np.zeros((x.shape[0], spec.large_channels, *g3["core"]), dtype=spec.dtype)
    kernels.direct(np.ascontiguousarray(x).reshape(*x.shape[:2], *g3["small"]),
                   np.ascontiguousarray(w).reshape(*w.shape[:2], *g3["kernel"]), core, spec.groups,
                   *g3["stride"], *g3["dilation"], *g3["crop"])
    return _finish(spec, core, b)


#: Transposed-convolution algorithms by name; each ``f(spec, x, w) -> y`` (bias not included).
TRANSPOSED: dict[str, Callable[[ConvSpec, np.ndarray, np.ndarray], np.ndarray]] = {
    "scatter": scatter,
    "zero_insertion": zero_insertion,
    "matrix": matrix,
    "gemm": gemm,
    "direct": direct,
}

#: The names ``algorithm=`` accepts.
ALGORITHMS: tuple[str, ...] = ("auto", *TRANSPOSED)


def choose(spec: ConvSpec) -> str:
    """The algorithm ``auto`` runs for ``spec``.

    ``direct`` (compiled loops) when each group has few input channels, where a matrix product has
    too little to multiply; otherwise ``gemm`` (BLAS, then a compiled col2im).
    """
    if spec.small_channels // spec.groups <= DIRECT_MAX_CHANNELS:
        return "direct"
    return "gemm"


#: ``auto`` runs ``direct`` when a group has at most this many input channels.
DIRECT_MAX_CHANNELS = 4


# --------------------------------------------------------------------------- the other direction


def gather(spec: ConvSpec, large: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The convolution: large side ``(N, G*Cl, *L)`` to small side ``(N, G*Cs, *n)``.

    ``small[i] = sum_t w[t] . core[i*s + t*d - crop_before]``, the core being the large side padded
    in the padding mode; the exact transpose of the transposed algorithms above.
    """
    N = large.shape[0]
    core = _grouped(spec, core_of_large(spec, large), spec.large_channels)
    wg = _grouped_weight(spec, w)
    wt = np.moveaxis(wg, 1, 2)  # (G, Cl, Cs, *k)
    small = np.zeros((N, spec.groups, wg.shape[1], *spec.small), dtype=spec.dtype)
    for t, small_sl, core_sl in tap_slices(spec):
        small[(Ellipsis, *small_sl)] += _contract(wt[(Ellipsis, *t)], core[(Ellipsis, *core_sl)])
    return small.reshape(N, spec.small_channels, *spec.small)


def weight_grad(spec: ConvSpec, small: np.ndarray, large: np.ndarray) -> np.ndarray:
    """The gradient of either direction with respect to the weight, ``(G*Cs, Cl, *k)``.

    ``dw[c, o, t] = sum_{N, i} small[N, c, i] * core[N, o, i*s + t*d - crop_before]``: a correlation of
    the small side with the (padded) large side, whichever of them is the input.
    """
    G = spec.groups
    sg = _grouped(spec, small, spec.small_channels)
    core = _grouped(spec, core_of_large(spec, large), spec.large_channels)
    dw = np.zeros((G, sg.shape[2], core.shape[2], *spec.kernel), dtype=spec.dtype)
    for t, small_sl, core_sl in tap_slices(spec):
        dw[(Ellipsis, *t)] = np.einsum(
            "ngc...,ngo...->gco", sg[(Ellipsis, *small_sl)], core[(Ellipsis, *core_sl)], optimize=True
        )
    return dw.reshape(spec.weight_shape)
