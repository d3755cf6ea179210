"""Running tconv on dask arrays to the end: a cluster, a progress bar, zarr in and zarr out.

What ``tconv apply`` and ``tconv bench --dask`` share (nothing here is imported by ``import tconv``):

- :func:`require_distributed`: dask's ``distributed``, checked to be the release paired with the
  installed dask (a :class:`DependencyError` saying what was found and how to fix it, not a traceback
  from inside distributed);
- :func:`connect`: a ``distributed.Client`` on a scheduler's address (``tcp://host:8786``, any cluster:
  dask-jobqueue, Kubernetes, ``dask scheduler``), or on a :class:`distributed.LocalCluster` of worker
  processes started for the run, ``threads_per_worker`` threads each (1 by default: tconv runs one
  thread per task, so one worker process per core);
- :func:`compute`: a dask collection computed on that client, a text progress bar on stderr while it
  runs;
- :func:`zarr_to_zarr`: the lazy pipeline ``da.from_zarr`` -> :func:`tconv.conv_transpose` (or
  :func:`tconv.conv`) -> ``to_zarr`` (:func:`open_zarr`, :func:`convolved`, :func:`stored`), checked
  when it is built, before anything is computed.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.functional import conv, conv_transpose

# the one command that installs dask with its own distributed (the wheel's `dask` extra), from PyPI or
# from a checkout of tconv
FIX = "pip install --upgrade 'tconv[dask]' (in a checkout of tconv: pip install --upgrade '.[dask]')"


class DependencyError(ImportError):
    """A package tconv needs here is missing, or installed at a release that does not work with another
    (the message names what was found and the command that fixes it)."""


def require_distributed(purpose: str = "a dask cluster") -> None:
    """Check that dask and the ``distributed`` released with it are installed and import, before
    anything uses them; else a :class:`DependencyError` naming the versions found and :data:`FIX`.

    dask and distributed are released in lockstep: dask's own ``distributed`` extra pins distributed
    to dask's version (``dask[distributed]`` in ``tconv[dask]``). A resolver asked for the two names
    separately can pair a new dask with an old distributed, which then fails at import deep inside
    distributed (e.g. ``cannot import name 'collections_to_dsk' from 'dask.base'``).

    >>> require_distributed()  # the test environment installs a matching pair
    """
    from importlib import metadata

    found: dict[str, str | None] = {}
    for name in ("dask", "distributed"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    have = ", ".join(f"{name} {version or '(not installed)'}" for name, version in found.items())
    if None in found.values():
        raise DependencyError(f"{purpose} needs dask and distributed; found {have}. Fix: {FIX}")
    wanted = _distributed_wanted_by_dask()
    if wanted is not None and not wanted.specifier.contains(found["distributed"], prereleases=True):
        raise DependencyError(
            f"{purpose} needs the distributed released with dask; found {have}, but dask "
            f"{found['dask']} works with {wanted}. Fix: {FIX}")
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise DependencyError(f"{purpose}: distributed does not import ({exc}); found {have}. "
                              f"Fix: {FIX}") from exc


def _distributed_wanted_by_dask() -> Any:
    """The ``distributed`` requirement of dask's ``distributed`` extra (a ``packaging`` Requirement,
    e.g. ``distributed==2026.8.0``), or None when dask's metadata has none."""
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    for line in metadata.requires("dask") or ():
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if (requirement.name.lower() == "distributed" and requirement.marker is not None
                and requirement.marker.evaluate({"extra": "distributed"})):
            requirement.marker = None
            return requirement
    return None


def parse_memory_limit(value: str | int | float | None) -> str | int | None:
    """A worker's memory limit as ``LocalCluster`` takes it: ``'auto'`` (its share of the machine),
    ``0``/``None`` (no limit), or bytes from ``'2GiB'``, ``'1.5 GB'``, ``2e9``.

    >>> parse_memory_limit("2GiB"), parse_memory_limit("auto"), parse_memory_limit("0")
    (2147483648, 'auto', 0)
    """
    from dask.utils import parse_bytes

    if value is None or value == "auto":
        return value
    try:
        limit = parse_bytes(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"--memory-limit must be bytes like 2GiB or 1.5GB, 0 (none) or auto, "
                         f"got {value!r}") from exc
    if limit < 0:
        raise ValueError(f"--memory-limit must not be negative, got {value!r}")
    return int(limit)


@contextlib.contextmanager
def connect(scheduler: str | None = None, workers: int | None = None, threads_per_worker: int = 1,
            memory_limit: str | int | None = "auto", processes: bool = True,
            timeout: float = 10.0) -> Iterator[Any]:
    """A ``distributed.Client``: on ``scheduler`` (an address such as ``tcp://10.0.0.5:8786``), else on
    a ``LocalCluster`` of ``workers`` worker processes (default: the CPUs this process may use) with
    ``threads_per_worker`` threads and ``memory_limit`` each, closed on exit. ``processes=False``:
    workers as threads of this process (quick to start; the tests use it).

    A scheduler that does not answer within ``timeout`` seconds is a ValueError naming ``--scheduler``;
    a missing or mismatched distributed a :class:`DependencyError` (:func:`require_distributed`).
    """
    require_distributed()
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise ValueError(f"--scheduler: could not connect to {scheduler!r}: {exc}") from exc
        with client:
            yield client
        return
    if workers is None:
        workers = _cpus()
    for name, value in (("--workers", workers), ("--threads-per-worker", threads_per_worker)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    with LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=processes,
                      memory_limit=memory_limit, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        yield client


def _cpus() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def compute(client: Any, collection: Any, progress: bool = True, out=None) -> Any:
    """``collection`` (a dask array, or what ``to_zarr(..., compute=False)`` returns) computed on
    ``client``'s cluster and its result returned; with ``progress`` a text bar of the tasks done
    (``distributed.progress``) on ``out`` (default: ``sys.stderr`` at the call) while it runs. With
    ``client=None``, dask's local scheduler and ``dask.diagnostics.ProgressBar``.

    A task's exception is raised here, as ``.compute()`` raises it.
    """
    out = out or sys.stderr
    if client is None:
        import dask
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=out) if progress else contextlib.nullcontext():
            return dask.compute(collection)[0]
    future = client.compute(collection)
    if progress:
        from distributed.diagnostics.progressbar import TextProgressBar

        class Bar(TextProgressBar):
            def _draw_stop(self, **kwargs):  # keep the last bar (distributed erases it)
                sys.stdout.write("\n")
                sys.stdout.flush()

        # distributed's text bar writes to sys.stdout, from its event loop's thread; it returns
        # when the computation has finished or failed
        with contextlib.redirect_stdout(out):
            Bar([future], scheduler=client.scheduler.address)
    return future.result()


def regular_chunks(chunks: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    """Chunks zarr can store (every chunk of an axis but the last of one size): per axis the largest
    block, so blocks that follow the input (the first one shorter by the padding, the last one
    longer by output_padding) map onto about as many stored chunks.

    >>> regular_chunks(((1, 1), (8,), (31, 32, 32, 33)))
    ((1, 1), (8,), (33, 33, 33, 29))
    """
    out = []
    for axis in chunks:
        size, step = sum(axis), max(axis, default=0)
        if not step:
            out.append(tuple(axis))
            continue
        out.append((step,) * (size // step) + ((size % step,) if size % step else ()))
    return tuple(out)


def load_npy(path: str | Path, flag: str) -> np.ndarray:
    """An array from a ``.npy`` file (no pickles); a missing or unreadable file is a ValueError
    naming ``flag``."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{flag}: cannot read {str(path)!r} as a .npy array: {exc}") from exc


def open_zarr(path: str, component: str | None = None) -> Any:
    """``da.from_zarr`` of the array at ``path`` (or its ``component``), checked: a missing store, a
    group without ``--component`` (its arrays are listed) or a missing component is a ValueError
    naming the option."""
    import dask.array as da
    import zarr

    try:
        node = zarr.open(path, mode="r")
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise ValueError(f"--input: no zarr array or group at {path!r} ({type(exc).__name__}: {exc})"
                         ) from exc
    if isinstance(node, zarr.Group):
        arrays = sorted(name for name, _ in node.arrays())
        if component is None:
            listed = ", ".join(arrays) or "none"
            raise ValueError(f"--input: {path!r} is a zarr group: name one of its arrays with "
                             f"--component (arrays: {listed})")
        if component not in node or not isinstance(node[component], zarr.Array):
            raise ValueError(f"--component: {path!r} has no array {component!r} (arrays: "
                             f"{', '.join(arrays) or 'none'})")
    elif component is not None:
        raise ValueError(f"--component: {path!r} is one array, not a group; leave out --component")
    return da.from_zarr(path, component=component)


def convolved(x: Any, weight: np.ndarray, bias: np.ndarray | None = None, *, transposed: bool = True,
              stride: Any = 1, padding: Any = 0, output_padding: Any = 0, groups: int = 1,
              dilation: Any = 1, padding_mode: str = "zeros") -> Any:
    """:func:`tconv.conv_transpose` (``transposed``) or :func:`tconv.conv` of the dask array ``x``,
    rechunked to :func:`regular_chunks` so zarr can store it; lazy, its arguments checked here (the
    same ValueError as in memory)."""
    y: Any  # a dask array: the functional API returns one for a dask input
    if transposed:
        y = conv_transpose(x, weight, bias, stride, padding, output_padding, groups, dilation,
                           padding_mode=padding_mode)
    else:
        if any(v for v in np.atleast_1d(output_padding)):
            raise ValueError("--output-padding is for a transposed convolution, not with --conv")
        y = conv(x, weight, bias, stride, padding, dilation, groups, padding_mode=padding_mode)
    return y.rechunk(regular_chunks(y.chunks))


def check_output(output: str, component: str | None = None, overwrite: bool = False) -> None:
    """A ValueError naming ``--output`` when ``output`` (a local path) exists and not ``overwrite``."""
    if not overwrite and "://" not in output and Path(output, component or "").exists():
        raise ValueError(f"--output: {output!r} exists; --overwrite replaces it")


def stored(y: Any, output: str, component: str | None = None, overwrite: bool = False,
           compressors: Any = "auto") -> Any:
    """What writes ``y`` to the zarr array ``output`` (or its ``component``) when computed
    (``to_zarr(..., compute=False)``; the array's metadata is written now). An existing ``output`` is
    an error unless ``overwrite``; ``compressors``: zarr's (``None``: stored raw)."""
    import zarr.errors

    check_output(output, component, overwrite)
    try:
        return y.to_zarr(output, component=component, mode="w" if overwrite else "w-", compute=False,
                         compressors=compressors)
    except (zarr.errors.ContainsArrayError, zarr.errors.ContainsGroupError, FileExistsError) as exc:
        raise ValueError(f"--output: {output!r} exists; --overwrite replaces it") from exc


def zarr_to_zarr(input: str, output: str, weight: np.ndarray, bias: np.ndarray | None = None, *,
                 component: str | None = None, output_component: str | None = None,
                 overwrite: bool = False, compressors: Any = "auto", **arguments: Any) -> tuple[Any, Any]:
    """The lazy pipeline: the zarr array at ``input`` (``(N, C, *spatial)`` or unbatched, chunked as
    stored; :func:`open_zarr`) -> :func:`convolved` with ``arguments`` (``transposed``, ``stride``,
    ``padding``, ``output_padding``, ``groups``, ``dilation``, ``padding_mode``) -> :func:`stored` in
    ``output``: ``(y, store)``, ``y`` the lazy result, ``store`` what computes the writing. Nothing is
    computed; ``output``'s metadata is written.
    """
    y = convolved(open_zarr(input, component), weight, bias, **arguments)
    return y, stored(y, output, output_component, overwrite, compressors)


def describe(a: Any) -> str:
    """``shape float32, 12 chunks of at most 16.0 MiB``: a dask array in one line."""
    largest = math.prod(max(c) for c in a.chunks) * a.dtype.itemsize
    return (f"{'x'.join(map(str, a.shape))} {a.dtype}, {a.npartitions} chunks of at most "
            f"{largest / 2**20:.1f} MiB")
