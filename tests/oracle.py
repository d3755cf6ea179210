"""Independent references for the tests: PyTorch 2.13 (CPU), ONNX Runtime, brute-force loops.

None of these share code with tconv; expected values are never computed with the function under test.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)

_TCONV = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_TORCH_MODE = {"circular": "circular", "reflect": "reflect", "replicate": "replicate",
               "zeros": "constant"}


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def torch_conv_transpose(x, w, b, stride, padding, output_padding, groups, dilation):
    """PyTorch's conv_transpose for symmetric int padding."""
    r = w.ndim - 2
    return _TCONV[r](t(x), t(w), None if b is None else t(b), stride, padding, output_padding,
                     groups, dilation).numpy()


def torch_conv_transpose_pairs(x, w, b, stride, pairs, output_padding, groups, dilation):
    """Asymmetric (before, after) padding: PyTorch with padding 0, then cropped."""
    y = torch_conv_transpose(x, w, b, stride, 0, output_padding, groups, dilation)
    crop = tuple(slice(bf, y.shape[2 + i] - af) for i, (bf, af) in enumerate(pairs))
    return y[(slice(None), slice(None), *crop)]


def _torch_pad(x, pairs, mode):
    flat = [v for pair in reversed(pairs) for v in pair]
    return F.pad(x, flat, mode=_TORCH_MODE[mode]) if any(flat) else x


def torch_conv_mode(x, w, b, stride, pairs, dilation, groups, mode):
    """A convolution with padding mode: pad as nn.ConvNd does, then convolve without padding."""
    r = w.ndim - 2
    xt = x if isinstance(x, torch.Tensor) else t(x)
    wt = w if isinstance(w, torch.Tensor) else t(w)
    return _CONV[r](_torch_pad(xt, pairs, mode), wt, None if b is None else t(b), stride, 0,
                    dilation, groups)


def torch_transposed_mode(y, w, stride, pairs, dilation, groups, mode, large, grad=None):
    """The adjoint of torch_conv_mode, by autograd: T(y) = d/dx <conv_M(x, w), y>.

    With ``grad`` also returns the gradients of <T(y), grad> with respect to y and w.
    """
    yt = t(y).requires_grad_(grad is not None)
    wt = t(w).requires_grad_(grad is not None)
    x0 = torch.zeros((y.shape[0], w.shape[1] * groups, *large), dtype=yt.dtype, requires_grad=True)
    out = torch_conv_mode(x0, wt, None, stride, pairs, dilation, groups, mode)
    (tx,) = torch.autograd.grad(out, x0, grad_outputs=yt, create_graph=grad is not None)
    if grad is None:
        return tx.detach().numpy()
    gy, gw = torch.autograd.grad(tx, (yt, wt), grad_outputs=t(grad))
    return tx.detach().numpy(), gy.numpy(), gw.numpy()


def torch_backward(x, w, b, grad, stride, padding, output_padding, groups, dilation):
    """(grad_input, grad_weight, grad_bias) of PyTorch's conv_transpose by autograd."""
    r = w.ndim - 2
    xt, wt, bt = (t(a).requires_grad_(True) for a in (x, w, b))
    out = _TCONV[r](xt, wt, bt, stride, padding, output_padding, groups, dilation)
    out.backward(t(grad))
    return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def onnx_conv_transpose(x, w, b, strides, pads=None, output_padding=None, group=1, dilations=None,
                        auto_pad=None):
    """ONNX Runtime running a one-node ConvTranspose model (float32)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    r = w.ndim - 2
    attrs = {"strides": list(strides), "group": group, "kernel_shape": list(w.shape[2:])}
    if dilations is not None:
        attrs["dilations"] = list(dilations)
    if output_padding is not None:
        attrs["output_padding"] = list(output_padding)
    if auto_pad is not None:
        attrs["auto_pad"] = auto_pad
    elif pads is not None:
        attrs["pads"] = [p[0] for p in pads] + [p[1] for p in pads]
    inputs = ["x", "w"] + (["b"] if b is not None else [])
    node = helper.make_node("ConvTranspose", inputs, ["y"], **attrs)
    inits = [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.astype(np.float32).ravel())]
    if b is not None:
        inits.append(helper.make_tensor("b", TensorProto.FLOAT, b.shape, b.astype(np.float32)))
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    del r, onnx
    return sess.run(None, {"x": x.astype(np.float32)})[0]


def brute_conv_transpose(x, w, stride, pairs, output_padding, dilation, groups):
    """The definition, one input element and one kernel tap at a time (float64)."""
    N, C_in, *n = x.shape
    _, cout_g, *k = w.shape
    G = groups
    full = [(ni - 1) * s + d * (ki - 1) + 1 + o
            for ni, s, d, ki, o in zip(n, stride, dilation, k, output_padding)]
    y = np.zeros((N, cout_g * G, *full))
    for b_, c in itertools.product(range(N), range(C_in)):
        g = c // (C_in // G)
        for i in itertools.product(*map(range, n)):
            for tap in itertools.product(*map(range, k)):
                j = tuple(ii * s + tt * d for ii, tt, s, d in zip(i, tap, stride, dilation))
                for o in range(cout_g):
                    y[(b_, g * cout_g + o, *j)] += x[(b_, c, *i)] * w[(c, o, *tap)]
    crop = tuple(slice(bf, f - af) for (bf, af), f in zip(pairs, full))
    return y[(slice(None), slice(None), *crop)]
