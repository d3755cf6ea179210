"""Which input pixels and kernel taps reach an output pixel, one dimension at a time: the index
arithmetic the compiled loops (:func:`tconv.engine.fast.direct`, :func:`tconv.engine.fast.gemm`'s
col2im) and the sub-pixel algorithm (:mod:`tconv.engine.phase`) and its cost (:mod:`tconv.engine.cost`)
share.

Large pixel ``j`` of the core domain meets small pixel ``i`` through tap ``t`` when
``j = i*s + t*d - crop``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=256)
def reach_table(n: int, k: int, s: int, d: int, crop: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output coordinate ``j`` in ``[0, size)``: the ``(t, i)`` with ``i*s + t*d - crop == j``.

    Returns ``table (size, most, 2)`` and ``counts (size,)``, read-only and remembered per geometry
    (building them costs ~0.1 ms a dimension, a tenth of a small layer's call).

    >>> table, counts = reach_table(n=3, k=2, s=2, d=1, crop=0, size=6)
    >>> counts.tolist(), table[1, 0].tolist()
    ([1, 1, 1, 1, 1, 1], [1, 0])
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
    counts = counts.astype(np.int64)
    table.flags.writeable = counts.flags.writeable = False
    return table, counts


def dim_phases(n: int, k: int, s: int, d: int, crop: int, size: int) -> list[tuple[int, int, int, list]]:
    """One dimension's phases: ``(first, count, base, taps)`` per phase that has output pixels.

    The phase's pixels are ``j = first + s*m'`` for ``m'`` in ``[0, count)``; tap ``(t, u)`` reads
    input ``i = base + m' - u`` there. A phase no tap reaches has ``taps == []`` (its pixels are 0).

    >>> dim_phases(n=3, k=3, s=2, d=1, crop=0, size=7)
    [(0, 4, 0, [(0, 0), (2, 1)]), (1, 3, 0, [(1, 0)])]
    """
    phases = []
    for q in range(s):
        first = (q - crop) % s
        count = len(range(first, size, s))
        if count == 0:
            continue
        base = (first + crop - q) // s
        taps = [(t, (t * d - q) // s) for t in range(k) if (t * d) % s == q]
        phases.append((first, count, base, taps))
    return phases


@lru_cache(maxsize=256)
def phase_table(n: int, k: int, s: int, d: int, crop: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`dim_phases` as arrays for compiled loops: per phase ``q = (first + crop) % s`` its taps
    ``(t, u)``, ``table (s, most, 2)`` and ``counts (s,)``, read-only and remembered per geometry.

    >>> table, counts = phase_table(n=3, k=3, s=2, d=1, crop=0, size=7)
    >>> counts.tolist(), table[0, :2].tolist()
    ([2, 1], [[0, 0], [2, 1]])
    """
    phases = {(first + crop) % s: taps for first, _, _, taps in dim_phases(n, k, s, d, crop, size)}
    table = np.zeros((s, max([1] + [len(t) for t in phases.values()]), 2), np.int64)
    counts = np.zeros(s, np.int64)
    for q, taps in phases.items():
        counts[q] = len(taps)
        for a, tap in enumerate(taps):
            table[q, a] = tap
    table.flags.writeable = counts.flags.writeable = False
    return table, counts


def reachable_taps(n: int, k: int, s: int, d: int, crop: int, size: int) -> tuple[int, int]:
    """The taps ``[lo, hi)`` that reach some output pixel ``j = i*s + t*d - crop`` in ``[0, size)``
    from some input ``i`` in ``[0, n)`` (the others meet only cropped pixels); ``(0, 0)`` if none.

    >>> reachable_taps(n=2, k=7, s=1, d=1, crop=3, size=2)   # a 7-tap kernel on 2 pixels, padding 3
    (2, 5)
    """
    reach = [t for t in range(k)
             if max(0, -((t * d - crop) // s)) <= min(n - 1, (size - 1 - t * d + crop) // s)]
    return (reach[0], reach[-1] + 1) if reach else (0, 0)
