"""Prepacked weights (tconv.engine.packing): a layer reorders its weight once and repacks exactly when
the weight changes (assignment, load_state_dict, in place); the functional API keeps nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tconv
from tconv.bench import peak_extra_memory
from tconv.engine import algorithms, fast, phase, subpixel
from tconv.engine.packing import WeightCache, packed, takes_cache


@pytest.fixture
def made(monkeypatch):
    """The keys of the forms packed (``make`` called) while the test runs, in order."""
    keys = []
    get = WeightCache.get

    def counting(self, key, make):
        def make_and_count():
            keys.append(key)
            return make()

        return get(self, key, make_and_count)

    monkeypatch.setattr(WeightCache, "get", counting)
    return keys


def _torch(x, layer):
    return torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x), torch.from_numpy(layer.weight.astype(x.dtype)),
        torch.from_numpy(layer.bias.astype(x.dtype)), layer.stride, layer.padding,
        layer.output_padding, layer.groups, layer.dilation).numpy()


def _functional(x, layer, algorithm):
    return tconv.conv_transpose(x, layer.weight, layer.bias, layer.stride, layer.padding,
                                layer.output_padding, layer.groups, layer.dilation, algorithm=algorithm)


# --------------------------------------------------------------------------- WeightCache


def test_a_form_is_made_once_and_kept_read_only():
    w = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    cache, calls = WeightCache(), []

    def make():
        calls.append(1)
        return np.ascontiguousarray(w.transpose(2, 0, 1))

    for _ in range(3):
        cache.bind(w)
        form = cache.get("t", make)
    assert len(calls) == 1 and len(cache) == 1
    assert not form.flags.writeable
    np.testing.assert_array_equal(form, w.transpose(2, 0, 1))
    assert packed(None, "t", make) is not form and len(calls) == 2  # no cache: made every time


@pytest.mark.parametrize("change", [
    "in_place", "other_object_same_bytes", "reshaped_view", "other_dtype", "clear"])
def test_bind_drops_the_forms_when_the_weight_may_differ(change):
    w = np.ones((4, 6), np.float32)
    cache = WeightCache()
    cache.bind(w)
    cache.get("k", lambda: w.T.copy())
    if change == "in_place":
        w[1, 2] = 7
    elif change == "other_object_same_bytes":
        w = w.copy()
    elif change == "reshaped_view":
        w = w.reshape(6, 4)
    elif change == "other_dtype":
        w = w.astype(np.float64)
    else:
        cache.clear()
    cache.bind(w)
    assert len(cache) == 0
    cache.bind(w)  # the same weight again: nothing to drop
    cache.get("k", lambda: w.T.copy())
    cache.bind(w)
    assert len(cache) == 1


def test_only_the_packing_algorithms_take_a_cache():
    packing = {name for name, f in algorithms.TRANSPOSED.items() if takes_cache(f)}
    assert packing == {"gemm", "phase", "subpixel"}


# --------------------------------------------------------------------------- layers

#: (constructor arguments, input shape, algorithm forced, threads): each reorders its weight
CASES = {
    "gemm_channels_last": ((64, 64, 4, 2), (2, 64, 4, 4), "gemm", 1),
    # one sample, 2^24 multiply-adds, two threads: the workers split the channels, a form per range
    "gemm_split_channels": ((512, 512, 4, 2), (1, 512, 2, 2), "gemm", 2),
    "phase_rows": ((4, 32, 4, 2), (2, 4, 8, 8), "phase", 1),
    "phase_channels_last": ((32, 16, 4, 2), (2, 32, 5, 5), "phase", 2),
    "subpixel": ((16, 8, 4, 2), (2, 16, 6, 6), "subpixel", 2),
}


def _case(name, monkeypatch):
    (c_in, c_out, k, s), shape, algorithm, threads = CASES[name]
    monkeypatch.setattr(algorithms, "choose", lambda spec: algorithm)  # what the layer's auto runs
    monkeypatch.setattr(tconv.core.layers, "MEASURED_CHOICE", False)  # and nothing else
    # gemm reorders even a weight that outweighs the activations (else it multiplies it as it lies)
    monkeypatch.setattr(fast, "WEIGHT_DOMINATES", 10**9)
    monkeypatch.setattr(fast, "AS_IT_LIES_BYTES", 2**62)
    layer = tconv.ConvTranspose2d(c_in, c_out, k, stride=s, padding=1, rng=0)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    return layer, x, algorithm, threads


@pytest.mark.parametrize("name", CASES)
def test_a_layer_packs_once_and_agrees_with_the_functional_api(name, made, monkeypatch):
    layer, x, algorithm, threads = _case(name, monkeypatch)
    with tconv.num_threads(threads):
        first = layer(x)
        packed_first = list(made)
        second = layer(x)
        expected = _functional(x, layer, algorithm)  # no cache: packs again, keeps nothing
    assert packed_first, "the case must reorder its weight"
    assert made == packed_first  # the second call made nothing (the functional call has no cache)
    assert len(layer._packed) == len(packed_first)
    if name == "gemm_split_channels":
        assert len(packed_first) == 2
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(second, expected)


def _assign(layer, new):
    layer.weight = new.copy()


def _load_state_dict(layer, new):
    layer.load_state_dict({"weight": new, "bias": layer.bias})


def _subtract_in_place(layer, new):
    layer.weight -= 0.1


def _set_item(layer, new):
    layer.weight[0, 0] = 5


def _copyto(layer, new):
    np.copyto(layer.weight, new)


@pytest.mark.parametrize("change", [_assign, _load_state_dict, _subtract_in_place, _set_item, _copyto],
                         ids=lambda f: f.__name__.lstrip("_"))
@pytest.mark.parametrize("name", CASES)
def test_a_changed_weight_is_repacked(name, change, made, monkeypatch):
    layer, x, algorithm, threads = _case(name, monkeypatch)
    new = np.random.default_rng(2).standard_normal(layer.weight.shape).astype(np.float32)
    with tconv.num_threads(threads):
        before = layer(x)
        count = len(made)
        change(layer, new)
        after = layer(x)
        assert len(made) == 2 * count  # every form made again
        again = layer(x)
        assert len(made) == 2 * count
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, _torch(x, layer), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(again, after)


@pytest.mark.parametrize("name", CASES)
def test_float64_input_to_a_float32_layer(name, made, monkeypatch):
    """The forms are bound to the layer's own float32 array and keyed by the dtype computed in."""
    layer, x32, _, threads = _case(name, monkeypatch)
    x64 = x32.astype(np.float64)
    with tconv.num_threads(threads):
        y32, y64 = layer(x32), layer(x64)
        count = len(made)
        y32_again, y64_again = layer(x32), layer(x64)
    assert len(made) == count  # both dtypes' forms kept side by side
    assert y64.dtype == np.float64 and y32.dtype == np.float32
    np.testing.assert_allclose(y64, _torch(x64, layer), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y32, _torch(x32, layer), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(y64_again, y64)
    np.testing.assert_array_equal(y32_again, y32)


@pytest.mark.parametrize("reordered", [False, True])
def test_a_layer_whose_weight_dominates_stays_within_twice_its_activations(reordered, monkeypatch):
    """The 16 MiB weight, 200x the activations: multiplied as it lies (gemm channels-last, columns
    (channel, tap): nothing kept, nothing to check), or, reordered channels-last, kept, so that
    the second call only allocates about the output where a functional call reorders it again.
    One thread: no worker's first workspace is counted."""
    monkeypatch.setattr(tconv.core.layers, "MEASURED_CHOICE", False)  # auto's pick, gemm
    if reordered:
        monkeypatch.setattr(fast, "WEIGHT_DOMINATES", 10**9)
        monkeypatch.setattr(fast, "AS_IT_LIES_BYTES", 2**62)
    layer = tconv.ConvTranspose2d(512, 512, 4, stride=2, rng=0)
    x = np.random.default_rng(1).standard_normal((1, 512, 2, 2)).astype(np.float32)
    with tconv.num_threads(1):
        y = layer(x)
        assert len(layer._packed) == reordered  # channels-last keeps its reordered weight
        peak = peak_extra_memory(lambda: layer(x))
        functional = peak_extra_memory(lambda: _functional(x, layer, "auto"))
    assert peak < 2 * (x.nbytes + y.nbytes)
    if reordered:
        assert 2 * (x.nbytes + y.nbytes) < functional
    np.testing.assert_allclose(y, _torch(x, layer), rtol=1e-4, atol=1e-4)


def test_conv_layers_follow_their_weight_too():
    ours, theirs = tconv.Conv2d(3, 4, 3, rng=0), torch.nn.Conv2d(3, 4, 3)
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype(np.float32)
    ours(x)
    ours.weight[0] = 2
    ours.weight -= 0.5
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    np.testing.assert_allclose(ours(x), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    assert set(vars(ours)) == set(vars(tconv.ConvTranspose2d(3, 4, 3)))


# --------------------------------------------------------------------------- the functional API


@pytest.mark.parametrize("name", CASES)
def test_the_functional_api_keeps_nothing(name, monkeypatch):
    layer, x, algorithm, threads = _case(name, monkeypatch)

    def refuse(self, key, make):
        raise AssertionError("the functional API has no cache")

    monkeypatch.setattr(WeightCache, "get", refuse)
    with tconv.num_threads(threads):
        y = _functional(x, layer, algorithm)
        spec = tconv.core.spec.transposed_spec("t", x, layer.weight, layer.bias, layer.stride,
                                               layer.padding, 0, 1, 1, None, "zeros")
        run = {"gemm": fast.gemm, "phase": phase.phase, "subpixel": subpixel.subpixel}[algorithm]
        direct_call = run(spec, x, layer.weight, layer.bias)
    np.testing.assert_allclose(y, _torch(x, layer), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(direct_call, y)


@pytest.mark.parametrize("offset", [0, 1])  # 8-byte aligned or not
@pytest.mark.parametrize("size", [1, 7, 64, 1001, 2**15 + 1])  # CRC-32 below 64 KiB, a hash above
def test_the_checksum_sees_a_changed_or_moved_value(offset, size):
    from tconv.engine.packing import _checksum

    base = np.random.default_rng(0).standard_normal(size + 1).astype(np.float32)
    w = base[offset : offset + size]
    assert (w.ctypes.data % 8 == 0) == (offset == 0)
    before = _checksum(w)
    assert _checksum(w.copy()) == before  # the bytes, not the object
    changed = w.copy()
    changed.view(np.uint32)[-1] ^= 1  # the lowest bit of the last value
    assert _checksum(changed) != before
    if size > 1:
        swapped = w.copy()
        swapped[[0, -1]] = swapped[[-1, 0]]
        assert _checksum(swapped) != before


def test_a_large_weight_is_checked_beside_the_computation():
    """bind(defer=True) hands a weight of DEFERRED_CHECK_BYTES or more to another thread; confirm()
    then says whether the forms used were the weight's, and drops them if not."""
    from tconv.engine import packing

    w = np.ones(packing.DEFERRED_CHECK_BYTES // 4, np.float32)
    cache = WeightCache()
    cache.bind(w, defer=True)
    packed(cache, "copy", w.copy)
    cache.bind(w, defer=True)
    assert cache._pending is not None and cache.confirm() and len(cache) == 1  # unchanged: kept
    assert cache.confirm()  # nothing pending: nothing to say
    w[-1] = 2
    cache.bind(w, defer=True)
    assert len(cache) == 1  # not yet known ...
    assert not cache.confirm() and len(cache) == 0  # ... then dropped
    small = np.ones(16, np.float32)
    cache.bind(small, defer=True)
    packed(cache, "copy", small.copy)
    small[0] = 2
    cache.bind(small, defer=True)  # too small to hand over: checked at once
    assert cache._pending is None and len(cache) == 0


def test_a_cut_kernel_checks_only_the_taps_it_keeps(monkeypatch):
    """On a 2x2 image a 7-tap kernel with padding 3 keeps taps 2..4 (algorithms.trimmed): the layer
    checks those bytes alone (a change elsewhere changes no output), and repacks when they change."""
    monkeypatch.setattr(algorithms, "choose", lambda spec: "gemm")
    monkeypatch.setattr(tconv.core.layers, "MEASURED_CHOICE", False)
    layer = tconv.ConvTranspose2d(32, 16, 7, padding=3, rng=0)
    x = np.random.default_rng(1).standard_normal((2, 32, 2, 2)).astype(np.float32)
    before = layer(x)
    assert list(layer._packed._sums) == [((2, 5), (2, 5))]  # no checksum of the whole weight
    forms = dict(layer._packed._forms)
    layer.weight[..., 0, 0] = 7  # a tap that reaches only cropped pixels
    np.testing.assert_allclose(layer(x), before, rtol=1e-6)
    np.testing.assert_allclose(before, _torch(x, layer), rtol=1e-4, atol=1e-4)
    assert all(layer._packed._forms[k] is v for k, v in forms.items())  # kept
    layer.weight[..., 3, 3] += 1  # a tap that counts: packed again
    after = layer(x)
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, _torch(x, layer), rtol=1e-4, atol=1e-4)
    assert all(layer._packed._forms[k] is not v for k, v in forms.items())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, cut", [((64, 48, 5, 7), (slice(1, 4), slice(2, 5))),
                                        ((800, 9, 9), (slice(2, 7),)),
                                        ((40, 30, 3, 6, 5), (slice(0, 2), slice(1, 6), slice(1, 3)))])
def test_the_checksum_of_cut_taps_reads_them_in_place(dtype, shape, cut):
    """A cut kernel's taps (a view, non-contiguous) are hashed where they lie: the same values in
    another weight of that layout give the same sum; a changed or swapped kept value changes it, a
    changed dropped value does not."""
    from tconv.engine.packing import SMALL_WEIGHT_BYTES, _checksum

    w = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    view = w[(Ellipsis, *cut)]
    assert not view.flags.c_contiguous and view.nbytes >= SMALL_WEIGHT_BYTES
    before = _checksum(view)
    other = w.copy()
    assert _checksum(other[(Ellipsis, *cut)]) == before
    other[(0,) * (w.ndim - len(cut)) + tuple(s.start - 1 if s.start else s.stop for s in cut)] = 9
    assert _checksum(other[(Ellipsis, *cut)]) == before  # outside the kept taps
    for index in [(0,) * w.ndim, tuple(n - 1 for n in view.shape), (view.shape[0] // 2, 1) + (0,) * len(cut)]:
        changed = w.copy()
        changed[(Ellipsis, *cut)][index] = np.nextafter(view[index], dtype(np.inf))
        assert _checksum(changed[(Ellipsis, *cut)]) != before, index
    swapped = w.copy()
    v = swapped[(Ellipsis, *cut)]
    v[0, 0], v[0, 1] = view[0, 1].copy(), view[0, 0].copy()
    assert _checksum(v) != before
