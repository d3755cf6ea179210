"""Porting between frameworks: :func:`convert` between PyTorch, ONNX, Keras, JAX and tconv
(:mod:`.convert`), ONNX models as tconv layers and back (:mod:`.onnx`, needs ``onnx``), PyTorch
modules as tconv layers and back (:mod:`.torch`)."""

from .convert import FRAMEWORKS, Conversion, convert
from .onnx import load as load_onnx
from .onnx import to_onnx
from .torch import from_torch, to_torch

__all__ = ["FRAMEWORKS", "Conversion", "convert", "from_torch", "load_onnx", "to_onnx", "to_torch"]
