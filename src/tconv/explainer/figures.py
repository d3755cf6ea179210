"""Pictures of an :class:`~tconv.explainer.Explanation` (matplotlib): a figure of the views, a GIF of
the scatter steps. Grids carry their values; where an input element lands is shaded; inserted zeros
and borders are grey; the crop is a dashed box. 2-d problems (first input and output channel).
"""

from __future__ import annotations

import numpy as np

from .steps import Explanation


def _figure(**kwargs):
    """A figure of its own, not pyplot's: drawing one neither changes the caller's backend (a
    notebook's inline plots) nor shows it a second time at the end of a notebook cell."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _plane(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, float)
    while a.ndim > 2:
        a = a[0]
    return np.atleast_2d(a)


def draw_grid(ax, a, title, shade=None, grey=None, box=None, cmap="Blues"):
    """Values in cells; ``shade`` (bool) highlighted, ``grey`` (bool) drawn as inserted/border."""
    a = _plane(a)
    # the cells' colours as one image and the cell borders as two line collections: one artist each
    # instead of a rectangle per cell (the figures of the seed examples drew ~3x faster)
    colours = np.ones(a.shape + (3,))
    if grey is not None:
        colours[_plane(grey).astype(bool)] = _rgb("#d9d9d9")
    if shade is not None:
        colours[_plane(shade).astype(bool)] = _rgb("#fdd49e")
    ax.imshow(colours, interpolation="nearest")
    rows, cols = a.shape
    ax.hlines(np.arange(rows + 1) - 0.5, -0.5, cols - 0.5, colors="#888888", linewidth=0.5)
    ax.vlines(np.arange(cols + 1) - 0.5, -0.5, rows - 0.5, colors="#888888", linewidth=0.5)
    for (i, j), v in np.ndenumerate(a):
        ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=8)
    if box is not None:
        (r0, r1), (c0, c1) = box
        ax.add_patch(_rect(c0 - 0.5, r0 - 0.5, c1 - c0, r1 - r0, "none", dashed=True))
    ax.set_xlim(-0.5, a.shape[1] - 0.5)
    ax.set_ylim(a.shape[0] - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def _rgb(colour: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return to_rgb(colour)


def _rect(x, y, w, h, face, dashed=False):
    from matplotlib.patches import Rectangle

    if dashed:
        return Rectangle((x, y), w, h, fill=False, edgecolor="crimson", linestyle="--", linewidth=1.5)
    return Rectangle((x, y), w, h, facecolor=face, edgecolor="#888888", linewidth=0.5)


def _crop_box(e: Explanation):
    (b0, a0), (b1, a1) = (((0, 0),) * 2 + tuple(e.crop))[-2:]
    full = _plane(e.full).shape
    return ((b0, full[0] - max(a0, 0)), (b1, full[1] - max(a1, 0)))


def figure(e: Explanation, max_steps: int = 8):
    """The views in one matplotlib figure."""
    steps = e.steps[:max_steps]
    cols = max(4, len(steps))
    fig = _figure(figsize=(2.4 * cols, 7.5))
    # only the cells drawn get axes, spaced by fixed margins: making every cell of the grid and
    # laying them out tightly (a second drawing pass) took half the time of a figure
    grid = fig.add_gridspec(3, cols, left=0.02, right=0.98, bottom=0.02, top=0.88, wspace=0.25,
                            hspace=0.35)

    def cell(row, col):
        return fig.add_subplot(grid[row, col])

    top = [(e.input, "input x"), (e.weight, "kernel w"), (e.full, "full scatter (dashed: kept)"),
           (e.output, "output y")]
    for k, (a, title) in enumerate(top):
        draw_grid(cell(0, k), a, title, box=_crop_box(e) if k == 2 else None)
    for k, st in enumerate(steps):
        shade = np.zeros(_plane(st.running).shape, bool)
        span = _plane(st.product).shape
        o = st.origin[-2:] if len(st.origin) >= 2 else (0, st.origin[0])
        shade[o[0]:o[0] + span[0], o[1]:o[1] + span[1]] = True
        draw_grid(cell(1, k), st.running, f"+ x{list(st.index)}={st.value:g} x w", shade=shade)
    z = e.zero_insertion
    draw_grid(cell(2, 0), z.image, "processing image (grey: inserted)", grey=~z.is_input)
    draw_grid(cell(2, 1), z.flipped, "flipped kernel")
    draw_grid(cell(2, 2), z.output, "correlation = output")
    if e.matrix is not None:
        ax = cell(2, 3)
        ax.imshow(e.matrix.W, cmap="Blues")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"W {e.matrix.W.shape}; y = W^T x", fontsize=9)
    fig.suptitle(f"transposed convolution: stride {e.stride}, padding {e.pads}, "
                 f"output_padding {e.output_padding}, dilation {e.dilation}", fontsize=10)
    return fig


def save_figure(e: Explanation, path: str) -> None:
    """Write :func:`figure` to ``path`` (.png or .svg)."""
    if not str(path).lower().endswith((".png", ".svg")):
        raise ValueError(f"--save needs a .png or .svg file name, got {path!r}")
    figure(e).savefig(path, dpi=100)


def png(e: Explanation) -> bytes:
    """:func:`figure` as PNG bytes (a notebook's picture of an explanation)."""
    import io

    buf = io.BytesIO()
    figure(e).savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def save_gif(e: Explanation, path: str, max_steps: int = 64) -> None:
    """Animate the scatter steps (one frame per input element) to ``path``."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    steps = e.steps[:max_steps]
    fig = _figure(figsize=(7, 3.5))
    left, right = fig.subplots(1, 2)

    def frame(k):
        left.clear()
        right.clear()
        st = steps[k]
        draw_grid(left, st.product, f"x{list(st.index)} = {st.value:g} times the kernel")
        shade = np.zeros(_plane(st.running).shape, bool)
        span = _plane(st.product).shape
        o = st.origin[-2:] if len(st.origin) >= 2 else (0, st.origin[0])
        shade[o[0]:o[0] + span[0], o[1]:o[1] + span[1]] = True
        draw_grid(right, st.running, f"added at {st.origin}: running sum", shade=shade,
                  box=_crop_box(e) if k == len(steps) - 1 else None)

    anim = FuncAnimation(fig, frame, frames=len(steps))
    anim.save(path, writer=PillowWriter(fps=1))
