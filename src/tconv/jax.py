"""tconv in JAX (``pip install tconv[jax]``): see :mod:`tconv.bridges.jax`.

``import tconv`` never imports this module (nor jax); ``import tconv.jax`` does.
"""

from .bridges.jax import conv_transpose, fold

__all__ = ["conv_transpose", "fold"]
