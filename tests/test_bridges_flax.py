"""tconv.jax.ConvTranspose (issue #13): tconv's transposed convolution as a Flax NNX module.

References, none computed by the code under test: tconv's NumPy layers and conv_transpose_backward,
and Flax's own ``nnx.ConvTranspose(padding='CIRCULAR')`` where the two should agree.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
nnx = pytest.importorskip("flax.nnx")

import tconv  # noqa: E402
import tconv.jax as tj  # noqa: E402

MODES = tconv.PADDING_MODES


def _f32(a):
    return jnp.asarray(a, jnp.float32)


def _tconv_layer(module, rank):
    """tconv's NumPy layer with the module's arguments and weights (float64)."""
    layer = getattr(tconv, f"ConvTranspose{rank}d")(
        module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
        module.output_padding, module.groups, module.bias is not None, module.dilation,
        module.padding_mode, dtype=np.float64)
    layer.weight = np.asarray(module.weight[...], np.float64)
    if module.bias is not None:
        layer.bias = np.asarray(module.bias[...], np.float64)
    return layer


LAYERS = [
    (1, dict(in_channels=2, out_channels=4, kernel_size=3, stride=2, padding=((1, 2),), output_padding=1,
             groups=2, padding_mode="circular")),
    (2, dict(in_channels=3, out_channels=2, kernel_size=(3, 2), stride=(2, 1), padding="same",
             dilation=(1, 2), padding_mode="reflect")),
    (2, dict(in_channels=2, out_channels=2, kernel_size=4, stride=2, padding=1, bias=False,
             padding_mode="replicate")),
    (3, dict(in_channels=2, out_channels=3, kernel_size=3, stride=(1, 2, 2), padding=(1, 0, 1),
             output_padding=(0, 1, 0), padding_mode="zeros")),
]


@pytest.mark.parametrize("rank,kwargs", LAYERS)
def test_module_matches_tconv_layer_forward_and_gradients(rank, kwargs):
    module = getattr(tj, f"ConvTranspose{rank}d")(**kwargs, rngs=nnx.Rngs(rank))
    layer = _tconv_layer(module, rank)
    x = np.random.default_rng(rank).standard_normal((2, kwargs["in_channels"]) + (4,) * rank)
    want = layer(x)
    g = np.random.default_rng(10 + rank).standard_normal(want.shape)

    # the output, and nnx.grad of the loss sum(y * g), under nnx.jit (one compile per layer)
    @nnx.jit
    def forward_and_grads(module, x):
        def loss(m):
            y = m(x)
            return jnp.sum(y * jnp.asarray(g, jnp.float32)), y

        return nnx.grad(loss, has_aux=True)(module)

    state, got = forward_and_grads(module, jnp.asarray(x, jnp.float32))
    assert got.shape == want.shape and got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)
    layer.zero_grad()
    layer.backward(g)
    np.testing.assert_allclose(np.asarray(state["weight"][...]), layer.grad_weight, rtol=1e-4, atol=2e-3)
    if module.bias is not None:
        np.testing.assert_allclose(np.asarray(state["bias"][...]), layer.grad_bias, rtol=1e-4, atol=2e-3)
    else:
        assert "bias" not in state or state["bias"] is None


def test_parameters_in_pytorch_layout_and_initialisation():
    module = tj.ConvTranspose2d(4, 6, (3, 2), groups=2, rngs=nnx.Rngs(0))
    assert module.weight.shape == (4, 3, 3, 2) and module.bias.shape == (6,)
    bound = 1 / np.sqrt(3 * 3 * 2)  # PyTorch's: 1/sqrt(C_out/groups * prod(k))
    for p in (module.weight[...], module.bias[...]):
        assert p.dtype == jnp.float32 and float(jnp.abs(p).max()) <= bound
        assert float(jnp.abs(p).max()) > bound / 2
    again = tj.ConvTranspose2d(4, 6, (3, 2), groups=2, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(np.asarray(again.weight[...]), np.asarray(module.weight[...]))
    other = tj.ConvTranspose2d(4, 6, (3, 2), groups=2, rngs=nnx.Rngs(1))
    assert not np.array_equal(np.asarray(other.weight[...]), np.asarray(module.weight[...]))
    # shapes only (nnx.eval_shape: no initialiser compiled): bias=False, and the rank, from
    # kernel_size's length (Flax's rule) or the class (PyTorch's)
    def shaped(cls, *args, **kwargs):
        return nnx.eval_shape(lambda: cls(*args, **kwargs, rngs=nnx.Rngs(0)))

    assert shaped(tj.ConvTranspose2d, 2, 2, 3, bias=False).bias is None
    assert shaped(tj.ConvTranspose, 2, 2, (3, 3, 3)).weight.shape == (2, 2, 3, 3, 3)
    assert shaped(tj.ConvTranspose, 2, 2, 3).weight.shape == (2, 2, 3)
    assert shaped(tj.ConvTranspose3d, 2, 2, 3).kernel_size == (3, 3, 3)


def test_output_size_and_unbatched_call():
    module = tj.ConvTranspose2d(2, 3, 3, stride=2, padding=1, padding_mode="circular", rngs=nnx.Rngs(0))
    layer = _tconv_layer(module, 2)
    x = np.random.default_rng(0).standard_normal((2, 5, 5))
    got = module(jnp.asarray(x, jnp.float32), output_size=(10, 9))
    assert got.shape == (3, 10, 9)
    np.testing.assert_allclose(np.asarray(got), layer(x, output_size=(10, 9)), rtol=1e-4, atol=1e-4)


def test_constructor_refuses_what_tconv_layers_refuse():
    cases = [
        (dict(in_channels=4, out_channels=6, kernel_size=3, groups=4), "divisible by groups"),
        (dict(in_channels=2, out_channels=2, kernel_size=3, padding_mode="mirror"), "padding_mode"),
        (dict(in_channels=2, out_channels=2, kernel_size=3, stride=2, output_padding=2), "output_padding"),
        (dict(in_channels=2, out_channels=2, kernel_size=(3, 3, 3)), "kernel_size"),
        (dict(in_channels=0, out_channels=2, kernel_size=3), "in_channels"),
    ]
    for kwargs, words in cases:
        with pytest.raises((ValueError, TypeError)) as ours:
            tj.ConvTranspose2d(**kwargs, rngs=nnx.Rngs(0))
        with pytest.raises((ValueError, TypeError)) as theirs:
            tconv.ConvTranspose2d(**kwargs)
        assert words in str(ours.value)
        assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


def _flax_circular_case(rng, rank, transpose_kernel):
    """A configuration in which Flax's CIRCULAR equals tconv's circular mode (the rule in
    tconv.bridges.flax's docstring), or None when the rule has no such padding."""
    kernel = tuple(int(v) for v in rng.integers(1, 6, rank))
    stride = tuple(int(v) for v in rng.integers(1, 4, rank))
    dilation = tuple(int(v) for v in rng.integers(1, 3, rank))
    size = tuple(int(v) for v in rng.integers(2, 6, rank))
    padding, output_padding = [], []
    for k, s, d, n in zip(kernel, stride, dilation, size):
        e = d * (k - 1) + 1 - s
        p, o = (0, -e) if e < 0 else (e // 2, 0) if e % 2 == 0 else ((e + 1) // 2, 1)
        if (e > 0 and e % 2 and not transpose_kernel) or o >= max(s, d) or p > n * s:
            return None
        padding.append(p)
        output_padding.append(o)
    return kernel, stride, dilation, size, tuple(padding), tuple(output_padding)


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("transpose_kernel", [False, True])
def test_circular_agrees_with_flax_circular(rank, transpose_kernel):
    rng = np.random.default_rng([rank, transpose_kernel])
    checked = 0
    while checked < 4:
        case = _flax_circular_case(rng, rank, transpose_kernel)
        if case is None:
            continue
        kernel, stride, dilation, size, padding, output_padding = case
        # Flax's initialisers compile per shape (~1 s each here): zeros, then random values assigned
        flax = nnx.ConvTranspose(2, 3, kernel, stride, padding="CIRCULAR", kernel_dilation=dilation,
                                 transpose_kernel=transpose_kernel, kernel_init=nnx.initializers.zeros,
                                 rngs=nnx.Rngs(0))
        k = rng.standard_normal(flax.kernel.shape)  # (*k, C_in, C_out), or (*k, C_out, C_in) transposed
        b = rng.standard_normal(3)
        flax.kernel[...] = jnp.asarray(k, jnp.float32)
        flax.bias[...] = jnp.asarray(b, jnp.float32)
        x = rng.standard_normal((1, 2) + size)
        want = np.moveaxis(np.asarray(flax(jnp.asarray(np.moveaxis(x, 1, -1), jnp.float32))), -1, 1)
        assert want.shape == (1, 3) + tuple(n * s for n, s in zip(size, stride))
        spatial = tuple(range(rank))
        if transpose_kernel:
            w = np.transpose(k, (rank + 1, rank) + spatial)
        else:
            w = np.transpose(np.flip(k, spatial), (rank, rank + 1) + spatial)
        kw = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
                  padding_mode="circular")
        np.testing.assert_allclose(tconv.conv_transpose(x, w, b, **kw), want, rtol=1e-4, atol=1e-4)
        got = tj.conv_transpose(_f32(x), _f32(w), _f32(b), **kw)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)
        checked += 1


def test_missing_flax_is_an_import_error_naming_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "flax" or m.startswith(("flax.", "tconv.bridges.flax"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "flax", None)  # import flax now fails as if not installed
    monkeypatch.delattr("tconv.bridges.flax", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'tconv\[flax\]'"):
        tj.ConvTranspose  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'Conv9d'"):
        tj.Conv9d  # noqa: B018


def test_the_readme_example_runs(capsys):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = text.index("## Use it in PyTorch / JAX\n")
    section = text[start:text.index("\n## ", start + 1)]
    (example,) = [b for b in re.findall(r"```py\n(.*?)```", section, re.S)
                  if "from tconv.jax import ConvTranspose2d" in b]
    exec(compile(example, "README.md", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == "(2, 4, 32, 32) (8, 4, 4, 4) (8, 4, 4, 4)\n"
