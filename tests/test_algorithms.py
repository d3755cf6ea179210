"""The algorithms: all agree, the matrix view is D2L's, the registry is what ALGORITHMS says."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import configs

import tconv
from tconv.core.spec import transposed_spec
from tconv.engine import algorithms
from tconv.explainer.examples import D2L_MATRIX


def test_registry():
    assert tconv.ALGORITHMS == ("auto", "scatter", "zero_insertion", "matrix", "gemm", "direct")
    assert set(algorithms.TRANSPOSED) == set(tconv.ALGORITHMS) - {"auto"}


@given(cfg=configs(), mode=st.sampled_from(tconv.PADDING_MODES), asym=st.booleans())
def test_all_algorithms_agree_pairwise(cfg, mode, asym):
    x, w, b = cfg.arrays()
    padding = tuple((p, p // 2) for p in cfg.padding) if asym else cfg.padding
    try:
        results = {a: tconv.conv_transpose(x, w, b, cfg.stride, padding, cfg.output_padding,
                                           cfg.groups, cfg.dilation, padding_mode=mode,
                                           algorithm=a)
                   for a in tconv.ALGORITHMS}
    except ValueError as exc:
        assert "padding_mode" in str(exc) or "must be positive" in str(exc)
        return
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
    x, w, _ = cfg.arrays()
    try:
        spec = transposed_spec("t", x, w, None, cfg.stride, cfg.padding, cfg.output_padding,
                               cfg.groups, cfg.dilation, None, mode)
    except ValueError:
        return
    W = tconv.conv_matrix(spec, w)
    big = np.random.default_rng(cfg.seed).standard_normal(spec.out_shape)
    small = tconv.conv(big, w, None, cfg.stride, cfg.padding, cfg.dilation, cfg.groups,
                       padding_mode=mode)[(Ellipsis, *(slice(0, n) for n in cfg.size))]
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


def test_choose_is_a_registered_algorithm():
    spec = transposed_spec("t", np.ones((1, 1, 3)), np.ones((1, 1, 2)), None)
    assert algorithms.choose(spec) in algorithms.TRANSPOSED


@pytest.mark.parametrize("algorithm", tconv.ALGORITHMS)
def test_float32_stays_float32_in_every_algorithm(algorithm):
    y = tconv.conv_transpose(np.ones((1, 2, 3), np.float32), np.ones((2, 2, 3), np.float32),
                             np.ones(2, np.float32), 2, 1, algorithm=algorithm,
                             padding_mode="circular")
    assert y.dtype == np.float32
