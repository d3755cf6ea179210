"""Compile the engine's loops into numba's on-disk cache ahead of use: ``python -m tconv.engine.warm``.

numba compiles each loop of :mod:`tconv.engine.kernels` on its first call with each kind of
argument, in each process, unless its cache holds it (``cache=True``: beside the module, or under
``NUMBA_CACHE_DIR``): about 40 s for the 28 variants below. ``make test`` runs this while pip
installs the test extra (~40 s), so that its test processes (and dask's worker processes) load the
loops rather than each compiling them (the suite on two cores: 178 s with 16 variants cached, 156 s
with these 28); an installation may run it once for the same reason.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def _readonly(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a


def warm() -> int:
    """Run every engine algorithm, both directions and both float dtypes in every rank, with
    writable and read-only arrays (numba compiles each apart), with few and with 16 channels (the
    channels-last loops), shared among two workers, and layers (packed weights; a kernel cut to the
    taps that reach, the strided weight check; a small weight's check), on tiny problems; the calls
    made."""
    import tconv
    from tconv.core.functional import conv_transpose_backward

    calls = 0
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for rank in (1, 2, 3):
            x = rng.standard_normal((2, 4, *(5,) * rank)).astype(dtype)
            w = rng.standard_normal((4, 3, *(3,) * rank)).astype(dtype)
            b = rng.standard_normal(3).astype(dtype)
            for algorithm in ("gemm", "direct", "phase", "subpixel"):
                y = tconv.conv_transpose(x, w, None, 2, 1, algorithm=algorithm)
                tconv.conv_transpose(_readonly(x), _readonly(w), _readonly(b), 2, 1,
                                     algorithm=algorithm)
                tconv.conv_transpose(x, _readonly(w), None, 2, 1, algorithm=algorithm)
                calls += 3
            conv_transpose_backward(y, x, w, 2, 1)
            tconv.conv(y, w, None, 2, 1)
            tconv.conv(_readonly(y), _readonly(w), None, 2, 1)
            calls += 3
        wide = rng.standard_normal((2, 16, 5, 5)).astype(dtype)
        for algorithm in ("gemm", "phase"):  # their channels-last loops
            tconv.conv_transpose(wide, rng.standard_normal((16, 16, 3, 3)).astype(dtype), None, 2,
                                 algorithm=algorithm)
            calls += 1
        with tconv.num_threads(2):  # tiles shared among the workers
            tconv.conv_transpose(rng.standard_normal((8, 16, 32, 32)).astype(dtype),
                                 rng.standard_normal((16, 16, 4, 4)).astype(dtype), None, 2,
                                 algorithm="subpixel")
            calls += 1
        for layer, shape in ((tconv.ConvTranspose2d(64, 32, 7, padding=3, rng=0, dtype=dtype),
                              (1, 64, 2, 2)),  # 2x2 inputs keep 3 taps
                             (tconv.ConvTranspose2d(4, 4, 3, stride=2, rng=0, dtype=dtype),
                              (1, 4, 6, 6))):
            for _ in range(2):
                layer(rng.standard_normal(shape).astype(dtype))
                layer(_readonly(rng.standard_normal(shape).astype(dtype)))
                calls += 2
    return calls


def main() -> int:
    start = time.perf_counter()
    calls = warm()
    print(f"tconv.engine.warm: {calls} calls, {time.perf_counter() - start:.1f} s: numba's cache holds "
          f"the engine's loops", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
