"""Seeded random realistic layers (``tconv bench --random SEED COUNT``): the generality check on
shapes nobody tuned for."""

from __future__ import annotations

import math

import numpy as np

from .suite import Layer

#: Channel counts of real decoders, powers of two and not.
RANDOM_CHANNELS = (8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 192, 256, 320, 384, 512)


#: Inference batches are mostly 1; training-like batches up to 16.
RANDOM_BATCHES = (1, 1, 1, 2, 4, 8, 16)


#: Each random layer's work, in GFLOP (the same count as :attr:`Layer.flops`).
RANDOM_GFLOP = (0.02, 3.0)


#: Largest input side per rank, so shapes stay like real feature maps (a long 1-d signal, a 2-d map,
#: a small 3-d volume).
RANDOM_MAX_SIDE = {1: 16384, 2: 512, 3: 64}


#: Input + output of one random layer at most this many bytes, so a cheap-per-pixel (depthwise) layer
#: does not turn into a gigabyte of activations.
RANDOM_MAX_ARRAY_BYTES = 256 * 2**20


def random_layers(seed: int, count: int) -> list[Layer]:
    """``count`` realistic random layers from ``numpy.random.default_rng(seed)``: the same for the same
    seed, named ``r{seed}_{i}``.

    Rank 1, 2 or 3 (mostly 2); channels from :data:`RANDOM_CHANNELS` (sometimes 1-3 output channels,
    as a final layer); groups mostly 1, sometimes depthwise or 2/4/8; stride 1-4 and kernel 1-7
    (1-4 in 3-d), kernel % stride zero and not, sometimes different per dimension; dilation mostly 1,
    sometimes 2; padding mostly the usual ``output = input * stride`` choice, else 0 with a random
    valid output_padding; batch from :data:`RANDOM_BATCHES`; input sizes drawn so the layer's work is
    log-uniform in :data:`RANDOM_GFLOP`. A draw outside the bounds (work, side, bytes) is drawn again.
    """
    for name, value, low in (("SEED", seed, 0), ("COUNT", count, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            what = "a non-negative int" if low == 0 else "a positive int"
            raise ValueError(f"bench: --random {name} must be {what}, got {value!r}")
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    attempts = 0
    while len(layers) < count:
        attempts += 1
        if attempts > 1000 * count:  # pragma: no cover - the bounds admit most draws
            raise RuntimeError("bench: random_layers found no layer within its bounds")
        layer = _random_layer(rng, f"r{seed}_{len(layers)}")
        if layer is not None:
            layers.append(layer)
    return layers


def _pick(rng: np.random.Generator, options, p=None):
    return options[int(rng.choice(len(options), p=p))]


def _kernel_stride(rng: np.random.Generator, max_kernel: int) -> tuple[int, int]:
    """A stride 1-4 (2 most often) and a kernel at least the stride, half the time a multiple of it."""
    s = _pick(rng, (1, 2, 2, 2, 3, 4))
    kernels = range(s, max_kernel + 1)  # a kernel below the stride would leave outputs no input reaches
    multiple = [k for k in kernels if k % s == 0]
    other = [k for k in kernels if k % s]
    use_multiple = bool(multiple) and (not other or rng.random() < 0.5)
    return _pick(rng, multiple if use_multiple else other), s


def _padding(k: int, s: int, d: int, same: bool, extra: float) -> tuple[int, int]:
    """padding, output_padding of one dimension, valid for PyTorch: those of ``output = input * stride``
    when ``same`` (and the kernel allows), else padding 0 and output_padding the fraction ``extra`` of
    its range (drawn once per layer, so equal dimensions get equal values)."""
    v = d * (k - 1) + 1 - s  # = 2*padding - output_padding for output = input * stride
    if same and v > 0:
        p = (v + 1) // 2
        op = 2 * p - v
        if op >= max(s, d):  # PyTorch: output_padding below stride or dilation
            p, op = v // 2, 0
        return p, op
    return 0, int(extra * max(s, d))


def _random_layer(rng: np.random.Generator, name: str) -> Layer | None:
    rank = _pick(rng, (1, 2, 3), p=(0.25, 0.55, 0.2))
    kind = _pick(rng, ("dense", "depthwise", "grouped"), p=(0.7, 0.15, 0.15))
    if kind == "depthwise":
        c_in = c_out = groups = _pick(rng, RANDOM_CHANNELS[2:])
    elif kind == "grouped":
        groups = _pick(rng, (2, 4, 8))
        usable = [c for c in RANDOM_CHANNELS if c % groups == 0 and c > groups]
        c_in, c_out = _pick(rng, usable), _pick(rng, usable)
    else:
        groups = 1
        c_in = _pick(rng, RANDOM_CHANNELS)
        if rng.random() < 0.1:  # a final layer: an image's or a signal's few channels
            c_out = _pick(rng, (1, 2, 3))
        elif rng.random() < 0.7:  # decoders mostly keep or shrink the channel count
            c_out = _pick(rng, [c for c in RANDOM_CHANNELS if c <= c_in])
        else:
            c_out = _pick(rng, RANDOM_CHANNELS)
    max_kernel = 4 if rank == 3 else 7
    if rank > 1 and rng.random() < 0.15:
        kernel, stride = zip(*(_kernel_stride(rng, max_kernel) for _ in range(rank)))
    else:
        k, s = _kernel_stride(rng, max_kernel)
        kernel, stride = (k,) * rank, (s,) * rank
    d = 2 if rng.random() < 0.15 and max(kernel) > 1 else 1  # dilating a 1-tap kernel changes nothing
    same = rng.random() < 0.7
    extra = rng.random() if rng.random() < 0.3 else 0.0
    padding, output_padding = zip(*(_padding(k, s, d, same, extra) for k, s in zip(kernel, stride)))
    n = _pick(rng, RANDOM_BATCHES)

    per_pixel = 2 * n * c_in * (c_out // groups) * math.prod(kernel)
    low, high = RANDOM_GFLOP
    target = math.exp(rng.uniform(math.log(low * 1e9), math.log(high * 1e9)))
    pixels = target / per_pixel
    aspect = math.exp(rng.uniform(-0.7, 0.7)) if rank == 2 and rng.random() < 0.3 else 1.0
    side = pixels ** (1 / rank)
    sides = [side * math.sqrt(aspect), side / math.sqrt(aspect)] if rank == 2 else [side] * rank
    spatial = tuple(max(1, round(v)) for v in sides)
    if max(spatial) > RANDOM_MAX_SIDE[rank]:
        return None
    layer = Layer(name, n, c_in, c_out, spatial, kernel, stride, padding, output_padding, groups, (d,) * rank)
    if min(layer.out_spatial) < 1 or not low <= layer.flops / 1e9 <= high:
        return None
    activations = 4 * (n * c_in * math.prod(spatial) + n * c_out * math.prod(layer.out_spatial))
    if activations > RANDOM_MAX_ARRAY_BYTES:
        return None
    return layer
