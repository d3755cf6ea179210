"""The functional API: :func:`conv_transpose`, :func:`conv`, their gradients, and 1d/2d/3d forms.

Shapes (PyTorch's): a transposed convolution takes ``(N, C_in, *in)`` (or unbatched ``(C_in, *in)``)
with weight ``(C_in, C_out/groups, *k)`` and bias ``(C_out,)`` to ``(N, C_out, *out)``, per dimension

    out = (in - 1)*stride - padding_before - padding_after + dilation*(k - 1) + output_padding + 1

A convolution takes ``(N, C_in, *in)`` with weight ``(C_out, C_in/groups, *k)`` to
``(N, C_out, floor((in + padding_before + padding_after - dilation*(k-1) - 1)/stride) + 1)``.

Dtypes: float32 stays float32 and float64 stays float64; mixed arguments follow NumPy promotion
(float32 with float64 gives float64); integer and bool arrays are computed in float64 (as
``np.mean`` does). Any other dtype (float16, complex, object, strings) is a TypeError.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from ..engine import algorithms, fast
from ..engine.packing import Scoped, WeightCache, kept_taps, takes_cache
from ..engine.threads import blas_limit, get_num_threads
from .spec import ConvSpec, as_array, cached_transposed_spec, conv_spec, result_dtype, transposed_spec

ArrayLike = Any


#: Array types another part of tconv computes (lazily, block by block), registered from outside the
#: core (:mod:`tconv.scale` registers dask arrays), so the core knows none of them: ``(claims, load)``
#: pairs. Before taking an argument as an array, a public function asks each ``claims(a)`` (which must
#: not import anything heavy) and hands the whole call to the module ``load()`` returns, which has
#: ``checked``, ``conv_transpose``, ``conv`` and ``backward`` with this module's signatures.
_DEFERRED: list[tuple[Callable[[Any], bool], Callable[[], Any]]] = []


def register_array_type(claims: Callable[[Any], bool], load: Callable[[], Any]) -> None:
    """Hand every call with an argument that ``claims(a)`` to the module ``load()`` returns (see
    :data:`_DEFERRED`); the first registration that claims an argument wins."""
    _DEFERRED.append((claims, load))


def _deferred(*arrays: Any) -> Any:
    """The module that computes a call with these arguments, if a registered type claims one."""
    for claims, load in _DEFERRED:
        if any(claims(a) for a in arrays):
            return load()
    return None


def _input(op: str, input: Any) -> tuple[Any, np.ndarray, bool]:
    """``(input as computed on, a stand-in for the spec's checks, in_memory)``: a dask input stays
    lazy, checked through a same-shape stand-in that holds no memory."""
    deferred = _deferred(input)
    if deferred is not None:
        return (*deferred.checked(op, "input", input), False)
    x = as_array(op, "input", input)
    return x, x, True


def _batched(spec: ConvSpec, a: np.ndarray) -> np.ndarray:
    a = a.astype(spec.dtype, copy=False)
    return a if spec.batch is not None else a[None]


def _unbatched(spec: ConvSpec, a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a if spec.batch is not None else a[0]


def _add_bias(spec: ConvSpec, y: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    if b is not None:
        y += b.astype(spec.dtype, copy=False).reshape(-1, *(1,) * spec.rank)
    return y


#: ``algorithm=`` values the engine runs (``auto`` among them), for which
#: :func:`tconv.engine.algorithms.trimmed` applies.
ENGINE = frozenset({"auto", "gemm", "direct", "phase", "subpixel"})


#: The engine's algorithms, which hold BLAS to tconv's thread count themselves (their workers run
#: one-thread BLAS): :func:`execute` does not wrap them in another limit (~10 us a call).
_SELF_LIMITED = frozenset(
    [algorithms.TRANSPOSED[name] for name in ENGINE - {"auto"}] + [fast.gemm_shared])


def _algorithm(op: str, algorithm: Any, spec: ConvSpec) -> Callable:
    if algorithm == "auto":
        algorithm = algorithms.choose(spec)
    if algorithm not in algorithms.TRANSPOSED:
        raise ValueError(f"{op}: algorithm must be one of {algorithms.ALGORITHMS}, got {algorithm!r}")
    return algorithms.TRANSPOSED[algorithm]


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What a call of one geometry needs besides its arrays (:func:`prepare`): the checked spec, the
    spec the algorithm runs (the kernel cut to the taps that reach the output, when some do not:
    :func:`tconv.engine.algorithms.trimmed`), the taps kept, and the algorithm."""

    spec: ConvSpec
    run_spec: ConvSpec
    taps: tuple[tuple[int, int], ...] | None
    run: Callable


def prepare(op: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Any, padding: Any,
            output_padding: Any, groups: Any, dilation: Any, output_size: Any, padding_mode: Any,
            algorithm: Any) -> Prepared:
    """Check the call (a ValueError or TypeError naming what is wrong) and choose how to run it."""
    spec = cached_transposed_spec(op, x, w, b, stride, padding, output_padding, groups, dilation,
                                  output_size, padding_mode)
    # the engine skips the kernel taps that reach only cropped pixels; the references keep them all
    tight = algorithms.trimmed(spec) if isinstance(algorithm, str) and algorithm in ENGINE else None
    run_spec = spec if tight is None else tight[0]
    return Prepared(spec, run_spec, None if tight is None else tight[1], _algorithm(op, algorithm, run_spec))


def execute(op: str, p: Prepared, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
            cache: WeightCache | None = None) -> np.ndarray:
    """Run a prepared call on arrays of the geometry it was prepared for.

    ``cache`` (a layer's) keeps the weight as the algorithm reorders it between calls; it is bound
    to the weight as given (a layer's own array), and the forms are keyed by the dtype computed in,
    so a float64 input to a float32 layer keeps float64 forms beside the float32 ones.
    """
    spec, run = p.spec, p.run
    kept = cache if cache is not None and (p.taps is not None or takes_cache(run)) else None
    if kept is not None:
        # a large weight's bytes are checked on another thread while this one computes with the
        # forms kept from it (a 14 MB weight: ~1 ms a call); on a change, computed again
        kept.bind(w, defer=get_num_threads() > 1)
    y = _execute(op, p, x, w, b, cache)
    if kept is not None and not kept.confirm():
        y = _execute(op, p, x, w, b, cache)
    return _unbatched(spec, y)


def _execute(op: str, p: Prepared, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
             cache: WeightCache | None) -> np.ndarray:
    """:func:`execute`'s computation, batched, the weight's forms bound."""
    spec, run = p.spec, p.run
    w_run = w
    if p.taps is not None:
        # a layer keeps its cut weight contiguous (made from a view on every call, it is a copy)
        w_run = kept_taps(w, p.taps) if cache is None else cache.get(
            ("taps", p.taps), lambda: np.ascontiguousarray(kept_taps(w, p.taps)), p.taps)
    extra: dict[str, Any] = {}
    if cache is not None and takes_cache(run):
        extra["cache"] = cache if p.taps is None else Scoped(cache, ("taps", p.taps), p.taps)
    args = (p.run_spec, _batched(spec, x), w_run.astype(spec.dtype, copy=False),
            None if b is None else b.astype(spec.dtype, copy=False))
    try:
        if run in _SELF_LIMITED:
            y = run(*args, **extra)
        else:  # the reference algorithms' products run in this thread: BLAS held to the count
            with blas_limit():
                y = run(*args, **extra)
    except MemoryError as exc:
        raise ValueError(
            f"{op}: not enough memory for algorithm {run.__name__!r} from input {x.shape} to output "
            f"{spec.out_shape}"
        ) from exc
    return y


def _conv_transpose_spec(op, input, weight, bias, stride, padding, output_padding, groups,
                         dilation, output_size, padding_mode, algorithm,
                         cache: WeightCache | None = None):
    """The output, and the spec and input array a backward pass needs (see :func:`execute` for
    ``cache``). A dask ``input`` goes to :mod:`tconv.scale.dask` (lazy, block by block; no cache).
    """
    deferred = _deferred(input)
    if deferred is not None:
        return deferred.conv_transpose(op, input, weight, bias, stride, padding, output_padding, groups,
                                       dilation, output_size, padding_mode, algorithm)
    x = as_array(op, "input", input)
    w = as_array(op, "weight", weight)
    b = None if bias is None else as_array(op, "bias", bias)
    p = prepare(op, x, w, b, stride, padding, output_padding, groups, dilation, output_size,
                padding_mode, algorithm)
    return execute(op, p, x, w, b, cache), p.spec, x


def _conv_transpose(*args):
    return _conv_transpose_spec(*args)[0]


def conv_transpose(
    input: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: int | tuple[int, ...] = 1,
    padding: int | str | tuple = 0,
    output_padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
    *,
    output_size: tuple[int, ...] | None = None,
    padding_mode: str = "zeros",
    algorithm: str = "auto",
) -> np.ndarray:
    """Transposed convolution of any spatial rank (PyTorch's ``conv_transpose1d/2d/3d``, and more).

    Args:
        input: ``(N, C_in, *in)`` or unbatched ``(C_in, *in)``.
        weight: ``(C_in, C_out/groups, *k)``; its rank sets the spatial rank (``weight.ndim - 2``).
        bias: ``(C_out,)`` or None.
        stride, output_padding, dilation: an int or one int per spatial dimension.
        padding: an int; one int per dimension; one ``(before, after)`` pair per dimension (cropped
            from the output, as ONNX ``pads``); ``'valid'`` (no padding); or ``'same'``: output size
            ``in*stride`` with the odd pixel cropped at the end (TF/Keras, ONNX SAME_UPPER).
        output_padding: added to the end of each dimension; must be smaller than stride or dilation.
            It exists because when stride > 1 several input sizes of a convolution give the same
            output size, so the transposed convolution needs telling which one to restore.
        groups: input and output channels are split into this many independent groups.
        output_size: PyTorch's: the wanted spatial output size (or the whole shape); it picks
            output_padding, and an unreachable size is a ValueError stating the reachable range.
        padding_mode: ``'zeros'`` (PyTorch), or ``'circular'``, ``'reflect'``, ``'replicate'``: the exact
            adjoint of :func:`conv` with that mode: the output is computed into the padded domain and
            each border pixel is added back onto the pixel the convolution would copy it from.
        algorithm: one of :data:`tconv.ALGORITHMS`; all give the same numbers.

    Returns:
        ``(N, C_out, *out)`` (or ``(C_out, *out)``), a new array of the promoted float dtype, with
        ``out = (in-1)*stride - before - after + dilation*(k-1) + output_padding + 1``.

    >>> import numpy as np
    >>> X = K = np.array([[[[0., 1.], [2., 3.]]]])           # D2L Fig. 14.10.1
    >>> conv_transpose(X, K)[0, 0]
    array([[ 0.,  0.,  1.],
           [ 0.,  4.,  6.],
           [ 4., 12.,  9.]])
    >>> conv_transpose(X, K, stride=2).shape
    (1, 1, 4, 4)
    """
    return _conv_transpose("conv_transpose", input, weight, bias, stride, padding, output_padding,
                           groups, dilation, output_size, padding_mode, algorithm)


def _conv_spec(op, input, weight, bias, stride, padding, dilation, groups, padding_mode):
    """The output, and the spec and input array a backward pass needs."""
    deferred = _deferred(input)
    if deferred is not None:
        return deferred.conv(op, input, weight, bias, stride, padding, dilation, groups, padding_mode)
    x = as_array(op, "input", input)
    w = as_array(op, "weight", weight)
    b = None if bias is None else as_array(op, "bias", bias)
    spec = conv_spec(op, x, w, b, stride, padding, dilation, groups, padding_mode)
    y = fast.correlate(spec, _batched(spec, x), w.astype(spec.dtype, copy=False))[0]
    return _unbatched(spec, _add_bias(spec, y, b)), spec, x


def _conv(*args):
    return _conv_spec(*args)[0]


def conv(
    input: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: int | tuple[int, ...] = 1,
    padding: int | str | tuple = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Convolution (cross-correlation) of any spatial rank, with PyTorch's ``conv2d`` semantics.

    ``input`` ``(N, C_in, *in)`` or ``(C_in, *in)``, ``weight`` ``(C_out, C_in/groups, *k)``, ``bias``
    ``(C_out,)``; output ``(N, C_out, *out)`` with
    ``out = floor((in + before + after - dilation*(k-1) - 1)/stride) + 1``.
    ``padding``: an int, one int or ``(before, after)`` pair per dimension, ``'valid'``, or ``'same'``
    (output ``ceil(in/stride)``, the odd pixel padded at the end; PyTorch allows it for stride 1
    only, where both agree). ``padding_mode``: ``'zeros'``, ``'circular'``, ``'reflect'``,
    ``'replicate'`` (as ``nn.Conv2d``). It is the adjoint of :func:`conv_transpose` with the same
    arguments, and its input-gradient.

    >>> import numpy as np
    >>> conv(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), padding=1)[0, 0]   # seed 003, In [7]
    array([[4., 6., 6., 4.],
           [6., 9., 9., 6.],
           [6., 9., 9., 6.],
           [4., 6., 6., 4.]])
    """
    return _conv("conv", input, weight, bias, stride, padding, dilation, groups, padding_mode)


def backward(op: str, spec: ConvSpec, grad_output: ArrayLike, x: np.ndarray, w: np.ndarray):
    """Gradients of the forward call that ``spec`` describes (either direction).

    Transposed: grad_input is the convolution of grad_output, grad_weight correlates the input (small
    side) with grad_output (large side). Convolution: the mirror image.
    """
    deferred = _deferred(grad_output, x)
    if deferred is not None:
        return deferred.backward(op, spec, grad_output, x, w)
    g = as_array(op, "grad_output", grad_output)
    if g.shape != spec.out_shape:
        raise ValueError(
            f"{op}: grad_output must have the output's shape {spec.out_shape}, got {g.shape}"
        )
    spec = dataclasses.replace(spec, dtype=result_dtype(g, x, w))
    gb, xb, wd = _batched(spec, g), _batched(spec, x), w.astype(spec.dtype, copy=False)
    if spec.transposed:
        grad_input, grad_weight = fast.correlate(spec, gb, wd, small=xb)
    else:
        with blas_limit():
            grad_input = algorithms.TRANSPOSED[algorithms.choose(spec)](spec, gb, wd, None)
        grad_weight = fast.correlate(spec, xb, wd, small=gb, convolve=False)[1]
    grad_bias = gb.sum(axis=(0, *range(2, gb.ndim)))
    return _unbatched(spec, grad_input), grad_weight, grad_bias


def conv_transpose_backward(
    grad_output: ArrayLike,
    input: ArrayLike,
    weight: ArrayLike,
    stride: int | tuple[int, ...] = 1,
    padding: int | str | tuple = 0,
    output_padding: int | tuple[int, ...] = 0,
    groups: int = 1,
    dilation: int | tuple[int, ...] = 1,
    *,
    padding_mode: str = "zeros",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv_transpose`: ``(grad_input, grad_weight, grad_bias)``.

    - ``grad_input = conv(grad_output, weight, ...)`` with the same stride, padding, dilation, groups
      and padding mode (the adjoint), shape of ``input``;
    - ``grad_weight[c, o, t] = sum_{N, i} input[N, c, i] * grad_output_padded[N, o, i*s + t*d - before]``,
      shape of ``weight``;
    - ``grad_bias = grad_output`` summed over batch and space, ``(C_out,)``.

    >>> import numpy as np
    >>> gi, gw, gb = conv_transpose_backward(np.ones((1, 1, 3)), np.ones((1, 1, 2)), np.ones((1, 1, 2)))
    >>> gi.tolist(), gw.tolist(), gb.tolist()
    ([[[2.0, 2.0]]], [[[2.0, 2.0]]], [3.0])
    """
    op = "conv_transpose_backward"
    x, probe, in_memory = _input(op, input)
    w = as_array(op, "weight", weight)
    spec = transposed_spec(op, probe, w, None, stride, padding, output_padding, groups, dilation,
                           None, padding_mode, in_memory=in_memory)
    return backward(op, spec, grad_output, x, w)


def conv_backward(
    grad_output: ArrayLike,
    input: ArrayLike,
    weight: ArrayLike,
    stride: int | tuple[int, ...] = 1,
    padding: int | str | tuple = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv`: ``(grad_input, grad_weight, grad_bias)``.

    ``grad_input`` is the transposed convolution of ``grad_output`` that restores ``input``'s shape
    (the adjoint, same arguments); ``grad_weight`` the correlation of the padded input with
    ``grad_output``; ``grad_bias`` the sum of ``grad_output`` over batch and space.
    """
    op = "conv_backward"
    x, probe, in_memory = _input(op, input)
    w = as_array(op, "weight", weight)
    spec = conv_spec(op, probe, w, None, stride, padding, dilation, groups, padding_mode,
                     in_memory=in_memory)
    return backward(op, spec, grad_output, x, w)


# --------------------------------------------------------------------------- 1d / 2d / 3d


def _ranked(general: Callable, impl: Callable, rank: int, name: str) -> Callable:
    """``general`` with the weight's rank checked and ``name`` in its error messages."""
    params = list(inspect.signature(general).parameters)

    def ranked(*args, **kwargs):
        bound = inspect.signature(general).bind(*args, **kwargs)
        bound.apply_defaults()
        w = as_array(name, "weight", bound.arguments["weight"])
        if w.ndim != rank + 2:
            raise ValueError(
                f"{name}: weight must have {rank + 2} dimensions (channels, channels/groups, "
                f"{rank} kernel sizes), got shape {w.shape}"
            )
        bound.arguments["weight"] = w
        return impl(name, *(bound.arguments[p] for p in params))

    ranked.__name__ = ranked.__qualname__ = name
    setattr(ranked, "__signature__", inspect.signature(general))  # noqa: B010 (mypy types no __signature__)
    ranked.__doc__ = f"{rank}-d :func:`{general.__name__}`: the same arguments, a rank-{rank} weight."
    return ranked


conv_transpose1d = _ranked(conv_transpose, _conv_transpose, 1, "conv_transpose1d")
conv_transpose2d = _ranked(conv_transpose, _conv_transpose, 2, "conv_transpose2d")
conv_transpose3d = _ranked(conv_transpose, _conv_transpose, 3, "conv_transpose3d")
conv1d = _ranked(conv, _conv, 1, "conv1d")
conv2d = _ranked(conv, _conv, 2, "conv2d")
conv3d = _ranked(conv, _conv, 3, "conv3d")
