"""tconv.jax (issue #13): the transposed convolution with tconv's semantics in JAX's own ops.

References, none computed by the code under test: tconv's NumPy conv_transpose and
conv_transpose_backward, and the autograd adjoint (jax.vjp) of JAX's own padded convolution (jnp.pad
with the mode, then lax.conv_general_dilated). Float32 in JAX (x64 left off, so no other test is
disturbed), compared with a tolerance against float64 references. The Flax NNX module is in
tests/test_bridges_flax.py.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import tconv  # noqa: E402
import tconv.jax as tj  # noqa: E402
from tconv.bridges.common import spec_of  # noqa: E402

MODES = tconv.PADDING_MODES
FORMS = ("int", "per-dim", "pairs", "same")


def _config(rng: np.random.Generator, rank: int, mode: str, form: str) -> dict:
    groups = int(rng.choice([1, 2]))
    stride = tuple(int(v) for v in rng.integers(1, 4, rank))
    dilation = tuple(int(v) for v in rng.integers(1, 3, rank))
    if form == "int":
        padding = int(rng.integers(0, 3))
    elif form == "per-dim":
        padding = tuple(int(v) for v in rng.integers(0, 3, rank))
    elif form == "pairs":
        padding = tuple((int(a), int(b)) for a, b in rng.integers(0, 3, (rank, 2)))
    else:
        padding = "same"
    output_padding = (0,) * rank if form == "same" else tuple(
        int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
    return dict(
        x=rng.standard_normal((int(rng.integers(1, 3)), groups * int(rng.integers(1, 3)))
                              + tuple(int(v) for v in rng.integers(3, 7 if rank < 3 else 5, rank))),
        w_shape=(groups * int(rng.integers(1, 3)),) + tuple(int(v) for v in rng.integers(1, 4, rank)),
        groups=groups, stride=stride, dilation=dilation, padding=padding,
        output_padding=output_padding, mode=mode, bias=bool(rng.integers(0, 2)),
    )


def _arrays(rng, cfg):
    x = cfg["x"]
    c_out = cfg["w_shape"][0]
    w = rng.standard_normal((x.shape[1], c_out // cfg["groups"]) + cfg["w_shape"][1:])
    b = rng.standard_normal(c_out) if cfg["bias"] else None
    kwargs = dict(stride=cfg["stride"], padding=cfg["padding"], output_padding=cfg["output_padding"],
                  groups=cfg["groups"], dilation=cfg["dilation"], padding_mode=cfg["mode"])
    return x, w, b, kwargs


def _f32(a):
    return None if a is None else jnp.asarray(a, jnp.float32)


# tconv's padding modes in jnp.pad's words
JNP_MODE = {"zeros": "constant", "circular": "wrap", "reflect": "reflect", "replicate": "edge"}


def jax_padded_conv(y, w, stride, pairs, dilation, groups, mode):
    """JAX's own convolution with padding mode ``mode``: jnp.pad, then lax.conv_general_dilated with
    no padding. ``w`` ``(C_in, C_out/groups, *k)`` is, read as OIHW, the kernel of the convolution from
    the transposed convolution's C_out channels to its C_in channels."""
    rank = w.ndim - 2
    padded = jnp.pad(y, ((0, 0), (0, 0)) + tuple(pairs), mode=JNP_MODE[mode])
    return jax.lax.conv_general_dilated(padded, w, window_strides=stride, padding=[(0, 0)] * rank,
                                        rhs_dilation=dilation, feature_group_count=groups)


def adjoint_of_jax_conv(x, w, b, kwargs, pairs, out_shape):
    """The transposed convolution as the vjp of JAX's padded convolution at an output-sized y: the
    cotangent is x, zero-extended (or cut) to the convolution's output size (output_padding >= stride,
    possible with dilation, makes it larger than x)."""
    stride, dilation = kwargs["stride"], kwargs["dilation"]
    rank = w.ndim - 2
    stride = stride if isinstance(stride, tuple) else (stride,) * rank
    dilation = dilation if isinstance(dilation, tuple) else (dilation,) * rank
    y = jnp.zeros(out_shape, jnp.float32)
    conv = functools.partial(jax_padded_conv, w=_f32(w), stride=stride, pairs=pairs, dilation=dilation,
                             groups=kwargs["groups"], mode=kwargs["padding_mode"])
    out = jax.eval_shape(conv, y)
    cot = np.zeros(out.shape, np.float32)
    keep = tuple(slice(0, min(n, m)) for n, m in zip(x.shape[2:], out.shape[2:]))
    cot[(Ellipsis, *keep)] = x[(Ellipsis, *keep)]
    # one compiled computation (op by op, each primitive would compile on its own)
    got = np.asarray(jax.jit(lambda y, cot: jax.vjp(conv, y)[1](cot)[0])(y, jnp.asarray(cot)))
    if b is not None:
        got = got + b.reshape((-1,) + (1,) * rank)
    return got


# every (mode, padding form) pair once, half in 1-d and half in 2-d (rotated by mode), and one 3-d per mode
CASES = [(1 + (FORMS.index(form) + MODES.index(mode)) % 2, mode, form, 0) for mode in MODES for form in FORMS]
CASES += [(3, mode, form, 0) for mode, form in zip(MODES, ("pairs", "same", "per-dim", "int"))]


@pytest.mark.parametrize("rank,mode,form,seed", CASES)
def test_matches_tconv_numpy_the_jax_adjoint_and_backward(rank, mode, form, seed):
    """Output vs tconv's NumPy and vs the vjp of JAX's own padded convolution; gradients (vjp) vs
    tconv's conv_transpose_backward."""
    rng = np.random.default_rng([rank, MODES.index(mode), FORMS.index(form), seed])
    for _ in range(20):  # the first configuration tconv accepts (circular/reflect limit the padding)
        cfg = _config(rng, rank, mode, form)
        x, w, b, kwargs = _arrays(rng, cfg)
        try:
            want = tconv.conv_transpose(x, w, b, **kwargs)
        except ValueError as error:  # the bridge checks with the same spec and says the same
            with pytest.raises(ValueError, match=str(error).split(":")[0]):
                tj.conv_transpose(_f32(x), _f32(w), _f32(b), **kwargs)
            continue
        g = rng.standard_normal(want.shape)

        call = functools.partial(tj.conv_transpose, **kwargs)

        @jax.jit  # the call and its vjp as one compiled computation (jit vs eager: test_jit_equals_eager)
        def forward_and_vjp(x, w, b, g, call=call):
            y, vjp = jax.vjp(call, x, w, b)
            return y, vjp(g)

        got, grads = forward_and_vjp(_f32(x), _f32(w), _f32(b), _f32(g))
        assert got.shape == want.shape and got.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)

        pairs = spec_of("test", x.shape, w.shape, None, kwargs["stride"], kwargs["padding"],
                        kwargs["output_padding"], kwargs["groups"], kwargs["dilation"], None, mode).pads
        adjoint = adjoint_of_jax_conv(x, w, b, kwargs, pairs, want.shape)
        np.testing.assert_allclose(np.asarray(got), np.asarray(adjoint), rtol=1e-4, atol=1e-4)

        ref = tconv.conv_transpose_backward(g, x, w, **kwargs)
        n = 3 if b is not None else 2  # without a bias, jax's vjp has no bias gradient
        for name, grad, r in zip(("input", "weight", "bias")[:n], grads[:n], ref[:n]):
            np.testing.assert_allclose(np.asarray(grad), r, rtol=1e-4, atol=2e-3, err_msg=name)
        return
    pytest.fail("no valid configuration drawn")


@pytest.mark.parametrize("mode", MODES)
def test_output_size_chooses_output_padding(mode):
    rng = np.random.default_rng(MODES.index(mode))
    x, w = rng.standard_normal((2, 2, 4, 5)), rng.standard_normal((2, 3, 3, 3))
    kw = dict(stride=(3, 2), padding=1, padding_mode=mode)
    for size in [(10, 9), (12, 10), (1, 3, 11, 10)]:  # spatial sizes, or a full shape as torch takes
        got = tj.conv_transpose(_f32(x), _f32(w), output_size=size, **kw)
        want = tconv.conv_transpose(x, w, output_size=size[-2:], **kw)
        assert got.shape[2:] == tuple(size[-2:])
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=re.escape("valid sizes range from (10, 9) to (12, 10)")):
        tj.conv_transpose(_f32(x), _f32(w), output_size=(13, 9), **kw)


JIT_GRAD = [
    (1, "circular", dict(stride=2, padding=((1, 2),), output_padding=1, groups=2, dilation=1)),
    (2, "reflect", dict(stride=(2, 1), padding="same", groups=1, dilation=(1, 2))),
    (2, "replicate", dict(stride=3, padding=(1, 2), output_padding=(2, 0), groups=2, dilation=1)),
    (2, "zeros", dict(stride=2, padding=((0, 1), (2, 1)), groups=1, dilation=2)),
]


def _jit_case(rank, mode, kwargs):
    rng = np.random.default_rng(rank + len(mode))
    x = rng.standard_normal((2, 4) + (5,) * rank)
    w = rng.standard_normal((4, 3) + (3,) * rank)
    b = rng.standard_normal(3 * kwargs["groups"])
    return x, w, b, dict(kwargs, padding_mode=mode)


@pytest.mark.parametrize("rank,mode,kwargs", JIT_GRAD)
def test_jit_equals_eager(rank, mode, kwargs):
    """jax.jit of the call vs the call run op by op (jax.disable_jit: the bridge's own jit off too)."""
    x, w, b, kw = _jit_case(rank, mode, kwargs)
    with jax.disable_jit():
        eager = tj.conv_transpose(_f32(x), _f32(w), _f32(b), **kw)
    jitted = jax.jit(lambda x, w, b: tj.conv_transpose(x, w, b, **kw))(_f32(x), _f32(w), _f32(b))
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-5, atol=1e-5)


def test_grad_under_jit():
    x, w, b, kw = _jit_case(*JIT_GRAD[0])
    loss = jax.jit(jax.grad(lambda w: tj.conv_transpose(_f32(x), w, None, **kw).sum()))
    gw = loss(_f32(w))
    want = tconv.conv_transpose_backward(np.ones(tconv.conv_transpose(x, w, **kw).shape), x, w, **kw)[1]
    np.testing.assert_allclose(np.asarray(gw), want, rtol=1e-4, atol=1e-3)


def test_unbatched_in_unbatched_out():
    x, w, b, kw = _jit_case(*JIT_GRAD[2])
    got = tj.conv_transpose(_f32(x[0]), _f32(w), _f32(b), **kw)
    np.testing.assert_allclose(np.asarray(got), tconv.conv_transpose(x[0], w, b, **kw), rtol=1e-4, atol=1e-4)


def test_vmap_over_unbatched_inputs():
    x, w, b, kw = _jit_case(*JIT_GRAD[1])
    mapped = jax.vmap(lambda xi: tj.conv_transpose(xi, _f32(w), _f32(b), **kw))(_f32(x))
    np.testing.assert_allclose(np.asarray(mapped), tconv.conv_transpose(x, w, b, **kw),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_fold_matches_numpy_fold_in_every_rank(mode):
    """The jnp fold (one piece per centre/strip choice in every dimension) vs tconv's NumPy fold."""
    from tconv.core.padding import fold as numpy_fold

    rng = np.random.default_rng(MODES.index(mode))
    for rank in (1, 2, 3):
        for _ in range(2):
            sizes = tuple(int(v) for v in rng.integers(2, 6, rank))
            widest = {"circular": lambda n: n, "reflect": lambda n: n - 1}.get(mode, lambda n: 3)
            pads = tuple((int(rng.integers(0, widest(n) + 1)), int(rng.integers(0, widest(n) + 1)))
                         for n in sizes)
            z = rng.standard_normal((2,) + tuple(n + b + a for n, (b, a) in zip(sizes, pads)))
            got = jax.jit(lambda z, pads=pads: tj.fold(z, pads, mode))(_f32(z))
            np.testing.assert_allclose(np.asarray(got), numpy_fold(z, pads, mode), rtol=1e-5, atol=1e-5,
                                       err_msg=str(pads))


def test_fold_and_errors():
    np.testing.assert_allclose(np.asarray(tj.fold(jnp.arange(1.0, 7.0), ((2, 1),), "reflect")),
                               [3.0, 12.0, 6.0])
    with pytest.raises(ValueError, match="padding_mode"):
        tj.conv_transpose(jnp.ones((1, 1, 3)), jnp.ones((1, 1, 3)), padding_mode="mirror")
    with pytest.raises(ValueError, match="weight"):
        tj.conv_transpose(jnp.ones((1, 1, 3)), jnp.ones((1, 3)))


def test_the_readme_example_runs(capsys):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = text.index("## Use it in PyTorch / JAX\n")
    section = text[start:text.index("\n## ", start + 1)]
    blocks = re.findall(r"```py\n(.*?)```", section, re.S)  # the torch example is ```python
    (example,) = [b for b in blocks if "from tconv.jax import conv_transpose" in b]
    exec(compile(example, "README.md", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == "(2, 2, 32, 32) (4, 2, 4, 4) (2, 2, 33, 32)\n"
