"""The machine a benchmark ran on, as ``tconv bench`` prints it and writes it with the results: the CPU,
its vector extensions, and NumPy's BLAS with the kernel it runs.

Why the kernel: tconv's products run in NumPy's BLAS, while PyTorch, ONNX Runtime and OpenVINO bring
their own kernels. OpenBLAS picks the kernel for the CPU at load time unless ``OPENBLAS_CORETYPE``
forces one; some machines force an old one for old builds' sake, and on an AVX-512 CPU the Haswell
(AVX2) kernel alone moved the published suite from 0.94x the best peer to 0.67x (numpy sgemm 461 ->
265 GFLOP/s). :func:`blas_warning` says so when it happens, and how to measure as a user would.
"""

from __future__ import annotations

import functools
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .suite import Layer

#: The widest vector instructions, narrowest first, as these pages name them.
ISA_LEVELS: tuple[str, ...] = ("SSE", "AVX", "AVX2", "AVX-512")

#: OpenBLAS's x86-64 kernels (the names ``openblas_get_corename`` and threadpoolctl report) by the
#: widest vector instructions their single-precision products use. Cooperlake and SapphireRapids add
#: bf16/AMX products, not wider float32 ones.
OPENBLAS_KERNEL_ISA: dict[str, str] = {
    **dict.fromkeys(("SapphireRapids", "Cooperlake", "SkylakeX"), "AVX-512"),
    **dict.fromkeys(("Haswell", "Zen", "Excavator"), "AVX2"),
    **dict.fromkeys(("Sandybridge", "Bulldozer", "Piledriver", "Steamroller"), "AVX"),
    **dict.fromkeys(("Nehalem", "Core2", "Penryn", "Dunnington", "Atom", "Prescott", "Barcelona",
                     "Opteron", "Opteron_SSE3", "Katmai", "Coppermine", "Northwood", "Banias",
                     "Athlon"), "SSE"),
}

#: NumPy's names of the CPU features shown, in the order shown.
SHOWN_FEATURES: tuple[str, ...] = ("SSE42", "AVX", "F16C", "FMA3", "AVX2", "AVX512F", "AVX512_SKX",
                                   "AVX512_CLX", "AVX512_CNL", "AVX512_ICL", "AVX512_SPR")

#: The variables that force OpenBLAS's kernel or its blocking; unset them to measure as a user would.
OPENBLAS_VARIABLES: tuple[str, ...] = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

USER_RUN = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE make bench"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def cpu_features() -> list[str]:
    """The CPU's vector extensions of :data:`SHOWN_FEATURES` that it has, as NumPy detected them at
    import (``AVX512_SKX``: AVX-512 F, CD, BW, DQ and VL, what OpenBLAS's SkylakeX kernel needs)."""
    import importlib

    try:
        umath = importlib.import_module("numpy._core._multiarray_umath")
    except ImportError:  # NumPy 1.x
        umath = importlib.import_module("numpy.core._multiarray_umath")
    features: dict[str, bool] = umath.__cpu_features__
    return [name for name in SHOWN_FEATURES if features.get(name)]


def cpu_isa(features: list[str]) -> str:
    """The widest of :data:`ISA_LEVELS` a CPU with ``features`` (NumPy's names) runs.

    >>> cpu_isa(["AVX", "FMA3", "AVX2"]), cpu_isa(["AVX2", "FMA3", "AVX512F", "AVX512_SKX"])
    ('AVX2', 'AVX-512')
    """
    if "AVX512_SKX" in features:
        return "AVX-512"
    if "AVX2" in features and "FMA3" in features:
        return "AVX2"
    return "AVX" if "AVX" in features else "SSE"


def numpy_blas() -> dict:
    """NumPy's BLAS as threadpoolctl sees it loaded in this process: ``library`` (``openblas``,
    ``mkl``, ...), ``version``, ``kernel`` (OpenBLAS's core name, e.g. ``Haswell``; None where the
    library reports none), ``threading`` and ``file``; all None when threadpoolctl finds none."""
    from threadpoolctl import threadpool_info

    from ..engine.blas import numpy_blas_infos

    blas = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    # NumPy's own copy, not SciPy's or another package's, which a benchmark may have loaded too
    info = (numpy_blas_infos(blas) or blas or [{}])[0]
    return {"library": info.get("internal_api"), "version": info.get("version"),
            "kernel": info.get("architecture"), "threading": info.get("threading_layer"),
            "file": info.get("filepath")}


def blas_warning(blas: Mapping, features: list[str], environ: Mapping[str, str]) -> str | None:
    """A warning when ``blas``'s kernel (:func:`numpy_blas`) uses narrower vector instructions than the
    CPU with ``features`` runs, naming what forced it (``environ``'s :data:`OPENBLAS_VARIABLES`) and
    how to measure as a user would; None when it is the CPU's own, or not an OpenBLAS kernel we know.

    >>> blas = {"library": "openblas", "kernel": "Haswell"}
    >>> print(blas_warning(blas, ["AVX2", "FMA3", "AVX512F", "AVX512_SKX"],
    ...                    {"OPENBLAS_CORETYPE": "Haswell"}))  # doctest: +NORMALIZE_WHITESPACE
    NumPy's OpenBLAS runs its Haswell kernel (AVX2) on a CPU with AVX-512, forced by
    OPENBLAS_CORETYPE=Haswell: tconv's BLAS products are slower than a user's would be (PyTorch, ONNX
    Runtime and OpenVINO bring their own kernels). To measure as a user would:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE make bench
    >>> blas_warning(blas, ["AVX2", "FMA3"], {}) is None
    True
    """
    kernel_isa = OPENBLAS_KERNEL_ISA.get(blas.get("kernel") or "")
    cpu = cpu_isa(features)
    if blas.get("library") != "openblas" or kernel_isa is None:
        return None
    if ISA_LEVELS.index(kernel_isa) >= ISA_LEVELS.index(cpu):
        return None
    forced = [f"{name}={environ[name]}" for name in OPENBLAS_VARIABLES if name in environ]
    why = f", forced by {' and '.join(forced)}" if forced else " (this OpenBLAS build has no newer one)"
    return (f"NumPy's OpenBLAS runs its {blas['kernel']} kernel ({kernel_isa}) on a CPU with {cpu}{why}: "
            f"tconv's BLAS products are slower than a user's would be (PyTorch, ONNX Runtime and "
            f"OpenVINO bring their own kernels). To measure as a user would: {USER_RUN}")


def blas_line(blas: Mapping, features: list[str], environ: Mapping[str, str]) -> str:
    """One line naming NumPy's BLAS, its kernel, the CPU's extensions and any forcing variable.

    >>> blas_line({"library": "openblas", "version": "0.3.31", "kernel": "Haswell",
    ...            "threading": "pthreads"}, ["AVX", "FMA3", "AVX2"], {})
    "NumPy's BLAS: openblas 0.3.31 (pthreads), kernel Haswell (AVX2); CPU extensions: AVX, FMA3, AVX2"
    """
    kernel = blas.get("kernel")
    isa = OPENBLAS_KERNEL_ISA.get(kernel or "")
    line = (f"NumPy's BLAS: {blas.get('library') or 'unknown'} {blas.get('version') or ''}".rstrip()
            + (f" ({blas['threading']})" if blas.get("threading") else "")
            + (f", kernel {kernel}" + (f" ({isa})" if isa else "") if kernel else "")
            + f"; CPU extensions: {', '.join(features) or 'none of ' + ', '.join(SHOWN_FEATURES)}")
    forced = [f"{name}={environ[name]}" for name in OPENBLAS_VARIABLES if name in environ]
    return line + (f"; set: {', '.join(forced)}" if forced else "")


def blas() -> dict:
    """:func:`numpy_blas` plus ``cpu_features`` (:func:`cpu_features`), ``environment`` (the
    :data:`OPENBLAS_VARIABLES` set), ``line`` (:func:`blas_line`) and ``warning`` (:func:`blas_warning`)."""
    features = cpu_features()
    info = numpy_blas()
    environment = {name: os.environ[name] for name in OPENBLAS_VARIABLES if name in os.environ}
    info.update(cpu_features=features, environment=environment,
                line=blas_line(info, features, os.environ), warning=blas_warning(info, features, os.environ))
    return info


def header(info: Mapping) -> list[str]:
    """What a benchmark prints before it runs: :func:`blas`'s line, and its warning if any."""
    return [info["line"]] + ([f"WARNING: {info['warning']}"] if info["warning"] else [])


def machine(threads: int) -> dict:
    """What a benchmark's results record of the machine: CPU, cores, threads, versions and NumPy's BLAS
    (``blas``: :func:`blas`)."""
    versions = {}
    for module in ("torch", "onnxruntime", "openvino"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = None
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "threads": threads,
            "python": platform.python_version(), "numpy": np.__version__, **versions, "blas": blas()}


def sgemm_peak(threads: int, min_runs: int = 5, min_seconds: float = 0.5) -> float:
    """The machine's measured float32 GEMM rate (GFLOP/s) through NumPy's BLAS, best of sizes.

    ``2*n**3`` FLOPs of square products, n = 1024 and 2048; BLAS runs with the threads it is given by
    the caller (:func:`run` limits it to ``threads``).
    """
    best = 0.0
    for n in (1024, 2048):
        a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
        b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
        seconds = timeit(functools.partial(np.matmul, a, b), min_runs=min_runs, min_seconds=min_seconds)
        best = max(best, 2 * n**3 / seconds / 1e9)
    return best


#: Bytes of the array :func:`copy_bandwidth` copies: well beyond any last-level cache.
COPY_BYTES = 128 * 2**20


def copy_bandwidth(threads: int, min_runs: int = 5, min_seconds: float = 0.5) -> float:
    """The machine's measured memory bandwidth (GB/s): bytes read + bytes written per second by
    ``np.copyto`` of a :data:`COPY_BYTES` float32 array into another (both touched beforehand).

    The best of one thread copying all of it and ``threads`` threads each copying its own slice
    (NumPy releases the GIL while it copies), so the limit it gives is a lower bound on time.
    """
    src = np.ones(COPY_BYTES // 4, dtype=np.float32)
    dst = np.zeros_like(src)
    best = 2 * src.nbytes / timeit(lambda: np.copyto(dst, src), min_runs, min_seconds) / 1e9
    if threads > 1:
        bounds = np.linspace(0, src.size, threads + 1).astype(int)
        parts = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        with ThreadPoolExecutor(threads) as pool:
            def copy() -> None:
                list(pool.map(lambda part: np.copyto(dst[part], src[part]), parts))

            best = max(best, 2 * src.nbytes / timeit(copy, min_runs, min_seconds) / 1e9)
    return best


def limit_seconds(layer: Layer, sgemm_gflops: float, copy_gbs: float) -> tuple[float, str]:
    """``max(FLOPs / sgemm rate, bytes / copy bandwidth)`` and which of the two binds."""
    compute = layer.flops / (sgemm_gflops * 1e9)
    memory = layer.bytes / (copy_gbs * 1e9)
    return (compute, "sgemm") if compute >= memory else (memory, "copy")


def rates(threads: int, min_runs: int, min_seconds: float, when: str, out) -> tuple[float, float]:
    """The sgemm rate (GFLOP/s) and the copy bandwidth (GB/s), measured now and printed."""
    peak = sgemm_peak(threads, min_runs, min(0.5, min_seconds))
    bandwidth = copy_bandwidth(threads, min_runs, min(0.5, min_seconds))
    plural = "s" * (threads != 1)
    print(f"at the {when}: sgemm rate (NumPy BLAS, {threads} thread{plural}) {peak:.1f} GFLOP/s; copy "
          f"bandwidth (np.copyto, read + write) {bandwidth:.1f} GB/s", file=out, flush=True)
    return peak, bandwidth


#: Pause before timing each system, so the thread pools of the one timed before (OpenMP, ONNX
#: Runtime, OpenVINO's TBB and OpenBLAS threads spin for a while after their work) are asleep again.
SETTLE_SECONDS = 0.3


def timings(fn: Callable[[], Any], min_runs: int = 5, min_seconds: float = 1.0,
            warmup: int = 2) -> list[float]:
    """Seconds of each run of ``fn()``: at least ``min_runs`` runs and ``min_seconds`` (at most 200
    runs), after a pause (:data:`SETTLE_SECONDS`) and a warm-up."""
    time.sleep(SETTLE_SECONDS)
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 200:
            break
    return times


def timeit(fn: Callable[[], Any], min_runs: int = 5, min_seconds: float = 1.0, warmup: int = 2) -> float:
    """Median seconds of ``fn()`` over at least ``min_runs`` runs and ``min_seconds``, after a warm-up."""
    return statistics.median(timings(fn, min_runs, min_seconds, warmup))
