"""Hypothesis strategies: whole (transposed) convolution configurations, small enough to be fast."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st


@dataclass
class Config:
    rank: int
    batch: int
    groups: int
    c_in: int
    c_out: int
    kernel: tuple
    stride: tuple
    dilation: tuple
    size: tuple  # the transposed convolution's input size
    padding: tuple  # symmetric ints
    output_padding: tuple
    seed: int

    @property
    def out_size(self):
        return tuple(
            (n - 1) * s - 2 * p + d * (k - 1) + o + 1
            for n, s, p, d, k, o in zip(self.size, self.stride, self.padding, self.dilation,
                                        self.kernel, self.output_padding)
        )

    def arrays(self, dtype=np.float64):
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal((self.batch, self.c_in, *self.size)).astype(dtype)
        w = rng.standard_normal((self.c_in, self.c_out // self.groups, *self.kernel)).astype(dtype)
        b = rng.standard_normal(self.c_out).astype(dtype)
        return x, w, b

    def args(self):
        return (self.stride, self.padding, self.output_padding, self.groups, self.dilation)


@st.composite
def configs(draw, ranks=(1, 2, 3), output_padding_below_stride=False, max_padding=3):
    rank = draw(st.sampled_from(ranks))
    small = 3 if rank == 3 else 5
    kmax = 3 if rank == 3 else 4
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    per = st.integers(1, 2)
    kernel = tuple(draw(st.integers(1, kmax)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    size = tuple(draw(st.integers(1, small)) for _ in range(rank))
    padding = tuple(draw(st.integers(0, max_padding)) for _ in range(rank))
    limit = stride if output_padding_below_stride else tuple(map(max, stride, dilation))
    output_padding = tuple(draw(st.integers(0, m - 1)) for m in limit)
    cfg = Config(rank, draw(st.integers(1, 2)), groups, groups * draw(per), groups * draw(per),
                 kernel, stride, dilation, size, padding, output_padding,
                 draw(st.integers(0, 2**16)))
    assume(min(cfg.out_size) >= 1)
    return cfg
