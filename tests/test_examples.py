"""Every worked example of the seeds comes out of tconv, by every algorithm; `tconv tour` shows them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from oracle import torch_conv_transpose

import tconv
from tconv import cli
from tconv.explainer.examples import EXAMPLES, SHAPE_EXAMPLES


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_seed_example(example):
    x, w, expected = example.arrays()
    algos = tconv.ALGORITHMS if example.op == "conv_transpose" else (None,)
    for algorithm in algos:
        if algorithm is None:
            y = tconv.conv(x, w, **example.params)
        else:
            y = tconv.conv_transpose(x, w, **example.params, algorithm=algorithm)
        assert y.shape == expected.shape and y.dtype == np.float32
        if example.decimals is None:
            np.testing.assert_array_equal(y, expected)
        else:
            np.testing.assert_array_equal(np.round(y, example.decimals), expected)


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.op == "conv_transpose"],
                         ids=lambda e: e.name)
def test_seed_example_is_also_pytorchs_output(example):
    x, w, expected = example.arrays()
    p = example.params
    y = torch_conv_transpose(x, w, None, p.get("stride", 1), p.get("padding", 0),
                             p.get("output_padding", 0), 1, 1)
    np.testing.assert_allclose(y, expected, atol=5e-5)


@pytest.mark.parametrize("source, stack, in_shape, out_shape", SHAPE_EXAMPLES)
def test_shape_examples(source, stack, in_shape, out_shape):
    """The seed's stack of layers, in tconv and in PyTorch with the same parameters: same output."""
    x = np.random.default_rng(0).standard_normal(in_shape).astype(np.float32)
    ours, theirs = x, torch.from_numpy(x)
    for cls, kwargs in stack:
        reference = getattr(torch.nn, cls)(**kwargs)
        layer = getattr(tconv, cls)(**kwargs)
        layer.load_state_dict(reference.state_dict())
        ours = layer(ours)
        with torch.no_grad():
            theirs = reference(theirs)
        assert ours.shape == tuple(theirs.shape)
    assert ours.shape == out_shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=1e-5)


def test_tour_reproduces_every_example(capsys):
    assert cli.main(["tour"]) == 0
    out = capsys.readouterr().out
    assert out.count("matches the seed: yes") == len(EXAMPLES) + 1 + len(SHAPE_EXAMPLES)
    assert "NO" not in out
    assert "[[0.0, 0.0, 1.0]" not in out  # grids, not reprs
    assert "  0  0  1\n" in out  # D2L Fig. 14.10.1's first row, aligned


def test_console_script_runs():
    done = subprocess.run([sys.executable, "-m", "tconv.cli", "tour"], capture_output=True,
                          text=True, check=True)
    assert done.stdout.rstrip().endswith("seed examples reproduced exactly.")
    version = subprocess.run([sys.executable, "-m", "tconv.cli", "--version"],
                             capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"tconv {tconv.__version__}"
