"""tconv on dask arrays (tconv.scale.dask): lazy, block by block, the in-memory numbers, on a real
LocalCluster (worker processes)."""

from __future__ import annotations

import math

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_engine import torch_reference
from test_functional import torch_pads, transposed_sizes

import tconv
from tconv.scale import dask as tdask

# one xdist worker runs this module (make test: --dist loadgroup), so one LocalCluster starts
pytestmark = pytest.mark.xdist_group("dask")


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="2GiB") as cluster, Client(cluster) as c:
        yield c


def _chunks(draw, size: int) -> tuple[int, ...]:
    """A random chunking of ``size``: pieces of 1 pixel up to the whole axis."""
    out, left = [], size
    while left:
        piece = draw(st.integers(1, left))
        out.append(piece)
        left -= piece
    return tuple(out)


@st.composite
def chunked_configs(draw):
    rank = draw(st.sampled_from([1, 2, 3]))
    groups = draw(st.sampled_from([1, 2]))
    size = tuple(draw(st.integers(1, 9 if rank < 3 else 5)) for _ in range(rank))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    padding = tuple(draw(st.integers(0, 3)) for _ in range(rank))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    batch = draw(st.integers(1, 3))
    shape = (batch, c_in, *size)
    chunks = tuple(_chunks(draw, n) for n in shape)
    mode = draw(st.sampled_from(tconv.PADDING_MODES))
    bias = draw(st.booleans())
    return dict(shape=shape, chunks=chunks, c_out=c_out, kernel=kernel, stride=stride,
                padding=padding, output_padding=output_padding, groups=groups, dilation=dilation,
                mode=mode, bias=bias)


def _arrays(cfg, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(cfg["shape"])
    w = rng.standard_normal((cfg["shape"][1], cfg["c_out"] // cfg["groups"], *cfg["kernel"]))
    b = rng.standard_normal(cfg["c_out"]) if cfg["bias"] else None
    return x, w, b


def _args(cfg):
    return (cfg["stride"], cfg["padding"], cfg["output_padding"], cfg["groups"], cfg["dilation"])


def _torch_accepts(cfg, x, w):
    large = transposed_sizes(cfg["shape"][2:], cfg["kernel"], cfg["stride"],
                             tuple((p, p) for p in cfg["padding"]), cfg["dilation"],
                             cfg["output_padding"])
    return min(large) >= 1 and torch_pads(cfg["mode"], tuple((p, p) for p in cfg["padding"]), large), large


#: Each example computes a few graphs on the cluster (~0.1-0.5 s): fewer examples than elsewhere.
CLUSTER = settings(max_examples=12, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture])


@CLUSTER
@given(cfg=chunked_configs())
def test_conv_transpose_on_a_cluster_matches_memory_and_torch(client, cfg):
    x, w, b = _arrays(cfg)
    ok, large = _torch_accepts(cfg, x, w)
    xd = da.from_array(x, chunks=cfg["chunks"])
    if not ok:  # refused at the call, as in memory, with the same message
        with pytest.raises(ValueError) as in_memory:
            tconv.conv_transpose(x, w, b, *_args(cfg), padding_mode=cfg["mode"])
        with pytest.raises(ValueError, match=str(in_memory.value).replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[").replace("]", r"\]").replace("*", r"\*").replace("+", r"\+")):
            tconv.conv_transpose(xd, w, b, *_args(cfg), padding_mode=cfg["mode"])
        return
    y = tconv.conv_transpose(xd, w, b, *_args(cfg), padding_mode=cfg["mode"])
    assert isinstance(y, da.Array)
    # blocks follow the input: batch chunks kept; along each spatial axis chunk [a, b) makes the
    # block [a*s - p, b*s - p) of the output (the last one to its end), unless cropped away entirely
    assert y.chunks[0] == xd.chunks[0]
    for chunks, s, p, size, got_chunks in zip(cfg["chunks"][2:], cfg["stride"], cfg["padding"], large,
                                              y.chunks[2:]):
        edges = [min(max(e * s - p, 0), size) for e in np.cumsum((0, *chunks))[:-1]] + [size]
        assert got_chunks == tuple(hi - lo for lo, hi in zip(edges, edges[1:]) if hi > lo)
    got = y.compute()
    expected = tconv.conv_transpose(x, w, b, *_args(cfg), padding_mode=cfg["mode"])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    b0 = np.zeros(cfg["c_out"]) if b is None else b
    np.testing.assert_allclose(got, torch_reference(x, w, b0, *_args(cfg), cfg["mode"], large),
                               rtol=1e-9, atol=1e-9)


@CLUSTER
@given(cfg=chunked_configs())
def test_gradients_and_the_adjoint_on_a_cluster(client, cfg):
    """grad_input chunked like the input; grad_weight and grad_bias equal to the in-memory ones;
    <conv_transpose(x), z> == <x, conv(z)> on dask arrays."""
    x, w, b = _arrays(cfg, seed=1)
    ok, large = _torch_accepts(cfg, x, w)
    assume(ok)  # a configuration PyTorch refuses: the first test checks its refusal
    args, mode = _args(cfg), cfg["mode"]
    z = np.random.default_rng(2).standard_normal((cfg["shape"][0], cfg["c_out"], *large))
    xd = da.from_array(x, chunks=cfg["chunks"])
    zd = da.from_array(z, chunks=(cfg["chunks"][0], -1, *(max(1, n // 2) for n in large)))
    gi, gw, gb = tconv.conv_transpose_backward(zd, xd, w, *args, padding_mode=mode)
    assert gi.chunks == xd.chunks
    expected = tconv.conv_transpose_backward(z, x, w, *args, padding_mode=mode)
    for got, want in zip(dask.compute(gi, gw, gb), expected):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    stride, padding, _, groups, dilation = args
    forward = tconv.conv_transpose(xd, w, None, *args, padding_mode=mode)
    back = tconv.conv(zd, w, None, stride, padding, dilation, groups, padding_mode=mode)
    # output_padding >= stride (allowed by dilation) gives the convolution a tail past the input
    back = back[(Ellipsis, *(slice(0, n) for n in cfg["shape"][2:]))]
    lhs, rhs = dask.compute((forward * zd).sum(), (xd * back).sum())
    assert lhs == pytest.approx(rhs, rel=1e-9, abs=1e-9)


@CLUSTER
@given(cfg=chunked_configs())
def test_conv_and_its_gradients_on_a_cluster(client, cfg):
    x, w, b = _arrays(cfg, seed=3)
    ok, large = _torch_accepts(cfg, x, w)
    assume(ok)  # a configuration PyTorch refuses: the first test checks its refusal
    stride, padding, _, groups, dilation = _args(cfg)
    conv_w = np.ascontiguousarray(w.reshape(groups, -1, *w.shape[1:]).swapaxes(1, 2)
                                  .reshape(w.shape[1] * groups, w.shape[0] // groups, *cfg["kernel"]))
    # the convolution's input is as large as the transposed convolution's output
    big = np.random.default_rng(4).standard_normal((cfg["shape"][0], cfg["shape"][1], *large))
    conv_b = None if b is None else b[: conv_w.shape[0]] if len(b) >= conv_w.shape[0] else None
    bigd = da.from_array(big, chunks=(cfg["chunks"][0], -1, *(max(1, n // 3) for n in large)))
    try:
        expected = tconv.conv(big, conv_w, conv_b, stride, padding, dilation, groups,
                              padding_mode=cfg["mode"])
    except ValueError as exc:
        with pytest.raises(ValueError, match="must"):
            tconv.conv(bigd, conv_w, conv_b, stride, padding, dilation, groups, padding_mode=cfg["mode"])
        assert "must" in str(exc)
        return
    y = tconv.conv(bigd, conv_w, conv_b, stride, padding, dilation, groups, padding_mode=cfg["mode"])
    assert y.chunks[0] == bigd.chunks[0] and all(a <= b for a, b in zip(y.numblocks[2:], bigd.numblocks[2:]))
    np.testing.assert_allclose(y.compute(), expected, rtol=1e-10, atol=1e-10)
    g = np.random.default_rng(5).standard_normal(expected.shape)
    gd = da.from_array(g, chunks=(1, -1, *(max(1, n // 2) for n in g.shape[2:])))
    got = tconv.conv_backward(gd, bigd, conv_w, stride, padding, dilation, groups,
                              padding_mode=cfg["mode"])
    assert got[0].chunks == bigd.chunks
    want = tconv.conv_backward(g, big, conv_w, stride, padding, dilation, groups, padding_mode=cfg["mode"])
    for a, e in zip(dask.compute(*got), want):
        np.testing.assert_allclose(a, e, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------- laziness and blocks


def _counted(x: np.ndarray, chunks, calls: list):
    """``x`` as a dask array whose blocks record their index when computed."""
    base = da.from_array(x, chunks=chunks)

    def record(block, block_info=None):
        calls.append(block_info[0]["chunk-location"])
        return block

    return base.map_blocks(record, dtype=x.dtype, meta=np.empty((0,) * x.ndim, x.dtype))


def test_nothing_is_computed_by_the_call():
    calls: list = []
    x = _counted(np.ones((2, 4, 64, 64)), (1, 4, 16, 16), calls)
    layer = tconv.ConvTranspose2d(4, 3, 4, stride=2, padding=1)
    y = layer(x)
    z = tconv.conv_transpose(x, layer.weight, layer.bias, 2, 1, padding_mode="circular")
    gi, gw, gb = tconv.conv_transpose_backward(y, x, layer.weight, 2, 1)
    assert calls == [] and all(isinstance(a, da.Array) for a in (y, z, gi, gw, gb))
    assert y.shape == (2, 3, 128, 128) and y.chunks[2] == (31, 32, 32, 33)  # crop 1 at each end


def test_an_output_block_reads_its_chunk_and_halo_only():
    """k=5, s=2: a halo of floor(4/2) = 2 input pixels before each chunk, none after."""
    calls: list = []
    x = _counted(np.random.default_rng(0).standard_normal((1, 2, 40)), (1, 2, 4), calls)
    w = np.random.default_rng(1).standard_normal((2, 3, 5))
    y = tconv.conv_transpose(x, w, None, 2)
    assert y.numblocks == (1, 1, 10)
    got = y.blocks[0, 0, 5].compute(scheduler="sync")
    assert sorted(c[2] for c in calls) == [4, 5]  # chunk 5 and chunk 4, where its halo lies
    np.testing.assert_allclose(got, tconv.conv_transpose(x.compute(), w, None, 2)[..., 40:48])
    assert tdask.transposed_blocks((4,) * 10, 40, 5, 2, 1, 0, 83)[5] == (40, 48, 18, 24)


def test_halos_span_several_chunks_smaller_than_the_kernel():
    x = np.random.default_rng(0).standard_normal((1, 1, 30))
    w = np.random.default_rng(1).standard_normal((1, 1, 9))
    y = tconv.conv_transpose(da.from_array(x, chunks=(1, 1, 1)), w, None, 1, 3, dilation=2,
                             padding_mode="reflect")
    np.testing.assert_allclose(y.compute(scheduler="sync"),
                               tconv.conv_transpose(x, w, None, 1, 3, dilation=2, padding_mode="reflect"))


def test_channels_split_over_chunks_are_merged_per_group():
    x = np.random.default_rng(0).standard_normal((2, 6, 10))
    w = np.random.default_rng(1).standard_normal((6, 2, 3))
    xd = da.from_array(x, chunks=(1, 1, 5))
    y = tconv.conv_transpose(xd, w, None, 2, groups=3)
    assert y.chunks[1] == (2, 2, 2)  # one block per group of 2 input channels: 2 outputs each
    np.testing.assert_allclose(y.compute(scheduler="sync"), tconv.conv_transpose(x, w, None, 2, groups=3))


def test_unbatched_and_layers():
    rng = np.random.default_rng(0)
    layer = tconv.ConvTranspose1d(3, 2, 4, stride=2, padding=1, padding_mode="replicate", rng=0)
    x = rng.standard_normal((3, 50))
    y = layer(da.from_array(x, chunks=(3, 7)))
    np.testing.assert_allclose(y.compute(scheduler="sync"), tconv.ConvTranspose1d(
        3, 2, 4, stride=2, padding=1, padding_mode="replicate", rng=0)(x))
    g = rng.standard_normal(y.shape)
    gi = layer.backward(da.from_array(g, chunks=(2, 11)))
    reference = tconv.ConvTranspose1d(3, 2, 4, stride=2, padding=1, padding_mode="replicate", rng=0)
    reference(x)
    np.testing.assert_allclose(gi.compute(scheduler="sync"), reference.backward(g))
    np.testing.assert_allclose(np.asarray(layer.grad_weight), reference.grad_weight)
    np.testing.assert_allclose(np.asarray(layer.grad_bias), reference.grad_bias)
    conv = tconv.Conv2d(2, 4, 3, stride=2, padding="same", rng=1)
    image = rng.standard_normal((1, 2, 17, 13))
    np.testing.assert_allclose(conv(da.from_array(image, chunks=(1, 1, 5, 4))).compute(scheduler="sync"),
                               conv(image))


def test_output_size_and_every_padding_form():
    x = np.random.default_rng(0).standard_normal((1, 2, 9, 7))
    w = np.random.default_rng(1).standard_normal((2, 2, 3, 4))
    xd = da.from_array(x, chunks=(1, 2, 2, 3))
    for kwargs in (dict(padding="same", stride=2), dict(padding="valid", stride=(1, 3)),
                   dict(padding=((2, 0), (1, 3)), stride=2), dict(padding=(1, 2), stride=3,
                                                                  output_size=(25, 20))):
        np.testing.assert_allclose(tconv.conv_transpose(xd, w, **kwargs).compute(scheduler="sync"),
                                   tconv.conv_transpose(x, w, **kwargs), err_msg=str(kwargs))


# --------------------------------------------------------------------------- errors, threads


def test_bad_input_is_refused_at_the_call_with_the_in_memory_message():
    x = da.zeros((1, 3, 8, 8), chunks=4)
    with pytest.raises(ValueError, match="input has 3 channels but weight"):
        tconv.conv_transpose(x, np.ones((2, 1, 3, 3)))
    with pytest.raises(ValueError, match="output_padding"):
        tconv.conv_transpose(x, np.ones((3, 1, 3, 3)), stride=2, output_padding=2)
    with pytest.raises(TypeError, match="dtype"):
        tconv.conv_transpose(x.astype(np.complex64), np.ones((3, 1, 3, 3)))
    with pytest.raises(ValueError, match="algorithm must be one of"):
        tconv.conv_transpose(x, np.ones((3, 1, 3, 3)), algorithm="fft")
    with pytest.raises(ValueError, match="grad_output must have the output's shape"):
        tconv.conv_transpose_backward(da.zeros((1, 1, 3, 3)), x, np.ones((3, 1, 3, 3)))
    # a missing weight: the in-memory call's TypeError, in every direction (was an AttributeError)
    with pytest.raises(TypeError) as in_memory:
        tconv.conv_transpose(np.zeros((1, 3, 8, 8)), None)
    rule = str(in_memory.value).split(": ", 1)[1]  # "weight must have dtype float32 or float64 ..."
    assert rule.startswith("weight must ")
    for call in (lambda: tconv.conv_transpose(x, None), lambda: tconv.conv(x, None),
                 lambda: tconv.conv_transpose_backward(da.zeros((1, 1, 10, 10)), x, None)):
        with pytest.raises(TypeError) as lazy:
            call()
        assert str(lazy.value).split(": ", 1)[1] == rule


def test_chunks_of_unknown_size_ask_for_compute_chunk_sizes():
    x = da.from_array(np.arange(40.0).reshape(1, 1, 40), chunks=10)
    unknown = x[x > -1].reshape(1, 1, -1) if False else x[:, :, x[0, 0] > -1]
    assert any(math.isnan(c) for c in unknown.shape)
    with pytest.raises(ValueError, match=r"compute_chunk_sizes\(\)"):
        tconv.conv_transpose(unknown, np.ones((1, 1, 3)))


def test_an_output_larger_than_this_machine_is_fine_lazily():
    x = da.zeros((64, 64, 4096, 4096), chunks=(1, 64, 512, 512), dtype=np.float32)
    y = tconv.conv_transpose(x, np.ones((64, 64, 4, 4), np.float32), None, 2, 1)
    assert y.nbytes == 2**40  # a tebibyte: a graph here, refused in memory
    stand_in = np.broadcast_to(np.zeros((), np.float32), x.shape)  # no memory
    with pytest.raises(ValueError, match="more than this machine"):
        tconv.conv_transpose(stand_in, np.ones((64, 64, 4, 4), np.float32), None, 2, 1)


def test_a_task_runs_tconv_with_one_thread(monkeypatch):
    seen = []
    from tconv.engine import algorithms

    original = algorithms.TRANSPOSED["gemm"]

    def spy(*args, **kwargs):
        seen.append(tconv.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setitem(algorithms.TRANSPOSED, "gemm", spy)
    x = da.ones((4, 16, 32, 32), chunks=(1, 16, 16, 16))
    with tconv.num_threads(2):
        tconv.conv_transpose(x, np.ones((16, 16, 4, 4)), None, 2, algorithm="gemm").compute(
            scheduler="threads")
        assert tconv.get_num_threads() == 2  # the caller's count is untouched
    assert seen and set(seen) == {1}


# --------------------------------------------------------------------------- larger than a worker


def test_zarr_to_zarr_larger_than_a_worker_with_bounded_memory(tmp_path):
    """A 576 MB input, 3x each worker's memory limit, from zarr through conv_transpose to zarr on two
    worker processes: it completes without a worker paused to death or restarted, each worker's
    memory stays a few chunks above its idle size, and the numbers are those of the in-memory call.

    The layer, kernel (1, 2) with padding ((0, 0), (0, 1)), has a one-pixel halo and keeps the size,
    so output blocks line up with zarr's chunks (no rechunk). ``algorithm='scatter'`` keeps numba (and
    its ~100 MB) out of the workers: that idle size, not tconv, sets how small a worker can be here.
    """
    import os

    import psutil
    from distributed.diagnostics import MemorySampler

    limit = 192 * 2**20
    rows, cols, chunks = 8192, 18432, (1, 1, 2048, 1024)  # 8 MB chunks
    w = np.array([[[[0.5, -2.0]]]], np.float32)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit=limit) as cluster, Client(cluster) as c:
        r = da.arange(rows, chunks=chunks[2], dtype=np.float32)
        q = da.arange(cols, chunks=chunks[3], dtype=np.float32)
        x = ((r[:, None] * 3 + q[None, :]) % 7)[None, None]
        x.to_zarr(str(tmp_path / "in.zarr"))
        xz = da.from_zarr(str(tmp_path / "in.zarr"))
        assert xz.nbytes >= 3 * limit and xz.chunks == x.chunks
        idle = c.run(lambda: psutil.Process().memory_info().rss)
        pids = c.run(os.getpid)
        y = tconv.conv_transpose(xz, w, None, 1, ((0, 0), (0, 1)), algorithm="scatter")
        assert y.chunks == xz.chunks
        sampler = MemorySampler()
        with sampler.sample("run", interval=0.05):
            y.to_zarr(str(tmp_path / "out.zarr"))
        assert c.run(os.getpid) == pids  # no worker was killed and restarted
    peak = max(v for _, v in sampler.samples["run"])  # both workers' process memory together
    assert peak < 2 * limit and peak - sum(idle.values()) < xz.nbytes / 4
    out = da.from_zarr(str(tmp_path / "out.zarr"))
    region = (0, 0, slice(2040, 2056), slice(3068, 3080))  # across chunk edges in both dimensions
    # output pixel j is x[j]*w[0] + x[j-1]*w[1]: from one column before the region (the halo)
    source = xz[0, 0, 2040:2056, 3067:3080].compute()[None, None]
    expected = tconv.conv_transpose(source, w)[0, 0, :, 1:13]
    np.testing.assert_allclose(out[region].compute(), expected)


def test_the_weight_is_in_the_graph_once_not_in_every_task():
    """Distributed ships each task on its own: a task holding the weight would copy it per block."""
    import cloudpickle

    w = np.zeros((256, 64, 16), np.float32)  # 1 MiB
    x = da.zeros((4, 256, 4096), chunks=(1, 256, 1024), dtype=np.float32)
    for y in (tconv.conv_transpose(x, w, np.ones(64, np.float32), 8, 4),
              tconv.conv(tconv.conv_transpose(x, w, None, 8, 4), np.zeros((256, 64, 16), np.float32))):
        graph = dict(y.__dask_graph__())
        tasks = [v for k, v in graph.items() if isinstance(k, tuple) and k[0].startswith(y.name)]
        assert len(tasks) >= 16
        assert max(len(cloudpickle.dumps(t)) for t in tasks) < w.nbytes / 20
        assert sum(isinstance(v, np.ndarray) and v.nbytes == w.nbytes for v in graph.values()) >= 1
