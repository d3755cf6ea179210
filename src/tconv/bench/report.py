"""The results as tables: one :class:`Row` per layer, the Markdown tables with their conditions
above them, and the results' ``.md`` and ``.json`` files."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .systems import PEERS


@dataclass
class Row:
    name: str
    gflop: float
    tconv_ms: float
    torch_ms: float | None
    ort_ms: float | None
    openvino_ms: float | None
    ratio: float | None
    best_peer: str | None
    limit_ms: float
    limit_bound: str
    tconv_over_limit: float
    gflops: float
    peak_fraction: float
    memory: float
    max_error: float
    errors: dict[str, float]
    algorithm: str
    #: per system its least disturbed run (the fastest), ms; and the best peer's over tconv's
    least_ms: dict[str, float] = field(default_factory=dict)
    least_disturbed_ratio: float | None = None


def fmt(v: float | None, spec: str = ".2f", unit: str = "") -> str:
    return "—" if v is None else format(v, spec) + unit


def threads_line(threads: int) -> str:
    """What :func:`run` prints and writes about threads."""
    return (f"threads: {threads} for every system (tconv's workers, BLAS and numba loops; PyTorch; "
            f"ONNX Runtime's intra-op threads; OpenVINO's INFERENCE_NUM_THREADS; NumPy's BLAS)")


def geomean(values: list[float]) -> float | None:
    return math.exp(statistics.fmean(map(math.log, values))) if values else None


def markdown(result: dict) -> str:
    """The result tables as Markdown."""
    m = result["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores; {threads_line(result['threads'])}; "
        f"NumPy {m['numpy']}; sgemm rate {result['sgemm_peak_gflops']:.1f} GFLOP/s, copy bandwidth "
        f"{result['copy_gbs']:.1f} GB/s (measured before and after the layers, the higher of the two).",
        *blas_lines(m),
    ]
    if result.get("per_call"):
        lines.append(f"Overhead: {per_call_line(result['per_call'])} (a layer whose call is nearly all "
                     f"overhead).")
    if result.get("suite"):
        lines.append(f"Layers: `tconv bench {result['suite']}` (parameters below).")
    if result.get("algorithm", "auto") != "auto":
        lines.append(f"tconv's forward algorithm: `{result['algorithm']}` (--algorithm).")
    lines += [
        "",
        "| layer | GFLOP | tconv ms | torch ms | ORT ms | OpenVINO ms | best peer / tconv | least disturbed "
        "| limit ms | tconv / limit | tconv GFLOP/s | % sgemm | extra memory / (in+out) | algorithm |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['name']} | {r['gflop']:.3f} | {r['tconv_ms']:.2f} | {fmt(r['torch_ms'])} | "
            f"{fmt(r['ort_ms'])} | {fmt(r['openvino_ms'])} | {fmt(r['ratio'], unit='x')} | "
            f"{fmt(r.get('least_disturbed_ratio'), unit='x')} | {r['limit_ms']:.2f} ({r['limit_bound']}) | "
            f"{r['tconv_over_limit']:.2f} | {r['gflops']:.1f} | "
            f"{100 * r['peak_fraction']:.0f} % | {r['memory']:.2f} | {r['algorithm']} |")
    lines.append(f"| **geometric mean** | | | | | | **{fmt(result['geomean_ratio'], unit='x')}** "
                 f"(min {fmt(result['min_ratio'], unit='x')}) | "
                 f"**{fmt(result.get('geomean_least_disturbed_ratio'), unit='x')}** "
                 f"(min {fmt(result.get('min_least_disturbed_ratio'), unit='x')}) | | "
                 f"**{fmt(result['geomean_tconv_over_limit'])}** "
                 f"(max {fmt(result['max_tconv_over_limit'])}) | | | | |")
    if result.get("profile"):
        lines += ["", "| profile | algorithm | tconv ms | products alone ms | products / tconv | rest ms "
                  "| products (count x rows x inner x columns) |", "|---|---|---:|---:|---:|---:|---|"]
        for r in result["profile"]:
            alone = r["products_ms"]
            shapes = ", ".join(f"{c}x{m}x{k}x{n}" for c, m, k, n in r["products"]) or "none"
            lines.append(f"| {r['name']} | {r['algorithm']} | {r['tconv_ms']:.2f} | {fmt(alone)} | "
                         f"{fmt(None if alone is None else 100 * alone / r['tconv_ms'], '.0f', ' %')} | "
                         f"{fmt(None if alone is None else r['tconv_ms'] - alone)} | {shapes} |")
    if result["backward"]:
        lines += ["", "| backward | tconv ms | torch autograd ms | torch / tconv |", "|---|---:|---:|---:|"]
        for r in result["backward"]:
            lines.append(f"| {r['name']} | {r['tconv_ms']:.2f} | {r['torch_ms']:.2f} | {r['ratio']:.2f}x |")
        lines.append(f"| **geometric mean** | | | **{result['backward_geomean_ratio']:.2f}x** |")
    if result.get("suite"):
        lines += ["", "| layer | N | C_in | C_out | input | kernel | stride | padding | output_padding "
                  "| groups | dilation |", "|---|---:|---:|---:|---|---|---|---|---|---:|---|"]
        for row in result["layers"]:
            lines.append("| " + " | ".join(
                "x".join(map(str, v)) if isinstance(v, list) else str(v) for v in row) + " |")
    return "\n".join(lines)


def per_call_line(call: dict) -> str:
    """The per-call overhead (:func:`tconv.bench.compare.per_call`) in one line.

    >>> print(per_call_line({"layer": "2d N=1 ...", "us": {"tconv": 250.0, "torch": 140.0,
    ...       "onnxruntime": 35.0, "openvino": None}, "tconv_over_fastest_peer": 250 / 35}))
    per call (2d N=1 ...): tconv 250 µs, torch 140 µs, ORT 35 µs, OpenVINO —; tconv / fastest peer 7.14x
    """
    labels = {"tconv": "tconv", **dict(PEERS)}
    times = ", ".join(f"{labels[k]} {fmt(v, '.0f', ' µs')}" for k, v in call["us"].items())
    ratio = fmt(call["tconv_over_fastest_peer"], unit="x")
    return f"per call ({call['layer']}): {times}; tconv / fastest peer {ratio}"


def blas_lines(m: dict) -> list[str]:
    """The results' lines on NumPy's BLAS (:mod:`tconv.bench.machine`): what ran, and the warning when
    its kernel is older than the CPU's (none for results written before they were recorded)."""
    blas = m.get("blas")
    if not blas:
        return []
    return [f"{blas['line']}."] + ([f"**Warning**: {blas['warning']}."] if blas["warning"] else [])


def write_results(output: str, result: dict, table: str) -> None:
    """``OUTPUT.json`` (the result) and ``OUTPUT.md`` (its table), folders made as needed."""
    base = Path(output)
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".json").write_text(json.dumps(result, indent=2))
    base.with_suffix(".md").write_text(table + "\n")
    print(f"\nwrote {base.with_suffix('.md')} and {base.with_suffix('.json')}")
