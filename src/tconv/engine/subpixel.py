"""The fused sub-pixel algorithm: tiles of the output, each gathered, multiplied and written once.

Symbols as in :mod:`tconv.engine.algorithms`. Pad the kernel, dilated, with zeros to ``T*s`` taps
per dimension (``T = d*(k-1)//s + 1``) and number its taps ``e = u*s + q``. Core pixel ``j`` lies in
*block* ``m`` at *phase* ``q`` (``j + p = m*s + q``, ``p`` the crop before), and is

    y[o, j] = sum over c, u of  wp[(o, q), (c, u)] * x[c, m - u]        (x zero outside)

so every phase of a block reads the same ``Cs*prod(T)`` input values: one product
``wp (Cl*S, Cs*prod(T)) @ cols (Cs*prod(T), blocks)`` gives all ``S = prod(s)`` phases of many
blocks at once, then a depth-to-space puts each result in its place (Shi et al. 2016; XNNPACK's
and oneDNN's subconvolutions). Where ``s`` divides ``k`` and ``d == 1`` nothing multiplied is a
padding zero; nor at stride 1, where the layer is a convolution with the flipped kernel (an implicit
GEMM) and the input is gathered ``d`` pixels apart per tap instead (:func:`tap_steps`); otherwise
the padded taps cost ``prod(T*s / (d*(k-1) + 1))`` times the multiply-adds, which
:mod:`tconv.engine.cost` weighs.

Fused, in tiles: the block grid (rows ``(n, m0, m1)`` across samples, columns ``m2``) is cut into
tiles of about :data:`TILE_BYTES` of columns and product, and a compiled function
(:func:`tconv.engine.kernels.subpixel_tiles`) does each tile in turn — im2col of the tile only,
one BLAS product into a scratch buffer that stays in cache, then every output pixel of the tile
written once with its bias. No pass over the whole input or output besides the one that reads and
the one that writes it; tiles never share an output pixel, so the engine's workers take them
side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from math import prod
from types import EllipsisType

import numpy as np

from ..core.spec import ConvSpec
from . import blas, fast
from .fast import _run, finish, rank3, workspace
from .packing import WeightCache, packed, packs_weight
from .threads import get_num_threads

#: A tile's columns and product take about this many bytes (they stay in L2 while its output is
#: written).
TILE_BYTES = 2**19

#: ... but at least this many columns (blocks): every tile reads the whole packed weight, so a
#: thinner one re-reads it for too little work.
TILE_MIN_COLUMNS = 256

#: From this last-dimension stride the product is taken transposed and each block's phases written
#: as one run (see :func:`tconv.engine.kernels.subpixel_tiles`). Measured: stride 32 (fcn_up32)
#: 5.8 -> 4.5 ms; stride 4 mostly slower (40.8 -> 56.8 ms on a 4x4-stride 2-d layer, 8.2 -> 13.2 on
#: a 1-d one), its transposed product being the slower of the two.
RUNS_MIN_STRIDE = 16

#: From this many padded multiply-adds the workers share the tiles (below ``fast``'s threshold: a
#: tile needs no col2im pass that a second worker would contend for).
PARALLEL_MIN_WORK = 1 << 21


def taps_per_phase(spec: ConvSpec) -> tuple[int, ...]:
    """``T = d*(k-1)//s + 1`` per dimension: the padded kernel's taps per phase; ``k`` where the
    stride is 1 (there the gather steps ``d`` instead, :func:`tap_steps`: no padded tap).

    >>> from tconv.core.spec import transposed_spec
    >>> taps_per_phase(transposed_spec("doc", np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 4, 3)), None, 2))
    (2, 2)
    >>> taps_per_phase(transposed_spec("doc", np.zeros((1, 1, 9)), np.zeros((1, 1, 3)), None,
    ...                                dilation=2))
    (3,)
    """
    return tuple(k if s == 1 else d * (k - 1) // s + 1
                 for k, s, d in zip(spec.kernel, spec.stride, spec.dilation))


def tap_steps(spec: ConvSpec) -> tuple[int, ...]:
    """Per dimension, how far apart (in blocks) the input pixels of neighbouring taps ``u`` lie:
    ``d`` where the stride is 1 (a stride-1 layer is a convolution with the flipped, dilated kernel,
    gathered without the zeros between its taps), else 1 (the dilation is in the padded kernel)."""
    return tuple(d if s == 1 else 1 for s, d in zip(spec.stride, spec.dilation))


def padded_macs(spec: ConvSpec) -> int:
    """The multiply-adds the fused product does, padded taps and edge blocks included:
    ``N * prod(blocks) * Cl*S * Cs*prod(T) * G``."""
    _, B = blocks(spec)
    G = spec.groups
    return ((spec.batch or 1) * prod(B) * prod(spec.stride) * prod(taps_per_phase(spec))
            * (spec.large_channels // G) * spec.small_channels)


def blocks(spec: ConvSpec) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per dimension the first block ``mlo = p // s`` and the number of blocks ``B`` that hold a
    core pixel (``j = m*s + q - p`` in ``[0, core)``)."""
    mlo = tuple(cb // s for (cb, _), s in zip(spec.core_crop, spec.stride))
    mhi = tuple((L - 1 + cb) // s + 1 for L, (cb, _), s in zip(spec.core_size, spec.core_crop, spec.stride))
    return mlo, tuple(hi - lo for lo, hi in zip(mlo, mhi))


def pack(spec: ConvSpec, w: np.ndarray) -> np.ndarray:
    """``w`` ``(G*Cs, Cl, *k)`` as the fused product's left operand ``(G, Cl*S, Cs*prod(T))``: rows
    ``(o, q)``, columns ``(c, u)``, tap ``t`` at ``t*d = u*s + q``, zeros where no tap falls."""
    G, rank = spec.groups, spec.rank
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    T, s = taps_per_phase(spec), spec.stride
    padded = np.zeros((G, Cs, Cl, *(t * si for t, si in zip(T, s))), spec.dtype)
    # stride 1: tap t is column u = t (its dilation is in the gather's step, tap_steps)
    every_d: tuple[EllipsisType | slice, ...] = (
        Ellipsis, *(slice(0, (k - 1) * d + 1, d) if si > 1 else slice(None)
                    for k, si, d in zip(spec.kernel, s, spec.dilation)))
    padded[every_d] = w.reshape(G, Cs, Cl, *spec.kernel)
    split = padded.reshape(G, Cs, Cl, *(v for t, si in zip(T, s) for v in (t, si)))
    # (G, Cs, Cl, T0, s0, T1, s1, ...) -> (G, Cl, s0, s1, ..., Cs, T0, T1, ...)
    order = (0, 2, *(4 + 2 * i for i in range(rank)), 1, *(3 + 2 * i for i in range(rank)))
    return np.ascontiguousarray(split.transpose(order)).reshape(G, Cl * prod(s), Cs * prod(T))


def tiles(spec: ConvSpec, N: int, B3: tuple[int, ...], workers: int) -> np.ndarray:
    """The tiles ``(g, r0, r1, a0, a1)`` (see :func:`tconv.engine.kernels.subpixel_tiles`): about
    :data:`TILE_BYTES` each, and at least two per worker when the grid allows."""
    G = spec.groups
    K = spec.small_channels // G * prod(taps_per_phase(spec))
    height = N * B3[0] * B3[1]
    per_column = (K + spec.large_channels // G * prod(spec.stride)) * spec.dtype.itemsize
    columns = max(TILE_MIN_COLUMNS, TILE_BYTES // per_column)
    total = height * B3[2]
    if workers > 1:  # enough tiles to share
        columns = max(1, min(columns, -(-total * G // (2 * workers))))
    if columns >= B3[2]:
        rows, widths = max(1, columns // B3[2]), [(0, B3[2])]
    else:
        cuts = -(-B3[2] // columns)
        edges = [B3[2] * i // cuts for i in range(cuts + 1)]
        rows, widths = 1, list(zip(edges[:-1], edges[1:]))
    out = [(g, r, min(r + rows, height), a0, a1)
           for g in range(G) for r in range(0, height, rows) for a0, a1 in widths]
    return np.array(out, np.int64).reshape(-1, 5)


@dataclass(frozen=True, eq=False)
class Plan:
    """What a call of one geometry needs besides its arrays, made once (:func:`plan`): the packed
    weight's key, the rank-3 shapes, the geometry the kernel takes, each worker's tiles with the
    scratch they need (columns and product, in elements), and the padded multiply-adds."""

    key: tuple
    small3: tuple[int, ...]
    core3: tuple[int, ...]
    geometry: tuple[np.ndarray, ...]
    shares: tuple[tuple[np.ndarray, int, int], ...]
    no_bias: np.ndarray
    work: int


def plan(spec: ConvSpec) -> Plan:
    """The :class:`Plan` for ``spec``, remembered per geometry, thread count and tile settings (a
    small call would otherwise spend most of its time making it: 60 of 95 us on a 0.1 MFLOP
    layer)."""
    return _made_plan(spec, get_num_threads(), TILE_BYTES, TILE_MIN_COLUMNS,
                      min(fast.PARALLEL_MIN_WORK, PARALLEL_MIN_WORK))


@lru_cache(maxsize=256)
def _made_plan(spec: ConvSpec, threads: int, tile_bytes: int, min_columns: int,
               parallel_min_work: int) -> Plan:
    N, G = spec.batch or 1, spec.groups
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    g3 = rank3(spec)
    lead = (1,) * (3 - spec.rank)
    mlo, B = blocks(spec)
    B3, T3 = lead + B, lead + taps_per_phase(spec)
    work = padded_macs(spec)
    workers = 1 if work < parallel_min_work else threads
    todo = tiles(spec, N, B3, workers)
    K, rows = Cs * prod(T3), Cl * prod(g3["stride"])
    shares = []
    for i in range(min(workers, len(todo))):
        mine = np.ascontiguousarray(todo[i::workers])  # one layout: one compiled kernel
        M = int(((mine[:, 2] - mine[:, 1]) * (mine[:, 4] - mine[:, 3])).max())
        shares.append((mine, K * M, rows * M))
    geometry = tuple(np.array(v, np.int64)
                     for v in (T3, lead + tap_steps(spec), g3["stride"], g3["crop"],
                               (0,) * len(lead) + mlo, B3))
    return Plan(("subpixel", spec.dtype.str, G, T3, g3["stride"], g3["dilation"]), g3["small"],
                g3["core"], geometry, tuple(shares), np.zeros(spec.large_channels, spec.dtype), work)


@packs_weight
def subpixel(spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
             cache: WeightCache | None = None) -> np.ndarray:
    """The fused sub-pixel algorithm (see the module).

    ``x`` ``(N, G*Cs, *n)``, ``w`` ``(G*Cs, Cl, *k)`` -> ``(N, G*Cl, *L)``, bias added. The packed
    weight (:func:`pack`) is kept in ``cache`` when given.
    """
    from . import kernels  # numba loads on the first call, not at import

    p = plan(spec)
    multiply = blas.gemm(spec.dtype)
    wp = packed(cache, p.key, lambda: pack(spec, w))
    fuse = b is not None and spec.padding_mode == "zeros"
    bias = np.ascontiguousarray(b) if fuse and b is not None else p.no_bias  # one kernel layout
    x3 = np.ascontiguousarray(x).reshape(x.shape[0], spec.small_channels, *p.small3)
    y = np.empty((x.shape[0], spec.large_channels, *p.core3), spec.dtype)

    def run(mine: np.ndarray, columns: int, product: int) -> None:
        buf = workspace(columns + product, spec.dtype)
        kernels.subpixel_tiles(x3, wp, bias, y, mine, *p.geometry, spec.groups, buf[:columns],
                               buf[columns:], p.geometry[2][2] >= RUNS_MIN_STRIDE, multiply)

    # several shares: the workers; one (under PARALLEL_MIN_WORK multiply-adds in all) runs here;
    # BLAS at one thread either way (fast._run)
    _run([partial(run, *share) for share in p.shares], p.work)
    return finish(spec, y, None if fuse else b)
