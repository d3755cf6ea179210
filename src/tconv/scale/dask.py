"""Transposed convolutions, convolutions and their gradients on dask arrays: lazy, block by block, exact.

Every public function and layer of tconv accepts a ``dask.array.Array`` input ``(N, C, *spatial)``,
chunked along any axes, and returns a dask array without computing anything; the numbers are those of
the in-memory call. The arguments are checked at the call, as in memory (the same ValueError or
TypeError); a dask weight or bias is computed at the call (they are small).

**Blocks follow the input.** Channels are merged into one chunk per group (whole groups per block); along
the batch axis the output keeps the input's chunks; along each spatial axis, input chunk ``[a, b)``
makes output block ``[a*s - crop, b*s - crop)`` (the image of the chunk under the stride, cropped by
the padding before; the first block starts at 0, the last ends at the output's end, so output_padding
pixels fall in the last block; a chunk whose whole image is cropped away makes no block, since dask
handles empty chunks poorly downstream). That block needs the input pixels whose kernel windows reach it: the
chunk and a *halo* of ``floor(dilation*(kernel - 1) / stride)`` pixels before it, no more (pixel ``i``
reaches ``i*s .. i*s + d*(k-1)``). Each output block is one task: the chunk with its halo (gathered from
as many neighbouring chunks as it spans, so chunks smaller than the kernel work), and the in-memory
engine with the padding cropping exactly the block's pixels. No task holds more than a block and its
halo.

For the other padding modes the blocks compute the uncropped result (the padded domain) and the border
strips are folded back onto the pixels they were copied from, across the whole array (``circular``
adds the first strip onto the last pixels, in another chunk).

A convolution (and a transposed convolution's input gradient) is the mirror image: output block for
input chunk ``[a, b)`` (in padded coordinates) holds the outputs ``i`` with ``i*s`` in it, and needs a
halo of ``d*(k-1) + 1 - s`` pixels *after* the chunk. Weight and bias gradients are sums of one partial
sum per block, reduced as a tree by dask; the activations are never gathered.

Inside a task tconv runs with one thread (:func:`tconv.engine.threads.thread_num_threads`): the
scheduler already runs one task per worker thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import product
from typing import Any

import numpy as np

from ..core.padding import source_index
from ..core.spec import ConvSpec, as_array, conv_spec, result_dtype, stand_in, transposed_spec
from ..engine.threads import thread_num_threads
from .arrays import is_dask

_NUMPY_MODE = {"circular": "wrap", "reflect": "reflect", "replicate": "edge"}


def checked(op: str, name: str, a: Any) -> tuple[Any, np.ndarray]:
    """The dask array and a same-shape, same-dtype stand-in (no memory) for the spec's checks."""
    import dask.array as da

    if any(math.isnan(s) for s in a.shape):
        raise ValueError(
            f"{op}: {name} has chunks of unknown size (nan); call {name}.compute_chunk_sizes() "
            f"first"
        )
    empty = stand_in(a.shape, a.dtype)
    as_array(op, name, empty)  # the dtype rule
    return da.asarray(a), empty


def _in_memory(op: str, name: str, a: Any) -> np.ndarray:
    """A weight (small) as an ndarray, computed if it is a dask array; checked as in memory (a None
    weight is the in-memory call's TypeError)."""
    if is_dask(a):
        a = a.compute()
    return as_array(op, name, a)


def _optional(op: str, name: str, a: Any) -> np.ndarray | None:
    """A bias: None, or as :func:`_in_memory`."""
    return None if a is None else _in_memory(op, name, a)


# --------------------------------------------------------------------------- geometry


def transposed_blocks(chunks: Sequence[int], n: int, k: int, s: int, d: int, crop: int,
                      size: int) -> list[tuple[int, int, int, int]]:
    """Per input chunk along one dimension: ``(lo, hi, i_lo, i_hi)``, the output block ``[lo, hi)``
    (coordinates of the result, which starts ``crop`` pixels into the full scatter) and the input
    pixels ``[i_lo, i_hi)`` that reach it (the chunk and its halo).

    >>> transposed_blocks((2, 2), n=4, k=3, s=2, d=1, crop=1, size=8)
    [(0, 3, 0, 2), (3, 8, 1, 4)]
    """
    out, a = [], 0
    for c, width in enumerate(chunks):
        b = a + width
        lo = min(max(a * s - crop, 0), size)
        hi = size if c == len(chunks) - 1 else min(max(b * s - crop, 0), size)
        hi = max(hi, lo)
        i_lo = max(0, -(-(lo + crop - (k - 1) * d) // s))
        i_hi = min(n, (hi - 1 + crop) // s + 1) if hi > lo else i_lo
        out.append((lo, hi, i_lo, max(i_hi, i_lo)))
        a = b
    return out


def conv_blocks(chunks: Sequence[int], before: int, n: int, k: int, s: int, d: int
                ) -> list[tuple[int, int, int, int]]:
    """Per input chunk of a convolution along one dimension: ``(o_lo, o_hi, p_lo, p_hi)``, the outputs
    ``[o_lo, o_hi)`` whose windows start in the chunk (padded by ``before``; the first chunk owns the
    padding before it, the last everything after) and the padded input ``[p_lo, p_hi)`` they read.

    >>> conv_blocks((3, 3), before=1, n=3, k=3, s=2, d=1)
    [(0, 2, 0, 5), (2, 3, 4, 7)]
    """
    out, a = [], 0
    for c, width in enumerate(chunks):
        A = 0 if c == 0 else a + before
        B = None if c == len(chunks) - 1 else a + width + before
        o_lo = min(n, -(-A // s))
        o_hi = n if B is None else min(n, -(-B // s))
        o_hi = max(o_hi, o_lo)
        p_lo = o_lo * s
        p_hi = (o_hi - 1) * s + (k - 1) * d + 1 if o_hi > o_lo else p_lo
        out.append((o_lo, o_hi, p_lo, p_hi))
        a += width
    return out


def nonempty(blocks: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """The blocks with at least one output pixel: an input chunk whose whole image is cropped away
    makes no block (dask handles empty chunks poorly downstream)."""
    return [block for block in blocks if block[1] > block[0]]


def _channel_blocks(groups: int, per_group: int, chunks: Sequence[int]) -> int:
    """Groups per channel block: whole groups, about as many channels as the input's first chunk."""
    per_block = max(1, min(groups, chunks[0] // per_group))
    while groups % per_block:
        per_block -= 1
    return per_block


# --------------------------------------------------------------------------- the graph


def _gather(pieces: list, shape: list, origin: list, dtype) -> np.ndarray:
    """One array of ``shape`` from ``[array, offset]`` pieces; pixels no piece covers are zero."""
    size = tuple(shape)
    if len(pieces) == 1 and pieces[0][0].shape == size:
        return pieces[0][0]
    out = np.zeros(size, dtype)
    for part, offset in pieces:
        out[tuple(slice(o - g, o - g + n) for o, g, n in zip(offset, origin, part.shape))] = part
    return out


def _task(fn: Callable, args: list, sources: list, constants: list) -> Any:
    """Gather each source's region, then run ``fn(*regions, *constants, *args)`` with one tconv
    thread."""
    regions = [_gather(pieces, shape, origin, dtype) for pieces, shape, origin, dtype in sources]
    with thread_num_threads(1):
        return fn(*regions, *constants, *args)


def _region_pieces(src, lo: tuple[int, ...], hi: tuple[int, ...]) -> list:
    """``[getitem task, offset]`` pieces of ``src``'s chunks covering ``[lo, hi)`` (clipped to it).

    Lists, not tuples: dask walks into lists and reads a tuple that starts with a callable as a task.
    """
    from operator import getitem

    per_axis = []
    for axis, (first, end) in enumerate(zip(lo, hi)):
        first, end = max(first, 0), min(end, src.shape[axis])
        edges = np.cumsum((0, *src.chunks[axis]))
        axis_pieces = []
        for j in range(len(src.chunks[axis])):
            a, b = int(edges[j]), int(edges[j + 1])
            if b > first and a < end and b > a:
                axis_pieces.append((j, slice(max(first, a) - a, min(end, b) - a), max(first, a)))
        per_axis.append(axis_pieces)
    return [[(getitem, (src.name, *(j for j, _, _ in combo)), tuple(sl for _, sl, _ in combo)),
             [o for _, _, o in combo]] for combo in product(*per_axis)]


def blockwise_regions(name: str, token: Any, sources: list, out_chunks: tuple, dtype, fn: Callable,
                      plan: Callable[[tuple], tuple[list, list]], constants: tuple = ()):
    """A dask array with chunks ``out_chunks`` whose block ``idx`` is
    ``fn(*regions, *constants, *args)``, where ``plan(idx)`` gives ``(regions, args)``: one
    ``(lo, hi)`` box per source (pixels outside the source are zero) and the block's own arguments.
    ``constants`` (the weight, the bias: arrays or None) are put in the graph once, as keys every
    task reads, so no task carries its own copy. ``token`` names everything else the blocks depend on
    (the spec); ``fn`` must not hold large arrays itself."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    name = f"{name}-{tokenize(name, token, constants, *(s.name for s in sources), out_chunks)}"
    dsk: dict = {}
    refs: list[str | None] = []
    for i, value in enumerate(constants):
        if value is None:
            refs.append(None)
        else:
            dsk[f"{name}-constant-{i}"] = value
            refs.append(f"{name}-constant-{i}")
    for idx in product(*(range(len(c)) for c in out_chunks)):
        boxes, args = plan(idx)
        regions = [[_region_pieces(src, lo, hi), [e - f for f, e in zip(lo, hi)], list(lo), src.dtype]
                   for src, (lo, hi) in zip(sources, boxes)]
        dsk[(name, *idx)] = (_task, fn, list(args), regions, list(refs))
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=list(sources))
    return da.Array(graph, name, out_chunks, meta=np.empty((0,) * len(out_chunks), dtype))


def _ranges(chunks: Sequence[int]) -> list[tuple[int, int]]:
    edges = np.cumsum((0, *chunks)).tolist()
    return list(zip(edges[:-1], edges[1:]))


# --------------------------------------------------------------------------- transposed convolution


def _batched(spec: ConvSpec, a):
    return a if spec.batch is not None else a[None]


def _unbatched(spec: ConvSpec, a):
    return a if spec.batch is not None else a[0]


def _algorithm(op: str, algorithm: Any) -> None:
    from ..engine.algorithms import ALGORITHMS

    if algorithm not in ALGORITHMS:
        raise ValueError(f"{op}: algorithm must be one of {ALGORITHMS}, got {algorithm!r}")


def conv_transpose(op: str, input: Any, weight: Any, bias: Any, stride: Any, padding: Any,
                   output_padding: Any, groups: Any, dilation: Any, output_size: Any,
                   padding_mode: Any, algorithm: Any):
    """:func:`tconv.conv_transpose` of a dask ``input``: ``(y, spec, input)``, ``y`` lazy."""
    x, empty = checked(op, "input", input)
    w = _in_memory(op, "weight", weight)
    b = _optional(op, "bias", bias)
    spec = transposed_spec(op, empty, w, b, stride, padding, output_padding, groups, dilation,
                           output_size, padding_mode, in_memory=False)
    _algorithm(op, algorithm)
    y = _transposed(spec, _batched(spec, x), w, b, algorithm)
    return _unbatched(spec, y), spec, x


def _transposed(spec: ConvSpec, x, w: np.ndarray, b: np.ndarray | None, algorithm: str = "auto"):
    """The transposed convolution ``spec`` describes, of the batched dask ``x`` ``(N, G*Cs, *n)``:
    ``(N, G*Cl, *L)`` (for a convolution's spec, its adjoint)."""
    from ..core.functional import conv_transpose as run

    G, rank, dtype = spec.groups, spec.rank, spec.dtype
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    per_block = _channel_blocks(G, Cs, x.chunks[1])
    w, b = w.astype(dtype, copy=False), None if b is None else b.astype(dtype, copy=False)
    crops = [cb for cb, _ in spec.core_crop]
    blocks = [nonempty(transposed_blocks(x.chunks[2 + i], n, k, s, d, crop, size))
              for i, (n, k, s, d, crop, size)
              in enumerate(zip(spec.small, spec.kernel, spec.stride, spec.dilation, crops,
                               spec.core_size))]
    batches = _ranges(x.chunks[0])
    out_chunks = (x.chunks[0], (per_block * Cl,) * (G // per_block),
                  *(tuple(hi - lo for lo, hi, _, _ in bl) for bl in blocks))
    zeros_mode = spec.padding_mode == "zeros"

    def plan(idx):
        n_idx, c, *sp = idx
        chosen = [bl[i] for bl, i in zip(blocks, sp)]
        lo = (batches[n_idx][0], c * per_block * Cs, *(i_lo for _, _, i_lo, _ in chosen))
        hi = (batches[n_idx][1], (c + 1) * per_block * Cs, *(i_hi for _, _, _, i_hi in chosen))
        return [(lo, hi)], [c, chosen]

    def block(piece, w, b, c, chosen):
        sizes = tuple(hi - lo for lo, hi, _, _ in chosen)
        windows = []  # per dimension: the local result's crop (before, after), where it lands, its size
        for (lo, hi, i_lo, i_hi), crop, k, s, d in zip(chosen, crops, spec.kernel, spec.stride,
                                                        spec.dilation):
            # the piece's own scatter covers [i_lo*s, i_lo*s + full) of the full output; the block
            # is [lo + crop, hi + crop): keep their overlap, zeros elsewhere
            full = (i_hi - i_lo - 1) * s + (k - 1) * d + 1 if i_hi > i_lo else 0
            start, first = i_lo * s, lo + crop
            before = max(0, first - start)
            after = max(0, start + full - (hi + crop))
            windows.append((before, after, max(0, start - first), full - before - after))
        bias = b[c * per_block * Cl:(c + 1) * per_block * Cl] if zeros_mode and b is not None else None
        if not (all(size >= 1 for *_, size in windows) and piece.shape[0]):
            out = np.zeros((piece.shape[0], per_block * Cl, *sizes), dtype)
            return out if bias is None else out + bias.reshape(-1, *(1,) * rank)
        rows = slice(c * per_block * Cs, (c + 1) * per_block * Cs)
        got = run(piece, w[rows], bias, spec.stride, [(bf, af) for bf, af, _, _ in windows], 0,
                  per_block, spec.dilation, algorithm=algorithm)
        if got.shape[2:] == sizes:  # the usual case: the piece's result is the block
            return got
        out = np.zeros((piece.shape[0], per_block * Cl, *sizes), dtype)
        if bias is not None:
            out += bias.reshape(-1, *(1,) * rank)
        out[(Ellipsis, *(slice(at, at + size) for _, _, at, size in windows))] = got
        return out

    core = blockwise_regions("tconv-conv-transpose", (spec, algorithm), [x], out_chunks, dtype,
                             block, plan, (w, b if zeros_mode else None))
    if zeros_mode:
        return core
    y = fold(core, spec.pads, spec.padding_mode)
    # the fold keeps each core block's pixels inside the borders; a block wholly in a border goes
    kept = []
    for (before, _), size, chunks in zip(spec.pads, spec.large, out_chunks[2:]):
        edges = np.clip(np.cumsum((0, *chunks)) - before, 0, size)
        kept.append(tuple(int(e) for e in np.diff(edges) if e))
    y = y.rechunk((*out_chunks[:2], *kept))
    if b is not None:
        y = y + b.reshape(-1, *(1,) * rank)
    return y


def fold(core, pads: Sequence[tuple[int, int]], mode: str):
    """:func:`tconv.core.padding.fold` of a dask array: every border pixel added onto the pixel it was
    copied from (``source_index``), wherever in the array that pixel lies."""
    out = core
    for i, (before, after) in enumerate(pads):
        if not (before or after):
            continue
        axis = out.ndim - len(pads) + i
        size = out.shape[axis] - before - after

        def at(a, lo, hi, axis=axis):
            return a[(slice(None),) * axis + (slice(lo, hi),)]

        folded = at(out, before, before + size)
        for j in (*range(before), *range(before + size, before + size + after)):
            t = source_index(j - before, size, mode)
            index = (slice(None),) * axis + (slice(t, t + 1),)
            folded[index] = folded[index] + at(out, j, j + 1)
        out = folded
    return out


# --------------------------------------------------------------------------- convolution


def conv(op: str, input: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
         groups: Any, padding_mode: Any):
    """:func:`tconv.conv` of a dask ``input``: ``(y, spec, input)``, ``y`` lazy."""
    x, empty = checked(op, "input", input)
    w = _in_memory(op, "weight", weight)
    b = _optional(op, "bias", bias)
    spec = conv_spec(op, empty, w, b, stride, padding, dilation, groups, padding_mode,
                     in_memory=False)
    y = _convolved(spec, _batched(spec, x), w, b)
    return _unbatched(spec, y), spec, x


def _padded(spec: ConvSpec, large):
    """The large side as a convolution reads it, and the offset of its first pixel: for ``zeros``
    the array itself at ``-before`` (the regions read zeros outside it), else padded in its mode."""
    import dask.array as da

    if spec.padding_mode == "zeros":
        return large, [-b for b, _ in spec.pads]
    widths = [(0, 0), (0, 0), *spec.pads]
    return da.pad(large, widths, mode=_NUMPY_MODE[spec.padding_mode]), [0] * spec.rank


def small_blocks(chunks: Sequence[int], k: int, s: int, d: int) -> list[tuple[int, int, int, int]]:
    """Per chunk ``[a, b)`` of the small side along one dimension: ``(a, b, a*s, (b-1)*s + d*(k-1) + 1)``,
    the padded large pixels its kernel windows read (a halo of ``d*(k-1) + 1 - s`` after the chunk).

    >>> small_blocks((2, 1), k=3, s=2, d=1)
    [(0, 2, 0, 5), (2, 3, 4, 7)]
    """
    out = []
    for a, b in _ranges(chunks):
        out.append((a, b, a * s, (b - 1) * s + (k - 1) * d + 1 if b > a else a * s))
    return out


def _convolved(spec: ConvSpec, large, w: np.ndarray, b: np.ndarray | None, like=None):
    """The convolution ``spec`` describes, of the batched dask ``large`` ``(N, G*Cl, *L)``:
    ``(N, G*Cs, *n)`` (for a transposed convolution's spec, its input-gradient). Blocks follow
    ``large``'s chunks (:func:`conv_blocks`), or, given the dask array ``like`` of the small side's
    shape, its chunks (:func:`small_blocks`)."""
    from ..core.functional import conv as run

    G, rank, dtype = spec.groups, spec.rank, spec.dtype
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    per_block = _channel_blocks(G, Cl, large.chunks[1])
    w, b = w.astype(dtype, copy=False), None if b is None else b.astype(dtype, copy=False)
    src, origin = _padded(spec, large)
    geometry = zip(spec.pads, spec.small, spec.kernel, spec.stride, spec.dilation)
    if like is None:
        blocks = [nonempty(conv_blocks(large.chunks[2 + i], before, n, k, s, d))
                  for i, ((before, _), n, k, s, d) in enumerate(geometry)]
        batch_chunks = large.chunks[0]
    else:
        blocks = [small_blocks(like.chunks[2 + i], k, s, d) for i, (_, _, k, s, d) in enumerate(geometry)]
        batch_chunks = like.chunks[0]
    batches = _ranges(batch_chunks)
    out_chunks = (batch_chunks, (per_block * Cs,) * (G // per_block),
                  *(tuple(hi - lo for lo, hi, _, _ in bl) for bl in blocks))

    def plan(idx):
        n_idx, c, *sp = idx
        chosen = [bl[i] for bl, i in zip(blocks, sp)]
        lo = (batches[n_idx][0], c * per_block * Cl, *(p + o for (_, _, p, _), o in zip(chosen, origin)))
        hi = (batches[n_idx][1], (c + 1) * per_block * Cl,
              *(q + o for (_, _, _, q), o in zip(chosen, origin)))
        return [(lo, hi)], [c, [o_hi - o_lo for o_lo, o_hi, _, _ in chosen]]

    def block(piece, w, b, c, sizes):
        out = np.zeros((piece.shape[0], per_block * Cs, *sizes), dtype)
        if min(sizes, default=1) > 0 and piece.shape[0]:
            rows = slice(c * per_block * Cs, (c + 1) * per_block * Cs)
            out[...] = run(piece, w[rows], None, spec.stride, 0, spec.dilation, per_block)
        if b is not None:
            out += b[c * per_block * Cs:(c + 1) * per_block * Cs].reshape(-1, *(1,) * rank)
        return out

    return blockwise_regions("tconv-conv", spec, [src], out_chunks, dtype, block, plan, (w, b))


# --------------------------------------------------------------------------- gradients


def backward(op: str, spec: ConvSpec, grad_output: Any, input: Any, weight: Any):
    """:func:`tconv.core.functional.backward` with dask arrays: ``(grad_input, grad_weight,
    grad_bias)``, all lazy; grad_input chunked like the input, grad_weight and grad_bias tree sums of
    one partial sum per block."""
    import dask.array as da

    if not is_dask(grad_output):
        grad_output = da.asarray(as_array(op, "grad_output", grad_output))
    if not is_dask(input):
        input = da.asarray(input)
    g, g_empty = checked(op, "grad_output", grad_output)
    if g.shape != spec.out_shape:
        raise ValueError(
            f"{op}: grad_output must have the output's shape {spec.out_shape}, got {g.shape}"
        )
    w = _in_memory(op, "weight", weight)
    dtype = result_dtype(g_empty, stand_in((), input.dtype), w)
    spec = _replace(spec, dtype=dtype)
    gb, xb = _batched(spec, g).astype(dtype), _batched(spec, input).astype(dtype)
    if spec.transposed:
        grad_input = _convolved(spec, gb, w, None, like=xb).rechunk(xb.chunks)  # channels too
        grad_weight = _weight_partials(spec, xb, gb, w)
    else:
        grad_input = _transposed(spec, gb, w, None).rechunk(xb.chunks)
        grad_weight = _weight_partials(spec, gb, xb, w)
    grad_bias = gb.sum(axis=(0, *range(2, gb.ndim)))
    return _unbatched(spec, grad_input), grad_weight, grad_bias


def _replace(spec: ConvSpec, **changes) -> ConvSpec:
    import dataclasses

    return dataclasses.replace(spec, **changes)


def _weight_partials(spec: ConvSpec, small, large, w: np.ndarray):
    """``grad_weight`` as a tree sum of one partial sum per block of the small side: each block's
    small pixels and the large pixels its kernel windows read (padded as the convolution pads)."""
    from ..core.functional import conv_backward

    G, rank, dtype = spec.groups, spec.rank, spec.dtype
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    per_block = _channel_blocks(G, Cs, small.chunks[1])
    src, origin = _padded(spec, large)
    per_dim = [small_blocks(small.chunks[2 + i], k, s, d)
               for i, (k, s, d) in enumerate(zip(spec.kernel, spec.stride, spec.dilation))]
    batches = _ranges(small.chunks[0])
    out_chunks = (*((1,) * len(c) for c in (small.chunks[0], *small.chunks[2:])),
                  (per_block * Cs,) * (G // per_block), (Cl,), *((k,) for k in spec.kernel))
    wd = w.astype(dtype, copy=False)

    def plan(idx):
        n_idx, *sp = idx[: 1 + rank]
        c = idx[1 + rank]
        chosen = [rows[i] for rows, i in zip(per_dim, sp)]
        n0, n1 = batches[n_idx]
        small_box = ((n0, c * per_block * Cs, *(a for a, _, _, _ in chosen)),
                     (n1, (c + 1) * per_block * Cs, *(b_ for _, b_, _, _ in chosen)))
        large_box = ((n0, c * per_block * Cl, *(p + o for (_, _, p, _), o in zip(chosen, origin))),
                     (n1, (c + 1) * per_block * Cl, *(q + o for (_, _, _, q), o in zip(chosen, origin))))
        return [small_box, large_box], [c]

    def block(sm, lg, c):
        shape = (per_block * Cs, Cl, *spec.kernel)
        if sm.size == 0 or lg.size == 0:
            part = np.zeros(shape, dtype)
        else:
            # the convolution of the large piece reads exactly these windows: its weight gradient
            # against the small piece is this block's share
            part = conv_backward(sm, lg, np.zeros(shape, dtype), spec.stride, 0, spec.dilation,
                                 per_block)[1]
        return part.reshape((1,) * (1 + rank) + shape)

    parts = blockwise_regions("tconv-grad-weight", (spec, wd.shape), [small, src], out_chunks, dtype,
                              block, plan)
    return parts.sum(axis=tuple(range(1 + rank)))
