"""Explanations where learners are, in a notebook (Jupyter, JupyterLab, VS Code).

An :class:`~tconv.explainer.steps.Explanation` displays itself: as the interactive page
(:func:`tconv.explainer.page.page`, what ``tconv explain --html`` writes) opened at its own
configuration and values, inside a sandboxed ``<iframe srcdoc=...>`` (:func:`iframe`); as a PNG of
its views for front ends without HTML (:func:`tconv.explainer.figures.png`, with matplotlib); and as
the terminal's text (:func:`tconv.explainer.text.render`) everywhere else. The page is
self-contained: nothing reaches the network, and each explanation's frame is a document of its own,
so several in one notebook do not interfere. :func:`show` explains and displays in one line.
"""

from __future__ import annotations

import html
import operator
import sys
from typing import Any

import numpy as np

from ..core.spec import as_array
from . import figures, page, text
from .steps import DISPLAYS, Explanation, explain

#: The frame's height in pixels: the page's three views and controls at a notebook's width (a
#: learner can drag the frame's corner to resize it).
FRAME_HEIGHT = 1000


def iframe(e: Explanation, height: int = FRAME_HEIGHT) -> str | None:
    """``e``'s interactive page in an ``<iframe>`` (HTML for a notebook's output), or None where the
    page cannot show ``e`` (3-d, or unequal padding other than ``'same'``): the notebook then shows
    the PNG or the text.

    >>> e = explain(np.arange(4.0).reshape(2, 2), np.ones((2, 2)), stride=2)
    >>> frame = iframe(e)
    >>> frame.count("<iframe"), 'sandbox="allow-scripts"' in frame
    (1, True)
    """
    try:
        document = page.page(e)
    except ValueError:  # what the page has no controls for (its message says which)
        return None
    return (f'<iframe srcdoc="{html.escape(document, quote=True)}" sandbox="allow-scripts" '
            f'title="tconv explain: transposed convolution, {e.rank}-d" '
            f'style="width: 100%; height: {int(height)}px; border: 1px solid #ddd; resize: vertical">'
            f"</iframe>")


def _layer_problem(layer: Any, shape: Any) -> tuple[np.ndarray, np.ndarray, dict]:
    """A layer (tconv's or PyTorch's ``ConvTranspose{1,2,3}d``) and an input shape: the input
    ``1..n`` in that shape, the layer's weight, and its geometry as :func:`explain` takes it."""
    name = type(layer).__name__
    weight = getattr(layer, "weight", None)
    if weight is None or not hasattr(layer, "stride"):
        raise TypeError(f"show: a layer must be a ConvTranspose1d/2d/3d (tconv's or PyTorch's), got {name}")
    w = as_array("show", "weight", weight).astype(np.float64)  # a torch tensor too
    mode = getattr(layer, "padding_mode", "zeros")
    if mode != "zeros":
        raise ValueError(f"show: explanations are of padding_mode='zeros'; {name} has padding_mode={mode!r}")
    rank = w.ndim - 2
    try:
        if isinstance(shape, (str, bytes)):
            raise TypeError
        dims = tuple(operator.index(v) for v in shape)
    except TypeError:
        raise TypeError(f"show: the input shape must be a tuple of ints, got {shape!r}") from None
    if len(dims) == rank + 2:
        if dims[0] != 1:
            raise ValueError(f"show: explanations are of one sample; the input shape {dims} has a "
                             f"batch of {dims[0]}")
        dims = dims[1:]
    if len(dims) == rank:
        dims = (w.shape[0], *dims)
    if len(dims) != rank + 1 or dims[0] != w.shape[0]:
        raise ValueError(f"show: {name} takes inputs of shape (C_in={w.shape[0]}, *{rank} sizes) (or the "
                         f"{rank} sizes alone), got input shape {tuple(shape)}")
    x = np.arange(1, int(np.prod(dims)) + 1, dtype=np.float64).reshape(dims)
    geometry = {key: getattr(layer, key)
                for key in ("stride", "padding", "output_padding", "dilation", "groups")}
    return x, w, geometry


def show(*args: Any, **kwargs: Any) -> None:
    """Explain a transposed convolution and display it here: in a notebook, the interactive page (or
    its picture, or its text, as the front end can show); elsewhere, the text on standard output.

    Takes :func:`explain`'s arguments (``show(x, w, stride=2, padding=1)``), or a layer and an input
    shape (``show(tconv.ConvTranspose2d(1, 1, 3, stride=2), (4, 4))``: tconv's or PyTorch's layer,
    its weight and geometry, on an input holding ``1..n``; the shape is the spatial sizes, or
    ``(C_in, *sizes)``, or a batch of one). The bias, a constant per output channel, is left out.

    >>> show(np.array([[0.0, 1.0], [2.0, 3.0]]), np.ones((2, 2)), stride=2)  # doctest: +ELLIPSIS
    Transposed convolution, 2-d, 1 -> 1 channels
    ...
    """
    if len(args) == 2 and not kwargs and hasattr(args[0], "weight"):
        x, w, geometry = _layer_problem(*args)
        e = explain(x, w, **geometry)
    else:
        e = explain(*args, **kwargs)
    shell = None
    if "IPython" in sys.modules:  # a notebook or an IPython shell has imported it already
        from IPython import get_ipython

        shell = get_ipython()
    if shell is not None:
        from IPython.display import display

        display(e)
    else:
        sys.stdout.write(text.render(e))


def _png(e: Explanation) -> bytes | None:
    try:
        return figures.png(e)
    except ImportError:  # matplotlib (the plot extra) missing: the HTML or the text instead
        return None


DISPLAYS.update({"text/html": iframe, "image/png": _png,
                 "text/plain": lambda e: text.render(e).rstrip("\n")})
