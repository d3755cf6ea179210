"""Layers: PyTorch's constructors, repr, state_dict, initialisation, forward and backward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import tconv
from tconv.explainer.examples import EXAMPLES

NAMES = [f"{kind}{r}d" for kind in ("ConvTranspose", "Conv") for r in (1, 2, 3)]


@st.composite
def layer_args(draw):
    name = draw(st.sampled_from(NAMES))
    rank = int(name[-2])
    groups = draw(st.sampled_from([1, 2]))
    kw = dict(
        in_channels=groups * draw(st.integers(1, 3)),
        out_channels=groups * draw(st.integers(1, 3)),
        kernel_size=draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * rank))),
        stride=draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * rank))),
        padding=draw(st.one_of(st.integers(0, 2), st.tuples(*[st.integers(0, 2)] * rank))),
        dilation=draw(st.one_of(st.integers(1, 2), st.tuples(*[st.integers(1, 2)] * rank))),
        groups=groups,
        bias=draw(st.booleans()),
    )
    if name.startswith("ConvTranspose"):
        kw["output_padding"] = draw(st.integers(0, 1))
        stride = kw["stride"] if isinstance(kw["stride"], tuple) else (kw["stride"],) * rank
        dil = kw["dilation"] if isinstance(kw["dilation"], tuple) else (kw["dilation"],) * rank
        if any(kw["output_padding"] >= max(s, d) for s, d in zip(stride, dil)):
            kw["output_padding"] = 0
    else:
        kw["padding_mode"] = draw(st.sampled_from(["zeros", "circular", "reflect", "replicate"]))
    return name, rank, kw


def _pair(name, kw, dtype=torch.float64):
    """The same layer in tconv and in PyTorch, with PyTorch's parameters loaded into tconv's."""
    ours = getattr(tconv, name)(**kw, dtype=np.float64 if dtype == torch.float64 else None)
    theirs = getattr(torch.nn, name)(**kw, dtype=dtype)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


@given(args=layer_args())
def test_repr_is_pytorchs(args):
    name, _, kw = args
    assert repr(getattr(tconv, name)(**kw)) == repr(getattr(torch.nn, name)(**kw))


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.repr], ids=lambda e: e.name)
def test_repr_of_the_seed_layers(example):
    layer = tconv.ConvTranspose2d(1, 1, kernel_size=2, bias=False, **example.params)
    assert repr(layer) == example.repr


def test_repr_of_what_pytorch_cannot_build():
    assert repr(tconv.ConvTranspose2d(4, 8, 3, 2, padding="same", padding_mode="circular")) == (
        "ConvTranspose2d(4, 8, kernel_size=(3, 3), stride=(2, 2), padding=same, "
        "padding_mode=circular)")
    assert repr(tconv.ConvTranspose1d(4, 8, 4, 2, padding=((1, 2),), bias=False)) == (
        "ConvTranspose1d(4, 8, kernel_size=(4,), stride=(2,), padding=((1, 2),), bias=False)")


@given(args=layer_args(), data=st.data())
def test_forward_and_backward_match_pytorch_modules(args, data):
    name, rank, kw = args
    ours, theirs = _pair(name, kw)
    size = tuple(data.draw(st.integers(3, 5)) for _ in range(rank))
    batched = data.draw(st.booleans())
    shape = ((2,) if batched else ()) + (kw["in_channels"], *size)
    x = np.random.default_rng(0).standard_normal(shape)
    xt = torch.tensor(x, requires_grad=True)
    try:
        expected = theirs(xt)
    except RuntimeError:  # PyTorch refuses (output too small, a border too wide): so must tconv, saying why
        with pytest.raises(ValueError, match=r"output size .* must be positive|padding_mode='\w+' needs "
                           r"padding|padded input .* must be at least as large as the dilated kernel"):
            ours(x)
        return
    y = ours(x)
    np.testing.assert_allclose(y, expected.detach().numpy(), rtol=1e-9, atol=1e-9)
    g = np.random.default_rng(1).standard_normal(y.shape)
    expected.backward(torch.tensor(g))
    gi = ours.backward(g)
    np.testing.assert_allclose(gi, xt.grad.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours.grad_weight, theirs.weight.grad.numpy(), rtol=1e-9, atol=1e-9)
    if kw["bias"]:
        np.testing.assert_allclose(ours.grad_bias, theirs.bias.grad.numpy(), rtol=1e-9, atol=1e-9)
    else:
        assert ours.grad_bias is None


def test_output_size_and_backward_after_it():
    ours, theirs = _pair("ConvTranspose2d", dict(in_channels=3, out_channels=2, kernel_size=3,
                                                 stride=2, padding=1))
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 5))
    xt = torch.tensor(x, requires_grad=True)
    expected = theirs(xt, output_size=[8, 10])
    y = ours(x, output_size=(8, 10))
    assert y.shape == (1, 2, 8, 10)
    np.testing.assert_allclose(y, expected.detach().numpy(), rtol=1e-10)
    expected.backward(torch.ones_like(expected))
    np.testing.assert_allclose(ours.backward(np.ones(y.shape)), xt.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours.grad_weight, theirs.weight.grad.numpy(), rtol=1e-10)


def test_gradients_accumulate_until_zero_grad():
    layer = tconv.ConvTranspose1d(2, 2, 3, rng=0)
    x = np.ones((1, 2, 4))
    layer(x)
    layer.backward(np.ones((1, 2, 6)))
    once = layer.grad_weight.copy()
    layer(x)
    layer.backward(np.ones((1, 2, 6)))
    np.testing.assert_allclose(layer.grad_weight, 2 * once)
    np.testing.assert_allclose(layer.grad_bias, [12.0, 12.0])
    layer.zero_grad()
    assert layer.grad_weight is None and layer.grad_bias is None


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(ValueError, match="call the layer on an input first"):
        tconv.Conv2d(1, 1, 3).backward(np.ones((1, 1, 2, 2)))


@pytest.mark.parametrize("name", NAMES)
def test_initialisation_follows_pytorch(name):
    rank = int(name[-2])
    kw = dict(in_channels=16, out_channels=32, kernel_size=3, groups=2)
    layer = getattr(tconv, name)(**kw, rng=7)
    reference = getattr(torch.nn, name)(**kw)
    assert layer.weight.shape == tuple(reference.weight.shape)
    assert layer.bias.shape == tuple(reference.bias.shape)
    assert layer.weight.dtype == np.float32
    fan_in = layer.weight.shape[1] * 3**rank
    bound = 1 / np.sqrt(fan_in)
    for ours, theirs in ((layer.weight, reference.weight), (layer.bias, reference.bias)):
        assert np.abs(ours).max() <= bound
        assert np.abs(theirs.detach().numpy()).max() <= bound
    # uniform on [-bound, bound]: standard deviation bound/sqrt(3)
    assert abs(layer.weight.std() - bound / np.sqrt(3)) < 0.1 * bound
    np.testing.assert_array_equal(getattr(tconv, name)(**kw, rng=7).weight, layer.weight)
    assert not np.array_equal(getattr(tconv, name)(**kw, rng=8).weight, layer.weight)


def test_state_dict_keys_and_loading():
    layer = tconv.ConvTranspose2d(2, 4, 3)
    reference = torch.nn.ConvTranspose2d(2, 4, 3)
    assert list(layer.state_dict()) == list(reference.state_dict()) == ["weight", "bias"]
    assert list(tconv.Conv1d(1, 1, 1, bias=False).state_dict()) == ["weight"]
    layer.load_state_dict(reference.state_dict())
    np.testing.assert_array_equal(layer.weight, reference.weight.detach().numpy())
    source = {"weight": np.ones((2, 4, 3, 3)), "bias": np.zeros(4)}
    layer.load_state_dict(source)
    assert layer.weight.dtype == np.float32
    layer.weight[0, 0, 0, 0] = 5.0
    assert source["weight"][0, 0, 0, 0] == 1.0  # loading copies
    with pytest.raises(ValueError, match=r"missing keys \['bias'\], unexpected keys \['b'\]"):
        layer.load_state_dict({"weight": np.ones((2, 4, 3, 3)), "b": np.zeros(4)})
    with pytest.raises(ValueError, match=r"weight must have shape \(2, 4, 3, 3\), got \(4, 2, 3, 3\)"):
        layer.load_state_dict({"weight": np.ones((4, 2, 3, 3)), "bias": np.zeros(4)})


def _torch_state(state):
    return {k: torch.tensor(v, dtype=torch.float32) for k, v in state.items()}


# keys in an order where sorting would change them: PyTorch reports them in the order met
NOT_STRICT = {"z.extra": np.zeros(1), "weight": np.full((2, 4, 3, 3), 0.5), "a.extra": np.zeros(2)}


def test_load_state_dict_not_strict_loads_what_it_can_as_pytorch():
    """strict=False: missing keys leave their parameter alone, unexpected keys are ignored."""
    ours, theirs = tconv.ConvTranspose2d(2, 4, 3, rng=0), torch.nn.ConvTranspose2d(2, 4, 3)
    ours_bias, theirs_bias = ours.bias.copy(), theirs.bias.detach().clone()
    attributes = set(vars(ours))
    ours.load_state_dict(NOT_STRICT, strict=False)
    theirs.load_state_dict(_torch_state(NOT_STRICT), strict=False)
    np.testing.assert_array_equal(ours.weight, theirs.weight.detach().numpy())  # loaded: 0.5
    assert ours.weight.dtype == np.float32 and (ours.weight == 0.5).all()
    assert torch.equal(theirs.bias, theirs_bias)
    np.testing.assert_array_equal(ours.bias, ours_bias)  # missing: untouched
    assert set(vars(ours)) == attributes  # unexpected: ignored
    # a layer without bias given one: ignored, as PyTorch does
    ours_nb = tconv.ConvTranspose2d(2, 4, 3, bias=False)
    theirs_nb = torch.nn.ConvTranspose2d(2, 4, 3, bias=False)
    state = {"weight": np.ones((2, 4, 3, 3)), "bias": np.ones(4)}
    ours_nb.load_state_dict(state, strict=False)
    theirs_nb.load_state_dict(_torch_state(state), strict=False)
    assert ours_nb.bias is None and theirs_nb.bias is None and "bias" not in ours_nb.state_dict()
    np.testing.assert_array_equal(ours_nb.weight, theirs_nb.weight.detach().numpy())
    # strict=False forgives names, not shapes
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        theirs.load_state_dict({"weight": torch.ones(4, 2, 3, 3)}, strict=False)
    with pytest.raises(ValueError, match=r"weight must have shape \(2, 4, 3, 3\), got \(4, 2, 3, 3\)"):
        ours.load_state_dict({"weight": np.ones((4, 2, 3, 3))}, strict=False)
    # strict=True (the default) refuses the same mapping, loading nothing
    before = ours.weight.copy()
    with pytest.raises(ValueError, match=r"missing keys \['bias'\], unexpected keys"):
        ours.load_state_dict({**NOT_STRICT, "weight": np.ones((2, 4, 3, 3))})
    np.testing.assert_array_equal(ours.weight, before)


def test_load_state_dict_reports_the_keys_as_pytorch():
    ours, theirs = tconv.ConvTranspose2d(2, 4, 3), torch.nn.ConvTranspose2d(2, 4, 3)
    expected = theirs.load_state_dict(_torch_state(NOT_STRICT), strict=False)
    assert (expected.missing_keys, expected.unexpected_keys) == (["bias"], ["z.extra", "a.extra"])
    got = ours.load_state_dict(NOT_STRICT, strict=False)
    assert (got.missing_keys, got.unexpected_keys) == (expected.missing_keys, expected.unexpected_keys)
    assert tuple(got) == tuple(expected)
    matched = ours.load_state_dict(theirs.state_dict())  # strict: nothing to report
    assert (matched.missing_keys, matched.unexpected_keys) == ([], [])


def test_a_refused_load_changes_nothing():
    layer = tconv.ConvTranspose2d(2, 4, 3, rng=0)
    before = {k: v.copy() for k, v in layer.state_dict().items()}
    with pytest.raises(ValueError, match="bias must have shape \\(4,\\)"):
        layer.load_state_dict({"weight": np.zeros((2, 4, 3, 3)), "bias": np.zeros(5)})
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: tconv.ConvTranspose2d(3, 4, 3, groups=2), r"must both be divisible by groups"),
        (lambda: tconv.Conv2d(0, 4, 3), r"in_channels must be positive"),
        (lambda: tconv.Conv2d(2, 4, 0), r"kernel_size must be positive"),
        (lambda: tconv.ConvTranspose2d(2, 4, 3, stride=2, output_padding=2),
         r"output_padding must be smaller than either stride or dilation"),
        (lambda: tconv.Conv2d(2, 4, 3, padding_mode="mirror"), r"padding_mode must be one of"),
        (lambda: tconv.Conv2d(2, 4, 3, padding="full"), r"padding must be an int, a tuple"),
        (lambda: tconv.Conv2d(2, 4, 3, device="cuda"), r"device must be None or 'cpu'"),
    ],
)
def test_constructor_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_dtype_argument():
    assert tconv.Conv2d(1, 1, 2, dtype=np.float64).weight.dtype == np.float64
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        tconv.Conv2d(1, 1, 2, dtype=np.int32)


def _torch_layer_output(layer, x):
    m = torch.nn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                                 layer.padding, layer.output_padding, layer.groups, layer.bias is not None,
                                 layer.dilation).double()
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(np.asarray(layer.weight, np.float64)))
        if layer.bias is not None:
            m.bias.copy_(torch.from_numpy(np.asarray(layer.bias, np.float64)))
        return m(torch.from_numpy(x)).numpy()


def test_a_layer_plans_each_input_shape_once_and_replans_what_changed(monkeypatch):
    """The checks and the choice run once per input geometry; a changed attribute, weight or bias
    (a new object) is checked and planned afresh, and every output is PyTorch's."""
    from tconv.core import layers

    made = []
    real = layers.prepare
    monkeypatch.setattr(layers, "prepare", lambda *a: made.append(a[0]) or real(*a))
    layer = tconv.ConvTranspose2d(4, 6, 3, stride=2, padding=1, dtype=np.float64, rng=0)
    x, x2 = np.ones((2, 4, 5, 5)), np.ones((1, 4, 7, 6))
    for _ in range(3):
        np.testing.assert_allclose(layer(x), _torch_layer_output(layer, x), atol=1e-12)
    np.testing.assert_allclose(layer(x2), _torch_layer_output(layer, x2), atol=1e-12)
    assert len(made) == 2  # one plan per input shape
    layer.stride = (1, 2)  # a new attribute: checked and planned again
    np.testing.assert_allclose(layer(x), _torch_layer_output(layer, x), atol=1e-12)
    layer.weight = layer.weight * 2  # a new weight object
    np.testing.assert_allclose(layer(x), _torch_layer_output(layer, x), atol=1e-12)
    layer.bias = None
    np.testing.assert_allclose(layer(x), _torch_layer_output(layer, x), atol=1e-12)
    layer.weight *= 3  # in place: the plan holds, the packed forms are checked as ever
    np.testing.assert_allclose(layer(x), _torch_layer_output(layer, x), atol=1e-12)
    assert len(made) == 5
    layer.stride = 2.0  # refused as on a first call, though it equals the planned 2
    with pytest.raises(TypeError, match="stride"):
        layer(x)


def _slow_gemm_against_subpixel(monkeypatch, seconds):
    """auto's contenders made ``gemm`` (first, auto's pick), slowed by ``seconds`` a call, and
    ``subpixel``; returns the slowed ``gemm``."""
    import time

    from tconv.engine import algorithms

    slow_gemm = algorithms.TRANSPOSED["gemm"]

    def gemm(*args, **kwargs):
        time.sleep(seconds)
        return slow_gemm(*args, **kwargs)

    gemm.packs_weight = True  # type: ignore[attr-defined]
    monkeypatch.setitem(algorithms.TRANSPOSED, "gemm", gemm)
    monkeypatch.setattr(algorithms, "contenders", lambda spec: ("gemm", "subpixel"))
    monkeypatch.setattr(algorithms, "variants", lambda spec, names: ())
    return gemm


def test_a_layer_times_gemm_shared_among_workers_beside_gemm(monkeypatch):
    """Under PARALLEL_MIN_WORK a layer also times ``gemm`` with its work shared among the workers
    (algorithms.variants), and keeps it when it is the faster."""
    import time

    from tconv.engine import algorithms, fast

    slow_gemm = algorithms.TRANSPOSED["gemm"]

    def gemm(*args, **kwargs):
        time.sleep(0.02)
        return slow_gemm(*args, **kwargs)

    gemm.packs_weight = True  # type: ignore[attr-defined]
    monkeypatch.setitem(algorithms.TRANSPOSED, "gemm", gemm)
    monkeypatch.setattr(algorithms, "contenders", lambda spec: ("gemm",))
    layer = tconv.ConvTranspose2d(8, 8, 4, stride=2, padding=1, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 8, 6, 6))
    with tconv.num_threads(2):
        for _ in range(2):
            np.testing.assert_allclose(layer(x), _torch_layer_output(layer, x), atol=1e-12)
    (_, _, plan), = layer._plans.values()
    assert plan.run is fast.gemm_shared


def test_a_layer_keeps_the_fastest_contender_it_measured(monkeypatch):
    """On its first call of a geometry a layer times auto's contenders and keeps the fastest; the
    other contenders' packed forms are dropped."""
    from tconv.core import layers
    from tconv.engine import algorithms

    _slow_gemm_against_subpixel(monkeypatch, 0.05)
    layer = tconv.ConvTranspose2d(8, 8, 4, stride=2, padding=1, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 8, 6, 6))
    for _ in range(3):
        np.testing.assert_allclose(layer(x), _torch_layer_output(layer, x), atol=1e-12)
    (_, _, plan), = layer._plans.values()
    assert plan.run.__name__ == "subpixel"
    assert all(key[0] == "subpixel" for key in layer._packed._forms)  # only the winner's forms
    monkeypatch.setattr(layers, "MEASURED_CHOICE", False)
    layer.weight = layer.weight.copy()  # planned afresh, measuring nothing: auto's pick
    layer(x)
    (_, _, plan), = layer._plans.values()
    assert plan.run is algorithms.TRANSPOSED[algorithms.choose(plan.run_spec)]


def test_a_layer_keeps_auto_s_pick_unless_another_is_clearly_faster(monkeypatch):
    """Within MEASURED_MARGIN of the fastest, auto's pick (the first contender) stays."""
    from tconv.core import layers

    gemm = _slow_gemm_against_subpixel(monkeypatch, 0.02)
    monkeypatch.setattr(layers, "MEASURED_MARGIN", 1000.0)
    layer = tconv.ConvTranspose2d(8, 8, 4, stride=2, padding=1, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 8, 6, 6))
    np.testing.assert_allclose(layer(x), _torch_layer_output(layer, x), atol=1e-12)
    (_, _, plan), = layer._plans.values()
    assert plan.run is gemm
