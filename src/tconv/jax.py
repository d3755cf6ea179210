"""tconv in JAX (``pip install tconv[jax]``): see :mod:`tconv.bridges.jax`; the Flax NNX modules
``ConvTranspose`` / ``ConvTranspose1d/2d/3d`` (``pip install tconv[flax]``): see :mod:`tconv.bridges.flax`.

``import tconv`` never imports this module (nor jax); ``import tconv.jax`` does, and Flax only when a
module class is first asked for.
"""

import importlib
from typing import Any

from .bridges.jax import conv_transpose, fold

# the Flax modules, provided on first access by __getattr__ (Flax is optional)
_FLAX_NAMES = ("ConvTranspose", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")

__all__ = ["conv_transpose", "fold", *_FLAX_NAMES]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_FLAX_NAMES))


def __getattr__(name: str) -> Any:
    if name in _FLAX_NAMES:
        try:  # import_module, not `from .bridges import flax`: that finds a stale attribute
            flax = importlib.import_module("tconv.bridges.flax")
        except ModuleNotFoundError as error:
            if error.name != "flax":
                raise
            raise ImportError(
                f"tconv.jax.{name} is a Flax NNX module and needs Flax: pip install 'tconv[flax]'"
            ) from error
        return getattr(flax, name)
    raise AttributeError(f"module 'tconv.jax' has no attribute {name!r}")
