"""tconv in PyTorch (``pip install tconv[torch]``): see :mod:`tconv.bridges.torch`.

``import tconv`` never imports this module (nor torch); ``import tconv.torch`` does.
"""

from .bridges.torch import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, conv_transpose, fold

__all__ = ["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "conv_transpose", "fold"]
