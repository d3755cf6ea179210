"""The old home of :mod:`tconv.interop.onnx`, kept so ``import tconv.onnx`` goes on working: it warns
(``FutureWarning``) and gives the same functions. Import :mod:`tconv.interop.onnx` instead (or
``tconv.interop``'s ``load_onnx`` and ``to_onnx``); this alias is to go in a later minor version.
"""

import warnings

from .interop.onnx import layer_from_node, load, resolve, run_node, to_onnx, transposed_window

__all__ = ["layer_from_node", "load", "resolve", "run_node", "to_onnx", "transposed_window"]

warnings.warn("tconv.onnx has moved to tconv.interop.onnx (same functions); import it from there",
              FutureWarning, stacklevel=2)
