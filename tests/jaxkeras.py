"""The JAX and Keras oracles, run in a process of their own (see test_interop.remote).

XLA's compiler aborted the whole test process twice in ~12 full runs (inside
``backend_compile_and_load``, never reproduced on a fixed configuration); in a child process such an
abort costs one retry, not the test run.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402


def compute(framework: str, p: dict, x: np.ndarray, w: np.ndarray, b: np.ndarray | None):
    rank = w.ndim - 2
    if framework == "jax":
        from jax import lax

        y = lax.conv_transpose(x, w, p["strides"], p["padding"], rhs_dilation=p["rhs_dilation"],
                               dimension_numbers=p.get("dimension_numbers"),
                               transpose_kernel=p.get("transpose_kernel", True))
        y = np.asarray(y)
        if b is None:
            return y
        last = p.get("dimension_numbers") is None or p["dimension_numbers"][0].endswith("C")
        return y + (b if last else b.reshape(-1, *(1,) * rank))
    if framework == "keras":
        import keras

        cls = getattr(keras.layers, f"Conv{rank}DTranspose")
        layer = cls(p["filters"], p["kernel_size"], strides=p["strides"], padding=p["padding"],
                    output_padding=p["output_padding"], dilation_rate=p["dilation_rate"],
                    use_bias=p["use_bias"], data_format=p.get("data_format", "channels_last"))
        layer.build(x.shape)
        layer.set_weights([w] + ([b] if b is not None else []))
        return np.asarray(layer(x))
    raise ValueError(framework)
