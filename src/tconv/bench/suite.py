"""The layers a benchmark runs: :class:`Layer` (one transposed convolution, as PyTorch's
``conv_transpose{1,2,3}d`` takes it), the published suite shipped with tconv (:data:`DEFAULT_LAYERS`),
and which of them a command line picks (:func:`select_layers`)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

#: The published layer suite, shipped inside the package (``tconv/data/benchmark-layers.json``).
DEFAULT_LAYERS = Path(__file__).resolve().parent.parent / "data" / "benchmark-layers.json"


_PER_DIMENSION = ("kernel", "stride", "padding", "output_padding", "dilation")


@dataclass
class Layer:
    """One transposed convolution of the suite, as PyTorch's ``conv_transpose{rank}d`` takes it.

    ``kernel``, ``stride``, ``padding``, ``output_padding`` and ``dilation`` may be given as one int
    for every dimension (the suite's JSON) or one per spatial dimension; they are kept as tuples.
    """

    name: str
    N: int
    C_in: int
    C_out: int
    spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    groups: int
    dilation: tuple[int, ...]

    def __post_init__(self) -> None:
        self.spatial = tuple(int(s) for s in self.spatial)
        for name in _PER_DIMENSION:
            value = getattr(self, name)
            value = (value,) * self.rank if isinstance(value, (int, np.integer)) else tuple(value)
            if len(value) != self.rank:
                raise ValueError(f"bench: layer {self.name!r}: {name} has {len(value)} values for "
                                 f"{self.rank} spatial dimensions")
            setattr(self, name, tuple(int(v) for v in value))

    @property
    def rank(self) -> int:
        return len(self.spatial)

    @property
    def out_spatial(self) -> tuple[int, ...]:
        """``(in-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1`` per dimension."""
        return tuple((i - 1) * s - 2 * p + d * (k - 1) + op + 1 for i, k, s, p, op, d in zip(
            self.spatial, self.kernel, self.stride, self.padding, self.output_padding, self.dilation))

    @property
    def flops(self) -> int:
        """``2*N*C_in*(C_out/groups)*prod(k)*prod(in)``: two per multiply-add, zeros never counted."""
        return (2 * self.N * self.C_in * (self.C_out // self.groups) * math.prod(self.kernel)
                * math.prod(self.spatial))

    @property
    def bytes(self) -> int:
        """float32 bytes of reading input, weight and bias once and writing the output once."""
        x = self.N * self.C_in * math.prod(self.spatial)
        w = self.C_in * (self.C_out // self.groups) * math.prod(self.kernel)
        y = self.N * self.C_out * math.prod(self.out_spatial)
        return 4 * (x + w + self.C_out + y)

    def arrays(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Input, weight (scaled so outputs stay near unit size) and bias, float32, from ``seed``."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((self.N, self.C_in, *self.spatial), dtype=np.float32)
        w = rng.standard_normal((self.C_in, self.C_out // self.groups, *self.kernel), dtype=np.float32)
        w *= np.float32(1 / math.sqrt(self.C_in * math.prod(k / s for k, s in zip(self.kernel, self.stride))))
        b = rng.standard_normal(self.C_out, dtype=np.float32)
        return x, w, b

    def args(self) -> tuple:
        """``stride, padding, output_padding, groups, dilation``, positionally, as PyTorch takes them."""
        return (self.stride, self.padding, self.output_padding, self.groups, self.dilation)

    def row(self) -> list:
        """The layer as a row of a ``--layers`` JSON list (one int where every dimension agrees)."""
        def compact(v: tuple[int, ...]) -> int | list[int]:
            return v[0] if len(set(v)) == 1 else list(v)

        return [self.name, self.N, self.C_in, self.C_out, list(self.spatial), compact(self.kernel),
                compact(self.stride), compact(self.padding), compact(self.output_padding), self.groups,
                compact(self.dilation)]

    def describe(self) -> str:
        """One line with every parameter, for the log of a run."""
        def size(v: tuple[int, ...]) -> str:
            return str(v[0]) if len(set(v)) == 1 and len(v) > 1 else "x".join(map(str, v))

        return (f"{self.name:<12} {self.rank}d N={self.N} C_in={self.C_in} C_out={self.C_out} "
                f"in={'x'.join(map(str, self.spatial))} k={size(self.kernel)} s={size(self.stride)} "
                f"p={size(self.padding)} op={size(self.output_padding)} groups={self.groups} "
                f"d={size(self.dilation)} -> out={'x'.join(map(str, self.out_spatial))}  "
                f"{self.flops / 1e9:.3f} GFLOP")


def load_layers(path: str | Path | None = None) -> list[Layer]:
    """Layers from a JSON list of rows (the suite's format), or from a results JSON's ``layers``."""
    rows = json.loads(Path(path or DEFAULT_LAYERS).read_text())
    if isinstance(rows, dict):  # a results file of an earlier run: re-run the same layers
        rows = rows.get("layers", [])
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"bench: {path}: expected a non-empty JSON list of layer rows")
    width = len(fields(Layer))
    for row in rows:
        if not isinstance(row, list) or len(row) != width:
            raise ValueError(f"bench: {path}: every layer is a list of {width} values (name, N, C_in, "
                             f"C_out, spatial, kernel, stride, padding, output_padding, groups, "
                             f"dilation), got {row!r}")
    return [Layer(*row) for row in rows]
