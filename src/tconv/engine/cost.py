"""``auto``'s cost model: each fast algorithm's time, estimated from the shapes and the machine.

Symbols as in :mod:`tconv.engine.algorithms` (per group ``Cs`` small-side and ``Cl`` large-side
channels, ``G`` groups, batch ``N``, ``P_n``/``P_k``/``P_L`` pixels of the small side, the kernel
and the output). Each candidate's time is a sum of terms, each a count the shapes give times a
coefficient:

- ``gemm``: the multiply-adds at the rate of a ``(Cl*P_k, Cs) @ (Cs, N*P_n)`` product, the
  ``cols`` that col2im adds (``N*P_n*Cl*P_k*G``), the output pixels it zeroes and folds, one product
  per group and chunk;
- ``phase``: the multiply-adds at the rate of a ``(Cl, Cs*T) @ (Cs*T, N*P_n)`` product (``T`` the
  taps per output phase), the im2col copies, the output pixels written through the strided phase
  views, one step per phase and group;
- ``direct``: the multiply-adds, dearer on short rows (``P_L[-1] / s[-1]`` pixels per vector loop),
  the output pixels, one task per output plane;
- ``subpixel``: the multiply-adds of its padded product (:func:`tconv.engine.subpixel.padded_macs`)
  at the rate of a ``(Cl*S, Cs*T) @ (Cs*T, blocks)`` product, the columns and products its tiles
  hold (``blocks * (Cs*T + Cl*S)``), the output pixels, one BLAS call per tile.

A product's rate falls when any of its three sizes is small: ``rate = peak * e(K) * e(M) * e(P)``
with ``e(v) = v / (v + v0)`` (``e(K)**2`` for ``gemm``, whose inner dimension is only ``Cs``). The
coefficients were fitted (least squares on relative error) to each algorithm's times on the
published suite and 60 random layers (``tconv bench --random`` seeds 1-5; ``benchmarks/cost_model.py``
measures and refits) with 2 threads on a 2-core AMD EPYC: ``gemm``, ``phase`` and ``direct`` when
they were the candidates (then held out by seed, the pick was within 3 % of the fastest on 58 of
60), ``subpixel`` when it joined them (the times of all four, run as a layer runs them, its weight
packed once, are in ``benchmarks/cost-model-times.json``; the three older fits rescaled to the new
reference machine figures); ``subpixel`` refitted alone when its tiles' products moved to NumPy's
BLAS (:mod:`tconv.engine.blas`) and stride 1 stopped padding the dilated kernel, on the four
algorithms' times measured again (``cost_model.py measure --again gemm,phase,direct,subpixel``;
refitting all four picked worse: 53 of 74 within 3 %). On those times the model's pick is within
3 % of the fastest on 59 of 74 and 1.06x slower than the fastest as a geometric mean (1.01x on the
published suite, worst 1.13x; worst overall 2.07x). Its misses are mostly ``gemm`` picked where
``subpixel`` was 1.5-2.1x faster (kernels 4-6 with strides 2-4 and few channels), always with
``subpixel`` estimated within 1.4x of the pick: a layer's first call times the candidates within
2x (:func:`tconv.engine.algorithms.contenders`) and runs the faster.
The last term, one call, is not fitted but measured: each algorithm's call on tiny layers (1x2x4x4
to 1x8x8x8), the weight packed, 33-59 us for ``gemm``, ``direct`` and ``subpixel`` and 120-230 us
for ``phase`` (fitted on layers of 0.02 GFLOP and up, it came out as 0.1-0.3 ms, and sent tiny
layers to ``gemm`` at 59 us where ``subpixel`` takes 35).

Machines differ in how fast they multiply against how fast they move memory, so the model scales its
multiply-add terms by this machine's single-thread sgemm rate and its memory terms by its copy
bandwidth, each measured once per process (about 0.1 s, on the first call the model decides):
:func:`machine`. Only the ratios between candidates matter; the figures are not timings to quote.

>>> from tconv.core.spec import transposed_spec
>>> import numpy as np
>>> spec = transposed_spec("doc", np.zeros((1, 64, 64, 64)), np.zeros((64, 1, 4, 4)), None, 2, 1,
...                        groups=64)
>>> min(estimates(spec, MACHINE_REFERENCE), key=estimates(spec, MACHINE_REFERENCE).get)
'subpixel'
"""

from __future__ import annotations

import time
from functools import lru_cache
from math import prod

import numpy as np

from ..core.spec import ConvSpec
from .fast import GEMM_CHUNK_BYTES

#: The machine figures the coefficients were fitted with (:func:`machine` on the 2-core AMD EPYC).
MACHINE_REFERENCE = (96.6, 17.1)

#: Per algorithm: the ``v0`` of each size's efficiency ``e(v) = v / (v + v0)`` (``gemm``, ``phase``:
#: ``K``, ``M``, ``P``, and for ``gemm`` the power of ``e(K)``; ``direct``: the short-row constant),
#: and the coefficients of its terms in seconds on the reference machine (multiply-adds, elements
#: moved, output pixels, steps, one call). Fitted by ``benchmarks/cost_model.py``.
MODEL: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "gemm": ((8, 16, 64, 2), (8.77e-12, 5.47e-11, 2.69e-10, 0.0, 4e-05)),
    "phase": ((4, 4, 256), (9.78e-12, 1.99e-10, 8.14e-10, 3.53e-05, 0.00015)),
    "direct": ((128,), (2.96e-11, 6.39e-10, 7.67e-07, 0.0, 5e-05)),
    "subpixel": ((4, 4, 64), (1.22e-11, 1.61e-10, 4.23e-10, 0.0, 3.5e-05)),
}


#: What each term of :func:`features` scales with: the machine's multiply rate, its memory
#: bandwidth, or neither (Python and call overheads).
KINDS = {
    "gemm": ("mac", "mem", "mem", "fixed", "fixed"),
    "phase": ("mac", "mem", "mem", "fixed", "fixed"),
    "direct": ("mac", "mem", "fixed", "fixed", "fixed"),
    "subpixel": ("mac", "mem", "mem", "fixed", "fixed"),
}


def _e(v: float, v0: float) -> float:
    return v / (v + v0)


def phase_taps(spec: ConvSpec) -> float:
    """``sum over output phases of (taps of the phase) * (pixels of the phase)`` over ``prod(core)``:
    the taps ``phase`` multiplies per output pixel (``prod(k/s)`` when ``s`` divides ``k``; an edge
    pixel counts all its phase's taps, some of which read the zeros around the input).

    >>> from tconv.core.spec import transposed_spec
    >>> import numpy as np
    >>> spec = transposed_spec("doc", np.zeros((1, 1, 8)), np.zeros((1, 1, 3)), None, 2)
    >>> spec.core_size, phase_taps(spec) == (9 * 2 + 8 * 1) / 17   # even pixels 2 taps, odd 1
    ((17,), True)
    """
    from .taps import dim_phases

    taps = 1.0
    for n, k, s, d, (cb, _), size in zip(spec.small, spec.kernel, spec.stride, spec.dilation,
                                         spec.core_crop, spec.core_size):
        phases = dim_phases(n, k, s, d, cb, size)
        taps *= sum(count * len(t) for _, count, _, t in phases) / max(1, size)
    return taps


def features(spec: ConvSpec, name: str) -> list[float]:
    """The counts the coefficients of :data:`MODEL` multiply, for algorithm ``name``."""
    if name not in MODEL:
        raise ValueError(f"no cost model for algorithm {name!r}")
    v0 = MODEL[name][0]
    N, G = spec.batch or 1, spec.groups
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    P_n, P_k, P_L = prod(spec.small), prod(spec.kernel), prod(spec.core_size)
    macs = N * P_n * P_k * Cs * Cl * G
    pixels = N * P_L * Cl * G
    if name == "gemm":
        rate = _e(Cs, v0[0]) ** v0[3] * _e(Cl * P_k, v0[1]) * _e(N * P_n, v0[2])
        cols = N * P_n * Cl * P_k
        chunks = -(-cols * spec.dtype.itemsize // GEMM_CHUNK_BYTES)
        return [macs / rate, cols * G, pixels, G * chunks, 1]
    if name == "phase":
        T = phase_taps(spec) * P_L / max(1, P_n)  # taps per phase, per input pixel of the phase
        T = max(1.0, T / prod(spec.stride))
        rate = _e(Cs * T, v0[0]) * _e(Cl, v0[1]) * _e(N * P_n, v0[2])
        return [macs / rate, N * P_n * Cs * P_k * G, pixels, G * prod(spec.stride), 1]
    if name == "subpixel":
        from . import subpixel

        _, B = subpixel.blocks(spec)
        K, rows, columns = Cs * prod(subpixel.taps_per_phase(spec)), Cl * prod(spec.stride), N * prod(B)
        rate = _e(K, v0[0]) * _e(rows, v0[1]) * _e(columns, v0[2])
        tiles = len(subpixel.tiles(spec, N, (1,) * (3 - spec.rank) + B, 1))
        return [subpixel.padded_macs(spec) / rate, columns * (K + rows) * G, pixels, tiles, 1]
    row = spec.core_size[-1] / spec.stride[-1]  # direct: pixels per vector loop
    return [macs * (1 + v0[0] / row), pixels, G * N * Cl, 0, 1]


def estimates(spec: ConvSpec, figures: tuple[float, float] | None = None) -> dict[str, float]:
    """Estimated seconds per candidate (``gemm``, ``phase``, ``direct``) on a machine with
    ``figures`` (sgemm GFLOP/s, copy GB/s; default: this one's, :func:`machine`)."""
    rate, bandwidth = figures or machine()
    scale = {"mac": MACHINE_REFERENCE[0] / rate, "mem": MACHINE_REFERENCE[1] / bandwidth, "fixed": 1.0}
    return {name: sum(c * f * scale[kind] for c, f, kind in zip(MODEL[name][1], features(spec, name),
                                                                KINDS[name]))
            for name in MODEL}


@lru_cache(maxsize=1)
def machine() -> tuple[float, float]:
    """This machine's single-thread sgemm GFLOP/s and copy GB/s, measured once per process (~0.1 s).

    Each is the best of several short runs, so a moment of load on a shared machine does not stick.
    """
    from .threads import blas_limit

    a = np.ones((256, 256), np.float32)
    # 32 MiB each way: the copy runs at memory's speed, not a cache's; the target is written once
    # first so that page faults are not timed
    src, dst = np.ones(8 * 2**20, np.float32), np.zeros(8 * 2**20, np.float32)
    best_mm = best_copy = float("inf")
    with blas_limit(1):
        for _ in range(10):
            t = time.perf_counter()
            a @ a
            best_mm = min(best_mm, time.perf_counter() - t)
    for _ in range(3):
        t = time.perf_counter()
        np.copyto(dst, src)
        best_copy = min(best_copy, time.perf_counter() - t)
    return 2 * 256**3 / best_mm / 1e9, 2 * src.nbytes / best_copy / 1e9
