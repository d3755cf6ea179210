"""``tconv bench --dask``: tconv on dask arrays, on a cluster of worker processes, against the same
layer in memory; and each worker's peak memory against the chunk size.

For each layer (by default :data:`DASK_LAYERS` of the suite, or ``--only``/``--layers``/``--random``)
the batch is enlarged (:func:`scaled`) until the float32 input is about ``--dask-mb`` (default
:data:`INPUT_MB`), and for each chunk size of ``--chunk-mb`` (default :data:`CHUNK_MB`) the input is
stored once in a zarr array (uncompressed) chunked by :func:`input_chunks`: whole samples per chunk
while a sample fits in one, else one sample per chunk split along its spatial axes (so spatial chunks
and their halos are part of the run). Then, alternately, ``--runs`` times (after one warm-up each):

- **in memory**: the zarr input read into one NumPy array, :func:`tconv.conv_transpose` with
  ``--threads`` threads (NumPy's BLAS limited to the same), the output written to an uncompressed
  zarr array with the chunks the dask run writes;
- **dask**: ``da.from_zarr`` -> :func:`tconv.conv_transpose` -> rechunked to regular chunks ->
  ``to_zarr`` (:func:`tconv.scale.run.zarr_to_zarr`, building the graph included), computed on a
  ``distributed.LocalCluster`` of ``--threads`` worker processes with one thread each (tconv runs one
  thread per task), a progress bar on stderr unless ``--no-progress``.

Both read and write the same bytes through the same zarr code, so ``dask / memory`` (the medians'
ratio) is what running block by block on the cluster costs over one call in memory: scheduling,
the halos' extra reads, the rechunk to regular chunks, moving blocks between processes.

Memory: each worker's peak resident set (``VmHWM``, reset before each run through
``/proc/self/clear_refs``; where that is not available, sampled every 10 ms), its resident set when
idle before the run, and the peak's growth over idle in units of the largest input chunk plus the
largest output block (what one task must hold); next to it the in-memory run's peak growth of this
process. The dask result is checked against the in-memory one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.functional import conv_transpose
from ..engine.threads import num_threads
from .compare import select_layers
from .machine import blas, header, machine
from .report import blas_lines, write_results
from .suite import Layer
from .systems import AGREEMENT

#: The suite's layers timed by default: large 2-d maps, many small samples, one long 1-d signal.
DASK_LAYERS = ("unet_up4", "k3s2_op1", "hifigan_1d")
#: Input size each layer is enlarged to (MiB of float32), by its batch.
INPUT_MB = 256.0
#: Chunk sizes (MiB of input per chunk) tried per layer.
CHUNK_MB = (4.0, 16.0, 64.0)
#: Timed runs per system, layer and chunk size (after one warm-up each), unless --runs says.
RUNS = 3
#: Workers as processes (the tests use threads: a cluster in their own process starts at once).
PROCESSES = True

MiB = 2**20


def scaled(layer: Layer, input_bytes: float) -> Layer:
    """``layer`` with its batch enlarged (never reduced) so that its float32 input is about
    ``input_bytes``; named ``name`` still."""
    per_sample = 4 * layer.C_in * math.prod(layer.spatial)
    return dataclasses.replace(layer, N=max(layer.N, round(input_bytes / per_sample)))


def input_chunks(shape: tuple[int, ...], itemsize: int, chunk_bytes: float) -> tuple[int, ...]:
    """One chunk's shape for an input ``(N, C, *spatial)``: channels whole; whole samples while a sample
    fits in ``chunk_bytes`` (as many as fit); else one sample, split along the spatial axes, first
    axis first, into about equal pieces of at most about ``chunk_bytes``.

    >>> input_chunks((64, 128, 32, 32), 4, 16 * 2**20)
    (32, 128, 32, 32)
    >>> input_chunks((8, 128, 196, 196), 4, 4 * 2**20)
    (1, 128, 40, 196)
    >>> input_chunks((4, 512, 4096), 4, 2 * 2**20)
    (1, 512, 1024)
    """
    n, *rest = shape
    per_sample = itemsize * math.prod(rest)
    if per_sample <= chunk_bytes:
        return (min(n, max(1, int(chunk_bytes // per_sample))), *rest)
    chunks = [1, rest[0]]
    ratio = per_sample / chunk_bytes
    for size in rest[1:]:
        if ratio <= 1:
            chunks.append(size)
            continue
        pieces = min(size, math.ceil(ratio))
        step = math.ceil(size / pieces)
        chunks.append(step)
        ratio *= step / size
    return tuple(chunks)


# ---------------------------------------------------------------------------------------------------
# Peak resident memory of a process (run in the workers through client.run).

_sampler: dict[str, Any] = {}


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def reset_peak() -> int:
    """Start measuring this process's peak resident set from now; its resident set now (bytes).

    Linux: the kernel's high-water mark ``VmHWM``, reset by writing 5 to ``/proc/self/clear_refs``.
    Elsewhere (or where that is refused): a thread sampling the resident set every 10 ms.
    """
    _stop_sampler()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        _vm_hwm()
        return _rss()
    except (OSError, ValueError):
        pass
    stop, peak = threading.Event(), [_rss()]

    def sample() -> None:
        while not stop.wait(0.01):
            peak[0] = max(peak[0], _rss())

    threading.Thread(target=sample, daemon=True, name="tconv-bench-rss").start()
    _sampler.update(stop=stop, peak=peak)
    return peak[0]


def _stop_sampler() -> None:
    stop = _sampler.pop("stop", None)
    if stop is not None:
        stop.set()
    _sampler.clear()


def read_peak() -> int:
    """This process's peak resident set (bytes) since :func:`reset_peak`."""
    if "peak" in _sampler:
        return max(_sampler["peak"][0], _rss())
    return _vm_hwm()


def _vm_hwm() -> int:
    match = re.search(r"^VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    if not match:
        raise ValueError("no VmHWM in /proc/self/status")
    return int(match[1]) * 1024


# ---------------------------------------------------------------------------------------------------
# One layer at one chunk size.


def _in_memory(layer: Layer, w, b, source: str, target: str, chunks: tuple, threads: int) -> dict:
    """The in-memory run: read, convolve, write; seconds of each phase and of the whole."""
    import zarr
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    x = zarr.open_array(source, mode="r")[...]
    t1 = time.perf_counter()
    with num_threads(threads), threadpool_limits(threads):
        y = conv_transpose(x, w, b, *layer.args())
    t2 = time.perf_counter()
    out = zarr.create_array(target, shape=y.shape, chunks=chunks, dtype=y.dtype, compressors=None,
                            overwrite=True)
    out[...] = y
    t3 = time.perf_counter()
    return {"read": t1 - t0, "conv": t2 - t1, "write": t3 - t2, "total": t3 - t0}


def _on_dask(client, layer: Layer, w, b, source: str, target: str, progress: bool, out) -> dict:
    """The dask run: build the graph, compute it on the cluster; seconds of each and the whole."""
    from ..scale.run import compute, zarr_to_zarr

    t0 = time.perf_counter()
    y, store = zarr_to_zarr(source, target, w, b, stride=layer.stride, padding=layer.padding,
                            output_padding=layer.output_padding, groups=layer.groups,
                            dilation=layer.dilation, overwrite=True, compressors=None)
    t1 = time.perf_counter()
    compute(client, store, progress=progress, out=out)
    t2 = time.perf_counter()
    return {"graph": t1 - t0, "compute": t2 - t1, "total": t2 - t0, "y": y, "store": store}


def _max_error(a_path: str, b_path: str) -> float:
    """Largest difference between two zarr arrays over the largest magnitude of the second, read
    a stored chunk row at a time."""
    import zarr

    a, b = zarr.open_array(a_path, mode="r"), zarr.open_array(b_path, mode="r")
    step = b.chunks[0]
    diff = scale = 0.0
    for i in range(0, b.shape[0], step):
        x, y = np.asarray(a[i:i + step]), np.asarray(b[i:i + step])
        diff = max(diff, float(np.abs(x - y).max()))
        scale = max(scale, float(np.abs(y).max()))
    return diff / (scale or 1.0)


def run_one(client, layer: Layer, chunk_mb: float, threads: int, runs: int, folder: Path,
            progress: bool = True, out=None, err=None) -> dict:
    """``layer`` (already :func:`scaled`) with input chunks of about ``chunk_mb`` MiB: both runs,
    alternately, ``runs`` times after one warm-up each; the row of the table as a dict."""
    import zarr

    out, err = out or sys.stdout, err or sys.stderr
    x, w, b = layer.arrays()
    chunks = input_chunks(x.shape, x.itemsize, chunk_mb * MiB)
    source, mem_target, dask_target = (str(folder / name) for name in ("x.zarr", "y-mem.zarr",
                                                                        "y-dask.zarr"))
    stored = zarr.create_array(source, shape=x.shape, chunks=chunks, dtype=x.dtype, compressors=None,
                               overwrite=True)
    stored[...] = x
    input_bytes = x.nbytes
    del x
    first = _on_dask(client, layer, w, b, source, dask_target, progress, err)  # warm-up
    y, store = first["y"], first["store"]
    block_bytes = math.prod(max(c) for c in _blocks(layer, w, b, source).chunks) * 4
    stored_chunks = tuple(max(c) for c in y.chunks)
    tasks = len(store.__dask_graph__())
    _in_memory(layer, w, b, source, mem_target, stored_chunks, threads)  # warm-up
    mem: list[dict] = []
    dsk: list[dict] = []
    workers: dict[str, dict[str, int]] = {}
    mem_peak = 0
    for _ in range(runs):
        base = reset_peak()
        mem.append(_in_memory(layer, w, b, source, mem_target, stored_chunks, threads))
        mem_peak = max(mem_peak, read_peak() - base)
        idle = client.run(reset_peak)
        run = _on_dask(client, layer, w, b, source, dask_target, progress, err)
        dsk.append({k: v for k, v in run.items() if k not in ("y", "store")})
        for address, peak in client.run(read_peak).items():
            seen = workers.setdefault(address, {"idle": idle[address], "peak": 0})
            seen["idle"] = min(seen["idle"], idle[address])
            seen["peak"] = max(seen["peak"], peak)
    error = _max_error(dask_target, mem_target)
    med = {k: statistics.median(r[k] for r in mem) for k in mem[0]}
    dmed = {k: statistics.median(r[k] for r in dsk) for k in dsk[0]}
    chunk_bytes = math.prod(chunks) * 4
    peaks = sorted(workers.values(), key=lambda v: v["peak"])
    growth = max(v["peak"] - v["idle"] for v in peaks)
    row = {
        "name": layer.name, "layer": layer.row(), "chunk_mb": chunk_mb,
        "input_shape": [layer.N, layer.C_in, *layer.spatial], "input_mib": input_bytes / MiB,
        "output_mib": 4 * layer.N * layer.C_out * math.prod(layer.out_spatial) / MiB,
        "chunks": list(chunks), "chunk_mib": chunk_bytes / MiB, "block_mib": block_bytes / MiB,
        "stored_chunks": list(stored_chunks), "tasks": tasks,
        "memory_ms": {k: v * 1e3 for k, v in med.items()}, "dask_ms": {k: v * 1e3 for k, v in dmed.items()},
        "ratio": dmed["total"] / med["total"],
        "worker_idle_mib": [v["idle"] / MiB for v in peaks],
        "worker_peak_mib": [v["peak"] / MiB for v in peaks],
        "worker_growth_mib": growth / MiB, "growth_per_task": growth / (chunk_bytes + block_bytes),
        "memory_peak_mib": mem_peak / MiB, "max_error": error,
    }
    print(f"  {layer.name:<12} chunk {chunk_mb:g} MiB ({'x'.join(map(str, chunks))}, {tasks} tasks): "
          f"in memory {row['memory_ms']['total']:.0f} ms (conv {row['memory_ms']['conv']:.0f}), "
          f"dask {row['dask_ms']['total']:.0f} ms -> {row['ratio']:.2f}x; worker peak "
          f"{max(row['worker_peak_mib']):.0f} MiB (idle {min(row['worker_idle_mib']):.0f}), in-memory "
          f"peak +{row['memory_peak_mib']:.0f} MiB; err {error:.1e}", file=out, flush=True)
    if error > AGREEMENT:
        print(f"  {layer.name:<12} dask DISAGREES with memory: max relative error {error:.1e}", file=out)
    for path in (source, mem_target, dask_target):
        shutil.rmtree(path, ignore_errors=True)
    return row


def _blocks(layer: Layer, w, b, source: str):
    """The lazy result as its blocks come (before the rechunk to regular chunks)."""
    import dask.array as da

    return conv_transpose(da.from_zarr(source), w, b, *layer.args())


# ---------------------------------------------------------------------------------------------------
# The whole section.


def run(layers: list[Layer], threads: int = 2, chunk_mb: tuple[float, ...] = CHUNK_MB,
        input_mb: float = INPUT_MB, runs: int = RUNS, progress: bool = True, out=None, err=None,
        processes: bool | None = None, folder: str | Path | None = None) -> dict:
    """Every layer of ``layers``, enlarged to ``input_mb`` MiB of input, at every chunk size of
    ``chunk_mb``, in memory and on a ``LocalCluster`` of ``threads`` worker processes (one thread each);
    prints a line per run and the table (to ``out``; progress bars to ``err``); returns everything as a
    dict. ``folder``: where the zarr arrays go (default: a temporary folder, removed afterwards).
    """
    from ..scale.run import connect

    out = out or sys.stdout
    for name, value in (("threads", threads), ("runs", runs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"bench: {name} must be a positive int, got {value!r}")
    if not chunk_mb or any(not (isinstance(c, (int, float)) and c > 0) for c in chunk_mb):
        raise ValueError(f"bench: --chunk-mb must be positive sizes in MiB, got {chunk_mb!r}")
    if not (isinstance(input_mb, (int, float)) and input_mb > 0):
        raise ValueError(f"bench: --dask-mb must be a positive size in MiB, got {input_mb!r}")
    if not layers:
        raise ValueError("bench: no layers to run (check --only)")
    processes = PROCESSES if processes is None else processes
    big = [scaled(layer, input_mb * MiB) for layer in layers]
    print(f"dask: a LocalCluster of {_workers(threads, processes)} x 1 thread against tconv in memory "
          f"with {threads} thread{'s' * (threads > 1)}; inputs of ~{input_mb:g} MiB, chunks of "
          f"{', '.join(f'{c:g}' for c in chunk_mb)} MiB; median of {runs} runs", file=out, flush=True)
    print("\n".join(header(blas())), file=out, flush=True)
    rows = []
    load_start = _load_average()
    with contextlib.ExitStack() as stack:
        where = Path(folder) if folder else Path(stack.enter_context(tempfile.TemporaryDirectory(
            prefix="tconv-bench-dask-")))
        where.mkdir(parents=True, exist_ok=True)
        client = stack.enter_context(connect(workers=threads, threads_per_worker=1, processes=processes,
                                             memory_limit=0))
        for layer in big:
            print(f"  {layer.describe()}", file=out, flush=True)
            for size in chunk_mb:
                rows.append(run_one(client, layer, float(size), threads, runs, where, progress, out, err))
    ratios = [r["ratio"] for r in rows]
    import dask
    import distributed
    import zarr

    result = {
        "machine": {**machine(threads), "dask": dask.__version__, "distributed": distributed.__version__,
                    "zarr": zarr.__version__},
        "threads": threads, "workers": threads, "threads_per_worker": 1, "processes": processes,
        "input_mb": input_mb, "chunk_mb": list(chunk_mb), "runs": runs, "progress": progress,
        "layers": [layer.row() for layer in big], "rows": rows,
        "load_average_start_end": [load_start, _load_average()],
        "geomean_ratio": math.exp(statistics.fmean(map(math.log, ratios))),
        "max_ratio": max(ratios),
    }
    print(file=out)
    print(markdown(result), file=out)
    return result


def _load_average() -> float | None:
    """The machine's 1-minute load average (other processes' work shows in it), where known."""
    import os

    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - not Unix
        return None


def _workers(n: int, processes: bool) -> str:
    """``2 worker processes``, ``1 worker thread (in this process)``."""
    if processes:
        return f"{n} worker process{'es' * (n > 1)}"
    return f"{n} worker thread{'s' * (n > 1)} (in this process)"


def _loads(result: dict) -> str:
    values = result.get("load_average_start_end") or [None, None]
    return " and ".join("?" if v is None else f"{v:.1f}" for v in values)


def markdown(result: dict) -> str:
    """The section's table as Markdown, its conditions in the lines above it."""
    m = result["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores; NumPy {m['numpy']}, dask {m['dask']}, distributed "
        f"{m['distributed']}, zarr {m['zarr']}; 1-minute load average {_loads(result)} before and "
        f"after the runs (the runs themselves keep ~{result['threads']} cores busy; more: other "
        f"processes shared the machine).",
        *blas_lines(m),
        f"**in memory**: the zarr input read into NumPy, `tconv.conv_transpose` with {result['threads']} "
        f"threads, the output written to zarr. **dask**: `da.from_zarr` -> `tconv.conv_transpose` -> "
        f"rechunk to regular chunks -> `to_zarr`, graph building included, on a `LocalCluster` of "
        f"{_workers(result['workers'], result['processes'])} x {result['threads_per_worker']} thread "
        f"(progress bar {'on' if result.get('progress', True) else 'off'}). Both "
        f"uncompressed zarr on local disk; median of {result['runs']} alternating runs after a warm-up "
        f"each. Inputs enlarged by their batch to ~{result['input_mb']:g} MiB.",
        "Memory: peak resident set (VmHWM) per worker during a run, its idle size before, and the "
        "peak's growth over idle in units of (input chunk + output block); in-memory: this process's "
        "peak growth during the in-memory run.",
        "",
        "| layer | input | chunk | chunk MiB | output block MiB | tasks | in memory ms (conv) "
        "| dask ms (graph) | dask / memory | worker peak MiB (idle) | growth / (chunk + block) "
        "| in-memory peak growth MiB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        shape = "x".join(map(str, r["input_shape"]))
        lines.append(
            f"| {r['name']} | {shape} ({r['input_mib']:.0f} MiB) | {'x'.join(map(str, r['chunks']))} | "
            f"{r['chunk_mib']:.1f} | {r['block_mib']:.1f} | {r['tasks']} | "
            f"{r['memory_ms']['total']:.0f} ({r['memory_ms']['conv']:.0f}) | "
            f"{r['dask_ms']['total']:.0f} ({r['dask_ms']['graph']:.0f}) | {r['ratio']:.2f}x | "
            f"{max(r['worker_peak_mib']):.0f} ({min(r['worker_idle_mib']):.0f}) | "
            f"{r['growth_per_task']:.1f} | {r['memory_peak_mib']:.0f} |")
    lines.append(f"| **geometric mean** | | | | | | | | **{result['geomean_ratio']:.2f}x** "
                 f"(max {result['max_ratio']:.2f}x) | | | |")
    return "\n".join(lines)


def parse_sizes(text: str) -> tuple[float, ...]:
    """``"4,16,64"`` -> ``(4.0, 16.0, 64.0)``; positive MiB."""
    try:
        sizes = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) <= 0:
        raise ValueError(f"bench: --chunk-mb must be positive sizes in MiB, like 4,16,64, got {text!r}")
    return sizes


def main(args) -> int:
    """``tconv bench --dask``: the section for the layers :func:`tconv.bench.compare.select_layers` picks
    (:data:`DASK_LAYERS` by default); ``--output`` writes OUTPUT.md and .json."""
    from ..scale.run import FIX, DependencyError, require_distributed

    require_distributed("bench --dask")
    layers = select_layers(args, DASK_LAYERS)
    try:
        import zarr  # noqa: F401
    except ImportError as exc:
        raise DependencyError(f"bench --dask needs zarr ({exc}). Fix: {FIX}") from exc
    chunk_mb = parse_sizes(args.chunk_mb) if args.chunk_mb else CHUNK_MB
    input_mb = INPUT_MB if args.dask_mb is None else args.dask_mb
    if args.list:
        for layer in layers:
            print(f"  {scaled(layer, input_mb * MiB).describe()}")
        return 0
    result = run(layers, threads=args.threads, chunk_mb=chunk_mb, input_mb=input_mb,
                 runs=RUNS if args.runs is None else args.runs, progress=not args.no_progress)
    if args.output:
        write_results(args.output, result, markdown(result))
    return 0
