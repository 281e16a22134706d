"""Reductions (sum, mean, max, min, prod, argmax, argmin, norm) and their inverses.

Gradients must work when some dims are unknown until run time (the batch), so undoing a
broadcast or a reduction uses ops that read the target shape from a tensor at run time:

* ``sum_to_like(g, x)`` sums ``g`` down to ``x``'s shape (the inverse of broadcasting);
* ``broadcast_like(g, x, axes)`` re-inserts the reduced ``axes`` into ``g`` and broadcasts it
  to ``x``'s shape (the inverse of a reduction);
* ``size(x, axes)`` counts the elements a mean divides by.

The simplification pass turns them into static ops where the shapes are known.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Union

import numpy as np

from graphc import dtypes
from graphc.errors import DTypeError, ShapeError
from graphc.graph import Tensor, TensorSpec
from graphc.op import Kind, apply1, defop
from graphc.ops.elementwise import _as_tensor, abs as _abs, cast, equal, sqrt, square
from graphc.ops.state import constant
from graphc.shapes import (broadcast_shapes, format_shape, is_fully_known, normalize_axes,
                           normalize_axis)

Axis = Union[None, int, Sequence[int]]


def _reduced_shape(shape: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _infer_reduce(x: TensorSpec, *, axes: Optional[tuple[int, ...]], keepdims: bool,
                  numeric: bool = True) -> TensorSpec:
    if numeric and x.dtype.is_bool:
        raise DTypeError("expects a numeric tensor, got bool; use gc.cast")
    if x.shape is None:
        if axes is None and not keepdims:
            return TensorSpec((), x.dtype)
        raise ShapeError("needs a known rank to reduce over axes; give the input a shape")
    axes = tuple(range(len(x.shape))) if axes is None else axes
    return TensorSpec(_reduced_shape(x.shape, axes, keepdims), x.dtype)


def _axes_of(node: Any) -> Optional[tuple[int, ...]]:
    """The reduced axes, None meaning all (the rank may be unknown then)."""
    return node.attrs["axes"]


def _grad_input(node: Any, g: Tensor) -> Tensor:
    """``g`` broadcast back to the reduced input's shape."""
    axes = _axes_of(node)
    # Reducing over all axes gives a scalar (or all-ones dims), which broadcasts as it is.
    inserted = () if node.attrs["keepdims"] or axes is None else axes
    return broadcast_like(g, node.inputs[0], inserted)


def _vjp_sum(node: Any, g: Tensor) -> list:
    return [_grad_input(node, g)]


def _vjp_mean(node: Any, g: Tensor) -> list:
    x = node.inputs[0]
    return [_grad_input(node, g) / count(x, _axes_of(node), x.dtype)]


def _vjp_extreme(node: Any, g: Tensor) -> list:
    # Ties share the gradient equally, as in TF.
    x = node.inputs[0]
    y = _grad_input(node, node.outputs[0])
    mask = cast(equal(x, y), x.dtype)
    ties = reduce_sum(mask, _axes_of(node), keepdims=x.ndim is not None)
    return [_grad_input(node, g) * mask / broadcast_like(ties, x)]


def _vjp_prod(node: Any, g: Tensor) -> list:
    x = node.inputs[0]
    axes = _axes_of(node)
    return [_grad_input(node, g) * apply1("prod_others", [x], {"axes": axes})]


def _np_reduce(fn: Any) -> Any:
    def ref(x: np.ndarray, *, axes: Optional[tuple[int, ...]], keepdims: bool) -> np.ndarray:
        return np.asarray(fn(x, axis=axes, keepdims=keepdims)).astype(x.dtype, copy=False)
    return ref


def _mean_ref(x: np.ndarray, *, axes: Any, keepdims: bool) -> np.ndarray:
    return np.asarray(np.mean(x, axis=axes, keepdims=keepdims, dtype=np.float64
                              if x.dtype.kind != "f" else None)).astype(x.dtype, copy=False)


for _name, _ref, _vjp in (("reduce_sum", _np_reduce(np.sum), _vjp_sum),
                          ("reduce_mean", _mean_ref, _vjp_mean),
                          ("reduce_max", _np_reduce(np.max), _vjp_extreme),
                          ("reduce_min", _np_reduce(np.min), _vjp_extreme),
                          ("reduce_prod", _np_reduce(np.prod), _vjp_prod)):
    defop(_name, kind=Kind.REDUCE, infer=_infer_reduce, ref=_ref, vjp=_vjp,
          doc=f"{_name[7:]} over `axes` (None: all)")


def _prod_others_ref(x: np.ndarray, *, axes: Optional[tuple[int, ...]]) -> np.ndarray:
    # The product of the *other* elements of each reduction group, exact with zeros:
    # exclusive cumulative products from the left and from the right.
    axes = tuple(range(x.ndim)) if axes is None else axes
    moved = np.moveaxis(x, axes, tuple(range(x.ndim - len(axes), x.ndim)))
    flat = moved.reshape(moved.shape[:x.ndim - len(axes)] + (-1,))
    ones = np.ones(flat.shape[:-1] + (1,), x.dtype)
    left = np.cumprod(np.concatenate([ones, flat[..., :-1]], -1), -1)
    right = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], -1), -1)[..., ::-1]
    out = (left * right).reshape(moved.shape)
    return np.moveaxis(out, tuple(range(x.ndim - len(axes), x.ndim)), axes)


defop("prod_others", kind=Kind.REDUCE, ref=_prod_others_ref,
      infer=lambda x, *, axes: x,
      doc="each element replaced by the product of the others in its reduction group "
          "(the gradient of reduce_prod; it has no gradient itself)")


def _reduce(op: str, x: Any, axis: Axis, keepdims: bool, name: Optional[str]) -> Tensor:
    x = _as_tensor(x)
    axes = None if axis is None else normalize_axes(axis, _known_rank(x, op))
    return apply1(op, [x], {"axes": axes, "keepdims": bool(keepdims)}, name=name)


def _known_rank(x: Tensor, op: str) -> int:
    if x.ndim is None:
        raise ShapeError(f"{op}: {x.describe()} needs a known rank to reduce over an axis")
    return x.ndim


def reduce_sum(x: Any, axis: Axis = None, keepdims: bool = False, name: Optional[str] = None) -> Tensor:
    """Sum over ``axis`` (None: all axes)."""
    return _reduce("reduce_sum", x, axis, keepdims, name)


def reduce_mean(x: Any, axis: Axis = None, keepdims: bool = False, name: Optional[str] = None) -> Tensor:
    """Mean over ``axis`` (None: all axes)."""
    return _reduce("reduce_mean", x, axis, keepdims, name)


def reduce_max(x: Any, axis: Axis = None, keepdims: bool = False, name: Optional[str] = None) -> Tensor:
    """Maximum over ``axis``; the gradient is shared equally among ties."""
    return _reduce("reduce_max", x, axis, keepdims, name)


def reduce_min(x: Any, axis: Axis = None, keepdims: bool = False, name: Optional[str] = None) -> Tensor:
    """Minimum over ``axis``; the gradient is shared equally among ties."""
    return _reduce("reduce_min", x, axis, keepdims, name)


def reduce_prod(x: Any, axis: Axis = None, keepdims: bool = False, name: Optional[str] = None) -> Tensor:
    """Product over ``axis``; its gradient is exact when elements are zero."""
    return _reduce("reduce_prod", x, axis, keepdims, name)


# -- argmax / argmin --------------------------------------------------------------------

def _infer_arg(x: TensorSpec, *, axis: int, output_type: dtypes.DType) -> TensorSpec:
    return TensorSpec(_reduced_shape(x.shape, (axis,), False), output_type)


for _name, _fn in (("argmax", np.argmax), ("argmin", np.argmin)):
    defop(_name, kind=Kind.REDUCE, infer=_infer_arg,
          ref=(lambda fn: lambda x, *, axis, output_type:
               fn(x, axis=axis).astype(output_type.np))(_fn),
          doc=f"index of the {_name[3:]} along `axis` (the first, on ties)")


def argmax(x: Any, axis: Optional[int] = None, output_type: Any = dtypes.int64,
           name: Optional[str] = None) -> Tensor:
    """Index of the largest element along ``axis`` (TF1: ``axis=None`` means 0)."""
    return _arg("argmax", x, axis, output_type, name)


def argmin(x: Any, axis: Optional[int] = None, output_type: Any = dtypes.int64,
           name: Optional[str] = None) -> Tensor:
    """Index of the smallest element along ``axis`` (TF1: ``axis=None`` means 0)."""
    return _arg("argmin", x, axis, output_type, name)


def _arg(op: str, x: Any, axis: Optional[int], output_type: Any, name: Optional[str]) -> Tensor:
    x = _as_tensor(x)
    axis = normalize_axis(0 if axis is None else axis, _known_rank(x, op))
    return apply1(op, [x], {"axis": axis, "output_type": dtypes.as_dtype(output_type)}, name=name)


def norm(tensor: Any, ord: Any = "euclidean", axis: Axis = None, keepdims: bool = False,
         name: Optional[str] = None) -> Tensor:
    """The vector norm over ``axis``: ``"euclidean"``/2, 1, or ``np.inf``."""
    if ord in ("euclidean", 2, "fro"):
        return sqrt(reduce_sum(square(tensor), axis, keepdims), name)
    if ord == 1:
        return reduce_sum(_abs(tensor), axis, keepdims, name)
    if ord == np.inf:
        return reduce_max(_abs(tensor), axis, keepdims, name)
    raise ValueError(f"norm: ord must be 'euclidean', 1, 2 or np.inf, got {ord!r}")


# -- the inverses of broadcasting and reduction ------------------------------------------

def _sum_to_ref(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    lead = g.ndim - x.ndim
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(x.shape)
                                      if d == 1 and g.shape[lead + i] != 1)
    return np.sum(g, axis=axes).reshape(x.shape).astype(g.dtype, copy=False) if axes else \
        g.reshape(x.shape)


def _infer_sum_to(g: TensorSpec, x: TensorSpec) -> TensorSpec:
    if g.shape is not None and x.shape is not None:
        broadcast_shapes(g.shape, x.shape)
    return TensorSpec(x.shape, g.dtype)


defop("sum_to_like", kind=Kind.REDUCE, infer=_infer_sum_to, ref=_sum_to_ref,
      vjp=lambda n, g: [broadcast_like(g, n.inputs[0]), None], input_names=("g", "like"),
      doc="g summed over the axes broadcasting added to `like`'s shape")


def sum_to_like(g: Tensor, x: Tensor) -> Tensor:
    """``g`` summed to ``x``'s shape, undoing a broadcast (``g`` itself when provably equal)."""
    if g.shape == x.shape and is_fully_known(g.shape):
        return g
    return apply1("sum_to_like", [g, x])


def _broadcast_like_ref(a: np.ndarray, x: np.ndarray, *, axes: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.expand_dims(a, axes) if axes else a, x.shape).copy()


def _infer_broadcast_like(a: TensorSpec, x: TensorSpec, *, axes: tuple[int, ...]) -> TensorSpec:
    if a.shape is not None and x.shape is not None:
        shape = list(a.shape)
        for ax in axes:
            shape.insert(ax, 1)
        if len(shape) > len(x.shape):
            raise ShapeError(f"cannot broadcast {format_shape(a.shape)} to {format_shape(x.shape)}")
        broadcast_shapes(tuple(shape), x.shape)
    return TensorSpec(x.shape, a.dtype)


def _vjp_broadcast_like(node: Any, g: Tensor) -> list:
    a = node.inputs[0]
    axes = node.attrs["axes"]
    return [sum_to_like(reduce_sum(g, axes) if axes else g, a), None]


defop("broadcast_like", kind=Kind.BROADCAST, infer=_infer_broadcast_like,
      ref=_broadcast_like_ref, vjp=_vjp_broadcast_like, input_names=("a", "like"),
      doc="a, with `axes` re-inserted, broadcast to `like`'s shape")


def broadcast_like(a: Tensor, x: Tensor, axes: Sequence[int] = ()) -> Tensor:
    """``a`` with the reduced ``axes`` re-inserted, broadcast to ``x``'s shape."""
    return apply1("broadcast_like", [a, x], {"axes": tuple(axes)})


def _size_ref(x: np.ndarray, *, axes: Optional[tuple[int, ...]]) -> np.ndarray:
    dims = x.shape if axes is None else [x.shape[a] for a in axes]
    return np.asarray(math.prod(dims), np.int64)  # (math.prod: np.prod costs µs per call)


defop("size", kind=Kind.SHAPE, ref=_size_ref,
      infer=lambda x, *, axes: TensorSpec((), dtypes.int64),
      doc="the number of elements of x along `axes` (None: all), as an int64 scalar")


def count(x: Tensor, axes: Optional[Sequence[int]], dtype: Any) -> Tensor:
    """The element count of ``x`` along ``axes`` (None: all) as a ``dtype`` scalar: a
    constant when the dims are static, else computed at run time."""
    dims = x.shape if axes is None or x.shape is None else [x.shape[a] for a in axes]
    if dims is not None and all(d is not None for d in dims):
        return constant(np.prod(dims, dtype=np.int64), dtype, graph=x.graph)
    return cast(apply1("size", [x], {"axes": None if axes is None else tuple(axes)}), dtype)


__all__ = ["reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod", "argmax",
           "argmin", "norm", "sum_to_like", "broadcast_like", "count"]
