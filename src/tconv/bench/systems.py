"""The systems timed side by side: tconv (a layer, its weight prepacked on the warm-up call) and its
peers, PyTorch, ONNX Runtime (a one-node ONNX model) and OpenVINO (the same model compiled for the
CPU), each as a runner: a callable computing the layer with the benchmark's thread count."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .suite import Layer

#: The peers, in the order of the table's columns: key, label.
PEERS: tuple[tuple[str, str], ...] = (("torch", "torch"), ("onnxruntime", "ORT"), ("openvino", "OpenVINO"))


#: A peer whose output differs from tconv's by more than this (relative to the output's largest
#: value) is reported as disagreeing; float32 summation order alone stays near 1e-6.
AGREEMENT = 1e-4


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


def tconv_layer(layer: Layer, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> Callable[[], np.ndarray]:
    """tconv's ``ConvTranspose{rank}d`` holding ``w`` and ``b``, called on ``x``."""
    from ..core import layers

    cls = getattr(layers, f"ConvTranspose{layer.rank}d")
    module = cls(layer.C_in, layer.C_out, layer.kernel, layer.stride, layer.padding,
                 layer.output_padding, layer.groups, True, layer.dilation)
    module.weight, module.bias = w, b

    def call() -> np.ndarray:
        return module(x)

    setattr(call, "module", module)  # noqa: B010 (for ran_algorithm; mypy types no such attribute)
    return call


def ran_algorithm(fn: Callable[[], np.ndarray]) -> str | None:
    """The algorithm a :func:`tconv_layer` call runs (its layer's plan for the input), if planned."""
    module = getattr(fn, "module", None)
    plans = getattr(module, "_plans", None)
    if not plans:
        return None
    (_, _, plan), *_ = plans.values()
    return plan.run.__name__


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


def torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


def make_runners(layer: Layer, x, w, b, threads: int, failures: dict[str, str], out) -> dict:
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
