"""The JAX and Keras oracles, run in a process of their own (see test_interop.remote).

XLA's compiler aborts the whole process on some valid convolutions (jaxlib 0.10.2's algebraic
simplifier; a fixed configuration is in test_interop.XLA_CRASH); in a child process such an abort costs
one retry, with that pass off, not the test run. Both are called with the arguments exactly as given.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402


def compute(framework: str, p: dict, x: np.ndarray, w: np.ndarray, b: np.ndarray | None):
    """``jax.lax.conv_transpose(x, w, **p)`` or ``keras.layers.ConvNDTranspose(**p)`` on ``x``."""
    if framework == "jax":
        from jax import lax

        return np.asarray(lax.conv_transpose(x, w, **p))
    if framework == "keras":
        import keras

        layer = getattr(keras.layers, f"Conv{w.ndim - 2}DTranspose")(**p)
        layer.build(x.shape)
        if layer.use_bias and b is None:  # a source without a bias: the target's is zero
            b = np.zeros(layer.filters, w.dtype)
        layer.set_weights([w] + ([b] if layer.use_bias else []))
        return np.asarray(layer(x))
    raise ValueError(framework)


def keras_layer_to_torch(p: dict, x: np.ndarray):
    """A built Keras layer object converted whole (``convert(layer, 'keras', 'torch')``), run in
    PyTorch: returns (Keras's output, the converted output)."""
    import keras
    import torch

    import tconv

    layer = getattr(keras.layers, f"Conv{x.ndim - 2}DTranspose")(**p)
    layer.build(x.shape)
    expected = np.asarray(layer(x))
    c = tconv.convert(layer, "keras", "torch")  # channels and kernel from the built layer
    weights = layer.get_weights()
    module = getattr(torch.nn, f"ConvTranspose{x.ndim - 2}d")(**c.params)
    state = {"weight": torch.from_numpy(c.weight(weights[0]))}
    if c.has_bias:
        state["bias"] = torch.from_numpy(c.bias(weights[1]))
    module.load_state_dict(state)
    with torch.no_grad():
        y = module(torch.from_numpy(c.input(x))).numpy()
    return expected, c.output(y, bias=weights[1] if c.has_bias else None)
