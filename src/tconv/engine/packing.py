"""Prepacked weights: a layer reorders its weight once, not on every call.

``gemm`` (channels-last: ``W[g, c, (t, o)]``, taps outer) and ``phase`` (each output phase's taps,
``W_q``) multiply a reordered copy of the weight, not the weight itself. Built on every call, that copy
is as large as the weight, which on layers whose weight outweighs the activations is most of a call's
extra memory. A layer (:mod:`tconv.core.layers`) owns a :class:`WeightCache`; the functional API passes
none, so there every call packs for itself (nothing is kept).

The contract: the caller binds the cache to the weight before each call (:meth:`WeightCache.bind`), and
an algorithm marked by :func:`packs_weight` takes a keyword ``cache`` (a :class:`WeightCache` or None)
and fetches each reordered form through :func:`packed` under a key that, together with the weight,
fully determines the form (layout, dtype, groups, taps, channel range; never the batch or the image
size). Whether the bound weight is still the one the forms were made from is checked on every bind:
the same object, shape, dtype and strides, and the same checksum of the bytes the
forms derive from (the whole weight, or the taps a cut kernel keeps) — so
assignment, ``load_state_dict`` and in-place updates (``w -= lr * grad``, ``w[0] = 1``,
``np.copyto(w, ...)``) all drop the forms. The checksum reads the weight once (a compiled 64-bit
multiply-xor hash, :func:`tconv.engine.kernels.checksum`, near memory speed: 1 ms for 14 MB, where
``zlib.crc32`` took 3.6) and is only taken while forms are kept. A caller with threads to spare
(:func:`tconv.core.functional.execute`) has a large weight checked on another thread while it
computes with the forms kept, and computes again if they turn out stale (``bind(w, defer=True)``,
then :meth:`WeightCache.confirm`).
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from types import EllipsisType
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    from typing_extensions import Buffer


def _checksum(w: np.ndarray) -> int:
    """A checksum of ``w``'s bytes (theirs alone: not of its layout or address): below
    :data:`SMALL_WEIGHT_BYTES` their CRC-32, else :func:`tconv.engine.kernels.checksum` of the
    8-byte words and a CRC-32 of the rest; a larger non-contiguous view of float32/64 values (a
    cut kernel's taps) by :func:`tconv.engine.kernels.checksum_strided`, in place. A given view
    is always hashed the same way, so its sums compare."""
    if w.nbytes >= SMALL_WEIGHT_BYTES and not w.flags.c_contiguous and w.itemsize in (4, 8) \
            and 2 <= w.ndim <= 5:
        # a cut kernel's taps (a view with short rows): hashed where they lie, never copied
        from .kernels import checksum_strided

        five = w.reshape(*w.shape[:2], *(1,) * (5 - w.ndim), *w.shape[2:])  # adds axes: a view
        return int(checksum_strided(five.view(np.uint32 if w.itemsize == 4 else np.uint64)))
    # an ndarray is a buffer; numpy's stubs say so (``__buffer__``) only for Python 3.12 and later
    if w.nbytes < SMALL_WEIGHT_BYTES:  # ~1 us, where calling compiled code costs 10
        return zlib.crc32(cast("Buffer", np.ascontiguousarray(w)))
    data = np.ascontiguousarray(w).reshape(-1).view(np.uint8)
    if data.ctypes.data % 8:  # a view into another array: its words read from an aligned copy
        data = data.copy()
    whole = data.size // 8 * 8
    from .kernels import checksum  # the algorithms that pack have loaded numba already

    tail = zlib.crc32(memoryview(cast("Buffer", data[whole:])))
    return hash((int(checksum(data[:whole].view(np.uint64))), tail))


#: Weights of fewer bytes are checked by CRC-32 (see :func:`_checksum`).
SMALL_WEIGHT_BYTES = 2**16


#: :meth:`WeightCache.bind` defers the check of weights of this many bytes or more (checking 1 MiB
#: takes ~70 us, where handing it to another thread costs ~20-40).
DEFERRED_CHECK_BYTES = 2**20

_check_pool: ThreadPoolExecutor | None = None
_check_lock = threading.Lock()


def _checker() -> ThreadPoolExecutor:
    """The thread deferred checksums run on (the compiled checksum releases the GIL)."""
    global _check_pool
    with _check_lock:
        if _check_pool is None:
            _check_pool = ThreadPoolExecutor(1, thread_name_prefix="tconv-check")
        return _check_pool


def _identity(w: np.ndarray) -> tuple:
    # not the data's address (reading it costs more than the rest): the checksum that follows
    # compares the bytes the forms were made from, wherever they lie
    return (w.shape, w.dtype, w.strides)


class WeightCache:
    """Packed forms of one weight, dropped when the weight changes.

    >>> w = np.ones((2, 3), np.float32)
    >>> cache = WeightCache()
    >>> cache.bind(w)
    >>> packed(cache, "T", lambda: np.ascontiguousarray(w.T)).shape
    (3, 2)
    >>> len(cache), cache.get("T", lambda: None).flags.writeable   # kept, read-only
    (1, False)
    >>> w[0, 0] = 5                                                 # in place: the checksum sees it
    >>> cache.bind(w)
    >>> len(cache)
    0
    """

    def __init__(self) -> None:
        self._forms: dict[Hashable, np.ndarray] = {}
        self._weight: np.ndarray | None = None
        self._identity: tuple | None = None
        # per region the forms derive from (None: the whole weight; else the taps kept per kernel
        # dimension), the checksum of its bytes, taken when its first form is stored
        self._sums: dict[Hashable, int] = {}
        self._pending: tuple[Future, tuple, np.ndarray] | None = None  # a check, the sums expected

    def __len__(self) -> int:
        return len(self._forms)

    def clear(self) -> None:
        """Drop every packed form and forget the weight."""
        self._forms.clear()
        self._sums.clear()
        self._weight = self._identity = None

    def bind(self, w: np.ndarray, defer: bool = False) -> None:
        """Call before each call of an algorithm with the weight it is derived from: the forms are
        dropped unless ``w`` is the same object, with the same shape, dtype and strides, and
        the same bytes (checksum) where the forms derive from, as when they were made.

        With ``defer``, when those bytes are :data:`DEFERRED_CHECK_BYTES` or more they are checked
        on another thread while the caller computes with the forms kept; the caller must then call
        :meth:`confirm` before using the result, and compute again if it says False.
        """
        self._pending = None
        if self._forms and (w is not self._weight or _identity(w) != self._identity):
            self.clear()
        elif self._forms:
            regions, expected = tuple(self._sums), tuple(self._sums.values())
            if defer and w.nbytes >= DEFERRED_CHECK_BYTES and sum(
                    kept_taps(w, r).nbytes for r in regions) >= DEFERRED_CHECK_BYTES:
                self._pending = (_checker().submit(_checksums, w, regions), expected, w)
            elif _checksums(w, regions) != expected:
                self.clear()
        if not self._forms:
            self._start(w)

    def confirm(self) -> bool:
        """After :meth:`bind` with ``defer``: whether the forms a computation used since were made
        from the weight's bytes as they are (True when nothing was deferred). If not, every form is
        dropped, so computing again packs afresh."""
        pending, self._pending = self._pending, None
        if pending is None or pending[0].result() == pending[1]:
            return True
        self._start(pending[2])
        return False

    def _start(self, w: np.ndarray) -> None:
        """No forms, bound to ``w``."""
        self.clear()
        self._weight, self._identity = w, _identity(w)

    def get(self, key: Hashable, make: Callable[[], np.ndarray], region: Hashable = None) -> np.ndarray:
        """The form under ``key``, made by ``make()`` (then stored read-only) if not kept; made from
        the taps ``region`` (``((lo, hi), ...)`` per kernel dimension) of the weight alone, when
        given, so that only those bytes are checked."""
        form = self._forms.get(key)
        if form is None:
            form = make()
            form.flags.writeable = False
            if region not in self._sums and self._weight is not None:
                self._sums[region] = _checksum(kept_taps(self._weight, region))
            self._forms[key] = form
        return form


def kept_taps(w: np.ndarray, taps: Hashable) -> np.ndarray:
    """The weight's taps ``taps`` (``((lo, hi), ...)`` per kernel dimension; a view), or the whole
    weight for None."""
    if taps is None:
        return w
    cut: tuple[EllipsisType | slice, ...] = (Ellipsis, *(slice(lo, hi) for lo, hi in cast("tuple", taps)))
    return w[cut]


def _checksums(w: np.ndarray, regions: tuple) -> tuple:
    if len(regions) == 1:  # the usual case, without a generator (a small call's microseconds)
        return (_checksum(kept_taps(w, regions[0])),)
    return tuple(_checksum(kept_taps(w, r)) for r in regions)


class Scoped:
    """A view of a :class:`WeightCache` whose keys all carry ``scope``: for forms packed from a part
    of the weight (the taps :func:`tconv.engine.algorithms.trimmed` keeps, ``region``), which must
    not meet the forms of the whole weight or of another part, and whose check reads that part."""

    __slots__ = ("cache", "region", "scope")

    def __init__(self, cache: WeightCache, scope: Hashable, region: Hashable = None) -> None:
        self.cache, self.scope, self.region = cache, scope, region

    def get(self, key: Hashable, make: Callable[[], np.ndarray]) -> np.ndarray:
        return self.cache.get((self.scope, key), make, self.region)


def packed(cache: WeightCache | Scoped | None, key: Hashable, make: Callable[[], np.ndarray]) -> np.ndarray:
    """``cache.get(key, make)``, or just ``make()`` without a cache (the functional API)."""
    return make() if cache is None else cache.get(key, make)


def packs_weight(algorithm: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a registry algorithm as taking ``cache=``; :mod:`tconv.core.functional` passes a layer's
    cache only to those (``gemm`` and ``phase``; the reference algorithms, written to be read, and
    ``direct``, which multiplies the weight as it is, take none)."""
    setattr(algorithm, "packs_weight", True)  # noqa: B010 (a function attribute: mypy types none)
    return algorithm


def takes_cache(algorithm: Callable[..., Any]) -> bool:
    """Whether ``algorithm`` was marked by :func:`packs_weight`."""
    return getattr(algorithm, "packs_weight", False)
