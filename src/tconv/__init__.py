"""tconv: transposed convolution (PyTorch's ConvTranspose1d/2d/3d) from first principles on NumPy.

>>> import numpy as np, tconv
>>> X = K = np.array([[[[0., 1.], [2., 3.]]]])
>>> tconv.conv_transpose(X, K, stride=2)[0, 0]
array([[0., 0., 0., 1.],
       [0., 0., 2., 3.],
       [0., 2., 0., 3.],
       [4., 6., 6., 9.]])
"""

from .core.functional import (
    conv,
    conv1d,
    conv2d,
    conv3d,
    conv_backward,
    conv_transpose,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    conv_transpose_backward,
)
from .core.layers import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .core.padding import PADDING_MODES
from .core.spec import ConvSpec
from .engine.algorithms import ALGORITHMS, MATRIX_LIMIT_BYTES, conv_matrix
from .engine.threads import get_num_threads, num_threads, set_num_threads
from .explainer import explain
from .interop import Conversion, convert
from .scale import is_dask as _registers_dask_arrays  # noqa: F401 - hands dask arrays to scale

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "MATRIX_LIMIT_BYTES",
    "PADDING_MODES",
    "ConvSpec",
    "Conversion",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_backward",
    "conv_matrix",
    "conv_transpose",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "conv_transpose_backward",
    "convert",
    "explain",
    "get_num_threads",
    "num_threads",
    "set_num_threads",
]
