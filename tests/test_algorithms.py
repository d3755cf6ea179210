"""The algorithms: all agree, the matrix view is D2L's, the registry is what ALGORITHMS says."""

from __future__ import annotations

import itertools
from math import prod

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from oracle import torch_conv_mode
from strategies import configs
from test_functional import assert_refused, torch_pads, transposed_sizes

import tconv
from tconv.core.spec import transposed_spec
from tconv.engine import algorithms, cost
from tconv.explainer.examples import D2L_MATRIX


def test_registry():
    assert tconv.ALGORITHMS == ("auto", "scatter", "zero_insertion", "matrix", "gemm", "direct", "phase",
                               "subpixel")
    assert set(algorithms.TRANSPOSED) == set(tconv.ALGORITHMS) - {"auto"}


@given(cfg=configs(), mode=st.sampled_from(tconv.PADDING_MODES), asym=st.booleans())
def test_all_algorithms_agree_pairwise(cfg, mode, asym):
    x, w, b = cfg.arrays()
    pairs = tuple((p, p // 2) if asym else (p, p) for p in cfg.padding)
    padding = pairs if asym else cfg.padding
    large = transposed_sizes(cfg.size, cfg.kernel, cfg.stride, pairs, cfg.dilation, cfg.output_padding)
    assert min(large) >= 1  # configs() draws positive symmetric outputs; asym pads less

    def run(algorithm):
        return tconv.conv_transpose(x, w, b, cfg.stride, padding, cfg.output_padding, cfg.groups,
                                    cfg.dilation, padding_mode=mode, algorithm=algorithm)

    if not torch_pads(mode, pairs, large):  # PyTorch cannot pad so: every algorithm refuses
        for a in tconv.ALGORITHMS:
            assert_refused(lambda a=a: run(a), mode)
        return
    results = {a: run(a) for a in tconv.ALGORITHMS}
    assert {y.shape for y in results.values()} == {(cfg.batch, cfg.c_out, *large)}
    for (a, ya), (c, yc) in itertools.combinations(results.items(), 2):
        np.testing.assert_allclose(ya, yc, rtol=1e-10, atol=1e-10, err_msg=f"{a} vs {c}")


def test_conv_matrix_is_d2l_kernel2matrix():
    K = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    Y = tconv.conv(np.arange(9.0).reshape(1, 1, 3, 3), K)
    W = tconv.conv_matrix(transposed_spec("t", Y, K, None), K)
    np.testing.assert_array_equal(W, D2L_MATRIX)
    np.testing.assert_array_equal(W @ np.arange(9.0), Y.ravel())  # y = W x
    np.testing.assert_array_equal(tconv.conv_transpose(Y, K).ravel(), W.T @ Y.ravel())  # W^T


@given(cfg=configs(ranks=(1, 2)), mode=st.sampled_from(tconv.PADDING_MODES))
def test_conv_matrix_is_the_convolution_with_its_padding_mode(cfg, mode):
    """``W @ big`` is PyTorch's convolution of ``big`` (padded in ``mode``), cut to the small size."""
    x, w, _ = cfg.arrays()
    pairs = tuple((p, p) for p in cfg.padding)
    large = cfg.out_size

    def spec():
        return transposed_spec("t", x, w, None, cfg.stride, cfg.padding, cfg.output_padding,
                               cfg.groups, cfg.dilation, None, mode)

    if not torch_pads(mode, pairs, large):
        assert_refused(spec, mode)
        return
    W = tconv.conv_matrix(spec(), w)
    assert W.shape == (cfg.c_in * prod(cfg.size), cfg.c_out * prod(large))
    big = np.random.default_rng(cfg.seed).standard_normal((cfg.batch, cfg.c_out, *large))
    # output_padding >= stride (allowed by dilation) gives the convolution a tail past the small size
    small = torch_conv_mode(big, w, None, cfg.stride, pairs, cfg.dilation, cfg.groups, mode).numpy()
    small = small[(Ellipsis, *(slice(0, n) for n in cfg.size))]
    assert small.shape == x.shape
    np.testing.assert_allclose(big.reshape(cfg.batch, -1) @ W.T, small.reshape(cfg.batch, -1),
                               rtol=1e-10, atol=1e-10)


def test_zero_insertion_never_builds_windows_of_the_whole_kernel():
    """A huge kernel (FCN's k=64, s=32) runs with memory near the output's, one tap at a time."""
    import tracemalloc

    x = np.ones((1, 2, 3, 3), np.float32)
    w = np.ones((2, 2, 64, 64), np.float32)
    tracemalloc.start()
    y = tconv.conv_transpose(x, w, stride=32, padding=16, algorithm="zero_insertion")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert y.shape == (1, 2, 96, 96)
    assert peak < 40 * y.nbytes


# --------------------------------------------------------------------------- what `auto` runs
# algorithms.choose, README "How `auto` chooses": scatter under SMALL_WORK multiply-adds
# N * P_in * P_k * C_in * C_out / groups (an unbatched input counts as N = 1); gemm when it is one
# matrix product (a 1x1 input, kernel 1 with stride 1); otherwise the cheapest estimate of
# tconv.engine.cost (tested in test_cost.py). The cases sit on each edge.

SMALL = algorithms.SMALL_WORK

#: (batch or None, C_in, C_out/groups, input size, kernel, groups, multiply-adds, algorithm)
CHOICES = [
    (1, 5, 3, (257,), (17,), 1, SMALL - 1, "scatter"),  # 65535 = 3*5*17*257: one short
    (None, 5, 3, (257,), (17,), 1, SMALL - 1, "scatter"),  # unbatched: N = 1
    (1, 8, 8, (1024,), (1,), 1, SMALL, "gemm"),  # exactly SMALL_WORK, kernel 1: one product
    (1, 8, 8, (32, 32), (1, 1), 1, SMALL, "gemm"),
    (1, 4, 3, (43, 127), (1, 1), 1, SMALL - 4, "scatter"),  # 65532: few channels but small
    (4, 64, 64, (1, 1), (16, 16), 1, 4 * 64 * 64 * 256, "gemm"),  # a 1x1 input: one product
    (2, 5, 3, (257,), (17,), 1, 2 * (SMALL - 1), "modelled"),  # the batch counts
    (1, 8, 1, (8192,), (3,), 8, 3 * SMALL, "modelled"),  # depthwise
]


def _spec(batch, c_in, c_out_g, size, kernel, groups, **kw):
    x = np.zeros(((batch,) if batch is not None else ()) + (c_in, *size), np.float32)
    return transposed_spec("t", x, np.zeros((c_in, c_out_g, *kernel), np.float32), None,
                           groups=groups, **kw)


def _cheapest(spec):
    times = cost.estimates(spec)
    return min(times, key=times.get)


@pytest.mark.parametrize("batch, c_in, c_out_g, size, kernel, groups, work, expected", CHOICES)
def test_choose_follows_its_rule_on_each_edge(batch, c_in, c_out_g, size, kernel, groups, work, expected):
    assert (batch or 1) * prod(size) * prod(kernel) * c_in * c_out_g == work  # the case is what it says
    spec = _spec(batch, c_in, c_out_g, size, kernel, groups)
    assert algorithms.multiply_adds(spec) == work
    assert algorithms.choose(spec) == (_cheapest(spec) if expected == "modelled" else expected)


def test_the_documented_thresholds():
    """README "How `auto` chooses" quotes this number."""
    assert algorithms.SMALL_WORK == 65536


@given(batch=st.sampled_from([None, 1, 2, 3]), rank=st.integers(1, 3), groups=st.sampled_from([1, 2, 3]),
       per_group=st.integers(1, 9), c_out_g=st.integers(1, 9), stride=st.integers(1, 3), data=st.data())
def test_choose_is_the_rule_on_any_shape(batch, rank, groups, per_group, c_out_g, stride, data):
    size = tuple(data.draw(st.integers(1, 64)) for _ in range(rank))
    kernel = tuple(data.draw(st.integers(1, 6)) for _ in range(rank))
    spec = _spec(batch, per_group * groups, c_out_g, size, kernel, groups, stride=stride)
    work = (batch or 1) * prod(size) * prod(kernel) * per_group * groups * c_out_g
    if work < SMALL:
        expected = "scatter"
    elif prod(size) == 1 or (prod(kernel) == 1 and stride == 1):
        expected = "gemm"
    else:
        expected = _cheapest(spec)
    assert algorithms.choose(spec) == expected


@pytest.mark.parametrize("case", [CHOICES[0], CHOICES[2], CHOICES[6], CHOICES[7]],
                         ids=lambda c: c[-1])
def test_auto_runs_what_choose_picks(case, monkeypatch):
    batch, c_in, c_out_g, size, kernel, groups, _, _ = case
    ran = []
    for name, f in list(algorithms.TRANSPOSED.items()):
        monkeypatch.setitem(algorithms.TRANSPOSED, name,
                            lambda *a, name=name, f=f, **k: ran.append(name) or f(*a, **k))
    rng = np.random.default_rng(0)
    x = rng.standard_normal(((batch,) if batch else ()) + (c_in, *size))
    w = rng.standard_normal((c_in, c_out_g, *kernel))
    y = tconv.conv_transpose(x, w, None, 1, 0, 0, groups)
    assert ran == [algorithms.choose(_spec(batch, c_in, c_out_g, size, kernel, groups))]
    fn = getattr(torch.nn.functional, f"conv_transpose{len(size)}d")
    np.testing.assert_allclose(y, fn(torch.tensor(x), torch.tensor(w), None, 1, 0, 0, groups).numpy(),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("algorithm", tconv.ALGORITHMS)
def test_float32_stays_float32_in_every_algorithm(algorithm):
    y = tconv.conv_transpose(np.ones((1, 2, 3), np.float32), np.ones((2, 2, 3), np.float32),
                             np.ones(2, np.float32), 2, 1, algorithm=algorithm,
                             padding_mode="circular")
    assert y.dtype == np.float32


def test_contenders_are_the_pick_and_the_estimates_near_it(monkeypatch):
    tiny = _spec(1, 5, 3, (257,), (17,), 1)
    assert algorithms.contenders(tiny) == ("scatter",)
    one_product = _spec(4, 64, 64, (1, 1), (16, 16), 1)
    assert algorithms.contenders(one_product) == ("gemm",)
    spec = _spec(2, 21, 21, (34, 34), (4, 4), 1, stride=2)  # fcn_up2's shape, twice the batch
    times = cost.estimates(spec)
    pick = algorithms.choose(spec)
    names = algorithms.contenders(spec)
    assert names[0] == pick and len(names) <= 3
    assert set(names[1:]) == {n for n in sorted(times, key=times.get)[:3]
                              if n != pick and times[n] <= algorithms.CONTEND * times[pick]}
    monkeypatch.setattr(algorithms, "choose", lambda spec: "phase")  # overridden: nothing else
    assert algorithms.contenders(spec) == ("phase",)
