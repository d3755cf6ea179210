"""Measure the fast algorithms on many layers and refit ``auto``'s cost model (``tconv.engine.cost``).

    python benchmarks/cost_model.py measure times.json --seeds 0,1,2,3,4,5 --count 12
    python benchmarks/cost_model.py fit times.json

``measure`` times ``gemm``, ``phase``, ``direct`` and ``subpixel`` as a layer runs them (the weight
packed once; and, when installed, PyTorch, ONNX Runtime and OpenVINO) on the published suite (seed
0) and ``tconv bench --random SEED COUNT`` layers, with the machine figures the model scales by
(``tconv.engine.cost.machine``). ``fit`` grid-searches each algorithm's efficiency constants, fits
its coefficients by non-negative least squares on relative error (scipy), reports how often the
model's pick is the fastest, also with each seed held out, and prints ``MODEL`` and
``MACHINE_REFERENCE`` to paste into ``src/tconv/engine/cost.py``.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math

import numpy as np

import tconv
from tconv import bench
from tconv.bench.systems import make_runners
from tconv.core.spec import transposed_spec
from tconv.engine import algorithms, cost
from tconv.engine.packing import WeightCache, takes_cache

ALGORITHMS = ("gemm", "phase", "direct", "subpixel")
PEERS = ("torch", "onnxruntime", "openvino")
GRIDS = {
    "gemm": list(itertools.product([4, 8, 16, 32, 64], [8, 16, 32, 64, 128], [16, 64, 256],
                                   [1, 1.5, 2])),
    "phase": list(itertools.product([4, 8, 16, 32, 64], [4, 8, 16, 32], [16, 64, 256])),
    "direct": [(v,) for v in (1, 2, 4, 8, 16, 32, 64, 128)],
    "subpixel": list(itertools.product([4, 8, 16, 32, 64], [4, 8, 16, 32, 64], [1, 4, 16, 64])),
}


def measure(path: str, seeds: list[int], count: int, threads: int, again: list[str] | None = None) -> None:
    """Time every algorithm and peer on the layers into ``path``; with ``again``, only those
    algorithms, on the layers of the times already in ``path`` (after a change to them)."""
    tconv.set_num_threads(threads)
    if again:
        result = json.load(open(path))
        layers, rows = [bench.Layer(*r["row"]) for r in result["layers"]], result["layers"]
    else:
        layers = bench.load_layers() if 0 in seeds else []
        for seed in seeds:
            if seed:
                layers += bench.random_layers(seed, count)
        rows = []
        result = {"machine": cost.machine(), "threads": threads, "layers": rows}
    for i, layer in enumerate(layers):
        x, w, b = layer.arrays()
        row = rows[i] if again else {"name": layer.name, "row": layer.row()}
        spec = transposed_spec("measure", x, w, b, *layer.args())
        for name in again or ALGORITHMS:
            run, cache = algorithms.TRANSPOSED[name], WeightCache()
            cache.bind(w)
            extra = {"cache": cache} if takes_cache(run) else {}

            def fn(run=run, x=x, w=w, b=b, spec=spec, extra=extra):
                return run(spec, x, w, b, **extra)
            fn()
            row[name] = bench.timeit(fn, 3, 0.3, 1)
        for name, fn in make_runners(layer, x, w, b, threads, {}, io.StringIO()).items():
            if fn is not None and not again:
                fn()
                row[name] = bench.timeit(fn, 3, 0.3, 1)
        if not again:
            rows.append(row)
        print(layer.describe(), {k: round(v * 1e3, 2) for k, v in row.items() if isinstance(v, float)},
              flush=True)
        with open(path, "w") as f:
            json.dump(result, f)


def _spec(row: list):
    layer = bench.Layer(*row)
    x = np.empty((layer.N, layer.C_in, *layer.spatial), np.float32)
    w = np.empty((layer.C_in, layer.C_out // layer.groups, *layer.kernel), np.float32)
    return transposed_spec("fit", x, w, None, *layer.args())


def _fit(rows: list[dict], name: str):
    from scipy.optimize import nnls

    best = None
    y = np.array([r[name] for r in rows])
    # the last term, one call, is measured on tiny layers and kept (see tconv.engine.cost)
    one_call = cost.MODEL[name][1][-1]
    for v0 in GRIDS[name]:
        cost.MODEL[name] = (v0, cost.MODEL[name][1])
        X = np.array([cost.features(r["spec"], name) for r in rows])
        theta, _ = nnls(X[:, :-1] / y[:, None], (y - one_call * X[:, -1]) / y)
        theta = np.append(theta, one_call)
        err = float(np.mean(np.log(X @ theta / y) ** 2))
        if best is None or err < best[0]:
            best = (err, v0, theta)
    cost.MODEL[name] = (best[1], tuple(float(f"{c:.3g}") for c in best[2]))
    return best


def _score(rows: list[dict], figures) -> dict:
    picks = []
    for r in rows:
        est = cost.estimates(r["spec"], figures)
        pick = min(est, key=est.get)
        fastest = min(r[a] for a in ALGORITHMS)
        peers = [r[p] for p in PEERS if r.get(p)]
        picks.append((r[pick] / fastest, min(peers) / r[pick] if peers else None))
    slow = [p for p, _ in picks]
    vs = [math.log(v) for _, v in picks if v]
    return {"layers": len(rows), "within 3 % of the fastest": sum(p < 1.03 for p in slow),
            "worst": round(max(slow), 2),
            "geomean vs best peer": round(math.exp(sum(vs) / len(vs)), 3) if vs else None}


def fit(path: str) -> None:
    data = json.load(open(path))
    figures = tuple(data["machine"])
    # the coefficients come out in this machine's units: score (and print) them with it as reference
    cost.MACHINE_REFERENCE = figures
    rows = [dict(r, spec=_spec(r["row"])) for r in data["layers"]]
    for name in ALGORITHMS:
        err, v0, _ = _fit(rows, name)
        print(f"{name}: rms log error {math.sqrt(err):.2f}, v0 {v0}")
    print("all layers:", _score(rows, figures))
    model = dict(cost.MODEL)
    for prefix in sorted({r["name"].split("_")[0] for r in rows if r["name"].startswith("r")}):
        train = [r for r in rows if not r["name"].startswith(prefix + "_")]
        for name in ALGORITHMS:
            _fit(train, name)
        print(f"held out {prefix}:", _score([r for r in rows if r["name"].startswith(prefix + "_")],
                                            figures))
    print(f"MACHINE_REFERENCE = ({figures[0]:.1f}, {figures[1]:.1f})")
    print("MODEL = {")
    for name, (v0, coef) in model.items():
        print(f'    "{name}": ({tuple(v0)}, {coef}),')
    print("}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("path")
    m.add_argument("--seeds", default="0,1,2,3,4,5")
    m.add_argument("--count", type=int, default=12)
    m.add_argument("--threads", type=int, default=2)
    m.add_argument("--again", help="comma-separated algorithms to time again in an existing file")
    f = sub.add_parser("fit")
    f.add_argument("path")
    args = parser.parse_args()
    if args.command == "measure":
        measure(args.path, [int(s) for s in args.seeds.split(",")], args.count, args.threads,
                args.again.split(",") if args.again else None)
    else:
        fit(args.path)
