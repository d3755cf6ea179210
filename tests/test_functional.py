"""conv_transpose, conv and their gradients against PyTorch 2.13 (and ONNX Runtime where PyTorch stops)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from oracle import (
    brute_conv_transpose,
    onnx_conv_transpose,
    torch_backward,
    torch_conv_mode,
    torch_conv_transpose,
    torch_conv_transpose_pairs,
    torch_transposed_mode,
)
from strategies import configs

import tconv

TOL = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-9, atol=1e-9)}
MODES = ["circular", "reflect", "replicate"]


@given(cfg=configs(), dtype=st.sampled_from([np.float32, np.float64]),
       algorithm=st.sampled_from(tconv.ALGORITHMS))
def test_conv_transpose_matches_torch(cfg, dtype, algorithm):
    x, w, b = cfg.arrays(dtype)
    expected = torch_conv_transpose(x, w, b, *cfg.args())
    y = tconv.conv_transpose(x, w, b, *cfg.args(), algorithm=algorithm)
    assert y.shape == expected.shape
    assert y.dtype == dtype
    np.testing.assert_allclose(y, expected, **TOL[dtype])


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_ranked_functions_match_torch(rank, rng):
    x = rng.standard_normal((2, 4, *(3,) * rank))
    w = rng.standard_normal((4, 3, *(2,) * rank))
    ct = getattr(tconv, f"conv_transpose{rank}d")
    np.testing.assert_allclose(ct(x, w, None, 2, 1, 1, 2 // 2, 1),
                               torch_conv_transpose(x, w, None, 2, 1, 1, 1, 1), rtol=1e-10)
    c = getattr(tconv, f"conv{rank}d")
    wc = rng.standard_normal((3, 4, *(2,) * rank))
    np.testing.assert_allclose(
        c(x, wc, None, 1, 1), getattr(torch.nn.functional, f"conv{rank}d")(
            torch.tensor(x), torch.tensor(wc), None, 1, 1).numpy(), rtol=1e-10)


def test_brute_force_definition(rng):
    """The definition itself, element by element, on asymmetric padding and output_padding."""
    x = rng.standard_normal((2, 4, 3, 2))
    w = rng.standard_normal((4, 3, 3, 2))
    pairs = ((1, 2), (0, 1))
    for algorithm in tconv.ALGORITHMS:
        y = tconv.conv_transpose(x, w, None, (2, 3), pairs, (1, 2), 2, (1, 2), algorithm=algorithm)
        np.testing.assert_allclose(
            y, brute_conv_transpose(x, w, (2, 3), pairs, (1, 2), (1, 2), 2), rtol=1e-12)


@given(cfg=configs(ranks=(1, 2, 3), max_padding=0), data=st.data())
def test_asymmetric_padding_matches_torch_crop(cfg, data):
    full = cfg.out_size
    pairs = tuple(
        (data.draw(st.integers(0, f - 1)), 0) for f in full
    )
    pairs = tuple((b, data.draw(st.integers(0, f - b - 1))) for (b, _), f in zip(pairs, full))
    x, w, b = cfg.arrays()
    expected = torch_conv_transpose_pairs(x, w, b, cfg.stride, pairs, cfg.output_padding,
                                          cfg.groups, cfg.dilation)
    for algorithm in tconv.ALGORITHMS:
        y = tconv.conv_transpose(x, w, b, cfg.stride, pairs, cfg.output_padding, cfg.groups,
                                 cfg.dilation, algorithm=algorithm)
        np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-9)


@given(cfg=configs(ranks=(1, 2), output_padding_below_stride=True))
def test_asymmetric_padding_matches_onnxruntime(cfg):
    pairs = tuple((p, p // 2) for p in cfg.padding)
    out = tuple(o + p - p // 2 for o, p in zip(cfg.out_size, cfg.padding))
    x, w, b = cfg.arrays(np.float32)
    expected = onnx_conv_transpose(x, w, b, cfg.stride, pairs, cfg.output_padding, cfg.groups,
                                   cfg.dilation)
    y = tconv.conv_transpose(x, w, b, cfg.stride, pairs, cfg.output_padding, cfg.groups,
                             cfg.dilation)
    assert y.shape[2:] == out == expected.shape[2:]
    np.testing.assert_allclose(y, expected, **TOL[np.float32])


@given(cfg=configs(ranks=(1, 2)))
def test_same_padding_matches_onnxruntime_same_upper(cfg):
    # Where the dilated kernel is shorter than the stride, ONNX Runtime 1.32 returns fewer than
    # in*stride pixels (its total padding goes negative); that case is checked by definition below.
    assume(all(d * (k - 1) + 1 >= s for k, s, d in zip(cfg.kernel, cfg.stride, cfg.dilation)))
    x, w, b = cfg.arrays(np.float32)
    expected = onnx_conv_transpose(x, w, b, cfg.stride, group=cfg.groups, dilations=cfg.dilation,
                                   auto_pad="SAME_UPPER")
    for algorithm in tconv.ALGORITHMS:
        y = tconv.conv_transpose(x, w, b, cfg.stride, "same", 0, cfg.groups, cfg.dilation,
                                 algorithm=algorithm)
        assert y.shape[2:] == tuple(n * s for n, s in zip(cfg.size, cfg.stride))
        np.testing.assert_allclose(y, expected, **TOL[np.float32])


def test_same_padding_with_kernel_shorter_than_stride_pads_the_end(rng):
    x, w = rng.standard_normal((1, 2, 3)), rng.standard_normal((2, 1, 2))
    y = tconv.conv_transpose(x, w, np.array([0.5]), stride=3, padding="same")
    full = torch_conv_transpose(x, w, None, 3, 0, 0, 1, 1)  # (3-1)*3 + 2 = 8 pixels
    assert y.shape == (1, 1, 9)
    np.testing.assert_allclose(y[..., :8], full + 0.5, rtol=1e-12)
    np.testing.assert_allclose(y[..., 8], 0.5)


@given(cfg=configs())
def test_valid_is_zero_padding(cfg):
    x, w, b = cfg.arrays()
    args = (cfg.stride, 0, cfg.output_padding, cfg.groups, cfg.dilation)
    np.testing.assert_array_equal(
        tconv.conv_transpose(x, w, b, cfg.stride, "valid", cfg.output_padding, cfg.groups,
                             cfg.dilation),
        tconv.conv_transpose(x, w, b, *args))


@given(cfg=configs(), data=st.data())
def test_output_size_matches_torch_layer(cfg, data):
    x, w, b = cfg.arrays()
    lo = tuple(L - o for L, o in zip(cfg.out_size, cfg.output_padding))
    assume(all(low + s - 1 >= 1 for low, s in zip(lo, cfg.stride)))
    size = tuple(data.draw(st.integers(max(low, 1), low + s - 1)) for low, s in zip(lo, cfg.stride))
    layer = getattr(torch.nn, f"ConvTranspose{cfg.rank}d")(
        cfg.c_in, cfg.c_out, cfg.kernel, cfg.stride, cfg.padding, 0, cfg.groups, True,
        cfg.dilation).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(w))
        layer.bias.copy_(torch.tensor(b))
        expected = layer(torch.tensor(x), output_size=list(size)).numpy()
    full_shape = (cfg.batch, cfg.c_out, *size)
    for request in (size, full_shape):
        y = tconv.conv_transpose(x, w, b, cfg.stride, cfg.padding, 0, cfg.groups, cfg.dilation,
                                 output_size=request)
        np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-9)


@given(cfg=configs(), dtype=st.sampled_from([np.float32, np.float64]))
def test_backward_matches_torch_autograd(cfg, dtype):
    x, w, b = cfg.arrays(dtype)
    grad = np.random.default_rng(cfg.seed + 1).standard_normal(
        (cfg.batch, cfg.c_out, *cfg.out_size)).astype(dtype)
    expected = torch_backward(x, w, b, grad, *cfg.args())
    got = tconv.conv_transpose_backward(grad, x, w, *cfg.args())
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.dtype == dtype
        np.testing.assert_allclose(g, e, **TOL[dtype])


def transposed_sizes(size, kernel, stride, pairs, dilation, output_padding) -> tuple:
    """The output size by the definition, written out here rather than taken from tconv."""
    return tuple((n - 1) * s - b - a + d * (k - 1) + o + 1 for n, k, s, (b, a), d, o in
                 zip(size, kernel, stride, pairs, dilation, output_padding))


def torch_pads(mode, pairs, large) -> bool:
    """Whether PyTorch's F.pad pads a tensor of spatial size ``large`` by ``pairs`` in ``mode``, as
    nn.ConvNd pads its input (it refuses a reflect border as wide as the size, a circular one wider)."""
    if mode == "zeros":
        return True
    flat = [v for pair in reversed(pairs) for v in pair]
    try:
        torch.nn.functional.pad(torch.zeros(1, 1, *large), flat, mode=mode)
    except RuntimeError:
        return False
    return True


def assert_refused(call, mode):
    """``call`` raises a ValueError naming the padding mode and the rule PyTorch enforces."""
    with pytest.raises(ValueError, match=rf"padding_mode='{mode}' needs padding (smaller|no larger) than"):
        call()


@given(cfg=configs(output_padding_below_stride=True), mode=st.sampled_from(["zeros", *MODES]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_conv_with_padding_modes_matches_torch(cfg, mode, dtype):
    """conv maps the large side (the transposed conv's output size) back to the small side."""
    large = cfg.out_size
    pairs = tuple((p, p) for p in cfg.padding)
    rng = np.random.default_rng(cfg.seed)
    xl = rng.standard_normal((cfg.batch, cfg.c_out, *large)).astype(dtype)
    w = rng.standard_normal((cfg.c_in, cfg.c_out // cfg.groups, *cfg.kernel)).astype(dtype)
    b = rng.standard_normal(cfg.c_in).astype(dtype)
    if not torch_pads(mode, pairs, large):  # PyTorch refuses: so must tconv, naming the rule
        assert_refused(lambda: tconv.conv(xl, w, b, cfg.stride, cfg.padding, cfg.dilation, cfg.groups,
                                          padding_mode=mode), mode)
        return
    expected = torch_conv_mode(xl, w, b, cfg.stride, pairs, cfg.dilation, cfg.groups, mode).numpy()
    y = tconv.conv(xl, w, b, cfg.stride, cfg.padding, cfg.dilation, cfg.groups, padding_mode=mode)
    assert y.shape == expected.shape == (cfg.batch, cfg.c_in, *cfg.size)
    np.testing.assert_allclose(y, expected, **TOL[dtype])
    # and its gradients
    g = rng.standard_normal(y.shape).astype(dtype)
    xt, wt = torch.tensor(xl, requires_grad=True), torch.tensor(w, requires_grad=True)
    torch_conv_mode(xt, wt, None, cfg.stride, pairs, cfg.dilation, cfg.groups, mode).backward(
        torch.tensor(g))
    gi, gw, gb = tconv.conv_backward(g, xl, w, cfg.stride, cfg.padding, cfg.dilation, cfg.groups,
                                     padding_mode=mode)
    np.testing.assert_allclose(gi, xt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(gw, wt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(gb, g.sum(axis=(0, *range(2, g.ndim))), **TOL[dtype])


@given(cfg=configs(output_padding_below_stride=True), mode=st.sampled_from(MODES),
       algorithm=st.sampled_from(tconv.ALGORITHMS))
def test_transposed_padding_modes_are_torch_adjoints(cfg, mode, algorithm):
    """PyTorch refuses these modes; the oracle is the autograd transpose of PyTorch's padded conv."""
    large = cfg.out_size
    pairs = tuple((p, p) for p in cfg.padding)
    x, w, _ = cfg.arrays()
    if not torch_pads(mode, pairs, large):  # PyTorch's padded conv refuses: so must tconv, both ways
        assert_refused(lambda: tconv.conv_transpose(x, w, None, *cfg.args(), padding_mode=mode,
                                                    algorithm=algorithm), mode)
        assert_refused(lambda: tconv.conv_transpose_backward(np.ones((cfg.batch, cfg.c_out, *large)),
                                                             x, w, *cfg.args(), padding_mode=mode), mode)
        return
    grad = np.random.default_rng(cfg.seed + 1).standard_normal((cfg.batch, cfg.c_out, *large))
    expected, gx, gw = torch_transposed_mode(x, w, cfg.stride, pairs, cfg.dilation, cfg.groups,
                                             mode, large, grad=grad)
    y = tconv.conv_transpose(x, w, None, *cfg.args(), padding_mode=mode, algorithm=algorithm)
    np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-9)
    got = tconv.conv_transpose_backward(grad, x, w, *cfg.args(), padding_mode=mode)
    np.testing.assert_allclose(got[0], gx, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got[1], gw, rtol=1e-9, atol=1e-9)


@given(cfg=configs(), mode=st.sampled_from(["zeros", *MODES]),
       asym=st.booleans(), same=st.booleans())
def test_adjoint_identity(cfg, mode, asym, same):
    """<conv(x), y> == <x, conv_transpose(y)> for every padding mode, padding form and algorithm."""
    if same:  # TF/ONNX SAME_UPPER: output in*stride, total padding max(d*(k-1)+1 - s, 0), odd at the end
        padding = "same"
        output_padding = 0
        totals = (max(d * (k - 1) + 1 - s, 0) for k, s, d in zip(cfg.kernel, cfg.stride, cfg.dilation))
        pairs = tuple((t // 2, t - t // 2) for t in totals)
        large = tuple(n * s for n, s in zip(cfg.size, cfg.stride))
    else:
        padding = tuple((p, p // 2) if asym else p for p in cfg.padding)
        output_padding = cfg.output_padding
        pairs = tuple((p, p // 2) if asym else (p, p) for p in cfg.padding)
        large = transposed_sizes(cfg.size, cfg.kernel, cfg.stride, pairs, cfg.dilation, output_padding)
    x, w, _ = cfg.arrays()
    assert min(large) >= 1  # configs() draws positive symmetric outputs; asym and same pad less
    if not torch_pads(mode, pairs, large):
        assert_refused(lambda: tconv.conv_transpose(x, w, None, cfg.stride, padding, output_padding,
                                                    cfg.groups, cfg.dilation, padding_mode=mode), mode)
        return
    y_big = tconv.conv_transpose(x, w, None, cfg.stride, padding, output_padding, cfg.groups,
                                 cfg.dilation, padding_mode=mode)
    assert y_big.shape == (cfg.batch, cfg.c_out, *large)
    probe = np.random.default_rng(cfg.seed + 7).standard_normal(y_big.shape)
    small = tconv.conv(probe, w, None, cfg.stride, padding if not same else "same", cfg.dilation,
                       cfg.groups, padding_mode=mode)
    if small.shape != x.shape:  # output_padding >= stride (allowed by dilation) leaves a tail
        small = small[(Ellipsis, *(slice(0, n) for n in cfg.size))]
    np.testing.assert_allclose(np.vdot(small, x), np.vdot(probe, y_big), rtol=1e-9, atol=1e-9)
    for algorithm in tconv.ALGORITHMS:
        np.testing.assert_allclose(
            tconv.conv_transpose(x, w, None, cfg.stride, padding, output_padding, cfg.groups,
                                 cfg.dilation, padding_mode=mode, algorithm=algorithm),
            y_big, rtol=1e-9, atol=1e-9)


@given(cfg=configs())
def test_odd_arrays_just_work_and_are_not_modified(cfg):
    x, w, b = cfg.arrays()
    expected = torch_conv_transpose(x, w, b, *cfg.args())
    layouts = {
        "unbatched": lambda a: a,
        "fortran": np.asfortranarray,
        "strided": lambda a: np.repeat(a, 2, axis=-1)[..., ::2],
        "readonly": lambda a: _readonly(a.copy()),
        "list": lambda a: a.tolist(),
    }
    for name, make in layouts.items():
        xs, ws, bs = make(x), make(w), make(b)
        before = [np.array(a, copy=True) for a in (xs, ws, bs)]
        if name == "unbatched":
            for i in range(cfg.batch):
                np.testing.assert_allclose(tconv.conv_transpose(xs[i], ws, bs, *cfg.args()),
                                           expected[i], rtol=1e-9, atol=1e-9)
        else:
            np.testing.assert_allclose(tconv.conv_transpose(xs, ws, bs, *cfg.args()), expected,
                                       rtol=1e-9, atol=1e-9)
            g = np.ones(expected.shape)
            tconv.conv_transpose_backward(g, xs, ws, *cfg.args())
        for a, a0 in zip((xs, ws, bs), before):
            np.testing.assert_array_equal(np.asarray(a), a0)


def _readonly(a):
    a.flags.writeable = False
    return a


def test_unbatched_backward_shapes(rng):
    x, w = rng.standard_normal((3, 4, 4)), rng.standard_normal((3, 2, 3, 3))
    g = rng.standard_normal((2, 9, 9))
    gi, gw, gb = tconv.conv_transpose_backward(g, x, w, stride=2)
    ei, ew, eb = torch_backward(x[None], w, np.zeros(2), g[None], 2, 0, 0, 1, 1)
    np.testing.assert_allclose(gi, ei[0], rtol=1e-10)
    np.testing.assert_allclose(gw, ew, rtol=1e-10)
    np.testing.assert_allclose(gb, eb, rtol=1e-10)


@pytest.mark.parametrize("algorithm", tconv.ALGORITHMS)
def test_nan_in_one_sample_stays_there(algorithm, rng):
    x = rng.standard_normal((3, 2, 4, 4))
    x[1, 0, 2, 2] = np.nan
    x[1, 1, 0, 0] = np.inf
    w = rng.standard_normal((2, 3, 3, 3))
    y = tconv.conv_transpose(x, w, None, 2, 1, algorithm=algorithm)
    for i in (0, 2):
        assert np.isfinite(y[i]).all()
        np.testing.assert_allclose(y[i], tconv.conv_transpose(x[i], w, None, 2, 1), rtol=1e-12)
    assert np.isnan(y[1]).any()
    with np.errstate(invalid="ignore"):  # the weight's gradient sums every sample: NaN, rightly
        gi, gw, gb = tconv.conv_transpose_backward(np.ones_like(y), x, w, 2, 1)
    assert np.isfinite(gi[0]).all() and np.isfinite(gi[2]).all()


def test_empty_batch(rng):
    w = rng.standard_normal((2, 3, 3))
    y = tconv.conv_transpose(np.zeros((0, 2, 5)), w, stride=2)
    expected = torch_conv_transpose(np.zeros((0, 2, 5)), w, None, 2, 0, 0, 1, 1)
    assert y.shape == expected.shape == (0, 3, 11)


@pytest.mark.parametrize(
    "x_dtype, w_dtype, expected",
    [
        (np.float32, np.float32, np.float32),
        (np.float64, np.float64, np.float64),
        (np.float32, np.float64, np.float64),
        (np.int64, np.int64, np.float64),
        (np.int32, np.float32, np.float64),
        (np.bool_, np.float32, np.float32),
        (np.uint8, np.uint8, np.float64),
    ],
)
def test_dtypes(x_dtype, w_dtype, expected):
    x = np.arange(8).reshape(1, 2, 4).astype(x_dtype)
    w = np.arange(12).reshape(2, 3, 2).astype(w_dtype)
    for fn in (tconv.conv_transpose, tconv.conv):
        ww = w if fn is tconv.conv_transpose else w.reshape(3, 2, 2)
        y = fn(x, ww)
        assert y.dtype == expected
    y = tconv.conv_transpose(x, w)
    ref = torch_conv_transpose(x.astype(np.float64), w.astype(np.float64), None, 1, 0, 0, 1, 1)
    np.testing.assert_allclose(y, ref, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.complex64, object, "U1"])
def test_unsupported_dtypes_are_type_errors(dtype):
    x = np.ones((1, 1, 3)).astype(dtype)
    with pytest.raises(TypeError, match="input must have dtype float32 or float64"):
        tconv.conv_transpose(x, np.ones((1, 1, 2)))
    with pytest.raises(TypeError, match="weight must have dtype"):
        tconv.conv(np.ones((1, 1, 3)), np.ones((1, 1, 2)).astype(dtype))


def test_torch_tensors_are_accepted(rng):
    x, w = rng.standard_normal((1, 2, 3, 3)), rng.standard_normal((2, 2, 2, 2))
    np.testing.assert_array_equal(tconv.conv_transpose(torch.tensor(x), torch.tensor(w)),
                                  tconv.conv_transpose(x, w))


def test_a_repeated_geometry_reuses_its_spec_and_still_refuses_what_it_refused():
    """conv_transpose remembers the checked spec per geometry (shapes, dtypes, arguments): a layer's
    every call on one input shape skips the checks. Arguments equal to a remembered call's but of
    another type (2.0 for 2, True for 1, a list for a tuple) are checked afresh, and refused as before;
    a refusal is never remembered."""
    from tconv.core import spec as spec_module

    spec_module._remembered_transposed_spec.cache_clear()
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 6))
    w = np.random.default_rng(1).standard_normal((4, 3, 3, 3))
    first = tconv.conv_transpose(x, w, None, 2, 1, 1)
    again = tconv.conv_transpose(x.copy(), w.copy(), None, 2, 1, 1)
    np.testing.assert_array_equal(first, again)
    info = spec_module._remembered_transposed_spec.cache_info()
    assert (info.hits, info.misses) == (1, 1)
    with pytest.raises(TypeError, match="stride must be an int"):
        tconv.conv_transpose(x, w, None, 2.0, 1, 1)
    with pytest.raises(TypeError, match="groups"):
        tconv.conv_transpose(x, w, None, 2, 1, 1, True)
    np.testing.assert_array_equal(tconv.conv_transpose(x, w, None, [2, 2], 1, 1), first)  # a list: afresh
    for _ in range(2):  # refused both times: nothing remembered
        with pytest.raises(ValueError, match="output_padding must be smaller"):
            tconv.conv_transpose(x, w, None, 2, 1, 2)
    # another dtype or shape is another geometry
    assert tconv.conv_transpose(x.astype(np.float32), w, None, 2, 1, 1).dtype == np.float64
    assert tconv.conv_transpose(x[:1], w, None, 2, 1, 1).shape == (1, 3, 10, 12)
    info = spec_module._remembered_transposed_spec.cache_info()
    # the two refusals were checked (missed) and not kept; 2.0, True and the list never reached it
    assert (info.hits, info.misses, info.currsize) == (1, 5, 3)
