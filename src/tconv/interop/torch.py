"""PyTorch modules to tconv layers and back: :func:`from_torch`, :func:`to_torch`.

torch is imported only by :func:`to_torch` (``pip install tconv[torch]``); :func:`from_torch` reads
a module's attributes and state dict.

>>> from tconv import ConvTranspose2d
>>> layer = ConvTranspose2d(2, 3, 4, stride=2, padding=1, rng=0)
>>> module = to_torch(layer)                                  # doctest: +SKIP
>>> from_torch(module).padding                                # doctest: +SKIP
(1, 1)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import layers


def from_torch(module: Any) -> layers.ConvLayer:
    """The tconv layer equal to a ``torch.nn`` ``ConvNd``/``ConvTransposeNd`` module (weights copied)."""
    name = type(module).__name__
    cls = getattr(layers, name, None)
    if not (isinstance(cls, type) and issubclass(cls, layers.ConvLayer)):
        raise TypeError(f"from_torch: needs a torch.nn Conv1d/2d/3d or ConvTranspose1d/2d/3d module, "
                        f"got {name}")
    kw = dict(stride=module.stride, padding=module.padding, dilation=module.dilation,
              groups=module.groups, bias=module.bias is not None, padding_mode=module.padding_mode,
              dtype=str(module.weight.dtype).replace("torch.", ""))
    if cls.transposed:
        kw["output_padding"] = module.output_padding
    layer = cls(module.in_channels, module.out_channels, module.kernel_size, **kw)
    layer.load_state_dict(module.state_dict())
    return layer


def to_torch(layer: layers.ConvLayer) -> Any:
    """The equal ``torch.nn`` module, weights copied (imports torch)."""
    import torch

    name = type(layer).__name__
    if isinstance(layer.padding, tuple) and any(isinstance(p, tuple) for p in layer.padding):
        raise ValueError(f"to_torch: PyTorch has no asymmetric padding, got padding={layer.padding}")
    if layer.transposed and (layer.padding_mode != "zeros" or isinstance(layer.padding, str)):
        raise ValueError(f"to_torch: PyTorch's {name} refuses padding={layer.padding!r}, "
                         f"padding_mode={layer.padding_mode!r}")
    kw = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
              groups=layer.groups, bias=layer.bias is not None, padding_mode=layer.padding_mode,
              dtype=getattr(torch, str(layer.dtype)))
    if layer.transposed:
        kw["output_padding"] = layer.output_padding
    module = getattr(torch.nn, name)(layer.in_channels, layer.out_channels, layer.kernel_size, **kw)
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in layer.state_dict().items()})
    return module
