"""tconv's semantics inside the frameworks, written in each framework's own ops.

- :mod:`tconv.bridges.torch` (public as :mod:`tconv.torch`, ``pip install tconv[torch]``):
  ``conv_transpose`` and ``ConvTranspose1d/2d/3d`` with every padding mode, asymmetric and 'same'
  padding, on every device PyTorch runs on, differentiable by autograd.
- :mod:`tconv.bridges.jax` (public as :mod:`tconv.jax`, ``pip install tconv[jax]``):
  ``conv_transpose`` in ``lax``/``jnp`` with the same options, jit-able, differentiable, vmap-able.
- :mod:`tconv.bridges.flax` (public as ``tconv.jax.ConvTranspose`` and ``ConvTranspose1d/2d/3d``,
  ``pip install tconv[flax]``): Flax NNX modules holding the parameters in PyTorch's layout.

Nothing here is imported by ``import tconv``; each bridge imports its framework when it is imported.
"""
