"""``tconv bench``: every layer through tconv and its peers in one run (:func:`run`), the backward
pass against torch autograd, and the command's entry point (:func:`main`)."""

from __future__ import annotations

import functools
import math
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict

import numpy as np

from ..core.functional import conv_transpose, conv_transpose_backward
from ..engine.threads import num_threads
from .machine import blas, header, limit_seconds, machine, rates, timeit, timings
from .memory import peak_extra_memory
from .random_layers import random_layers
from .report import Row, fmt, geomean, markdown, per_call_line, threads_line, write_results
from .suite import Layer, load_layers
from .systems import AGREEMENT, make_runners, openvino_config, ran_algorithm, tconv_layer, torch_threads


def run(layers: list[Layer], threads: int = 2, min_seconds: float = 1.0, backward: bool = True,
        out=None, min_runs: int = 5, algorithm: str = "auto", suite: str | None = None,
        profile: bool = False) -> dict:
    """Run ``layers`` with ``threads`` threads for every system; print progress and tables; return
    everything as a dict. Each time is the median of at least ``min_runs`` runs and ``min_seconds``
    (in all its rounds, below).

    ``algorithm``: tconv's algorithm for the forward table (``auto``, or a name of
    :data:`tconv.ALGORITHMS`); a layer it refuses is skipped with a note. ``suite``: how the layers
    were chosen, written in the header (e.g. ``--random 11 16``). tconv's thread count, NumPy's BLAS
    and PyTorch's count are given back afterwards. ``out``: where to print (default: ``sys.stdout`` at
    the time of the call). ``profile``: also time each layer's matrix products alone
    (:mod:`tconv.bench.profile`; ``auto`` only).

    A layer's systems are timed in :data:`ROUNDS` rounds, in turn; each system's time is the median
    of all its runs, and its least disturbed run (the fastest) is reported beside it, with the best
    peer's over tconv's (``least_disturbed_ratio``): where the two ratios disagree, the machine was
    disturbed while the layer ran.
    """
    from threadpoolctl import threadpool_limits

    from ..engine.algorithms import ALGORITHMS

    out = out or sys.stdout
    for name, value, low in (("threads", threads, 1), ("min_runs", min_runs, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"bench: {name} must be a positive int, got {value!r}")
    if isinstance(min_seconds, bool) or not isinstance(min_seconds, (int, float)) or not min_seconds >= 0:
        raise ValueError(f"bench: seconds must be a number >= 0, got {min_seconds!r}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"bench: algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    if not layers:
        raise ValueError("bench: no layers to run (check --only)")
    torch_before = torch_threads()
    try:
        with num_threads(threads), threadpool_limits(threads):
            print(threads_line(threads), file=out, flush=True)
            print("\n".join(header(blas())), file=out, flush=True)
            return _run(layers, threads, min_seconds, backward, out, min_runs, algorithm, suite,
                        profile and algorithm == "auto")
    finally:
        if torch_before is not None:
            import torch

            torch.set_num_threads(torch_before)


#: A layer whose call is nearly all overhead (0.1 MFLOP: 1x8x8x8, 8 -> 8 channels, k4 s2 p1): what a
#: decoder of small layers pays per layer before any arithmetic, measured beside the suite.
PER_CALL_LAYER = Layer("per_call", 1, 8, 8, (8, 8), (4, 4), (2, 2), (1, 1), (0, 0), 1, (1, 1))


def per_call(threads: int, min_runs: int, min_seconds: float, out) -> dict:
    """Each system's call of :data:`PER_CALL_LAYER` (tconv as a layer, its weight prepacked; the peers
    as in the suite), microseconds (None: not installed or refused), and tconv's over the fastest
    peer's; printed on ``out``."""
    layer = PER_CALL_LAYER
    x, w, b = layer.arrays()
    runners = {"tconv": tconv_layer(layer, x, w, b), **make_runners(layer, x, w, b, threads, {}, out)}
    us: dict[str, float | None] = {}
    for name, fn in runners.items():
        us[name] = None
        if fn is not None:
            try:
                fn()  # the warm-up call: a layer prepacks, a runtime builds its session
            except Exception:  # noqa: BLE001 - as in the suite: a peer refusing it is a result
                continue
            us[name] = timeit(fn, min_runs, min_seconds) * 1e6
    tconv_us = us["tconv"]
    assert tconv_us is not None  # tconv's own call raises rather than being left out
    peers = [t for name, t in us.items() if name != "tconv" and t is not None]
    ratio = tconv_us / min(peers) if peers else None
    shape = layer.describe().split(maxsplit=1)[1].rsplit("  ", 1)[0]  # its parameters, not its GFLOP
    result = {"layer": f"{shape}, {layer.flops / 1e6:.2f} MFLOP", "us": us, "tconv_over_fastest_peer": ratio}
    print(per_call_line(result), file=out, flush=True)
    return result


def _run(layers: list[Layer], threads: int, min_seconds: float, backward: bool, out, min_runs: int,
         algorithm: str, suite: str | None, profile: bool = False) -> dict:
    from ..core.spec import transposed_spec
    from ..engine import algorithms

    # The machine's rates are measured before and after the layers, and the higher of the two sets the
    # limits: on a shared machine one measurement taken while another process runs would understate the
    # machine and put a limit above what a system can reach.
    start = rates(threads, min_runs, min_seconds, "start", out)
    call = per_call(threads, min_runs, min_seconds, out)
    if algorithm != "auto":
        print(f"tconv forward algorithm: {algorithm} (--algorithm)", file=out)
    rows: list[tuple[Layer, Row]] = []
    back: list[dict] = []
    profiles: list[dict] = []
    failures: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for layer in layers:
        x, w, b = layer.arrays()
        if algorithm == "auto":  # a layer: its weight prepacked on the first call, as a session is built
            ours = tconv_layer(layer, x, w, b)
        else:
            ours = functools.partial(conv_transpose, x, w, b, *layer.args(), algorithm=algorithm)
        try:
            y = ours()
        except (ValueError, MemoryError) as exc:  # e.g. ``matrix`` refuses a matrix over its limit
            skipped[layer.name] = str(exc)
            print(f"  {layer.name:<12} skipped: tconv ({algorithm}): {exc}", file=out, flush=True)
            continue
        runners = make_runners(layer, x, w, b, threads, failures, out)
        errors: dict[str, float] = {}
        scale = float(np.abs(y).max()) or 1.0
        timed: dict[str, Callable[[], object]] = {"tconv": ours}
        for name, fn in runners.items():
            if fn is None:
                continue
            try:
                ref = fn()
            except Exception as exc:  # noqa: BLE001 - as in make_runners: refused at run time
                failures[f"{layer.name}/{name}"] = f"{type(exc).__name__}: {exc}"
                print(f"  {layer.name:<12} {name} failed: {type(exc).__name__}: {exc}", file=out)
                continue
            errors[name] = float(np.abs(ref - y).max()) / scale
            if errors[name] > AGREEMENT:
                print(f"  {layer.name:<12} {name} DISAGREES with tconv: max relative error "
                      f"{errors[name]:.1e}", file=out)
            timed[name] = fn
        runs = _rounds(timed, min_runs, min_seconds)
        tconv_seconds = statistics.median(runs["tconv"])
        times: dict[str, float | None] = {name: None for name in runners}
        times.update({name: statistics.median(r) for name, r in runs.items()})
        least = {name: min(r) * 1e3 for name, r in runs.items()}
        peers = {k: t for k, t in times.items() if k != "tconv" and t is not None}
        best_peer = min(peers, key=lambda k: peers[k]) if peers else None
        ratio = peers[best_peer] / tconv_seconds if best_peer else None
        memory = peak_extra_memory(ours) / (x.nbytes + y.nbytes)
        spec = transposed_spec("bench", x, w, b, *layer.args())

        def ms(t: float | None) -> float | None:
            return None if t is None else t * 1e3

        # the limit columns are filled in once the machine's rates are measured again, after the layers
        row = Row(layer.name, layer.flops / 1e9, tconv_seconds * 1e3, ms(times["torch"]),
                  ms(times["onnxruntime"]), ms(times["openvino"]), ratio, best_peer, math.nan, "",
                  math.nan, layer.flops / tconv_seconds / 1e9, math.nan, memory,
                  max(errors.values(), default=0.0), errors,
                  (ran_algorithm(ours) or algorithms.choose(spec)) if algorithm == "auto" else algorithm,
                  least, min(least[k] for k in peers) / least["tconv"] if peers else None)
        if profile:
            from .profile import profile as products_alone

            found = products_alone(spec, threads, min_runs, min_seconds / 4, row.algorithm)
            seconds = found["product_seconds"]
            profiles.append({"name": layer.name, "algorithm": found["algorithm"],
                             "products": found["products"], "tconv_ms": row.tconv_ms,
                             "products_ms": None if seconds is None else seconds * 1e3})
        rows.append((layer, row))
        print(f"  {layer.name:<12} tconv {row.tconv_ms:9.2f} ms  torch {fmt(row.torch_ms, '9.2f')} ms"
              f"  ort {fmt(row.ort_ms, '9.2f')} ms  openvino {fmt(row.openvino_ms, '9.2f')} ms"
              f"  ratio {fmt(ratio)} (least disturbed {fmt(row.least_disturbed_ratio)})"
              f"  tconv {row.gflops:.1f} GFLOP/s  [{row.algorithm}]"
              f"  err {row.max_error:.1e}", file=out, flush=True)
        if backward and runners["torch"] is not None:
            back.append(_backward_row(layer, x, w, b, threads, min_runs, min_seconds, out))
    end = rates(threads, min_runs, min_seconds, "end", out)
    peak, bandwidth = max(start[0], end[0]), max(start[1], end[1])
    for layer, row in rows:
        limit, row.limit_bound = limit_seconds(layer, peak, bandwidth)
        row.limit_ms, row.tconv_over_limit = limit * 1e3, row.tconv_ms / 1e3 / limit
        row.peak_fraction = row.gflops / peak
    ratios = [r.ratio for _, r in rows if r.ratio]
    least_ratios = [r.least_disturbed_ratio for _, r in rows if r.least_disturbed_ratio]
    over = [r.tconv_over_limit for _, r in rows]
    result = {
        "machine": machine(threads),
        "sgemm_peak_gflops": peak,
        "copy_gbs": bandwidth,
        "sgemm_gflops_start_end": [start[0], end[0]],
        "copy_gbs_start_end": [start[1], end[1]],
        "threads": threads,
        "openvino_config": openvino_config(threads),
        "min_runs": min_runs,
        "min_seconds": min_seconds,
        "algorithm": algorithm,
        "suite": suite,
        "layers": [layer.row() for layer in layers],
        "rows": [asdict(r) for _, r in rows],
        "geomean_ratio": geomean(ratios),
        "min_ratio": min(ratios) if ratios else None,
        "geomean_least_disturbed_ratio": geomean(least_ratios),
        "min_least_disturbed_ratio": min(least_ratios) if least_ratios else None,
        "geomean_tconv_over_limit": geomean(over),
        "max_tconv_over_limit": max(over) if over else None,
        "failures": failures,
        "skipped": skipped,
        "backward": back,
        "backward_geomean_ratio": geomean([r["ratio"] for r in back]),
        "per_call": call,
        "profile": profiles,
    }
    print(file=out)
    print(markdown(result), file=out)
    return result


#: Each layer's systems are timed in this many rounds (tconv, then the peers; then the peers, then
#: tconv), each round a share of the runs and seconds: on a shared machine a disturbance lasting a
#: fraction of a second (a neighbour's burst) then lands in one round of one system rather than in
#: all of its runs, and every system has runs on either side of it.
ROUNDS = 2


def _rounds(timed: dict[str, Callable[[], object]], min_runs: int,
            min_seconds: float) -> dict[str, list[float]]:
    """Every run's seconds per system of ``timed`` (name: callable), in :data:`ROUNDS` rounds."""
    runs: dict[str, list[float]] = {name: [] for name in timed}
    names = list(timed)
    for i in range(ROUNDS):
        for name in names if i % 2 == 0 else names[::-1]:
            runs[name] += timings(timed[name], -(-min_runs // ROUNDS), min_seconds / ROUNDS)
    return runs


def _backward_row(layer: Layer, x, w, b, threads: int, min_runs: int, min_seconds: float, out) -> dict:
    import torch

    torch.set_num_threads(threads)
    y = conv_transpose(x, w, b, *layer.args())
    g = np.random.default_rng(1).standard_normal(y.shape, dtype=np.float32)
    ours = lambda: conv_transpose_backward(g, x, w, *layer.args())  # noqa: E731
    fn = getattr(torch.nn.functional, f"conv_transpose{layer.rank}d")
    xt, wt, bt, gt = (torch.from_numpy(a) for a in (x, w, b, g))

    def theirs():
        xs, ws, bs = (t.detach().requires_grad_(True) for t in (xt, wt, bt))
        fn(xs, ws, bs, *layer.args()).backward(gt)
        return xs.grad, ws.grad, bs.grad

    mine, ref = ours(), theirs()
    error = max(float(np.abs(a - r.numpy()).max() / (np.abs(r.numpy()).max() or 1))
                for a, r in zip(mine, ref))
    t_ours = timeit(ours, min_runs, min_seconds)
    t_torch = timeit(theirs, min_runs, min_seconds)
    row = {"name": layer.name, "tconv_ms": t_ours * 1e3, "torch_ms": t_torch * 1e3,
           "ratio": t_torch / t_ours, "max_error": error}
    print(f"  {layer.name:<12} backward: tconv {t_ours * 1e3:9.2f} ms  torch autograd "
          f"{t_torch * 1e3:9.2f} ms  ratio {t_torch / t_ours:.2f}  err {error:.1e}", file=out,
          flush=True)
    return row


def main(args) -> int:
    """``tconv bench``: the suite (or ``--layers``, ``--random``, ``--only``) with ``--threads`` for
    every system; ``--list`` prints the layers' parameters and times nothing. (``--dask`` is
    :func:`tconv.bench.dask.main`.)"""
    layers = select_layers(args)
    suite = f"--random {args.random[0]} {args.random[1]}" if args.random else None
    if args.list or args.random:
        if args.random:
            print(f"layers of {suite} (numpy.random.default_rng({args.random[0]})):")
        for layer in layers:
            print(f"  {layer.describe()}")
        if args.list:
            return 0
    result = run(layers, threads=args.threads, min_seconds=args.seconds, backward=not args.no_backward,
                 min_runs=5 if args.runs is None else args.runs, algorithm=args.algorithm, suite=suite,
                 profile=getattr(args, "profile", False))
    if args.output:
        write_results(args.output, result, markdown(result))
    return 0


def select_layers(args, default: Sequence[str] | None = None) -> list[Layer]:
    """The layers a benchmark runs: ``--random SEED COUNT``, else ``--layers`` or the suite (with
    neither, and no ``--only``, the suite's layers named in ``default`` when given: ``tconv bench
    --dask`` runs :data:`tconv.bench.dask.DASK_LAYERS`); then ``--only`` (unknown names are an error)."""
    layers = random_layers(*args.random) if args.random else load_layers(args.layers)
    if default is not None and not (args.random or args.layers or args.only):
        layers = [layer for layer in layers if layer.name in default]
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(wanted) - {layer.name for layer in layers})
        if unknown:
            raise ValueError(f"bench: --only names no layer of the suite: {', '.join(unknown)}")
        layers = [layer for layer in layers if layer.name in wanted]
    return layers
