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

from .compare import main, run, select_layers
from .machine import SETTLE_SECONDS, copy_bandwidth, limit_seconds, sgemm_peak, timeit
from .memory import peak_extra_memory
from .random_layers import random_layers
from .report import Row, markdown, threads_line, write_results
from .suite import DEFAULT_LAYERS, Layer, load_layers
from .systems import AGREEMENT, PEERS, RUNNERS, onnx_model, openvino_config

__all__ = [
    "AGREEMENT",
    "DEFAULT_LAYERS",
    "PEERS",
    "RUNNERS",
    "SETTLE_SECONDS",
    "Layer",
    "Row",
    "copy_bandwidth",
    "limit_seconds",
    "load_layers",
    "main",
    "markdown",
    "onnx_model",
    "openvino_config",
    "peak_extra_memory",
    "random_layers",
    "run",
    "select_layers",
    "sgemm_peak",
    "threads_line",
    "timeit",
    "write_results",
]
