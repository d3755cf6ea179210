"""tconv's thread count: the setting, its default from the environment, and what it governs
(the engine's workers, BLAS in the calling thread, the compiled loops)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

import tconv
from tconv.engine import algorithms, fast, kernels, threads


@pytest.fixture(autouse=True)
def restore_count():
    saved = tconv.get_num_threads()
    yield
    tconv.set_num_threads(saved)


def test_set_get_and_the_context_manager_restore():
    tconv.set_num_threads(3)
    assert tconv.get_num_threads() == 3
    with tconv.num_threads(1) as n:
        assert n == 1 and tconv.get_num_threads() == 1
        with tconv.num_threads(np.int64(2)):  # any integer type
            assert tconv.get_num_threads() == 2
        assert tconv.get_num_threads() == 1
    assert tconv.get_num_threads() == 3
    with pytest.raises(RuntimeError), tconv.num_threads(5):
        raise RuntimeError
    assert tconv.get_num_threads() == 3


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                        ("2", TypeError), (True, TypeError), (None, TypeError)])
def test_bad_counts_are_refused_and_change_nothing(bad, error):
    tconv.set_num_threads(2)
    with pytest.raises(error, match=r"set_num_threads: n must be a positive int"):
        tconv.set_num_threads(bad)
    with pytest.raises(error, match=r"num_threads: n must be a positive int"):
        with tconv.num_threads(bad):
            pass  # pragma: no cover
    assert tconv.get_num_threads() == 2


def _count_at_import(**env) -> tuple[int, str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-c", "import sys, tconv; print(tconv.get_num_threads()); "
                               "print(sorted({'numba', 'threadpoolctl'} & set(sys.modules)))"],
        capture_output=True, text=True, env=environ, check=True)
    count, loaded = done.stdout.split("\n", 1)
    return int(count), loaded.strip()


def test_the_environment_sets_the_default_at_import():
    assert _count_at_import(OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="2") == (1, "[]")
    assert _count_at_import(NUMBA_NUM_THREADS="1")[0] == 1
    assert _count_at_import()[0] == threads.available_cpus()
    assert _count_at_import(OMP_NUM_THREADS="3,1")[0] == 3  # OpenMP's nested list: the outer level
    with pytest.warns(RuntimeWarning, match="OMP_NUM_THREADS='many'"):
        assert threads.default_num_threads({"OMP_NUM_THREADS": "many", "NUMBA_NUM_THREADS": "2"}) == 2


def _blas_threads() -> int:
    return max(lib.get_num_threads() for lib in threads._blas())


@pytest.fixture
def spy_jobs(monkeypatch):
    """Record, for every job the engine runs: the thread it ran in and BLAS's thread count there."""
    seen = []
    real_run = fast._run

    def run(jobs, work=None):
        def watched(job):
            def go():
                seen.append((threading.current_thread(), _blas_threads()))
                job()
            return go
        real_run([watched(job) for job in jobs], work)

    monkeypatch.setattr(fast, "_run", run)
    return seen


def test_one_thread_means_one_worker_in_the_calling_thread(spy_jobs):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 32, 24, 24)), rng.standard_normal((32, 32, 4, 4))
    assert 2 * 24 * 24 * 32 * 32 * 16 >= fast.PARALLEL_MIN_WORK  # big enough for several workers
    blas_before = _blas_threads()
    results = {}
    for n in (1, 2, 3):
        spy_jobs.clear()
        with tconv.num_threads(n):
            results[n] = tconv.conv_transpose(x, w, stride=2, algorithm="gemm")
        ran_in = {t for t, _ in spy_jobs}
        assert len(spy_jobs) == n, n  # two samples, or (n=3) 32 output channels in three shares
        if n == 1:
            assert ran_in == {threading.current_thread()}
        else:  # the first share in the calling thread, the others on the workers
            assert [t for t, _ in spy_jobs].count(threading.current_thread()) == 1
            assert all(t.name.startswith("tconv") for t in ran_in - {threading.current_thread()})
        assert {b for _, b in spy_jobs} == {1}  # one-thread BLAS in every job (n=1: held to n)
    assert _blas_threads() == blas_before  # BLAS's own count is given back
    np.testing.assert_array_equal(results[1], results[2])
    np.testing.assert_array_equal(results[1], results[3])
    # the backward pass (correlate) shares its chunks the same way
    g = rng.standard_normal(results[1].shape)
    spy_jobs.clear()
    with tconv.num_threads(1):
        one = tconv.conv_transpose_backward(g, x, w, 2, 0, 0, 1, 1)
    assert {t for t, _ in spy_jobs} == {threading.current_thread()}
    spy_jobs.clear()
    with tconv.num_threads(2):
        two = tconv.conv_transpose_backward(g, x, w, 2, 0, 0, 1, 1)
    assert len(spy_jobs) == 2 and len({t for t, _ in spy_jobs}) == 2
    assert threading.current_thread() in {t for t, _ in spy_jobs}
    for a, b in zip(one, two):  # the weight gradient is summed per worker: rounding may differ
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_direct_shares_its_planes_among_the_workers(monkeypatch):
    calls = []
    real = kernels.direct

    def direct(*args):
        calls.append((threading.current_thread(), args[-2], args[-1]))  # the plane range
        return real(*args)

    monkeypatch.setattr(kernels, "direct", direct)
    monkeypatch.setattr(fast, "PARALLEL_MIN_WORK", 0)
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 8, 20, 20)), rng.standard_normal((8, 1, 3, 3))
    with tconv.num_threads(1):
        one = tconv.conv_transpose(x, w, stride=2, groups=8, algorithm="direct")
    assert [(lo, hi) for _, lo, hi in calls] == [(0, 16)]
    calls.clear()
    with tconv.num_threads(2):
        two = tconv.conv_transpose(x, w, stride=2, groups=8, algorithm="direct")
    assert sorted((lo, hi) for _, lo, hi in calls) == [(0, 8), (8, 16)]
    assert len({t for t, _, _ in calls}) == 2 and threading.current_thread() in {t for t, _, _ in calls}
    np.testing.assert_array_equal(one, two)


#: Threads calling every fast algorithm at once, each checking its results; run in a child, as an
#: abort (numba's workqueue layer ends the process when two threads enter a parallel region) would
#: end pytest too.
CONCURRENT = """
import threading, numpy as np, tconv
from tconv.engine import fast
fast.PARALLEL_MIN_WORK = 0  # the workers on every call
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
cases = [(w, groups, algorithm) for algorithm in ("gemm", "direct", "phase", "subpixel")
         for w, groups in ((rng.standard_normal((8, 1, 4, 4)).astype(np.float32), 8),
                           (rng.standard_normal((8, 6, 3, 3)).astype(np.float32), 1))]
expected = [tconv.conv_transpose(x, w, None, 2, 1, 0, g, algorithm="scatter") for w, g, _ in cases]
wrong = []
def caller():
    for _ in range(15):
        for (w, g, algorithm), want in zip(cases, expected):
            y = tconv.conv_transpose(x, w, None, 2, 1, 0, g, algorithm=algorithm)
            if not np.allclose(y, want, rtol=1e-4, atol=1e-4):
                wrong.append(algorithm)
callers = [threading.Thread(target=caller) for _ in range(4)]
for t in callers: t.start()
for t in callers: t.join()
print("wrong", sorted(set(wrong)))
"""


def test_concurrent_callers_stay_exact_and_alive():
    done = subprocess.run([sys.executable, "-c", CONCURRENT], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "wrong []"


def test_blas_limit_only_lowers_and_restores():
    top = _blas_threads()
    with threads.blas_limit(1):
        assert _blas_threads() == 1
    assert _blas_threads() == top
    with threads.blas_limit(top + 5):  # never raises BLAS's count
        assert _blas_threads() == top


def test_a_problem_whose_every_chunk_is_cropped_away_runs_no_jobs():
    """Output pixels none of the input reaches (an output_padding strip): no worker is started, the
    output is the bias alone (found by the pairwise algorithm test)."""
    x = np.ones((1, 8, 1), np.float32)
    w = np.ones((8, 8, 1), np.float32)
    b = np.arange(8, dtype=np.float32)
    y = tconv.conv_transpose(x, w, b, padding=1, output_padding=2, dilation=3, algorithm="gemm")
    expected = torch.nn.functional.conv_transpose1d(torch.tensor(x), torch.tensor(w), torch.tensor(b),
                                                    padding=1, output_padding=2, dilation=3).numpy()
    np.testing.assert_allclose(y, expected)


def test_callers_take_turns_but_one_thread_callers_do_not_wait():
    """The engine serves one call at a time (fast._run): a second caller waits for the first; a
    caller that asked for one thread (a dask task) runs beside them."""
    holding, release = threading.Event(), threading.Event()
    finished = []

    def first():
        def hold():
            holding.set()
            release.wait(10)
        with tconv.num_threads(2):
            fast._run([hold, lambda: None])
        finished.append("first")

    def second():
        fast._run([lambda: None])
        finished.append("second")

    def task():
        with threads.thread_num_threads(1):
            fast._run([lambda: None])
        finished.append("task")

    a = threading.Thread(target=first)
    a.start()
    assert holding.wait(10)
    with tconv.num_threads(2):
        b, c = threading.Thread(target=second), threading.Thread(target=task)
        b.start(), c.start()
        c.join(10)
        b.join(0.3)
    assert finished == ["task"]  # the one-thread caller ran; the other waits its turn
    release.set()
    a.join(10), b.join(10)
    assert sorted(finished) == ["first", "second", "task"]


def test_blas_runs_one_thread_per_caller_while_several_are_inside():
    libs = [lib for lib in threads._blas() if (lib.get_num_threads() or 0) > 1]
    if not libs:
        pytest.skip("no BLAS here runs more than one thread")
    before = [lib.get_num_threads() for lib in libs]
    inside, leave = threading.Event(), threading.Event()

    def other():
        with threads.blas_limit(threads.CPUS):
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=other)
    t.start()
    assert inside.wait(10)
    assert [lib.get_num_threads() for lib in libs] == before  # one caller with the full count
    with threads.blas_limit(threads.CPUS):
        assert all(lib.get_num_threads() == 1 for lib in libs)  # two: one thread each
    assert [lib.get_num_threads() for lib in libs] == before
    leave.set()
    t.join(10)
    assert [lib.get_num_threads() for lib in libs] == before


def test_the_engine_never_runs_blas_s_own_threads():
    """``_run``'s jobs, one or several, multiply with one-thread BLAS (BLAS's threads, left spinning
    after a threaded product, would take the cores from the next call's workers), unless a single
    job's work is too small for BLAS to thread; BLAS's count comes back after; ``_single_pixel``'s
    one product is shared by the workers instead. A library scanned after the first limit
    (``forget_blas``) joins the next one."""
    seen = []

    def job():
        seen.append(_blas_threads())

    top = _blas_threads()
    for n in sorted({1, threads.CPUS}):
        with tconv.num_threads(n):
            fast._run([job])
            fast._run([job, job])
            fast._run([job], fast.BLAS_SERIAL_WORK)
    assert set(seen) == {1} and _blas_threads() == top
    with tconv.num_threads(threads.CPUS):  # too small for BLAS to thread: its count is left be
        fast._run([job], fast.BLAS_SERIAL_WORK - 1)
    assert seen[-1] == top
    if threads.CPUS > 1:
        with tconv.num_threads(2):
            spec = tconv.core.spec.transposed_spec(
                "t", np.zeros((64, 256, 1, 1), np.float32), np.zeros((256, 256, 4, 4), np.float32), None)
            assert fast.single_product(spec) == "single_pixel"
            assert fast._ranges(256 * 16, algorithms.multiply_adds(spec)) == [(0, 2048), (2048, 4096)]
    threads.forget_blas()
    with threads.blas_limit(1):
        assert _blas_threads() == 1
    assert _blas_threads() == top
