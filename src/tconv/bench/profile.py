"""``tconv bench --profile``: how much of a layer's time its matrix products take, and the rest.

For the algorithm ``auto`` runs (on the kernel it runs: :func:`tconv.engine.algorithms.trimmed`),
the products it multiplies, as ``(count, rows, inner, columns)``:

- ``gemm``: per group, every input pixel times the whole kernel, ``(Cl*P_k, Cs) @ (Cs, N*P_n)``;
- ``subpixel``: per group, every phase of every block, ``(Cl*S, Cs*T) @ (Cs*T, N*blocks)`` (the
  padded taps and edge blocks included);
- ``phase``: per group and output phase ``q``, ``(Cl, Cs*T_q) @ (Cs*T_q, N*pixels_q)`` (stride 1:
  one, the convolution's ``(Cl, Cs*P_k) @ (Cs*P_k, N*P_L)``);
- ``direct``: none (it multiplies in its own loops).

Those products alone, on random operands, with BLAS at the run's thread count, are timed
(:func:`product_seconds`): what the layer would take if everything around them (im2col, col2im,
depth-to-space, the bias, Python) cost nothing. The rest of the layer's time is that around-work.
"""

from __future__ import annotations

from functools import partial
from math import prod

import numpy as np

from ..core.spec import ConvSpec
from ..engine import algorithms, subpixel
from ..engine.taps import dim_phases
from ..engine.threads import blas_limit
from .machine import timeit

#: Operands larger than this are not allocated for the profile (the products are then not timed).
MAX_OPERAND_BYTES = 512 * 2**20


def products(spec: ConvSpec, algorithm: str) -> list[tuple[int, int, int, int]]:
    """``(count, rows, inner, columns)`` of each kind of product ``algorithm`` multiplies for ``spec``.

    >>> from tconv.core.spec import transposed_spec
    >>> spec = transposed_spec("doc", np.zeros((2, 8, 5, 5)), np.zeros((8, 4, 4, 4)), None, 2, 1)
    >>> products(spec, "gemm"), products(spec, "subpixel")
    ([(1, 64, 8, 50)], [(1, 16, 32, 72)])
    """
    N, G = spec.batch or 1, spec.groups
    Cs, Cl = spec.small_channels // G, spec.large_channels // G
    if algorithm in ("gemm", "gemm_shared"):  # the same products, shared among the workers or not
        return [(G, Cl * prod(spec.kernel), Cs, N * prod(spec.small))]
    if algorithm == "subpixel":
        _, B = subpixel.blocks(spec)
        return [(G, Cl * prod(spec.stride), Cs * prod(subpixel.taps_per_phase(spec)), N * prod(B))]
    if algorithm == "phase":
        if all(s == 1 for s in spec.stride):
            return [(G, Cl, Cs * prod(spec.kernel), N * prod(spec.core_size))]
        per_dim = [dim_phases(n, k, s, d, cb, size) for n, k, s, d, (cb, _), size in zip(
            spec.small, spec.kernel, spec.stride, spec.dilation, spec.core_crop, spec.core_size)]
        out: dict[tuple[int, int, int], int] = {}
        for combo in np.ndindex(*(len(p) for p in per_dim)):
            phases = [per_dim[d][i] for d, i in enumerate(combo)]
            T = prod(len(taps) for _, _, _, taps in phases)
            if T:
                shape = (Cl, Cs * T, N * prod(count for _, count, _, _ in phases))
                out[shape] = out.get(shape, 0) + G
        return [(count, *shape) for shape, count in out.items()]
    return []


def product_seconds(spec: ConvSpec, algorithm: str, threads: int, min_runs: int = 3,
                    min_seconds: float = 0.2) -> float | None:
    """Seconds the products of :func:`products` take alone (NumPy's BLAS, ``threads`` threads;
    float32); 0.0 for an algorithm with none, None if an operand would exceed
    :data:`MAX_OPERAND_BYTES`."""
    shapes = products(spec, algorithm)
    if any(4 * max(m * k, k * n, m * n) > MAX_OPERAND_BYTES for _, m, k, n in shapes):
        return None
    rng = np.random.default_rng(0)
    total = 0.0
    with blas_limit(threads):
        for count, m, k, n in shapes:
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            c = np.empty((m, n), np.float32)
            total += count * timeit(partial(np.matmul, a, b, out=c), min_runs, min_seconds, warmup=1)
    return total


def profile(spec: ConvSpec, threads: int, min_runs: int = 3, min_seconds: float = 0.2,
            algorithm: str | None = None) -> dict:
    """The products of ``algorithm`` (default: ``auto``'s pick) for ``spec``, on the kernel the engine
    runs (:func:`tconv.engine.algorithms.trimmed`), and their time alone."""
    tight = algorithms.trimmed(spec)
    run_spec = spec if tight is None else tight[0]
    name = algorithm or algorithms.choose(run_spec)
    return {"algorithm": name, "products": products(run_spec, name),
            "product_seconds": product_seconds(run_spec, name, threads, min_runs, min_seconds)}
