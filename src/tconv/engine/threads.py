"""How many threads tconv uses: one count for the engine's workers, BLAS and numba's parallel loops.

>>> import tconv
>>> with tconv.num_threads(1):       # for a block; tconv.set_num_threads(1) for good
...     tconv.get_num_threads()
1

The count governs:

- the fast engine's worker threads (:mod:`tconv.engine.fast`): ``gemm`` and ``correlate`` share their
  chunks among up to ``n`` workers, each running its BLAS products with one thread;
- a BLAS product run in the calling thread (one share, the reference algorithms): at most ``n``
  BLAS threads (threadpoolctl; skipped without a look at BLAS when ``n`` is at least the CPU count);
- the compiled loops (:mod:`tconv.engine.kernels`): serial, run by those workers, so at most ``n``
  at once.

Calls from several threads at once take turns in the engine (:func:`tconv.engine.fast._run`), and
BLAS's count is decided by all open calls together (:class:`blas_limit`).

Default, read when tconv is imported: ``OMP_NUM_THREADS`` if set (its first entry), else
``NUMBA_NUM_THREADS``, else the CPUs this process may run on (``os.sched_getaffinity``). The count is
process-wide, like ``torch.set_num_threads``; :func:`num_threads` restores the previous count on exit
and is not meant for concurrent use from several threads. Importing this module imports neither
numba nor threadpoolctl: they are loaded when first needed.
"""

from __future__ import annotations

import operator
import os
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


#: The CPUs this process may run on, at import.
CPUS = available_cpus()


def default_num_threads(environ: Mapping[str, str] | None = None) -> int:
    """``OMP_NUM_THREADS``, else ``NUMBA_NUM_THREADS``, else :data:`CPUS`; invalid values are skipped
    with a warning.

    >>> default_num_threads({"OMP_NUM_THREADS": "3", "NUMBA_NUM_THREADS": "2"})
    3
    >>> default_num_threads({"NUMBA_NUM_THREADS": "2"})
    2
    """
    environ = os.environ if environ is None else environ
    for name in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
        text = environ.get(name, "").strip()
        if not text:
            continue
        try:  # OpenMP allows a list, one count per nesting level: the outermost is ours
            n = int(text.split(",")[0])
        except ValueError:
            n = 0
        if n >= 1:
            return n
        warnings.warn(f"tconv: ignoring {name}={text!r}: not a positive int", RuntimeWarning, stacklevel=2)
    return CPUS


_count = default_num_threads()


def _checked(op: str, n: Any) -> int:
    if isinstance(n, bool) or not hasattr(type(n), "__index__"):
        raise TypeError(f"{op}: n must be a positive int, got {n!r} of type {type(n).__name__}")
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"{op}: n must be a positive int, got {n}")
    return n


def set_num_threads(n: int) -> None:
    """Use at most ``n`` threads from now on: engine workers, BLAS and numba loops (see the module).

    A positive int; anything else is a TypeError or ValueError and changes nothing.
    """
    global _count
    _count = _checked("set_num_threads", n)


def get_num_threads() -> int:
    """The count set by :func:`set_num_threads` (or the default from the environment), unless this
    thread runs inside :func:`thread_num_threads`."""
    # the thread's own attributes read directly: getattr's default costs a raised AttributeError
    return _local.__dict__.get("count", _count)


@contextmanager
def num_threads(n: int) -> Iterator[int]:
    """``with tconv.num_threads(n):`` the count is ``n`` inside the block, the previous one after."""
    global _count
    n = _checked("num_threads", n)
    previous, _count = _count, n
    try:
        yield n
    finally:
        _count = previous


_local = threading.local()


@contextmanager
def thread_num_threads(n: int) -> Iterator[int]:
    """``with thread_num_threads(n):`` tconv calls made by *this thread* use ``n`` threads; other
    threads keep theirs. For work that runs beside other work, such as a dask task: the scheduler
    already runs one task per worker thread, so each task's tconv runs with one."""
    n = _checked("thread_num_threads", n)
    previous = getattr(_local, "count", None)
    _local.count = n
    try:
        yield n
    finally:
        if previous is None:
            del _local.count
        else:
            _local.count = previous


# --------------------------------------------------------------------------- applying the count

_lock = threading.Lock()
_blas_libs: list | None = None


def _blas() -> list:
    """The BLAS libraries loaded in this process (one threadpoolctl scan, reused: a scan costs ms)."""
    global _blas_libs
    if _blas_libs is None:
        with _lock:
            if _blas_libs is None:
                from threadpoolctl import ThreadpoolController

                _blas_libs = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas_libs


def forget_blas() -> None:
    """Scan for BLAS libraries again at the next :class:`blas_limit`: for a library loaded after the
    last scan (SciPy's, which numba's compiled products call)."""
    global _blas_libs
    with _lock:
        _blas_libs = None


_state = threading.Lock()
#: Per thread inside tconv, the counts its open :class:`blas_limit` blocks asked for (innermost last).
_wanted: dict[int, list[int]] = {}
#: The count tconv has set on the BLAS libraries (None: their own), and what each had before.
_applied: int | None = None
_originals: list = []
#: The scan (:func:`_blas`'s list) whose libraries are all in ``_originals``.
_joined: list | None = None


def _effective() -> int | None:
    """The BLAS count for all of tconv's open calls: one thread each when several threads are inside
    tconv at once (BLAS's count is process-wide: two calls each asking for ``n`` would run ``2n``
    threads on ``n`` cores), else the innermost count of the one thread; None when none is."""
    if len(_wanted) > 1:
        return 1
    for stack in _wanted.values():
        return stack[-1]
    return None


def _apply(n: int | None) -> None:
    """Set every BLAS library to at most ``n`` threads (never more than it had), or back to its own
    count (``n`` None or at least :data:`CPUS`: BLAS's default, so nothing is touched). Under
    ``_state``."""
    global _applied, _joined
    if n is not None and n >= CPUS:
        n = None
    if n is None:
        for lib, original in _originals:
            lib.set_num_threads(original)
        _originals.clear()
        _applied = _joined = None
        return
    fresh = False
    libs = _blas()
    if libs is not _joined:  # a library loaded since the last scan (SciPy's) joins
        known = {id(lib) for lib, _ in _originals}
        for lib in libs:
            if id(lib) not in known:
                current = lib.get_num_threads()
                if current is not None:
                    _originals.append((lib, current))
                    fresh = True
        _joined = libs
    if n != _applied or fresh:
        for lib, original in _originals:
            lib.set_num_threads(min(n, original))
        _applied = n


class blas_limit:
    """Context manager: BLAS uses at most ``n`` threads inside (default: :func:`get_num_threads`).

    BLAS's count is process-wide, so the blocks open in all threads decide it together: the innermost
    count of the one thread inside, or one thread each while several threads are inside at once (so
    concurrent callers never run ``n`` BLAS threads apiece on ``n`` cores); the libraries' own counts
    come back when the last block closes. Only a library running more threads than the count is
    touched; with ``n >= CPUS`` (BLAS's own default) and no other caller nothing is. Calls the
    libraries directly (about 1 us a library) rather than through ``threadpool_limits`` (about 20 us
    a call). Meant for tconv's own calls.
    """

    __slots__ = ("n",)

    def __init__(self, n: int | None = None) -> None:
        self.n = get_num_threads() if n is None else n

    def __enter__(self) -> blas_limit:
        with _state:
            _wanted.setdefault(threading.get_ident(), []).append(self.n)
            _apply(_effective())
        return self

    def __exit__(self, *exc: object) -> None:
        with _state:
            me = threading.get_ident()
            stack = _wanted[me]
            stack.pop()
            if not stack:
                del _wanted[me]
            _apply(_effective())
