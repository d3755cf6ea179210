"""``tconv bench``: tconv against PyTorch and ONNX Runtime, side by side, in one run.

For every layer of the suite (:data:`DEFAULT_LAYERS`, shipped as ``tconv/data/benchmark-
layers.json``: name, N, C_in, C_out, spatial, kernel, stride, padding, output_padding, groups,
dilation) the same float32 inputs go through tconv (``auto``), PyTorch's ``conv_transpose{1,2,3}d``
and a one-node ONNX ``ConvTranspose`` model in ONNX Runtime, every system with the same number of
threads (tconv's own count, :func:`tconv.set_num_threads`, for its workers, BLAS and numba loops;
``torch.set_num_threads``; ONNX Runtime's intra-op threads; NumPy's BLAS through threadpoolctl),
printed and written with the results. Each time is the median of repeated runs after a warm-up; the
results are checked to agree.
Reported per layer: milliseconds per system, the ratio ``best peer / tconv`` (above 1: tconv is
faster), tconv's GFLOP/s (``2*N*C_in*(C_out/groups)*prod(k)* prod(in)``) next to the machine's
measured sgemm peak, and tconv's peak extra memory in units of ``input + output`` bytes. A backward
table compares ``conv_transpose_backward`` with torch autograd.

PyTorch and ONNX Runtime are needed here only (``pip install tconv[test]``).
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .core.functional import conv_transpose, conv_transpose_backward
from .engine.threads import num_threads

#: The published layer suite, shipped inside the package (``tconv/data/benchmark-layers.json``).
DEFAULT_LAYERS = Path(__file__).resolve().parent / "data" / "benchmark-layers.json"


@dataclass
class Layer:
    name: str
    N: int
    C_in: int
    C_out: int
    spatial: list
    kernel: int
    stride: int
    padding: int
    output_padding: int
    groups: int
    dilation: int

    @property
    def rank(self) -> int:
        return len(self.spatial)

    @property
    def flops(self) -> int:
        return (2 * self.N * self.C_in * (self.C_out // self.groups) * self.kernel**self.rank
                * math.prod(self.spatial))

    def arrays(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((self.N, self.C_in, *self.spatial), dtype=np.float32)
        w = rng.standard_normal((self.C_in, self.C_out // self.groups, *(self.kernel,) * self.rank),
                                dtype=np.float32)
        w *= np.float32(1 / math.sqrt(self.C_in * (self.kernel / self.stride) ** self.rank))
        b = rng.standard_normal(self.C_out, dtype=np.float32)
        return x, w, b

    def args(self):
        return (self.stride, self.padding, self.output_padding, self.groups, self.dilation)


def load_layers(path: str | Path | None = None) -> list[Layer]:
    rows = json.loads(Path(path or DEFAULT_LAYERS).read_text())
    return [Layer(*row) for row in rows]


#: Pause before timing each system, so the thread pools of the one timed before (OpenMP, ONNX
#: Runtime and OpenBLAS threads spin for a while after their work) are asleep again.
SETTLE_SECONDS = 0.3


def timeit(fn, min_runs: int = 5, min_seconds: float = 1.0, warmup: int = 2) -> float:
    """Median seconds of ``fn()`` over at least ``min_runs`` runs and ``min_seconds``, after a warm-up."""
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
    return statistics.median(times)


def sgemm_peak(threads: int, min_runs: int = 5, min_seconds: float = 0.5) -> float:
    """The machine's measured float32 GEMM rate (GFLOP/s) through NumPy's BLAS, best of sizes.

    BLAS runs with the threads it is given by the caller (:func:`run` limits it to ``threads``).
    """
    best = 0.0
    for n in (1024, 2048):
        a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
        b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
        seconds = timeit(lambda a=a, b=b: a @ b, min_runs=min_runs, min_seconds=min_seconds)
        best = max(best, 2 * n**3 / seconds / 1e9)
    return best


def _torch_runner(layer: Layer, x, w, b, threads: int):
    import torch

    torch.set_num_threads(threads)
    fn = getattr(torch.nn.functional, f"conv_transpose{layer.rank}d")
    xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))

    def run():
        with torch.no_grad():
            return fn(xt, wt, bt, *layer.args())

    return lambda: run().numpy()


def _ort_runner(layer: Layer, x, w, b, threads: int):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    r = layer.rank
    node = helper.make_node(
        "ConvTranspose", ["x", "w", "b"], ["y"], strides=[layer.stride] * r,
        pads=[layer.padding] * 2 * r, output_padding=[layer.output_padding] * r,
        group=layer.groups, dilations=[layer.dilation] * r, kernel_shape=[layer.kernel] * r)
    graph = helper.make_graph(
        [node], "bench", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel()),
         helper.make_tensor("b", TensorProto.FLOAT, b.shape, b)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return lambda: session.run(None, {"x": x})[0]


def peak_extra_memory(fn) -> int:
    """Peak bytes NumPy allocated during ``fn()`` (tracemalloc), the result included."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


@dataclass
class Row:
    name: str
    gflop: float
    tconv_ms: float
    torch_ms: float | None
    ort_ms: float | None
    ratio: float | None
    gflops: float
    peak_fraction: float
    memory: float
    max_error: float
    algorithm: str


def _fmt(v, spec=".2f", unit=""):
    return "—" if v is None else format(v, spec) + unit


def threads_line(threads: int) -> str:
    """What :func:`run` prints and writes about threads."""
    return (f"threads: {threads} for every system (tconv's workers, BLAS and numba loops; PyTorch; "
            f"ONNX Runtime; NumPy's BLAS)")


def run(layers: list[Layer], threads: int = 2, min_seconds: float = 1.0, backward: bool = True,
        out=None, min_runs: int = 5) -> dict:
    """Run the suite with ``threads`` threads for every system; print progress and tables; return
    everything as a dict. Each time is the median of at least ``min_runs`` runs and ``min_seconds``.

    tconv's thread count, NumPy's BLAS and PyTorch's count are given back afterwards. ``out``: where
    to print (default: ``sys.stdout`` at the time of the call).
    """
    from threadpoolctl import threadpool_limits

    out = out or sys.stdout

    for name, value, low in (("threads", threads, 1), ("min_runs", min_runs, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"bench: {name} must be a positive int, got {value!r}")
    torch_threads = _torch_threads()
    try:
        with num_threads(threads), threadpool_limits(threads):
            print(threads_line(threads), file=out, flush=True)
            return _run(layers, threads, min_seconds, backward, out, min_runs)
    finally:
        if torch_threads is not None:
            import torch

            torch.set_num_threads(torch_threads)


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


def _run(layers, threads, min_seconds, backward, out, min_runs) -> dict:
    from .core.spec import transposed_spec
    from .engine import algorithms

    peak = sgemm_peak(threads, min_runs, min(0.5, min_seconds))
    print(f"sgemm peak (NumPy BLAS, {threads} thread{'s' * (threads != 1)}): {peak:.1f} GFLOP/s", file=out)
    rows: list[Row] = []
    back: list[dict] = []
    for layer in layers:
        x, w, b = layer.arrays()
        ours = lambda x=x, w=w, b=b, layer=layer: conv_transpose(x, w, b, *layer.args())  # noqa: E731
        y = ours()
        runners = {}
        for name, make in (("torch", _torch_runner), ("onnxruntime", _ort_runner)):
            try:
                runners[name] = make(layer, x, w, b, threads)
            except ImportError:
                runners[name] = None
        times = {"tconv": timeit(ours, min_runs, min_seconds)}
        error = 0.0
        scale = float(np.abs(y).max()) or 1.0
        for name, fn in runners.items():
            if fn is None:
                times[name] = None
                continue
            ref = fn()
            error = max(error, float(np.abs(ref - y).max()) / scale)
            times[name] = timeit(fn, min_runs, min_seconds)
        peers = [t for k, t in times.items() if k != "tconv" and t is not None]
        ratio = min(peers) / times["tconv"] if peers else None
        memory = peak_extra_memory(ours) / (x.nbytes + y.nbytes)
        spec = transposed_spec("bench", x, w, b, *layer.args())
        gflops = layer.flops / times["tconv"] / 1e9
        row = Row(layer.name, layer.flops / 1e9, times["tconv"] * 1e3,
                  None if times["torch"] is None else times["torch"] * 1e3,
                  None if times["onnxruntime"] is None else times["onnxruntime"] * 1e3,
                  ratio, gflops, gflops / peak, memory, error, algorithms.choose(spec))
        rows.append(row)
        print(f"  {layer.name:<12} tconv {row.tconv_ms:9.2f} ms  torch {_fmt(row.torch_ms, '9.2f')} ms"
              f"  ort {_fmt(row.ort_ms, '9.2f')} ms  ratio {_fmt(ratio)}  [{row.algorithm}]"
              f"  err {error:.1e}", file=out, flush=True)
        if backward and runners["torch"] is not None:
            back.append(_backward_row(layer, x, w, b, threads, min_runs, min_seconds, out))
    ratios = [r.ratio for r in rows if r.ratio]
    result = {
        "machine": _machine(threads),
        "sgemm_peak_gflops": peak,
        "threads": threads,
        "min_runs": min_runs,
        "min_seconds": min_seconds,
        "rows": [asdict(r) for r in rows],
        "geomean_ratio": math.exp(statistics.fmean(map(math.log, ratios))) if ratios else None,
        "min_ratio": min(ratios) if ratios else None,
        "backward": back,
        "backward_geomean_ratio": (
            math.exp(statistics.fmean(math.log(r["ratio"]) for r in back)) if back else None),
    }
    print(file=out)
    print(markdown(result), file=out)
    return result


def _backward_row(layer, x, w, b, threads, min_runs, min_seconds, out) -> dict:
    import torch

    torch.set_num_threads(threads)
    y = conv_transpose(x, w, b, *layer.args())
    g = np.random.default_rng(1).standard_normal(y.shape, dtype=np.float32)
    ours = lambda: conv_transpose_backward(g, x, w, *layer.args())  # noqa: E731
    fn = getattr(torch.nn.functional, f"conv_transpose{layer.rank}d")
    xt, wt, bt, gt = (torch.from_numpy(a) for a in (x, w, b, g))

    def theirs():
        xs, ws, bs = (t.detach().requires_grad_(True) for t in (xt, wt, bt))
        fn(xs, ws, bs, *layer.args()).backward(gt)
        return xs.grad, ws.grad, bs.grad

    mine, ref = ours(), theirs()
    error = max(float(np.abs(a - r.numpy()).max() / (np.abs(r.numpy()).max() or 1))
                for a, r in zip(mine, ref))
    t_ours = timeit(ours, min_runs, min_seconds)
    t_torch = timeit(theirs, min_runs, min_seconds)
    row = {"name": layer.name, "tconv_ms": t_ours * 1e3, "torch_ms": t_torch * 1e3,
           "ratio": t_torch / t_ours, "max_error": error}
    print(f"  {layer.name:<12} backward: tconv {t_ours * 1e3:9.2f} ms  torch autograd "
          f"{t_torch * 1e3:9.2f} ms  ratio {t_torch / t_ours:.2f}  err {error:.1e}", file=out,
          flush=True)
    return row


def _machine(threads: int) -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": threads, "python": platform.python_version(),
            "numpy": np.__version__}


def markdown(result: dict) -> str:
    """The result tables as Markdown."""
    m = result["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores; {threads_line(result['threads'])}; "
        f"NumPy {m['numpy']}; sgemm peak {result['sgemm_peak_gflops']:.1f} GFLOP/s.",
        "",
        "| layer | GFLOP | tconv ms | torch ms | ORT ms | best peer / tconv | tconv GFLOP/s | % sgemm peak "
        "| extra memory / (in+out) | algorithm |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['name']} | {r['gflop']:.3f} | {r['tconv_ms']:.2f} | {_fmt(r['torch_ms'])} | "
            f"{_fmt(r['ort_ms'])} | {_fmt(r['ratio'], unit='x')} | {r['gflops']:.1f} | "
            f"{100 * r['peak_fraction']:.0f} % | {r['memory']:.2f} | {r['algorithm']} |")
    lines.append(f"| **geometric mean** | | | | | **{_fmt(result['geomean_ratio'], unit='x')}** "
                 f"(min {_fmt(result['min_ratio'], unit='x')}) | | | | |")
    if result["backward"]:
        lines += ["", "| backward | tconv ms | torch autograd ms | torch / tconv |", "|---|---:|---:|---:|"]
        for r in result["backward"]:
            lines.append(f"| {r['name']} | {r['tconv_ms']:.2f} | {r['torch_ms']:.2f} | {r['ratio']:.2f}x |")
        lines.append(f"| **geometric mean** | | | **{result['backward_geomean_ratio']:.2f}x** |")
    return "\n".join(lines)


def main(args) -> int:
    """``tconv bench``: the suite (or ``--layers``, ``--only``) with ``--threads`` for every system."""
    layers = load_layers(args.layers)
    if args.only:
        layers = [layer for layer in layers if layer.name in args.only.split(",")]
    result = run(layers, threads=args.threads, min_seconds=args.seconds, backward=not args.no_backward,
                 min_runs=args.runs)
    if args.output:
        base = Path(args.output)
        base.parent.mkdir(parents=True, exist_ok=True)
        base.with_suffix(".json").write_text(json.dumps(result, indent=2))
        base.with_suffix(".md").write_text(markdown(result) + "\n")
        print(f"\nwrote {base.with_suffix('.md')} and {base.with_suffix('.json')}")
    return 0
