"""``tconv bench``: tconv against PyTorch, ONNX Runtime and OpenVINO, side by side, in one run.

For every layer of the suite (:data:`DEFAULT_LAYERS`, shipped as ``tconv/data/benchmark-layers.json``:
name, N, C_in, C_out, spatial, kernel, stride, padding, output_padding, groups, dilation; or ``--random
SEED COUNT``, seeded random layers from :func:`random_layers`) the same float32 inputs go through tconv
(a ``ConvTranspose{1,2,3}d`` layer, its weight prepacked on the warm-up call as a runtime's session is
built; ``conv_transpose(..., algorithm=...)`` with ``--algorithm``), PyTorch's
``conv_transpose{1,2,3}d``, and one one-node ONNX ``ConvTranspose`` model run by ONNX Runtime and
compiled by OpenVINO (CPU, f32 precision hint). Every system gets the same number of threads: tconv's
own count (:func:`tconv.set_num_threads`) for its workers, BLAS and numba loops;
``torch.set_num_threads``; ONNX Runtime's intra-op threads; OpenVINO's ``INFERENCE_NUM_THREADS``;
NumPy's BLAS through threadpoolctl. The count is printed and written with the results. Each time is the
median of repeated runs after a warm-up; every peer's output is checked against tconv's.

Reported per layer:

- milliseconds per system and the ratio ``best peer / tconv`` (above 1: tconv is faster than every
  peer);
- the layer's *limit* on this machine, ``max(FLOPs / sgemm rate, bytes / copy bandwidth)``: FLOPs
  ``2*N*C_in*(C_out/groups)*prod(k)*prod(in)``, bytes those of reading input, weight and bias and
  writing the output once (float32), the sgemm rate and the copy bandwidth both measured with the same
  thread count (:func:`sgemm_peak`, :func:`copy_bandwidth`) before and after the layers, the higher
  of the two used. ``tconv / limit`` is tconv's time over that limit: 1.0 is the machine's limit as
  NumPy's BLAS and ``np.copyto`` reach it; below 1 only a GEMM faster than NumPy's, or a run whose
  rates were measured while something else loaded the machine;
- tconv's GFLOP/s next to the sgemm rate, and tconv's peak extra memory in units of ``input + output``
  bytes.

A backward table compares ``conv_transpose_backward`` (always ``auto``) with torch autograd.

PyTorch, ONNX Runtime and OpenVINO are needed here only (``pip install tconv[test]``); a system that
is not installed, or that refuses a layer, shows "—" and is left out of the ratio.
"""

from __future__ import annotations

import functools
import gc
import json
import math
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from .bench_machine import blas, header, machine
from .core.functional import conv_transpose, conv_transpose_backward
from .engine.threads import num_threads

#: The published layer suite, shipped inside the package (``tconv/data/benchmark-layers.json``).
DEFAULT_LAYERS = Path(__file__).resolve().parent / "data" / "benchmark-layers.json"

#: The peers, in the order of the table's columns: key, label.
PEERS: tuple[tuple[str, str], ...] = (("torch", "torch"), ("onnxruntime", "ORT"), ("openvino", "OpenVINO"))

#: A peer whose output differs from tconv's by more than this (relative to the output's largest
#: value) is reported as disagreeing; float32 summation order alone stays near 1e-6.
AGREEMENT = 1e-4

_PER_DIMENSION = ("kernel", "stride", "padding", "output_padding", "dilation")


@dataclass
class Layer:
    """One transposed convolution of the suite, as PyTorch's ``conv_transpose{rank}d`` takes it.

    ``kernel``, ``stride``, ``padding``, ``output_padding`` and ``dilation`` may be given as one int
    for every dimension (the suite's JSON) or one per spatial dimension; they are kept as tuples.
    """

    name: str
    N: int
    C_in: int
    C_out: int
    spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    groups: int
    dilation: tuple[int, ...]

    def __post_init__(self) -> None:
        self.spatial = tuple(int(s) for s in self.spatial)
        for name in _PER_DIMENSION:
            value = getattr(self, name)
            value = (value,) * self.rank if isinstance(value, (int, np.integer)) else tuple(value)
            if len(value) != self.rank:
                raise ValueError(f"bench: layer {self.name!r}: {name} has {len(value)} values for "
                                 f"{self.rank} spatial dimensions")
            setattr(self, name, tuple(int(v) for v in value))

    @property
    def rank(self) -> int:
        return len(self.spatial)

    @property
    def out_spatial(self) -> tuple[int, ...]:
        """``(in-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1`` per dimension."""
        return tuple((i - 1) * s - 2 * p + d * (k - 1) + op + 1 for i, k, s, p, op, d in zip(
            self.spatial, self.kernel, self.stride, self.padding, self.output_padding, self.dilation))

    @property
    def flops(self) -> int:
        """``2*N*C_in*(C_out/groups)*prod(k)*prod(in)``: two per multiply-add, zeros never counted."""
        return (2 * self.N * self.C_in * (self.C_out // self.groups) * math.prod(self.kernel)
                * math.prod(self.spatial))

    @property
    def bytes(self) -> int:
        """float32 bytes of reading input, weight and bias once and writing the output once."""
        x = self.N * self.C_in * math.prod(self.spatial)
        w = self.C_in * (self.C_out // self.groups) * math.prod(self.kernel)
        y = self.N * self.C_out * math.prod(self.out_spatial)
        return 4 * (x + w + self.C_out + y)

    def arrays(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Input, weight (scaled so outputs stay near unit size) and bias, float32, from ``seed``."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((self.N, self.C_in, *self.spatial), dtype=np.float32)
        w = rng.standard_normal((self.C_in, self.C_out // self.groups, *self.kernel), dtype=np.float32)
        w *= np.float32(1 / math.sqrt(self.C_in * math.prod(k / s for k, s in zip(self.kernel, self.stride))))
        b = rng.standard_normal(self.C_out, dtype=np.float32)
        return x, w, b

    def args(self) -> tuple:
        """``stride, padding, output_padding, groups, dilation``, positionally, as PyTorch takes them."""
        return (self.stride, self.padding, self.output_padding, self.groups, self.dilation)

    def row(self) -> list:
        """The layer as a row of a ``--layers`` JSON list (one int where every dimension agrees)."""
        def compact(v: tuple[int, ...]) -> int | list[int]:
            return v[0] if len(set(v)) == 1 else list(v)

        return [self.name, self.N, self.C_in, self.C_out, list(self.spatial), compact(self.kernel),
                compact(self.stride), compact(self.padding), compact(self.output_padding), self.groups,
                compact(self.dilation)]

    def describe(self) -> str:
        """One line with every parameter, for the log of a run."""
        def size(v: tuple[int, ...]) -> str:
            return str(v[0]) if len(set(v)) == 1 and len(v) > 1 else "x".join(map(str, v))

        return (f"{self.name:<12} {self.rank}d N={self.N} C_in={self.C_in} C_out={self.C_out} "
                f"in={'x'.join(map(str, self.spatial))} k={size(self.kernel)} s={size(self.stride)} "
                f"p={size(self.padding)} op={size(self.output_padding)} groups={self.groups} "
                f"d={size(self.dilation)} -> out={'x'.join(map(str, self.out_spatial))}  "
                f"{self.flops / 1e9:.3f} GFLOP")


def load_layers(path: str | Path | None = None) -> list[Layer]:
    """Layers from a JSON list of rows (the suite's format), or from a results JSON's ``layers``."""
    rows = json.loads(Path(path or DEFAULT_LAYERS).read_text())
    if isinstance(rows, dict):  # a results file of an earlier run: re-run the same layers
        rows = rows.get("layers", [])
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"bench: {path}: expected a non-empty JSON list of layer rows")
    width = len(fields(Layer))
    for row in rows:
        if not isinstance(row, list) or len(row) != width:
            raise ValueError(f"bench: {path}: every layer is a list of {width} values (name, N, C_in, "
                             f"C_out, spatial, kernel, stride, padding, output_padding, groups, "
                             f"dilation), got {row!r}")
    return [Layer(*row) for row in rows]


# ---------------------------------------------------------------------------------------------------
# Random layers: the generality check on shapes nobody tuned for.

#: Channel counts of real decoders, powers of two and not.
RANDOM_CHANNELS = (8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 192, 256, 320, 384, 512)
#: Inference batches are mostly 1; training-like batches up to 16.
RANDOM_BATCHES = (1, 1, 1, 2, 4, 8, 16)
#: Each random layer's work, in GFLOP (the same count as :attr:`Layer.flops`).
RANDOM_GFLOP = (0.02, 3.0)
#: Largest input side per rank, so shapes stay like real feature maps (a long 1-d signal, a 2-d map,
#: a small 3-d volume).
RANDOM_MAX_SIDE = {1: 16384, 2: 512, 3: 64}
#: Input + output of one random layer at most this many bytes, so a cheap-per-pixel (depthwise) layer
#: does not turn into a gigabyte of activations.
RANDOM_MAX_ARRAY_BYTES = 256 * 2**20


def random_layers(seed: int, count: int) -> list[Layer]:
    """``count`` realistic random layers from ``numpy.random.default_rng(seed)``: the same for the same
    seed, named ``r{seed}_{i}``.

    Rank 1, 2 or 3 (mostly 2); channels from :data:`RANDOM_CHANNELS` (sometimes 1-3 output channels,
    as a final layer); groups mostly 1, sometimes depthwise or 2/4/8; stride 1-4 and kernel 1-7
    (1-4 in 3-d), kernel % stride zero and not, sometimes different per dimension; dilation mostly 1,
    sometimes 2; padding mostly the usual ``output = input * stride`` choice, else 0 with a random
    valid output_padding; batch from :data:`RANDOM_BATCHES`; input sizes drawn so the layer's work is
    log-uniform in :data:`RANDOM_GFLOP`. A draw outside the bounds (work, side, bytes) is drawn again.
    """
    for name, value, low in (("SEED", seed, 0), ("COUNT", count, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            what = "a non-negative int" if low == 0 else "a positive int"
            raise ValueError(f"bench: --random {name} must be {what}, got {value!r}")
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    attempts = 0
    while len(layers) < count:
        attempts += 1
        if attempts > 1000 * count:  # pragma: no cover - the bounds admit most draws
            raise RuntimeError("bench: random_layers found no layer within its bounds")
        layer = _random_layer(rng, f"r{seed}_{len(layers)}")
        if layer is not None:
            layers.append(layer)
    return layers


def _pick(rng: np.random.Generator, options, p=None):
    return options[int(rng.choice(len(options), p=p))]


def _kernel_stride(rng: np.random.Generator, max_kernel: int) -> tuple[int, int]:
    """A stride 1-4 (2 most often) and a kernel at least the stride, half the time a multiple of it."""
    s = _pick(rng, (1, 2, 2, 2, 3, 4))
    kernels = range(s, max_kernel + 1)  # a kernel below the stride would leave outputs no input reaches
    multiple = [k for k in kernels if k % s == 0]
    other = [k for k in kernels if k % s]
    use_multiple = bool(multiple) and (not other or rng.random() < 0.5)
    return _pick(rng, multiple if use_multiple else other), s


def _padding(k: int, s: int, d: int, same: bool, extra: float) -> tuple[int, int]:
    """padding, output_padding of one dimension, valid for PyTorch: those of ``output = input * stride``
    when ``same`` (and the kernel allows), else padding 0 and output_padding the fraction ``extra`` of
    its range (drawn once per layer, so equal dimensions get equal values)."""
    v = d * (k - 1) + 1 - s  # = 2*padding - output_padding for output = input * stride
    if same and v > 0:
        p = (v + 1) // 2
        op = 2 * p - v
        if op >= max(s, d):  # PyTorch: output_padding below stride or dilation
            p, op = v // 2, 0
        return p, op
    return 0, int(extra * max(s, d))


def _random_layer(rng: np.random.Generator, name: str) -> Layer | None:
    rank = _pick(rng, (1, 2, 3), p=(0.25, 0.55, 0.2))
    kind = _pick(rng, ("dense", "depthwise", "grouped"), p=(0.7, 0.15, 0.15))
    if kind == "depthwise":
        c_in = c_out = groups = _pick(rng, RANDOM_CHANNELS[2:])
    elif kind == "grouped":
        groups = _pick(rng, (2, 4, 8))
        usable = [c for c in RANDOM_CHANNELS if c % groups == 0 and c > groups]
        c_in, c_out = _pick(rng, usable), _pick(rng, usable)
    else:
        groups = 1
        c_in = _pick(rng, RANDOM_CHANNELS)
        if rng.random() < 0.1:  # a final layer: an image's or a signal's few channels
            c_out = _pick(rng, (1, 2, 3))
        elif rng.random() < 0.7:  # decoders mostly keep or shrink the channel count
            c_out = _pick(rng, [c for c in RANDOM_CHANNELS if c <= c_in])
        else:
            c_out = _pick(rng, RANDOM_CHANNELS)
    max_kernel = 4 if rank == 3 else 7
    if rank > 1 and rng.random() < 0.15:
        kernel, stride = zip(*(_kernel_stride(rng, max_kernel) for _ in range(rank)))
    else:
        k, s = _kernel_stride(rng, max_kernel)
        kernel, stride = (k,) * rank, (s,) * rank
    d = 2 if rng.random() < 0.15 and max(kernel) > 1 else 1  # dilating a 1-tap kernel changes nothing
    same = rng.random() < 0.7
    extra = rng.random() if rng.random() < 0.3 else 0.0
    padding, output_padding = zip(*(_padding(k, s, d, same, extra) for k, s in zip(kernel, stride)))
    n = _pick(rng, RANDOM_BATCHES)

    per_pixel = 2 * n * c_in * (c_out // groups) * math.prod(kernel)
    low, high = RANDOM_GFLOP
    target = math.exp(rng.uniform(math.log(low * 1e9), math.log(high * 1e9)))
    pixels = target / per_pixel
    aspect = math.exp(rng.uniform(-0.7, 0.7)) if rank == 2 and rng.random() < 0.3 else 1.0
    side = pixels ** (1 / rank)
    sides = [side * math.sqrt(aspect), side / math.sqrt(aspect)] if rank == 2 else [side] * rank
    spatial = tuple(max(1, round(v)) for v in sides)
    if max(spatial) > RANDOM_MAX_SIDE[rank]:
        return None
    layer = Layer(name, n, c_in, c_out, spatial, kernel, stride, padding, output_padding, groups, d)
    if min(layer.out_spatial) < 1 or not low <= layer.flops / 1e9 <= high:
        return None
    activations = 4 * (n * c_in * math.prod(spatial) + n * c_out * math.prod(layer.out_spatial))
    if activations > RANDOM_MAX_ARRAY_BYTES:
        return None
    return layer


# ---------------------------------------------------------------------------------------------------
# Timing and the machine's limits.

#: Pause before timing each system, so the thread pools of the one timed before (OpenMP, ONNX
#: Runtime, OpenVINO's TBB and OpenBLAS threads spin for a while after their work) are asleep again.
SETTLE_SECONDS = 0.3


def timeit(fn: Callable[[], Any], min_runs: int = 5, min_seconds: float = 1.0, warmup: int = 2) -> float:
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

    ``2*n**3`` FLOPs of square products, n = 1024 and 2048; BLAS runs with the threads it is given by
    the caller (:func:`run` limits it to ``threads``).
    """
    best = 0.0
    for n in (1024, 2048):
        a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
        b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
        seconds = timeit(lambda a=a, b=b: a @ b, min_runs=min_runs, min_seconds=min_seconds)
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


# ---------------------------------------------------------------------------------------------------
# The peers.

def onnx_model(layer: Layer, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> bytes:
    """The layer as a one-node ONNX ``ConvTranspose`` model (opset 17), weight and bias as
    initializers: what ONNX Runtime runs and OpenVINO compiles."""
    from onnx import TensorProto, helper

    node = helper.make_node(
        "ConvTranspose", ["x", "w", "b"], ["y"], strides=list(layer.stride),
        pads=list(layer.padding) * 2, output_padding=list(layer.output_padding),
        group=layer.groups, dilations=list(layer.dilation), kernel_shape=list(layer.kernel))
    graph = helper.make_graph(
        [node], "bench", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel()),
         helper.make_tensor("b", TensorProto.FLOAT, b.shape, b)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _tconv_layer(layer: Layer, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> Callable[[], np.ndarray]:
    """tconv's ``ConvTranspose{rank}d`` holding ``w`` and ``b``, called on ``x``."""
    from .core import layers

    cls = getattr(layers, f"ConvTranspose{layer.rank}d")
    module = cls(layer.C_in, layer.C_out, layer.kernel, layer.stride, layer.padding,
                 layer.output_padding, layer.groups, True, layer.dilation)
    module.weight, module.bias = w, b
    return lambda: module(x)


def _torch_runner(layer: Layer, x, w, b, threads: int) -> Callable[[], np.ndarray]:
    import torch

    torch.set_num_threads(threads)
    fn = getattr(torch.nn.functional, f"conv_transpose{layer.rank}d")
    xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))

    def run():
        with torch.no_grad():
            return fn(xt, wt, bt, *layer.args())

    return lambda: run().numpy()


def _ort_runner(layer: Layer, x, w, b, threads: int) -> Callable[[], np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(onnx_model(layer, x, w, b), options, providers=["CPUExecutionProvider"])
    return lambda: session.run(None, {"x": x})[0]


@functools.lru_cache(maxsize=1)
def _openvino_core():
    import openvino

    return openvino.Core()


def openvino_config(threads: int) -> dict[str, Any]:
    """What OpenVINO's CPU plugin is compiled with: float32 arithmetic (no bf16/f16 even where the CPU
    has it), ``threads`` inference threads in one stream, latency mode (one request at a time)."""
    return {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY"}


def _openvino_runner(layer: Layer, x, w, b, threads: int) -> Callable[[], np.ndarray]:
    core = _openvino_core()
    model = core.read_model(onnx_model(layer, x, w, b))  # bytes: the ONNX frontend reads them
    compiled = core.compile_model(model, "CPU", openvino_config(threads))
    got = int(compiled.get_property("INFERENCE_NUM_THREADS"))
    if got != threads:
        raise RuntimeError(f"OpenVINO compiled with {got} threads, not {threads}")
    request = compiled.create_infer_request()
    # One reused request; the input is shared, not copied, and the output is the request's own
    # tensor (no copy out): OpenVINO at its fastest, as a deployed model calls it.
    return lambda: request.infer({0: x}, share_inputs=True, share_outputs=True)[0]


RUNNERS: dict[str, Callable[..., Callable[[], np.ndarray]]] = {
    "torch": _torch_runner, "onnxruntime": _ort_runner, "openvino": _openvino_runner}


def peak_extra_memory(fn: Callable[[], Any]) -> int:
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
    openvino_ms: float | None
    ratio: float | None
    best_peer: str | None
    limit_ms: float
    limit_bound: str
    tconv_over_limit: float
    gflops: float
    peak_fraction: float
    memory: float
    max_error: float
    errors: dict[str, float]
    algorithm: str


def _fmt(v: float | None, spec: str = ".2f", unit: str = "") -> str:
    return "—" if v is None else format(v, spec) + unit


def threads_line(threads: int) -> str:
    """What :func:`run` prints and writes about threads."""
    return (f"threads: {threads} for every system (tconv's workers, BLAS and numba loops; PyTorch; "
            f"ONNX Runtime's intra-op threads; OpenVINO's INFERENCE_NUM_THREADS; NumPy's BLAS)")


def _geomean(values: list[float]) -> float | None:
    return math.exp(statistics.fmean(map(math.log, values))) if values else None


def run(layers: list[Layer], threads: int = 2, min_seconds: float = 1.0, backward: bool = True,
        out=None, min_runs: int = 5, algorithm: str = "auto", suite: str | None = None) -> dict:
    """Run ``layers`` with ``threads`` threads for every system; print progress and tables; return
    everything as a dict. Each time is the median of at least ``min_runs`` runs and ``min_seconds``.

    ``algorithm``: tconv's algorithm for the forward table (``auto``, or a name of
    :data:`tconv.ALGORITHMS`); a layer it refuses is skipped with a note. ``suite``: how the layers
    were chosen, written in the header (e.g. ``--random 11 16``). tconv's thread count, NumPy's BLAS
    and PyTorch's count are given back afterwards. ``out``: where to print (default: ``sys.stdout`` at
    the time of the call).
    """
    from threadpoolctl import threadpool_limits

    from .engine.algorithms import ALGORITHMS

    out = out or sys.stdout
    for name, value, low in (("threads", threads, 1), ("min_runs", min_runs, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"bench: {name} must be a positive int, got {value!r}")
    if isinstance(min_seconds, bool) or not isinstance(min_seconds, (int, float)) or not min_seconds >= 0:
        raise ValueError(f"bench: seconds must be a number >= 0, got {min_seconds!r}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"bench: algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    if not layers:
        raise ValueError("bench: no layers to run (check --only)")
    torch_threads = _torch_threads()
    try:
        with num_threads(threads), threadpool_limits(threads):
            print(threads_line(threads), file=out, flush=True)
            print("\n".join(header(blas())), file=out, flush=True)
            return _run(layers, threads, min_seconds, backward, out, min_runs, algorithm, suite)
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


def _make_runners(layer: Layer, x, w, b, threads: int, failures: dict[str, str], out) -> dict:
    runners: dict[str, Callable[[], np.ndarray] | None] = {}
    for name, make in RUNNERS.items():
        try:
            runners[name] = make(layer, x, w, b, threads)
        except ImportError:  # not installed: its column shows "—"
            runners[name] = None
        except Exception as exc:  # noqa: BLE001 - a peer refusing a layer is a result, not a crash
            runners[name] = None
            failures[f"{layer.name}/{name}"] = f"{type(exc).__name__}: {exc}"
            print(f"  {layer.name:<12} {name} refused the layer: {type(exc).__name__}: {exc}", file=out)
    return runners


def _run(layers: list[Layer], threads: int, min_seconds: float, backward: bool, out, min_runs: int,
         algorithm: str, suite: str | None) -> dict:
    from .core.spec import transposed_spec
    from .engine import algorithms

    # The machine's rates are measured before and after the layers, and the higher of the two sets the
    # limits: on a shared machine one measurement taken while another process runs would understate the
    # machine and put a limit above what a system can reach.
    start = _machine_rates(threads, min_runs, min_seconds, "start", out)
    if algorithm != "auto":
        print(f"tconv forward algorithm: {algorithm} (--algorithm)", file=out)
    rows: list[tuple[Layer, Row]] = []
    back: list[dict] = []
    failures: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for layer in layers:
        x, w, b = layer.arrays()
        if algorithm == "auto":  # a layer: its weight prepacked on the first call, as a session is built
            ours = _tconv_layer(layer, x, w, b)
        else:
            ours = lambda x=x, w=w, b=b, layer=layer: conv_transpose(  # noqa: E731
                x, w, b, *layer.args(), algorithm=algorithm)
        try:
            y = ours()
        except (ValueError, MemoryError) as exc:  # e.g. ``matrix`` refuses a matrix over its limit
            skipped[layer.name] = str(exc)
            print(f"  {layer.name:<12} skipped: tconv ({algorithm}): {exc}", file=out, flush=True)
            continue
        runners = _make_runners(layer, x, w, b, threads, failures, out)
        times: dict[str, float | None] = {"tconv": timeit(ours, min_runs, min_seconds)}
        errors: dict[str, float] = {}
        scale = float(np.abs(y).max()) or 1.0
        for name, fn in runners.items():
            times[name] = None
            if fn is None:
                continue
            try:
                ref = fn()
            except Exception as exc:  # noqa: BLE001 - as in _make_runners: refused at run time
                failures[f"{layer.name}/{name}"] = f"{type(exc).__name__}: {exc}"
                print(f"  {layer.name:<12} {name} failed: {type(exc).__name__}: {exc}", file=out)
                continue
            errors[name] = float(np.abs(ref - y).max()) / scale
            if errors[name] > AGREEMENT:
                print(f"  {layer.name:<12} {name} DISAGREES with tconv: max relative error "
                      f"{errors[name]:.1e}", file=out)
            times[name] = timeit(fn, min_runs, min_seconds)
        peers = {k: t for k, t in times.items() if k != "tconv" and t is not None}
        best_peer = min(peers, key=peers.get) if peers else None
        ratio = peers[best_peer] / times["tconv"] if best_peer else None
        memory = peak_extra_memory(ours) / (x.nbytes + y.nbytes)
        spec = transposed_spec("bench", x, w, b, *layer.args())

        def ms(t: float | None) -> float | None:
            return None if t is None else t * 1e3

        # the limit columns are filled in once the machine's rates are measured again, after the layers
        row = Row(layer.name, layer.flops / 1e9, times["tconv"] * 1e3, ms(times["torch"]),
                  ms(times["onnxruntime"]), ms(times["openvino"]), ratio, best_peer, math.nan, "",
                  math.nan, layer.flops / times["tconv"] / 1e9, math.nan, memory,
                  max(errors.values(), default=0.0), errors,
                  algorithms.choose(spec) if algorithm == "auto" else algorithm)
        rows.append((layer, row))
        print(f"  {layer.name:<12} tconv {row.tconv_ms:9.2f} ms  torch {_fmt(row.torch_ms, '9.2f')} ms"
              f"  ort {_fmt(row.ort_ms, '9.2f')} ms  openvino {_fmt(row.openvino_ms, '9.2f')} ms"
              f"  ratio {_fmt(ratio)}  tconv {row.gflops:.1f} GFLOP/s  [{row.algorithm}]"
              f"  err {row.max_error:.1e}", file=out, flush=True)
        if backward and runners["torch"] is not None:
            back.append(_backward_row(layer, x, w, b, threads, min_runs, min_seconds, out))
    end = _machine_rates(threads, min_runs, min_seconds, "end", out)
    peak, bandwidth = max(start[0], end[0]), max(start[1], end[1])
    for layer, row in rows:
        limit, row.limit_bound = limit_seconds(layer, peak, bandwidth)
        row.limit_ms, row.tconv_over_limit = limit * 1e3, row.tconv_ms / 1e3 / limit
        row.peak_fraction = row.gflops / peak
    ratios = [r.ratio for _, r in rows if r.ratio]
    over = [r.tconv_over_limit for _, r in rows]
    result = {
        "machine": machine(threads),
        "sgemm_peak_gflops": peak,
        "copy_gbs": bandwidth,
        "sgemm_gflops_start_end": [start[0], end[0]],
        "copy_gbs_start_end": [start[1], end[1]],
        "threads": threads,
        "openvino_config": openvino_config(threads),
        "min_runs": min_runs,
        "min_seconds": min_seconds,
        "algorithm": algorithm,
        "suite": suite,
        "layers": [layer.row() for layer in layers],
        "rows": [asdict(r) for _, r in rows],
        "geomean_ratio": _geomean(ratios),
        "min_ratio": min(ratios) if ratios else None,
        "geomean_tconv_over_limit": _geomean(over),
        "max_tconv_over_limit": max(over) if over else None,
        "failures": failures,
        "skipped": skipped,
        "backward": back,
        "backward_geomean_ratio": _geomean([r["ratio"] for r in back]),
    }
    print(file=out)
    print(markdown(result), file=out)
    return result


def _machine_rates(threads: int, min_runs: int, min_seconds: float, when: str, out) -> tuple[float, float]:
    """The sgemm rate (GFLOP/s) and the copy bandwidth (GB/s), measured now and printed."""
    peak = sgemm_peak(threads, min_runs, min(0.5, min_seconds))
    bandwidth = copy_bandwidth(threads, min_runs, min(0.5, min_seconds))
    plural = "s" * (threads != 1)
    print(f"at the {when}: sgemm rate (NumPy BLAS, {threads} thread{plural}) {peak:.1f} GFLOP/s; copy "
          f"bandwidth (np.copyto, read + write) {bandwidth:.1f} GB/s", file=out, flush=True)
    return peak, bandwidth


def _backward_row(layer: Layer, x, w, b, threads: int, min_runs: int, min_seconds: float, out) -> dict:
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


def markdown(result: dict) -> str:
    """The result tables as Markdown."""
    m = result["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores; {threads_line(result['threads'])}; "
        f"NumPy {m['numpy']}; sgemm rate {result['sgemm_peak_gflops']:.1f} GFLOP/s, copy bandwidth "
        f"{result['copy_gbs']:.1f} GB/s (measured before and after the layers, the higher of the two).",
        *blas_lines(m),
    ]
    if result.get("suite"):
        lines.append(f"Layers: `tconv bench {result['suite']}` (parameters below).")
    if result.get("algorithm", "auto") != "auto":
        lines.append(f"tconv's forward algorithm: `{result['algorithm']}` (--algorithm).")
    lines += [
        "",
        "| layer | GFLOP | tconv ms | torch ms | ORT ms | OpenVINO ms | best peer / tconv | limit ms "
        "| tconv / limit | tconv GFLOP/s | % sgemm | extra memory / (in+out) | algorithm |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['name']} | {r['gflop']:.3f} | {r['tconv_ms']:.2f} | {_fmt(r['torch_ms'])} | "
            f"{_fmt(r['ort_ms'])} | {_fmt(r['openvino_ms'])} | {_fmt(r['ratio'], unit='x')} | "
            f"{r['limit_ms']:.2f} ({r['limit_bound']}) | {r['tconv_over_limit']:.2f} | {r['gflops']:.1f} | "
            f"{100 * r['peak_fraction']:.0f} % | {r['memory']:.2f} | {r['algorithm']} |")
    lines.append(f"| **geometric mean** | | | | | | **{_fmt(result['geomean_ratio'], unit='x')}** "
                 f"(min {_fmt(result['min_ratio'], unit='x')}) | | "
                 f"**{_fmt(result['geomean_tconv_over_limit'])}** "
                 f"(max {_fmt(result['max_tconv_over_limit'])}) | | | | |")
    if result["backward"]:
        lines += ["", "| backward | tconv ms | torch autograd ms | torch / tconv |", "|---|---:|---:|---:|"]
        for r in result["backward"]:
            lines.append(f"| {r['name']} | {r['tconv_ms']:.2f} | {r['torch_ms']:.2f} | {r['ratio']:.2f}x |")
        lines.append(f"| **geometric mean** | | | **{result['backward_geomean_ratio']:.2f}x** |")
    if result.get("suite"):
        lines += ["", "| layer | N | C_in | C_out | input | kernel | stride | padding | output_padding "
                  "| groups | dilation |", "|---|---:|---:|---:|---|---|---|---|---|---:|---|"]
        for row in result["layers"]:
            lines.append("| " + " | ".join(
                "x".join(map(str, v)) if isinstance(v, list) else str(v) for v in row) + " |")
    return "\n".join(lines)


def blas_lines(m: dict) -> list[str]:
    """The results' lines on NumPy's BLAS (:mod:`tconv.bench_machine`): what ran, and the warning when
    its kernel is older than the CPU's (none for results written before they were recorded)."""
    blas = m.get("blas")
    if not blas:
        return []
    return [f"{blas['line']}."] + ([f"**Warning**: {blas['warning']}."] if blas["warning"] else [])


def write_results(output: str, result: dict, table: str) -> None:
    """``OUTPUT.json`` (the result) and ``OUTPUT.md`` (its table), folders made as needed."""
    base = Path(output)
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".json").write_text(json.dumps(result, indent=2))
    base.with_suffix(".md").write_text(table + "\n")
    print(f"\nwrote {base.with_suffix('.md')} and {base.with_suffix('.json')}")


def select_layers(args, default: Sequence[str] | None = None) -> list[Layer]:
    """The layers a benchmark runs: ``--random SEED COUNT``, else ``--layers`` or the suite (with
    neither, and no ``--only``, the suite's layers named in ``default`` when given: ``tconv bench
    --dask`` runs :data:`tconv.bench_dask.DASK_LAYERS`); then ``--only`` (unknown names are an error)."""
    layers = random_layers(*args.random) if args.random else load_layers(args.layers)
    if default is not None and not (args.random or args.layers or args.only):
        layers = [layer for layer in layers if layer.name in default]
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(wanted) - {layer.name for layer in layers})
        if unknown:
            raise ValueError(f"bench: --only names no layer of the suite: {', '.join(unknown)}")
        layers = [layer for layer in layers if layer.name in wanted]
    return layers


def main(args) -> int:
    """``tconv bench``: the suite (or ``--layers``, ``--random``, ``--only``) with ``--threads`` for
    every system; ``--list`` prints the layers' parameters and times nothing. (``--dask`` is
    :func:`tconv.bench_dask.main`.)"""
    layers = select_layers(args)
    suite = f"--random {args.random[0]} {args.random[1]}" if args.random else None
    if args.list or args.random:
        if args.random:
            print(f"layers of {suite} (numpy.random.default_rng({args.random[0]})):")
        for layer in layers:
            print(f"  {layer.describe()}")
        if args.list:
            return 0
    result = run(layers, threads=args.threads, min_seconds=args.seconds, backward=not args.no_backward,
                 min_runs=5 if args.runs is None else args.runs, algorithm=args.algorithm, suite=suite)
    if args.output:
        write_results(args.output, result, markdown(result))
    return 0
