"""tconv.torch (issue #13): the transposed convolution with tconv's semantics in PyTorch's own ops.

References, none computed by the code under test: tconv's NumPy conv_transpose and
conv_transpose_backward, and the autograd adjoint of torch's own padded convolution (F.pad with the
mode, then F.convNd), as tests/oracle.py builds it.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import t, torch_transposed_mode

import tconv
import tconv.torch as tt

MODES = tconv.PADDING_MODES


@st.composite
def bridge_configs(draw, rank, mode):
    small = 4 if rank == 3 else 6
    groups = draw(st.sampled_from([1, 1, 2]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    size = tuple(draw(st.integers(2, small)) for _ in range(rank))
    form = draw(st.sampled_from(["int", "per-dim", "pairs", "same"]))
    if form == "int":
        padding = draw(st.integers(0, 2))
    elif form == "per-dim":
        padding = tuple(draw(st.integers(0, 2)) for _ in range(rank))
    elif form == "pairs":
        padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(rank))
    else:
        padding = "same"
    if form == "same":
        output_padding = (0,) * rank
    else:
        output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    return dict(
        rank=rank,
        batch=draw(st.integers(1, 2)),
        c_in=groups * draw(st.integers(1, 2)),
        c_out=groups * draw(st.integers(1, 2)),
        groups=groups,
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        size=size,
        padding=padding,
        output_padding=output_padding,
        mode=mode,
        bias=draw(st.booleans()),
        # output_size reaches output_padding < stride only (torch's rule; dilation allows more)
        via_output_size=form != "same" and all(o < s for o, s in zip(output_padding, stride))
        and draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


def _pairs(padding, out_shape_numpy, cfg):
    """The (before, after) pairs tconv uses for this padding (its spec, on the shapes)."""
    from tconv.bridges.torch import spec_of

    return spec_of("test", (cfg["batch"], cfg["c_in"], *cfg["size"]),
                   (cfg["c_in"], cfg["c_out"] // cfg["groups"], *cfg["kernel"]), None,
                   cfg["stride"], padding, cfg["output_padding"], cfg["groups"], cfg["dilation"],
                   None, cfg["mode"]).pads


def adjoint_reference(x, w, b, cfg, pairs, large, grad=None):
    """The autograd adjoint of torch's conv with F.pad(mode): y zero-extended (or cut) to the
    convolution's output size, then d/dx <conv_M(x), y>."""
    tail = tuple((L + bf + af - d * (k - 1) - 1) // s + 1 for L, (bf, af), d, k, s in
                 zip(large, pairs, cfg["dilation"], cfg["kernel"], cfg["stride"]))
    y = np.zeros(x.shape[:2] + tail, x.dtype)
    keep = tuple(slice(0, min(n, m)) for n, m in zip(x.shape[2:], tail))
    y[(Ellipsis, *keep)] = x[(Ellipsis, *keep)]
    out = torch_transposed_mode(y, w, cfg["stride"], pairs, cfg["dilation"], cfg["groups"],
                                cfg["mode"], large)
    if b is not None:
        out = out + b.reshape(-1, *(1,) * cfg["rank"])
    return out


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_matches_numpy_adjoint_and_gradients(mode, rank, data):
    """5 random configurations for each mode and rank (60 in all): every padding form, stride,
    dilation, groups, output_padding and bias, against both references and tconv's gradients."""
    cfg = data.draw(bridge_configs(rank, mode))
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["batch"], cfg["c_in"], *cfg["size"]))
    w = rng.standard_normal((cfg["c_in"], cfg["c_out"] // cfg["groups"], *cfg["kernel"]))
    b = rng.standard_normal(cfg["c_out"]) if cfg["bias"] else None
    args = (cfg["stride"], cfg["padding"], cfg["output_padding"], cfg["groups"], cfg["dilation"])
    xt, wt = t(x).requires_grad_(True), t(w).requires_grad_(True)
    bt = None if b is None else t(b).requires_grad_(True)
    try:
        expected = tconv.conv_transpose(x, w, b, *args, padding_mode=cfg["mode"])
    except ValueError as exc:  # refused: the bridge refuses with tconv's own message
        with pytest.raises(ValueError, match=re.escape(str(exc).split(": ", 1)[1])):
            tt.conv_transpose(xt, wt, bt, *args, padding_mode=cfg["mode"])
        return
    if cfg["via_output_size"]:  # the same size asked for as output_size, torch's way
        args_size = (cfg["stride"], cfg["padding"], 0, cfg["groups"], cfg["dilation"])
        got = tt.conv_transpose(xt, wt, bt, *args_size, padding_mode=cfg["mode"],
                                output_size=expected.shape[2:])
    else:
        got = tt.conv_transpose(xt, wt, bt, *args, padding_mode=cfg["mode"])
    assert got.dtype == torch.float64 and tuple(got.shape) == expected.shape
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-10, atol=1e-10)

    pairs = _pairs(cfg["padding"], expected.shape, cfg)
    reference = adjoint_reference(x, w, b, cfg, pairs, expected.shape[2:])
    np.testing.assert_allclose(got.detach().numpy(), reference, rtol=1e-10, atol=1e-10)

    g = rng.standard_normal(expected.shape)
    got.backward(t(g))
    gi, gw, gb = tconv.conv_transpose_backward(g, x, w, *args, padding_mode=cfg["mode"])
    np.testing.assert_allclose(xt.grad.numpy(), gi, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(wt.grad.numpy(), gw, rtol=1e-10, atol=1e-10)
    if bt is not None:
        np.testing.assert_allclose(bt.grad.numpy(), gb, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck(mode):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 3, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(2, 2, 3, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, generator=gen, requires_grad=True)

    def f(x, w, b):
        return tt.conv_transpose(x, w, b, stride=(2, 1), padding=((1, 2), (2, 1)), output_padding=(1, 0),
                                 padding_mode=mode)

    assert torch.autograd.gradcheck(f, (x, w, b))
    assert torch.autograd.gradgradcheck(f, (x, w, b))


@pytest.mark.parametrize("mode", MODES)
def test_fold_matches_numpy_fold(mode):
    from tconv.core.padding import fold

    z = np.random.default_rng(1).standard_normal((2, 9, 7))
    pads = ((3, 2), (1, 2))
    np.testing.assert_allclose(tt.fold(t(z), pads, mode).numpy(), fold(z, pads, mode), rtol=1e-12)


def test_unbatched_input():
    x = torch.randn(3, 5, dtype=torch.float64)
    w = torch.randn(3, 2, 3, dtype=torch.float64)
    got = tt.conv_transpose(x, w, stride=2, padding="same", padding_mode="circular")
    assert got.shape == (2, 10)
    expected = tconv.conv_transpose(x.numpy(), w.numpy(), stride=2, padding="same", padding_mode="circular")
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_errors_name_the_argument():
    x, w = torch.randn(1, 2, 4), torch.randn(2, 1, 3)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        tt.conv_transpose(x, w, padding_mode="wrap")
    with pytest.raises(ValueError, match="padding_mode='reflect' needs padding smaller"):
        tt.conv_transpose(x, w, padding=(2,), padding_mode="reflect")
    with pytest.raises(ValueError, match="input has 2 channels but weight"):
        tt.conv_transpose(x, torch.randn(3, 1, 3))
    with pytest.raises(TypeError, match="must be torch tensors"):
        tt.conv_transpose(x.numpy(), w)


# --------------------------------------------------------------------------- modules

CLASSES = [(1, tt.ConvTranspose1d, torch.nn.ConvTranspose1d),
           (2, tt.ConvTranspose2d, torch.nn.ConvTranspose2d),
           (3, tt.ConvTranspose3d, torch.nn.ConvTranspose3d)]


@pytest.mark.parametrize("rank, ours, theirs", CLASSES)
def test_module_is_torch_module_with_same_state(rank, ours, theirs):
    kw = dict(stride=2, padding=1, output_padding=1, groups=2, dilation=1)
    torch.manual_seed(0)
    ref = theirs(4, 6, 3, **kw)
    mod = ours(4, 6, 3, **kw)
    assert isinstance(mod, theirs) and isinstance(mod, torch.nn.Module)
    assert list(mod.state_dict()) == list(ref.state_dict()) == ["weight", "bias"]
    assert [n for n, _ in mod.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert repr(mod) == repr(ref)
    mod.load_state_dict(ref.state_dict())
    x = torch.randn(2, 4, *(4,) * rank)
    torch.testing.assert_close(mod(x), ref(x))
    size = [2 * 4] * rank
    torch.testing.assert_close(mod(x, output_size=size), ref(x, output_size=size))
    assert ours(4, 6, 3, bias=False).bias is None


def test_module_loads_torch_state_dict_and_matches_in_zeros_mode():
    ref = torch.nn.ConvTranspose2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    mod = tt.ConvTranspose2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    mod.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 6, 5)
    torch.testing.assert_close(mod(x), ref(x))
    unbatched = torch.randn(3, 6, 5)
    torch.testing.assert_close(mod(unbatched), ref(unbatched))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padding", [1, (1, 2), ((0, 2), (1, 1)), "same"])
def test_module_modes_and_padding_forms(mode, padding):
    mod = tt.ConvTranspose2d(2, 3, 3, stride=2, padding=padding, padding_mode=mode, dtype=torch.float64)
    assert f"padding_mode={mode}" in repr(mod) or mode == "zeros"
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64)
    w, b = mod.weight.detach().numpy(), mod.bias.detach().numpy()
    expected = tconv.conv_transpose(x.numpy(), w, b, 2, padding, padding_mode=mode)
    np.testing.assert_allclose(mod(x).detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    layer = tconv.ConvTranspose2d(2, 3, 3, stride=2, padding=padding, padding_mode=mode, dtype="float64")
    layer.load_state_dict({k: v.detach().numpy() for k, v in mod.state_dict().items()})
    np.testing.assert_allclose(mod(x).detach().numpy(), layer(x.numpy()), rtol=1e-12, atol=1e-12)


def test_module_refuses_what_tconv_refuses():
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        tt.ConvTranspose2d(2, 3, 3, padding_mode="wrap")
    with pytest.raises(ValueError, match="output_padding must be 0 with padding='same'"):
        tt.ConvTranspose1d(2, 3, 3, stride=2, padding="same", output_padding=1)
    with pytest.raises(ValueError, match="output_padding must be smaller than either stride or dilation"):
        tt.ConvTranspose1d(2, 3, 3, stride=2, output_padding=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("mode", MODES)
def test_cuda_matches_cpu(mode):  # pragma: no cover - needs a GPU
    mod = tt.ConvTranspose2d(2, 3, 3, stride=2, padding=((1, 2), (0, 1)), padding_mode=mode,
                             dtype=torch.float64)
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64)
    expected = mod(x)
    got = mod.cuda()(x.cuda())
    assert got.is_cuda
    torch.testing.assert_close(got.cpu(), expected)


def test_import_tconv_torch_names():
    import tconv.bridges.torch as bridge

    assert tt.conv_transpose is bridge.conv_transpose and tt.ConvTranspose2d is bridge.ConvTranspose2d


@pytest.mark.parametrize("mode", MODES)
def test_torch_compile_fullgraph_matches_eager(mode):
    """torch.compile traces the layer with no graph break (fullgraph=True), also after a second input
    shape makes the sizes symbolic. The "eager" backend: dynamo's tracing without inductor's code
    generation (inductor took ~5 s warm, ~20 s cold per layer on the project's 2-core machine)."""
    torch._dynamo.reset()
    mod = tt.ConvTranspose2d(2, 3, 3, stride=2, padding=((1, 2), (0, 1)), padding_mode=mode,
                             dtype=torch.float64)
    compiled = torch.compile(mod, fullgraph=True, backend="eager")
    for shape in [(1, 2, 5, 4), (2, 2, 6, 7)]:
        x = torch.randn(*shape, dtype=torch.float64)
        torch.testing.assert_close(compiled(x), mod(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["circular", "replicate"])
def test_torch_compile_through_aot_autograd_forward_and_backward(mode):
    """backend="aot_eager": AOTAutograd functionalises the fold's in-place slice-adds and derives the
    backward graph, as inductor does before its code generation; values and gradients vs eager."""
    torch._dynamo.reset()
    torch.manual_seed(3)
    mod = tt.ConvTranspose2d(2, 4, 3, stride=2, padding=((2, 1), 1), output_padding=(1, 0), groups=2,
                             padding_mode=mode, dtype=torch.float64)
    compiled = torch.compile(mod, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    y, y_eager = compiled(x), mod(x)
    torch.testing.assert_close(y, y_eager, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(y)
    got = torch.autograd.grad(y, (x, mod.weight, mod.bias), g)
    want = torch.autograd.grad(y_eager, (x, mod.weight, mod.bias), g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


# inductor's own internals still call the deprecated torch.jit.script_method
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_torch_compile_inductor_matches_eager():
    """Inductor's generated C++ (the default backend): forward and input gradients vs eager, two
    shapes. The suite's slowest test (~30 s cold on 2 cores, beside the others: ~7 s of the run's
    wall time), kept in every run."""
    torch._dynamo.reset()
    mod = tt.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1, padding_mode="reflect",
                             dtype=torch.float64)
    compiled = torch.compile(mod, fullgraph=True)
    for shape in [(2, 3, 5, 6), (1, 3, 7, 4)]:
        x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
        y = compiled(x)
        torch.testing.assert_close(y, mod(x), rtol=1e-10, atol=1e-10)
        (gx,) = torch.autograd.grad(y.sum(), x)
        (want,) = torch.autograd.grad(mod(x).sum(), x)
        torch.testing.assert_close(gx, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
def test_torch_export_graph_runs_like_the_module(mode):
    """torch.export traces the layer to one ATen graph (no Python left): the exported program's
    output vs the module's, on the traced shape."""
    mod = tt.ConvTranspose2d(2, 2, 3, stride=2, padding=(1, (0, 2)), padding_mode=mode, dtype=torch.float64)
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    program = torch.export.export(mod, (x,))
    torch.testing.assert_close(program.module()(x), mod(x), rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torch_jit_script_is_refused_by_torchscript():
    """torch.jit.script is not supported (the argument checks are Python, not TorchScript; PyTorch
    deprecates TorchScript for torch.export, which works): the README says so; this pins the fact."""
    with pytest.raises(RuntimeError):
        torch.jit.script(tt.ConvTranspose2d(2, 2, 3))


def test_the_readme_example_runs(capsys):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = text.index("## Use it in PyTorch / JAX\n")
    section = text[start:text.index("\n## ", start + 1)]
    (example,) = re.findall(r"```python\n(.*?)```", section, re.S)
    exec(compile(example, "README.md", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == "(2, 8, 64, 64) (2, 8, 64, 63)\n"


def test_import_tconv_loads_neither_torch_nor_the_bridge():
    import subprocess
    import sys

    code = ("import sys, tconv; "
            "print(sorted(m for m in ('torch', 'tconv.bridges', 'tconv.torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_interop_reads_the_module_with_its_padding_and_mode():
    from tconv.interop import from_torch

    mod = tt.ConvTranspose2d(2, 3, 3, stride=2, padding=((0, 1), (1, 1)), padding_mode="reflect",
                             dtype=torch.float64)
    layer = from_torch(mod)
    assert (layer.padding, layer.padding_mode) == (((0, 1), (1, 1)), "reflect")
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64)
    np.testing.assert_allclose(layer(x.numpy()), mod(x).detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding", [np.array([1, 2]), np.array([[0, 1], [2, 1]]), "valid", [1, (0, 2)]])
def test_arguments_as_lists_and_numpy_arrays(padding):
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    w = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    stride = np.array([2, 1])
    got = tt.conv_transpose(x, w, stride=stride, padding=padding, padding_mode="circular")
    expected = tconv.conv_transpose(x.numpy(), w.numpy(), stride=stride, padding=padding,
                                    padding_mode="circular")
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)
