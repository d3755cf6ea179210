"""tconv's peak extra memory during a call (tracemalloc)."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any


def peak_extra_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes NumPy allocated during ``fn()`` (tracemalloc), the result included."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak
