"""``tconv bench`` itself: a tiny layer list, one timed run, against PyTorch and ONNX Runtime."""

from __future__ import annotations

import json
import re

import pytest

import tconv
from tconv import bench, cli

TINY = [["tiny_2d", 1, 3, 2, [4, 4], 3, 2, 1, 1, 1, 1],
        ["tiny_1d_dw", 2, 4, 4, [9], 3, 2, 0, 0, 4, 2]]


def test_bench_runs_a_tiny_suite_and_writes_its_tables(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "SETTLE_SECONDS", 0.0)  # nothing else runs between the systems here
    layers = tmp_path / "layers.json"
    layers.write_text(json.dumps(TINY))
    before = tconv.get_num_threads()
    code = cli.main(["bench", "--layers", str(layers), "--seconds", "0", "--runs", "1", "--threads", "1",
                     "--output", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 0
    assert tconv.get_num_threads() == before  # the count bench set is given back
    line = "threads: 1 for every system (tconv's workers, BLAS and numba loops; PyTorch; ONNX Runtime; "
    assert out.startswith(line)

    table = [row for row in out.splitlines() if row.startswith("| tiny_")]
    assert [row.split("|")[1].strip() for row in table] == ["tiny_2d", "tiny_1d_dw", "tiny_2d", "tiny_1d_dw"]
    for row in table[:2]:  # forward: ms per system and the ratio best peer / tconv
        cells = [c.strip() for c in row.split("|")[2:-1]]
        gflop, tconv_ms, torch_ms, ort_ms, ratio = cells[:5]
        assert all(float(v) > 0 for v in (tconv_ms, torch_ms, ort_ms))
        assert re.fullmatch(r"\d+\.\d\dx", ratio) and float(ratio[:-1]) > 0
    for row in table[2:]:  # backward: tconv ms, torch autograd ms, torch / tconv
        assert re.fullmatch(r"\d+\.\d\dx", row.split("|")[4].strip())
    assert re.search(r"\| \*\*geometric mean\*\* \| \| \| \| \| \*\*\d+\.\d\dx\*\* \(min \d+\.\d\dx\)", out)

    md = (tmp_path / "r.md").read_text()
    assert md.splitlines()[0].startswith("Machine: ") and line in md.splitlines()[0]
    assert "| tiny_2d |" in md and "| tiny_1d_dw |" in md
    result = json.loads((tmp_path / "r.json").read_text())
    assert {"machine", "sgemm_peak_gflops", "threads", "min_runs", "rows", "geomean_ratio", "min_ratio",
            "backward", "backward_geomean_ratio"} <= set(result)
    assert result["threads"] == 1 and result["min_runs"] == 1
    assert [r["name"] for r in result["rows"]] == ["tiny_2d", "tiny_1d_dw"]
    for r in result["rows"]:
        assert r["max_error"] < 1e-5  # every system computed the same numbers
        assert r["ratio"] == pytest.approx(min(r["torch_ms"], r["ort_ms"]) / r["tconv_ms"])
    assert [r["name"] for r in result["backward"]] == ["tiny_2d", "tiny_1d_dw"]
    assert all(r["max_error"] < 1e-5 for r in result["backward"])


def test_bench_refuses_bad_counts(tmp_path, capsys):
    assert cli.main(["bench", "--threads", "0", "--seconds", "0"]) == 2
    assert "bench: threads must be a positive int, got 0" in capsys.readouterr().err


def test_the_shipped_layer_list_loads():
    layers = bench.load_layers()
    assert len(layers) == 14 and layers[0].name == "dcgan_g1"
