"""Layers with PyTorch's constructors, attribute names, ``repr`` and ``state_dict`` keys.

``ConvTranspose1d/2d/3d`` and ``Conv1d/2d/3d`` hold ``weight`` and ``bias`` as NumPy arrays, initialised
as PyTorch does (uniform in ``±1/sqrt(fan_in)``, ``fan_in = weight.shape[1] * prod(kernel_size)``),
from ``rng`` (an int seed or a ``numpy.random.Generator``). Calling a layer runs the forward pass and
remembers its input; ``layer.backward(grad_output)`` returns the input's gradient and adds the weight's
and bias's to ``layer.grad_weight`` / ``layer.grad_bias`` (accumulated, as in PyTorch, until
``layer.zero_grad()``).

A transposed layer keeps its weight as the algorithm reorders it (prepacked, as ONNX Runtime and
OpenVINO do when a session is built; :mod:`tconv.engine.packing`): made on the first call, reused
after, and dropped when ``weight`` is assigned (``load_state_dict`` included) or changed in place
(seen by a checksum of its bytes on each call).

>>> layer = ConvTranspose2d(1, 1, kernel_size=2, stride=2, padding=1, output_padding=1, bias=False)
>>> layer
ConvTranspose2d(1, 1, kernel_size=(2, 2), stride=(2, 2), padding=(1, 1), output_padding=(1, 1), bias=False)
>>> layer(np.ones((1, 1, 2, 2))).shape
(1, 1, 3, 3)
"""

from __future__ import annotations

import dataclasses
import operator
import time
from dataclasses import dataclass
from math import prod, sqrt
from typing import Any, NamedTuple

import numpy as np

from ..engine import algorithms, fast
from ..engine.packing import WeightCache
from .functional import Prepared, _conv_spec, _conv_transpose_spec, backward, execute, prepare
from .padding import PADDING_MODES
from .spec import as_array, check_output_padding, int_tuple, padding_pairs

#: A transposed layer remembers how it runs this many input geometries at most (then forgets them all).
PLANS_KEPT = 32

#: A transposed layer's first call of a geometry times ``auto``'s contenders and keeps the fastest.
MEASURED_CHOICE = True

#: ... and keeps ``auto``'s pick unless another contender ran faster by more than this fraction (a
#: first call's timings are noisy: unet_up4 once kept subpixel at 28.5 ms over gemm's 20.5).
MEASURED_MARGIN = 0.1

#: ... timing them in two rounds, and more while the rounds take under ``MEASURED_SECONDS`` (a small
#: layer's first runs are slower for a while, ~1 ms falling to ~0.6 over ten runs, and not equally
#: for every algorithm).
MEASURED_ROUNDS = 12
MEASURED_SECONDS = 0.1


class IncompatibleKeys(NamedTuple):
    """What :meth:`ConvLayer.load_state_dict` did not match, as PyTorch reports it."""

    missing_keys: list[str]
    unexpected_keys: list[str]


@dataclass(frozen=True)
class LayerArgs:
    """A layer's constructor arguments, checked and per dimension (:func:`layer_args`)."""

    in_channels: int
    out_channels: int
    groups: int
    transposed: bool
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]
    padding: Any  # ints per dimension, or (before, after) pairs when unequal, or 'same' / 'valid'
    padding_mode: str

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """``(C_in, C_out/groups, *k)`` (transposed) or ``(C_out, C_in/groups, *k)``."""
        io = ((self.in_channels, self.out_channels // self.groups) if self.transposed
              else (self.out_channels, self.in_channels // self.groups))
        return io + self.kernel_size

    @property
    def bound(self) -> float:
        """PyTorch's initial weights and bias are uniform in ±bound, ``1/sqrt(fan_in)`` with
        ``fan_in = weight_shape[1] * prod(kernel_size)``."""
        return 1 / sqrt(self.weight_shape[1] * prod(self.kernel_size))


def layer_args(
    name: str,
    rank: int,
    transposed: bool,
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, ...],
    stride: int | tuple[int, ...] = 1,
    padding: int | str | tuple = 0,
    output_padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
    padding_mode: str = "zeros",
) -> LayerArgs:
    """Check a layer's constructor arguments once, in tconv's words (``name`` starts each message), for
    every layer class that holds them: tconv's own and ``tconv.jax``'s Flax module.

    >>> args = layer_args("ConvTranspose2d", 2, True, 4, 6, 3, stride=2, groups=2)
    >>> args.weight_shape, args.stride, args.padding
    ((4, 3, 3, 3), (2, 2), (0, 0))
    >>> layer_args("ConvTranspose1d", 1, True, 4, 6, 3, groups=4)
    Traceback (most recent call last):
    ...
    ValueError: ConvTranspose1d: in_channels (4) and out_channels (6) must both be divisible by groups (4)
    """
    for arg, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        int_tuple(name, arg, value, 1, 1)
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
            f"divisible by groups ({groups})"
        )
    kernel_size = int_tuple(name, "kernel_size", kernel_size, rank, 1)
    stride = int_tuple(name, "stride", stride, rank, 1)
    dilation = int_tuple(name, "dilation", dilation, rank, 1)
    output_padding = int_tuple(name, "output_padding", output_padding, rank, 0)
    check_output_padding(name, output_padding, stride, dilation)
    pairs = padding_pairs(name, padding, rank)
    checked: str | tuple[int, ...] | tuple[tuple[int, int], ...] = pairs
    if not (isinstance(pairs, str) or any(b != a for b, a in pairs)):
        checked = tuple(b for b, _ in pairs)
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"{name}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    return LayerArgs(int(in_channels), int(out_channels), int(groups), transposed, kernel_size, stride,
                     dilation, output_padding, checked, padding_mode)


class ConvLayer:
    """Shared by both directions: argument checks, parameters, state_dict, gradients, repr."""

    _rank: int
    transposed: bool  # a ConvTranspose layer (else a Conv layer)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | str | tuple = 0,
        output_padding: int | tuple[int, ...] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, ...] = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        name = type(self).__name__
        args = layer_args(name, self._rank, self.transposed, in_channels, out_channels, kernel_size,
                          stride, padding, output_padding, groups, dilation, padding_mode)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.dilation = args.kernel_size, args.stride, args.dilation
        self.output_padding, self.padding, self.padding_mode = (args.output_padding, args.padding,
                                                                args.padding_mode)
        if device not in (None, "cpu"):
            raise ValueError(f"{name}: device must be None or 'cpu' (tconv runs on NumPy), got {device!r}")
        self.dtype = np.dtype(np.float32 if dtype is None else dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"{name}: dtype must be float32 or float64, got {self.dtype}")

        shape, bound = args.weight_shape, args.bound
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self._packed = WeightCache()  # the weight as the algorithm reorders it (transposed layers)
        # per input shape and dtype: (what it was made from, their shapes, the prepared call)
        self._plans: dict[tuple, tuple[tuple, tuple, Prepared]] = {}
        self.weight = gen.uniform(-bound, bound, shape).astype(self.dtype)
        self.bias = gen.uniform(-bound, bound, out_channels).astype(self.dtype) if bias else None
        self.grad_weight: np.ndarray | None = None
        self.grad_bias: np.ndarray | None = None
        self._saved: tuple[Any, np.ndarray] | None = None  # (spec, input) of the last call

    # ----------------------------------------------------------------- parameters
    @property
    def weight(self) -> np.ndarray:
        """The weight, PyTorch's shape; assigning it drops the prepacked forms."""
        return self._weight

    @weight.setter
    def weight(self, value: np.ndarray) -> None:
        self._weight = value
        self._packed.clear()

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{'weight': ..., 'bias': ...}`` (no 'bias' without bias), PyTorch's keys."""
        state = {"weight": self.weight}
        if self.bias is not None:
            state["bias"] = self.bias
        return state

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy parameters from a mapping of NumPy arrays or torch tensors, PyTorch's keys and shapes.

        Returns, as PyTorch does, ``(missing_keys, unexpected_keys)``; with ``strict`` either is a
        ValueError. Every value is checked before any is copied, so a refused call changes nothing.

        >>> ConvTranspose1d(1, 1, 2).load_state_dict({"weight": np.ones((1, 1, 2))}, strict=False)
        IncompatibleKeys(missing_keys=['bias'], unexpected_keys=[])
        """
        name = type(self).__name__
        own = self.state_dict()
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        if strict and (missing or unexpected):
            raise ValueError(
                f"{name}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
            )
        new = {}
        for key in own:
            if key not in state_dict:
                continue
            value = as_array(f"{name}.load_state_dict", key, state_dict[key])
            if value.shape != own[key].shape:
                raise ValueError(
                    f"{name}.load_state_dict: {key} must have shape {own[key].shape}, got {value.shape}"
                )
            new[key] = np.array(value, dtype=self.dtype)
        for key, value in new.items():
            setattr(self, key, value)
        return IncompatibleKeys(missing, unexpected)

    def zero_grad(self) -> None:
        """Forget the accumulated gradients."""
        self.grad_weight = self.grad_bias = None

    def backward(self, grad_output: Any) -> np.ndarray:
        """The input's gradient for the last call; the weight's and bias's are added to
        ``grad_weight`` / ``grad_bias``."""
        name = f"{type(self).__name__}.backward"
        if self._saved is None:
            raise ValueError(f"{name}: call the layer on an input first")
        spec, x = self._saved
        grad_input, grad_weight, grad_bias = backward(name, spec, grad_output, x, self.weight)
        self.grad_weight = grad_weight if self.grad_weight is None else self.grad_weight + grad_weight
        if self.bias is not None:
            self.grad_bias = grad_bias if self.grad_bias is None else self.grad_bias + grad_bias
        return grad_input

    # ----------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if isinstance(self.padding, str) or any(self.padding):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._rank:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._rank:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class _ConvTransposeNd(ConvLayer):
    transposed = True

    def __call__(self, input: Any, output_size: tuple[int, ...] | None = None) -> np.ndarray:
        """``(N, C_in, *in)`` or ``(C_in, *in)`` to ``(N, C_out, *out)``; see :func:`tconv.conv_transpose`.

        ``output_size`` (PyTorch's) overrides ``output_padding`` for this call.
        """
        name = type(self).__name__
        w, b = self._weight, self.bias
        state = (w, b, self.stride, self.padding, self.output_padding, self.groups, self.dilation,
                 self.padding_mode)
        plain = (output_size is None and type(input) is np.ndarray and type(w) is np.ndarray
                 and (b is None or type(b) is np.ndarray))
        if not plain:  # a dask input, a tensor, a list, output_size: checked and run afresh
            output_padding = self.output_padding if output_size is None else 0
            y, spec, x = _conv_transpose_spec(
                name, input, self.weight, self.bias, self.stride, self.padding, output_padding,
                self.groups, self.dilation, output_size, self.padding_mode, "auto", self._packed)
            self._saved = (spec, x)
            return y
        # the plan of this input geometry, if nothing it was made from has changed since
        shapes = (w.shape, w.dtype, None if b is None else (b.shape, b.dtype))
        entry = self._plans.get((input.shape, input.dtype))
        if entry is not None and entry[1] == shapes and all(map(operator.is_, entry[0], state)):
            plan = entry[2]
            y = execute(name, plan, input, w, b, self._packed)
        else:  # check the call, run it, and remember how it runs (a bounded number of shapes)
            for what, a in (("input", input), ("weight", w), ("bias", b)):
                if a is not None:
                    as_array(name, what, a)  # the dtype check of the general path
            plan = prepare(name, input, w, b, self.stride, self.padding, self.output_padding,
                           self.groups, self.dilation, None, self.padding_mode, "auto")
            y = execute(name, plan, input, w, b, self._packed)
            if MEASURED_CHOICE:
                plan = self._fastest(name, plan, input)
            if len(self._plans) >= PLANS_KEPT:
                self._plans.clear()
            self._plans[input.shape, input.dtype] = (state, shapes, plan)
        self._saved = (plan.spec, input)
        return y

    def _fastest(self, name: str, plan: Prepared, x: np.ndarray) -> Prepared:
        """``plan`` with the fastest of ``auto``'s contenders (:func:`tconv.engine.algorithms.contenders`,
        and their :func:`~tconv.engine.algorithms.variants`), each timed on ``x`` after a call that
        packs its weight and loads its code: two rounds, more (up to :data:`MEASURED_ROUNDS`) while
        they take under :data:`MEASURED_SECONDS`, each running every contender once, so that a
        passing disturbance does not favour one; each contender's least disturbed run counts, and
        ``auto``'s pick stays unless another is faster by more than :data:`MEASURED_MARGIN`. Other
        threads' calls wait meanwhile (:func:`tconv.engine.fast.exclusive`). The losers' packed
        forms are dropped (the winner packs again on the next call)."""
        names = algorithms.contenders(plan.run_spec)
        runs = [algorithms.TRANSPOSED[a] for a in names] + list(algorithms.variants(plan.run_spec, names))
        if len(runs) < 2:
            return plan
        candidates = [dataclasses.replace(plan, run=run) for run in runs]
        with fast.exclusive():  # other threads' tconv calls wait: they would disturb the timings
            return self._timed(name, candidates, x)

    def _timed(self, name: str, candidates: list[Prepared], x: np.ndarray) -> Prepared:
        for candidate in candidates:
            execute(name, candidate, x, self._weight, self.bias, self._packed)
        best = [float("inf")] * len(candidates)
        start = time.perf_counter()
        for round in range(MEASURED_ROUNDS):
            if round >= 2 and time.perf_counter() - start > MEASURED_SECONDS:
                break
            for i, candidate in enumerate(candidates):
                began = time.perf_counter()
                execute(name, candidate, x, self._weight, self.bias, self._packed)
                best[i] = min(best[i], time.perf_counter() - began)
        self._packed.clear()
        fastest = min(range(len(candidates)), key=best.__getitem__)
        return candidates[0] if best[0] <= (1 + MEASURED_MARGIN) * best[fastest] else candidates[fastest]

    forward = __call__


class _ConvNd(ConvLayer):
    transposed = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | str | tuple = 0,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, 0, groups, bias,
                         dilation, padding_mode, device, dtype, rng=rng)

    def __call__(self, input: Any) -> np.ndarray:
        """``(N, C_in, *in)`` or ``(C_in, *in)`` to ``(N, C_out, *out)``; see :func:`tconv.conv`."""
        y, spec, x = _conv_spec(type(self).__name__, input, self.weight, self.bias, self.stride,
                                self.padding, self.dilation, self.groups, self.padding_mode)
        self._saved = (spec, x)
        return y

    forward = __call__


class ConvTranspose1d(_ConvTransposeNd):
    """PyTorch's ``nn.ConvTranspose1d``: weight ``(C_in, C_out/groups, k)``; any padding_mode."""

    _rank = 1


class ConvTranspose2d(_ConvTransposeNd):
    """PyTorch's ``nn.ConvTranspose2d``: weight ``(C_in, C_out/groups, kh, kw)``; any padding_mode."""

    _rank = 2


class ConvTranspose3d(_ConvTransposeNd):
    """PyTorch's ``nn.ConvTranspose3d``: weight ``(C_in, C_out/groups, kd, kh, kw)``; any padding_mode."""

    _rank = 3


class Conv1d(_ConvNd):
    """PyTorch's ``nn.Conv1d``: weight ``(C_out, C_in/groups, k)``."""

    _rank = 1


class Conv2d(_ConvNd):
    """PyTorch's ``nn.Conv2d``: weight ``(C_out, C_in/groups, kh, kw)``."""

    _rank = 2


class Conv3d(_ConvNd):
    """PyTorch's ``nn.Conv3d``: weight ``(C_out, C_in/groups, kd, kh, kw)``."""

    _rank = 3
