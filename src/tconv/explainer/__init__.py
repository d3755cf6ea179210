"""Showing how every output number is made: :func:`explain` and the planning helpers
(:mod:`.steps`), the terminal rendering (:mod:`.text`), matplotlib figures (:mod:`.figures`), the
self-contained HTML page (:mod:`.page`), notebooks (:mod:`.notebook`: an explanation displays itself;
:func:`show`) and the seed documents' worked examples (:mod:`.examples`)."""

from .notebook import show
from .steps import Explanation, explain, output_shape, overlap, round_trip, solve

__all__ = ["Explanation", "explain", "output_shape", "overlap", "round_trip", "show", "solve"]
