"""``tconv bench`` itself: a tiny layer list, one timed run, against PyTorch, ONNX Runtime and OpenVINO;
the seeded random suite; ``--algorithm``."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

import tconv
from tconv import bench, cli
from tconv.bench import compare, report
from tconv.bench import machine as bench_machine
from tconv.core.spec import transposed_spec
from tconv.engine import algorithms

TINY = [["tiny_2d", 1, 3, 2, [4, 4], 3, 2, 1, 1, 1, 1],
        ["tiny_1d_dw", 2, 4, 4, [9], 3, 2, 0, 0, 4, 2],
        # one value per dimension: kernel, stride, padding, output_padding; two groups
        ["tiny_3d_aniso", 1, 2, 4, [3, 4, 2], [2, 3, 1], [2, 1, 1], [0, 1, 0], [1, 0, 0], 2, 1]]
NAMES = [row[0] for row in TINY]
HAVE_OPENVINO = importlib.util.find_spec("openvino") is not None


def table(out: str, first_header: str) -> tuple[list[str], list[list[str]]]:
    """The Markdown table of ``out`` whose header starts with ``| first_header |``: header, rows."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.split("|")[1:-1]])
    return [c.strip() for c in lines[start].split("|")[1:-1]], rows


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One bench run of :data:`TINY` with one thread and one timed run per system: its printed output,
    its JSON result and the folder of its files."""
    folder = tmp_path_factory.mktemp("bench")
    (folder / "layers.json").write_text(json.dumps(TINY))
    before = tconv.get_num_threads()
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        mp.setattr(bench_machine, "SETTLE_SECONDS", 0.0)  # nothing else runs between the systems here
        mp.setattr(bench_machine, "COPY_BYTES", 32 * 2**20)  # beyond the caches per core
        code = cli.main(["bench", "--layers", str(folder / "layers.json"), "--seconds", "0", "--runs", "1",
                         "--threads", "1", "--profile", "--output", str(folder / "r")])
    assert code == 0
    assert tconv.get_num_threads() == before  # the count bench set is given back
    return printed.getvalue(), json.loads((folder / "r.json").read_text()), folder


def test_bench_runs_a_tiny_suite_and_writes_its_tables(tiny_run):
    out, result, folder = tiny_run
    line = ("threads: 1 for every system (tconv's workers, BLAS and numba loops; PyTorch; ONNX Runtime's "
            "intra-op threads; OpenVINO's INFERENCE_NUM_THREADS; NumPy's BLAS)")
    assert out.startswith(line)
    # then NumPy's BLAS and the kernel it runs, as threadpoolctl reports it; a warning if forced older
    blas = result["machine"]["blas"]
    assert out.splitlines()[1:1 + len(bench_machine.header(blas))] == bench_machine.header(blas)
    from threadpoolctl import threadpool_info

    loaded = {(i["internal_api"], i.get("version"), i.get("architecture")) for i in threadpool_info()
              if i["user_api"] == "blas"}
    assert (blas["library"], blas["version"], blas["kernel"]) in loaded
    assert blas["cpu_features"] == bench_machine.cpu_features()
    # the per-call overhead on a layer that is nearly all overhead, beside the suite
    call = result["per_call"]
    assert call["layer"].startswith("2d N=1 C_in=8 C_out=8 in=8x8 k=4 s=2 p=1")
    assert set(call["us"]) == {"tconv", "torch", "onnxruntime", "openvino"} and call["us"]["tconv"] > 0
    peers = [t for name, t in call["us"].items() if name != "tconv" and t is not None]
    assert call["tconv_over_fastest_peer"] == pytest.approx(call["us"]["tconv"] / min(peers))
    assert report.per_call_line(call) in out.splitlines()

    header, rows = table(out, "layer")
    assert header[:9] == ["layer", "GFLOP", "tconv ms", "torch ms", "ORT ms", "OpenVINO ms",
                          "best peer / tconv", "least disturbed", "limit ms"]
    assert [r[0] for r in rows] == [*NAMES, "**geometric mean**"]
    col = {name: i for i, name in enumerate(header)}
    for r in rows[:-1]:  # forward: ms per system, the ratio best peer / tconv, and of the fastest runs
        assert all(float(r[col[c]]) > 0 for c in ("tconv ms", "torch ms", "ORT ms"))
        assert re.fullmatch(r"\d+\.\d\dx", r[col["best peer / tconv"]])
        assert re.fullmatch(r"\d+\.\d\dx", r[col["least disturbed"]])
    for name in ("best peer / tconv", "least disturbed"):
        assert re.fullmatch(r"\*\*\d+\.\d\dx\*\* \(min \d+\.\d\dx\)", rows[-1][col[name]])

    _, back = table(out, "backward")  # tconv ms, torch autograd ms, torch / tconv
    assert [r[0] for r in back] == [*NAMES, "**geometric mean**"]
    assert all(re.fullmatch(r"\d+\.\d\dx", r[3]) for r in back[:-1])

    md = (folder / "r.md").read_text()
    assert md.splitlines()[0].startswith("Machine: ") and line in md.splitlines()[0]
    assert md.splitlines()[1] == f"{blas['line']}."
    overhead = md.splitlines()[2 + bool(blas["warning"])]  # after the BLAS line and its warning, if any
    assert overhead.startswith(f"Overhead: {report.per_call_line(result['per_call'])}")
    assert all(f"| {name} |" in md for name in NAMES)
    assert {"machine", "sgemm_peak_gflops", "copy_gbs", "threads", "openvino_config", "min_runs", "rows",
            "geomean_ratio", "min_ratio", "geomean_least_disturbed_ratio", "min_least_disturbed_ratio",
            "geomean_tconv_over_limit", "layers", "backward", "backward_geomean_ratio"} <= set(result)
    assert result["threads"] == 1 and result["min_runs"] == 1 and result["algorithm"] == "auto"
    assert result["openvino_config"]["INFERENCE_NUM_THREADS"] == 1
    assert result["openvino_config"]["INFERENCE_PRECISION_HINT"] == "f32"
    assert [r["name"] for r in result["rows"]] == NAMES
    for r in result["rows"]:
        assert r["max_error"] < 1e-5  # every system computed the same numbers
        assert {"torch", "onnxruntime"} <= set(r["errors"])
        peers = [t for t in (r["torch_ms"], r["ort_ms"], r["openvino_ms"]) if t is not None]
        assert r["ratio"] == pytest.approx(min(peers) / r["tconv_ms"])
        # each system's least disturbed run: no slower than its median; the ratio of those
        least = r["least_ms"]
        assert set(least) == {"tconv", *r["errors"]}
        for system, median in (("tconv", r["tconv_ms"]), ("torch", r["torch_ms"]),
                               ("onnxruntime", r["ort_ms"]), ("openvino", r["openvino_ms"])):
            assert median is None or 0 < least[system] <= median
        assert r["least_disturbed_ratio"] == pytest.approx(
            min(t for k, t in least.items() if k != "tconv") / least["tconv"])
        assert r["algorithm"] == "scatter"  # auto on layers this small
    assert [r["name"] for r in result["backward"]] == NAMES
    assert all(r["max_error"] < 1e-5 for r in result["backward"])
    assert result["failures"] == {} and result["skipped"] == {}


def test_systems_are_timed_in_rounds_in_turn(monkeypatch):
    """Each system's runs are split over the rounds (tconv first, then last), so a passing
    disturbance cannot fall on all of one system's runs alone."""
    monkeypatch.setattr(bench_machine, "SETTLE_SECONDS", 0)
    calls = []
    timed = {name: (lambda name=name: calls.append(name)) for name in ("tconv", "torch", "onnxruntime")}
    runs = compare._rounds(timed, min_runs=4, min_seconds=0)
    assert compare.ROUNDS == 2
    assert {name: len(r) for name, r in runs.items()} == {"tconv": 4, "torch": 4, "onnxruntime": 4}
    blocks = [name for i, name in enumerate(calls) if i == 0 or calls[i - 1] != name]
    assert blocks == ["tconv", "torch", "onnxruntime", "torch", "tconv"]  # ORT's two rounds adjoin
    assert calls.count("tconv") == 2 * (2 + 2)  # each round: a two-call warm-up, then half the runs


def test_the_openvino_column(tiny_run):
    out, result, _ = tiny_run
    header, rows = table(out, "layer")
    cells = [r[header.index("OpenVINO ms")] for r in rows[:-1]]
    if not HAVE_OPENVINO:
        assert cells == ["—"] * len(NAMES)
        pytest.skip("openvino is not installed (pip install -e '.[test]'): its column shows —")
    assert all(float(c) > 0 for c in cells)
    for r in result["rows"]:
        assert r["openvino_ms"] > 0 and r["errors"]["openvino"] < 1e-5
    assert result["machine"]["openvino"]


def test_the_limit_columns(tiny_run):
    out, result, _ = tiny_run
    assert result["sgemm_peak_gflops"] > 0 and result["copy_gbs"] > 0
    # measured before and after the layers; the higher of the two sets the limits
    assert result["sgemm_peak_gflops"] == max(result["sgemm_gflops_start_end"])
    assert result["copy_gbs"] == max(result["copy_gbs_start_end"])
    assert out.count("sgemm rate (NumPy BLAS, 1 thread) ") == 2
    header, rows = table(out, "layer")
    for cells, r in zip(rows, result["rows"]):
        limit = re.fullmatch(r"(\d+\.\d\d) \((sgemm|copy)\)", cells[header.index("limit ms")])
        assert limit and float(limit[1]) >= 0 and float(cells[header.index("tconv / limit")]) > 0
        layer = bench.Layer(*next(row for row in TINY if row[0] == r["name"]))
        compute = layer.flops / (result["sgemm_peak_gflops"] * 1e9)
        memory = layer.bytes / (result["copy_gbs"] * 1e9)
        assert r["limit_ms"] == pytest.approx(1e3 * max(compute, memory))
        assert r["limit_bound"] == ("sgemm" if compute >= memory else "copy")
        assert r["limit_ms"] > 0 and r["tconv_over_limit"] == pytest.approx(r["tconv_ms"] / r["limit_ms"])
    # tiny layers: a few hundred bytes and FLOPs, bound by memory, far above the limit (call overhead)
    assert all(r["limit_bound"] == "copy" and r["tconv_over_limit"] > 1 for r in result["rows"])
    over = [r["tconv_over_limit"] for r in result["rows"]]
    assert result["geomean_tconv_over_limit"] == pytest.approx(math.prod(over) ** (1 / len(over)))
    geomean = rows[-1][header.index("tconv / limit")]
    assert geomean == f"**{result['geomean_tconv_over_limit']:.2f}** (max {max(over):.2f})"


def test_a_kernel_forced_below_the_cpu_is_named_and_warned_about():
    """OPENBLAS_CORETYPE=Sandybridge (AVX) on a CPU with AVX2 or more, as some machines force it: the
    header :func:`tconv.bench.compare.run` prints (tiny_run checks it prints ``header``) names the kernel
    and warns, saying how to measure as a user would; so do the results. A process of its own: OpenBLAS
    reads the variable when NumPy loads it."""
    cpu = bench_machine.cpu_isa(bench_machine.cpu_features())
    if bench_machine.ISA_LEVELS.index(cpu) < bench_machine.ISA_LEVELS.index("AVX2"):
        pytest.skip(f"this CPU's widest vector instructions are {cpu}: no older kernel to force")
    env = {**os.environ, "OPENBLAS_CORETYPE": "Sandybridge"}
    env.pop("OPENBLAS_L2_SIZE", None)
    code = ("import json; from tconv.bench import machine, report; b = machine.blas(); "
            "print(json.dumps([machine.header(b), report.blas_lines({'blas': b}), b]))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines, results, blas = json.loads(done.stdout)
    assert lines[0].startswith("NumPy's BLAS: openblas ") and ", kernel Sandybridge (AVX); CPU " in lines[0]
    assert lines[0].endswith("; set: OPENBLAS_CORETYPE=Sandybridge")
    assert lines[1] == (f"WARNING: NumPy's OpenBLAS runs its Sandybridge kernel (AVX) on a CPU with {cpu}, "
                        f"forced by OPENBLAS_CORETYPE=Sandybridge: tconv's BLAS products are slower than a "
                        f"user's would be (PyTorch, ONNX Runtime and OpenVINO bring their own kernels). To "
                        f"measure as a user would: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE make bench")
    assert blas["kernel"] == "Sandybridge" and blas["environment"] == {"OPENBLAS_CORETYPE": "Sandybridge"}
    assert results == [f"{lines[0]}.", f"**Warning**: {blas['warning']}."]


def test_the_profile_times_each_layers_products_alone(tiny_run):
    from tconv.bench.profile import products
    from tconv.core.spec import transposed_spec
    from tconv.engine import algorithms

    _, result, folder = tiny_run
    assert [p["name"] for p in result["profile"]] == [r["name"] for r in result["rows"]]
    for p, row, layer in zip(result["profile"], result["rows"], result["layers"]):
        L = bench.Layer(*layer)
        x, w, b = L.arrays()
        spec = transposed_spec("t", x, w, b, *L.args())
        tight = algorithms.trimmed(spec)
        spec = spec if tight is None else tight[0]  # the kernel the engine runs
        # the algorithm the layer runs: auto's pick or a contender it measured faster
        assert p["algorithm"] == row["algorithm"] in algorithms.contenders(spec)
        assert [tuple(s) for s in p["products"]] == products(spec, p["algorithm"])
        macs = sum(c * m * k * n for c, m, k, n in p["products"])
        if p["algorithm"] in ("gemm", "subpixel"):  # every multiply-add, and for subpixel its padding
            assert macs >= algorithms.multiply_adds(spec)
        assert p["products_ms"] is not None and (p["products_ms"] > 0) == bool(p["products"])
    header, rows = table((folder / "r.md").read_text(), "profile")
    assert header[3:6] == ["products alone ms", "products / tconv", "rest ms"]
    assert [r[0] for r in rows] == [p["name"] for p in result["profile"]]


def test_layer_sizes_and_bytes():
    layer = bench.Layer(*TINY[2])
    assert layer.kernel == (2, 3, 1) and layer.dilation == (1, 1, 1)
    assert layer.out_spatial == (7, 4, 2)  # (in-1)*s - 2p + d(k-1) + op + 1
    x, w, b = layer.arrays()
    assert tconv.conv_transpose(x, w, b, *layer.args()).shape == (1, 4, 7, 4, 2)
    assert layer.flops == 2 * 1 * 2 * 2 * 6 * 24
    assert layer.bytes == 4 * (2 * 24 + 2 * 2 * 6 + 4 + 4 * 56) == x.nbytes + w.nbytes + b.nbytes + 4 * 4 * 56
    assert bench.Layer(*TINY[0]).row() == TINY[0] and layer.row() == TINY[2]


def test_a_results_file_reruns_its_layers(tiny_run):
    _, _, folder = tiny_run
    assert [layer.row() for layer in bench.load_layers(folder / "r.json")] == TINY


def random_list(capsys, seed: int, count: int) -> list[str]:
    assert cli.main(["bench", "--random", str(seed), str(count), "--list"]) == 0
    return capsys.readouterr().out.splitlines()[1:]


def test_random_layers_are_seeded_and_in_range(capsys):
    first, again = random_list(capsys, 3, 2), random_list(capsys, 3, 2)
    assert len(first) == 2 and first == again
    assert [line.split()[0] for line in first] == ["r3_0", "r3_1"]
    assert all(0.02 <= float(re.search(r"([\d.]+) GFLOP$", line)[1]) <= 3 for line in first)
    assert random_list(capsys, 4, 2) != first
    assert bench.random_layers(3, 2) == bench.random_layers(3, 2)


def test_random_layers_are_valid_and_varied():
    layers = bench.random_layers(0, 300)
    for layer in layers:
        assert 0.02 <= layer.flops / 1e9 <= 3
        assert layer.C_in % layer.groups == 0 and layer.C_out % layer.groups == 0
        assert min(layer.out_spatial) >= 1
        assert all(op < max(s, d) for op, s, d in zip(layer.output_padding, layer.stride, layer.dilation))
        assert all(p >= 0 and k >= s for p, k, s in zip(layer.padding, layer.kernel, layer.stride))
        assert 1 <= max(layer.kernel) <= 7 and 1 <= max(layer.stride) <= 4 and layer.N <= 16
    assert {layer.rank for layer in layers} == {1, 2, 3}
    ranks = [layer.rank for layer in layers]
    assert ranks.count(2) > max(ranks.count(1), ranks.count(3))  # mostly 2-d
    kinds = {("depthwise" if layer.groups == layer.C_in else "grouped" if layer.groups > 1 else "dense")
             for layer in layers}
    assert kinds == {"dense", "grouped", "depthwise"}
    divides = {k % s == 0 for layer in layers for k, s in zip(layer.kernel, layer.stride) if s > 1}
    assert divides == {True, False}  # kernel % stride zero and not
    assert {d for layer in layers for d in layer.dilation} == {1, 2}
    assert any(len(set(layer.kernel)) > 1 for layer in layers)  # sometimes per dimension


@pytest.mark.parametrize("argv, message", [
    (["--random", "3", "0"], "bench: --random COUNT must be a positive int, got 0"),
    (["--random", "-1", "2"], "bench: --random SEED must be a non-negative int, got -1"),
    (["--algorithm", "fastest"], "bench: algorithm must be one of auto, "),
    (["--only", "nope"], "bench: --only names no layer of the suite: nope"),
    (["--threads", "0"], "bench: threads must be a positive int, got 0"),
    (["--seconds=-1"], "bench: seconds must be a number >= 0, got -1.0"),
])
def test_bench_refuses_bad_input(capsys, argv, message):
    assert cli.main(["bench", "--seconds", "0", "--no-backward", *argv]) == 2
    assert message in capsys.readouterr().err


def test_algorithm_scatter_is_honoured(tmp_path, monkeypatch, capsys):
    row = ["mid_2d", 1, 16, 16, [16, 16], 3, 2, 1, 1, 1, 1]
    layer = bench.Layer(*row)
    x, w, b = layer.arrays()
    assert algorithms.choose(transposed_spec("t", x, w, b, *layer.args())) != "scatter"  # not by auto
    calls = []
    scatter = algorithms.TRANSPOSED["scatter"]

    def counted(*args):
        calls.append(1)
        return scatter(*args)

    monkeypatch.setitem(algorithms.TRANSPOSED, "scatter", counted)
    monkeypatch.setattr(bench_machine, "SETTLE_SECONDS", 0.0)
    monkeypatch.setattr(bench_machine, "sgemm_peak", lambda *a: 100.0)  # measured in tiny_run
    monkeypatch.setattr(bench_machine, "copy_bandwidth", lambda *a: 10.0)
    (tmp_path / "layers.json").write_text(json.dumps([row]))
    code = cli.main(["bench", "--layers", str(tmp_path / "layers.json"), "--seconds", "0", "--runs", "1",
                     "--threads", "1", "--no-backward", "--algorithm", "scatter", "--output",
                     str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 0 and "tconv forward algorithm: scatter (--algorithm)" in out
    header, rows = table(out, "layer")
    assert rows[0][0] == "mid_2d" and rows[0][header.index("algorithm")] == "scatter"
    assert len(calls) >= 4  # the check, 2 warm-ups, 1 timed run, the memory measurement
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["algorithm"] == "scatter" and result["rows"][0]["max_error"] < 1e-5


def test_the_shipped_layer_list_loads():
    layers = bench.load_layers()
    assert len(layers) == 14 and layers[0].name == "dcgan_g1"
    assert layers[8].kernel == (64, 64) and layers[8].stride == (32, 32)  # fcn_up32


# --------------------------------------------------------------------------- tconv bench --dask

DASK_TINY = [["tiny_dask", 1, 4, 3, [12, 10], 3, 2, 1, 1, 1, 1]]


@pytest.fixture(scope="module")
def dask_run(tmp_path_factory):
    """One ``tconv bench --dask`` of :data:`DASK_TINY` enlarged to ~10 KiB of input (5 samples of 1920
    bytes) at two chunk sizes (1 KiB: a sample split in two along its rows; 4 KiB: two samples), one
    run each, on a cluster of one worker thread in this process: printed output, stderr, JSON, folder."""
    pytest.importorskip("distributed")
    pytest.importorskip("zarr")
    from tconv.bench import dask as bench_dask

    folder = tmp_path_factory.mktemp("bench-dask")
    (folder / "layers.json").write_text(json.dumps(DASK_TINY))
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        mp.setattr(bench_dask, "PROCESSES", False)  # a cluster in this process starts at once
        code = cli.main(["bench", "--dask", "--layers", str(folder / "layers.json"), "--dask-mb", "0.01",
                         "--chunk-mb", "0.001,0.004", "--runs", "1", "--threads", "1", "--output",
                         str(folder / "d")])
    assert code == 0, err.getvalue()
    return out.getvalue(), err.getvalue(), json.loads((folder / "d.json").read_text()), folder


def test_bench_dask_compares_a_cluster_with_memory(dask_run):
    from tconv.bench import dask as bench_dask

    out, err, result, folder = dask_run
    assert out.startswith("dask: a LocalCluster of 1 worker thread (in this process) x 1 thread against "
                          "tconv in memory with 1 thread; inputs of ~0.01 MiB, chunks of 0.001, 0.004 MiB")
    header, rows = table(out, "layer")
    assert header[:3] == ["layer", "input", "chunk"] and "dask / memory" in header
    assert [r[0] for r in rows] == ["tiny_dask", "tiny_dask", "**geometric mean**"]
    assert [r[2] for r in rows[:2]] == ["1x4x6x10", "2x4x12x10"]  # rows split in two; two samples
    assert all(re.fullmatch(r"\d+\.\d\dx", r[header.index("dask / memory")]) for r in rows[:2])
    assert result["threads"] == result["workers"] == 1 and result["threads_per_worker"] == 1
    assert result["processes"] is False and result["runs"] == 1 and result["chunk_mb"] == [0.001, 0.004]
    layer = bench.Layer(*result["layers"][0])
    assert layer.N == 5 and layer.row()[1:] == [5, *DASK_TINY[0][2:]]
    for row, size in zip(result["rows"], (0.001, 0.004)):
        assert row["chunks"] == list(bench_dask.input_chunks((5, 4, 12, 10), 4, size * 2**20))
        assert row["input_shape"] == [5, 4, 12, 10] and row["tasks"] > 0
        assert row["max_error"] < 1e-5  # the cluster wrote the in-memory numbers
        assert row["ratio"] == pytest.approx(row["dask_ms"]["total"] / row["memory_ms"]["total"])
        assert row["memory_ms"]["conv"] <= row["memory_ms"]["total"]
        assert row["dask_ms"]["graph"] <= row["dask_ms"]["total"]
        assert row["block_mib"] > 0 and row["chunk_mib"] > 0 and row["stored_chunks"]
        assert len(row["worker_peak_mib"]) == 1
        assert row["worker_peak_mib"][0] >= row["worker_idle_mib"][0] > 0
    assert result["geomean_ratio"] > 0 and result["max_ratio"] == max(r["ratio"] for r in result["rows"])
    assert "100% Completed" in err and result["progress"] is True  # the progress bar, on stderr
    md = (folder / "d.md").read_text()
    assert "(progress bar on)" in md and "1-minute load average " in md
    assert len(result["load_average_start_end"]) == 2
    assert md.startswith("Machine: ") and "| tiny_dask | 5x4x12x10" in md and "**in memory**" in md


def test_bench_dask_defaults_and_refusals(capsys, monkeypatch):
    pytest.importorskip("distributed")
    from tconv.bench import dask as bench_dask

    assert cli.main(["bench", "--dask", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(bench_dask.DASK_LAYERS)
    assert "N=14 " in lines[0]  # unet_up4's batch enlarged to ~256 MiB of input (19.7 MB a sample)
    for argv, message in ((["--chunk-mb", "0"], "bench: --chunk-mb must be positive sizes in MiB"),
                          (["--chunk-mb", "a,b"], "bench: --chunk-mb must be positive sizes in MiB"),
                          (["--dask-mb", "0"], "bench: --dask-mb must be a positive size in MiB"),
                          (["--runs", "0"], "bench: runs must be a positive int, got 0"),
                          (["--only", "nope"], "bench: --only names no layer of the suite: nope")):
        assert cli.main(["bench", "--dask", *argv]) == 2
        assert message in capsys.readouterr().err


def test_input_chunks_and_scaled_layers():
    from tconv.bench import dask as bench_dask

    unet = next(layer for layer in bench.load_layers() if layer.name == "unet_up4")
    assert bench_dask.scaled(unet, 256 * 2**20).N == 14 and bench_dask.scaled(unet, 1).N == 1  # never less
    chunks = bench_dask.input_chunks
    assert chunks((14, 128, 196, 196), 4, 16 * 2**20) == (1, 128, 98, 196)
    assert chunks((1, 8, 4, 4, 4), 4, 64) == (1, 8, 1, 1, 2)  # a 3-d sample split along every axis
    assert chunks((3, 8, 4), 4, 2**20) == (3, 8, 4)  # never more than the batch


def test_peak_resident_memory_is_measured(monkeypatch):
    pytest.importorskip("psutil")
    from tconv.bench import dask as bench_dask

    def grow() -> int:
        base = bench_dask.reset_peak()
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        time.sleep(0.05)  # the sampler's interval is 10 ms
        peak = bench_dask.read_peak()
        del block
        return peak - base

    assert grow() >= 60 * 2**20  # the kernel's high-water mark (Linux)
    monkeypatch.setattr(bench_dask, "_vm_hwm", lambda: (_ for _ in ()).throw(ValueError("none")))
    try:
        assert grow() >= 60 * 2**20  # the sampling thread
    finally:
        bench_dask._stop_sampler()
