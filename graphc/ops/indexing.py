"""Indexing ops: ``slice`` and NumPy-style indexing (one ``strided_slice`` primitive),
``gather`` (with ``scatter_add_like`` as its gradient) and ``one_hot``.

See :mod:`graphc.ops.shape` for the ``*_like`` gradient-op convention and the format of
``strided_slice``'s ``spec`` attribute.
"""

from __future__ import annotations

import builtins
from typing import Any, Optional, Sequence

import numpy as np

from graphc import dtypes
from graphc.errors import DTypeError, ShapeError
from graphc.graph import Tensor, TensorSpec
from graphc.op import Kind, apply1, defop
from graphc.ops.args import INDEX_DTYPES, axis_attr, check_axis, fail, is_int, static_ints
from graphc.ops.elementwise import _as_tensor
from graphc.ops.state import constant
from graphc.shapes import format_shape

__all__ = ["slice", "getitem", "strided_slice", "gather", "one_hot"]


# -- strided slices: slice and indexing ---------------------------------------------------

FULL_SLICE = (None, None, 1)  # a spec item taking a whole axis


def expand_spec(spec: Sequence[Any], rank: Optional[int]) -> tuple:
    """The ellipsis replaced by full slices and trailing full slices dropped (known rank)."""
    spec = list(spec)
    if rank is None:
        return tuple(spec)
    n_axes = sum(1 for s in spec if s not in ("newaxis", "ellipsis"))
    if n_axes > rank:
        raise ShapeError(f"too many indices ({n_axes}) for a tensor of rank {rank}")
    if "ellipsis" in spec:
        i = spec.index("ellipsis")
        spec[i:i + 1] = [FULL_SLICE] * (rank - n_axes)
    while spec and spec[-1] == FULL_SLICE:
        spec.pop()
    return tuple(spec)


_BAD_INDEX = ("graphc tensors are indexed by ints, slices (a:b:c), None/np.newaxis and ..., "
              "got {!r}; to pick elements by a tensor or list of indices, use "
              "gc.gather(tensor, indices, axis)")


def _index_spec(index: Any) -> list:
    items = index if isinstance(index, tuple) else (index,)
    spec: list = []
    for it in items:
        if it is None:
            spec.append("newaxis")
        elif it is Ellipsis:
            spec.append("ellipsis")
        elif is_int(it):
            spec.append(int(it))
        elif isinstance(it, builtins.slice):
            for part in (it.start, it.stop, it.step):
                if part is not None and not is_int(part):
                    raise TypeError(f"slice bounds must be ints or None, got {it!r}; for "
                                    "bounds known only at run time use gc.gather")
            if it.step == 0:
                raise ShapeError("slice step cannot be zero")
            spec.append((None if it.start is None else int(it.start),
                         None if it.stop is None else int(it.stop),
                         1 if it.step is None else int(it.step)))
        else:
            raise TypeError(_BAD_INDEX.format(it))
    if spec.count("ellipsis") > 1:
        raise ShapeError("an index can hold only one ellipsis (...)")
    return spec


def _infer_strided_slice(x: TensorSpec, *, spec: tuple) -> TensorSpec:
    if x.shape is None:
        return TensorSpec(None, x.dtype)
    spec = expand_spec(spec, len(x.shape))
    out: list = []
    k = 0
    for item in spec:
        if item == "newaxis":
            out.append(1)
            continue
        d = x.shape[k]
        if is_int(item):
            if d is not None and not -d <= item < d:
                raise ShapeError(f"index {item} is out of bounds for axis {k} of size {d}")
        else:
            n = None if d is None else len(builtins.range(*builtins.slice(*item).indices(d)))
            out.append(n)
        k += 1
    return TensorSpec(tuple(out) + x.shape[k:], x.dtype)


def np_index(spec: tuple) -> tuple:
    """The NumPy index of a ``strided_slice`` spec (what the reference indexes with; the
    cuda target places its copies with it)."""
    return tuple(None if s == "newaxis" else Ellipsis if s == "ellipsis" else
                 s if is_int(s) else builtins.slice(*s) for s in spec)


def _strided_slice_grad_ref(g: np.ndarray, like: np.ndarray, *, spec: tuple) -> np.ndarray:
    out = np.zeros(like.shape, g.dtype)
    out[np_index(spec)] = g
    return out


def _strided_slice_ref(x: np.ndarray, *, spec: tuple) -> np.ndarray:
    try:
        return np.array(x[np_index(spec)], copy=True)
    except IndexError as err:  # an int index past a dim the graph did not know
        raise ShapeError(f"strided_slice: {err} (the tensor's shape is "
                         f"{format_shape(x.shape)})") from None


defop("strided_slice", kind=Kind.SHAPE, infer=_infer_strided_slice, ref=_strided_slice_ref,
      vjp=lambda n, g: [apply1("strided_slice_grad", [g, n.inputs[0]], {"spec": n.attrs["spec"]})],
      doc="x[spec] with NumPy basic-indexing semantics (ints, slices, newaxis, ellipsis)")
defop("strided_slice_grad", kind=Kind.SHAPE, input_names=("g", "like"),
      infer=lambda g, like, *, spec: TensorSpec(like.shape, g.dtype),
      ref=_strided_slice_grad_ref,
      vjp=lambda n, g: [apply1("strided_slice", [g], {"spec": n.attrs["spec"]}), None],
      doc="zeros of `like`'s run-time shape with g written at [spec] (the gradient of "
          "strided_slice)")


def strided_slice(x: Tensor, spec: Sequence[Any], op: str, name: Optional[str] = None) -> Tensor:
    """``x`` indexed by a ``spec`` (see the module doc); ``op`` names the caller in errors."""
    try:
        spec = expand_spec(spec, x.ndim)
    except ShapeError as err:
        raise fail(err, op, x) from None
    return apply1("strided_slice", [x], {"spec": spec}, name=name)


def getitem(tensor: Tensor, index: Any) -> Tensor:
    """``tensor[index]`` with NumPy's basic indexing: ints (negative count from the end),
    slices with steps (negative too), ``None``/``np.newaxis`` and ``...``. Tensor or list
    indices are refused: use :func:`gather`."""
    tensor = _as_tensor(tensor)
    try:
        spec = _index_spec(index)
    except ShapeError as err:
        raise fail(err, "strided_slice", tensor) from None
    return strided_slice(tensor, spec, "strided_slice")


def slice(input_: Any, begin: Any, size: Any, name: Optional[str] = None) -> Tensor:  # noqa: A001
    """The block of ``input_`` that starts at ``begin`` with extent ``size`` (lists of ints,
    one per axis; a size of -1 takes everything to the end of that axis), as TF1's."""
    x = _as_tensor(input_)
    begin, size = static_ints(begin, "slice: begin"), static_ints(size, "slice: size")
    problem = None
    if len(begin) != len(size):
        problem = f"begin {list(begin)} and size {list(size)} differ in length"
    elif x.ndim is not None and len(begin) != x.ndim:
        problem = f"begin and size have {len(begin)} entries for a rank-{x.ndim} tensor"
    elif any(b < 0 for b in begin) or any(s < -1 for s in size):
        problem = f"bad begin {list(begin)} or size {list(size)}: begin >= 0, size >= -1"
    else:
        for i, (b, s) in enumerate(zip(begin, size)):
            d = None if x.ndim is None else x.shape[i]
            if d is not None and (b > d or (s != -1 and b + s > d)):
                problem = (f"slice [{b}:{b + s if s != -1 else d}] is out of bounds for axis "
                           f"{i} of size {d}")
    if problem:
        raise fail(ShapeError(problem), "slice", x)
    spec = [(b or None, None if s == -1 else b + s, 1) for b, s in zip(begin, size)]
    return strided_slice(x, spec, "slice", name)


# -- gather -------------------------------------------------------------------------------



def _infer_gather(params: TensorSpec, indices: TensorSpec, *, axis: int) -> TensorSpec:
    if indices.dtype not in INDEX_DTYPES:
        raise DTypeError(f"indices must be int32 or int64, got {indices.dtype}")
    a = check_axis(axis, None if params.shape is None else len(params.shape))
    if a is None or indices.shape is None:
        return TensorSpec(None, params.dtype)
    return TensorSpec(params.shape[:a] + indices.shape + params.shape[a + 1:], params.dtype)


def _checked_indices(indices: np.ndarray, size: int) -> np.ndarray:
    if indices.size and (indices.min() < 0 or indices.max() >= size):
        bad = indices[(indices < 0) | (indices >= size)].ravel()[0]
        raise IndexError(f"gather: index {bad} is out of range [0, {size})")
    return indices


def _gather_ref(params: np.ndarray, indices: np.ndarray, *, axis: int) -> np.ndarray:
    return np.take(params, _checked_indices(indices, params.shape[axis]), axis=axis)


def _scatter_add_ref(g: np.ndarray, indices: np.ndarray, like: np.ndarray, *,
                     axis: int) -> np.ndarray:
    axis = axis % like.ndim
    out = np.zeros(like.shape, g.dtype)
    moved = np.moveaxis(g, tuple(builtins.range(axis, axis + indices.ndim)),
                        tuple(builtins.range(indices.ndim)))
    np.add.at(np.moveaxis(out, axis, 0), _checked_indices(indices, like.shape[axis]), moved)
    return out


def _infer_scatter_add(g: TensorSpec, indices: TensorSpec, like: TensorSpec, *,
                       axis: int) -> TensorSpec:
    _infer_gather(like, indices, axis=axis)
    return TensorSpec(like.shape, g.dtype)


defop("gather", kind=Kind.OPAQUE, infer=_infer_gather, ref=_gather_ref,
      input_names=("params", "indices"),
      vjp=lambda n, g: [apply1("scatter_add_like", [g, n.inputs[1], n.inputs[0]],
                               {"axis": n.attrs["axis"]}), None],
      doc="slices of params along `axis` picked by integer indices (any rank)")
defop("scatter_add_like", kind=Kind.OPAQUE, infer=_infer_scatter_add, ref=_scatter_add_ref,
      input_names=("g", "indices", "like"),
      vjp=lambda n, g: [apply1("gather", [g, n.inputs[1]], {"axis": n.attrs["axis"]}), None, None],
      doc="zeros of `like`'s run-time shape with g's slices added at `indices` along `axis` "
          "(np.add.at: repeated indices accumulate; the gradient of gather)")


def gather(params: Any, indices: Any, axis: int = 0, name: Optional[str] = None) -> Tensor:
    """Slices of ``params`` along ``axis`` picked by ``indices`` (int32/int64, any rank):
    the result's shape is ``params.shape[:axis] + indices.shape + params.shape[axis+1:]``.
    Indices must lie in ``[0, params.shape[axis])`` (checked at run time). The gradient
    with respect to ``params`` adds up over repeated indices; ``indices`` gets none."""
    params = _as_tensor(params)
    indices = indices if isinstance(indices, Tensor) else constant(indices, dtypes.int64,
                                                                    graph=params.graph)
    return apply1("gather", [params, indices], {"axis": axis_attr(axis, params.ndim)},
                  name=name)


# -- one_hot ------------------------------------------------------------------------------

def _infer_one_hot(indices: TensorSpec, *, depth: int, on_value: Any, off_value: Any,
                   axis: int, dtype: dtypes.DType) -> TensorSpec:
    if not indices.dtype.is_integer:
        raise DTypeError(f"indices must be integers, got {indices.dtype}")
    if not is_int(depth) or depth < 0:
        raise ShapeError(f"depth must be a non-negative int, got {depth!r}")
    a = check_axis(axis, None if indices.shape is None else len(indices.shape) + 1)
    if a is None:
        return TensorSpec(None, dtype)
    return TensorSpec(indices.shape[:a] + (depth,) + indices.shape[a:], dtype)


def _one_hot_ref(indices: np.ndarray, *, depth: int, on_value: Any, off_value: Any,
                 axis: int, dtype: dtypes.DType) -> np.ndarray:
    hot = indices[..., None] == np.arange(depth)
    out = np.where(hot, np.asarray(on_value, dtype.np), np.asarray(off_value, dtype.np))
    return np.moveaxis(out, -1, axis % (indices.ndim + 1)).astype(dtype.np)


defop("one_hot", kind=Kind.OPAQUE, infer=_infer_one_hot, ref=_one_hot_ref,
      vjp=lambda n, g: [None], input_names=("indices",),
      doc="on_value where the new axis' position equals the index, else off_value")


def one_hot(indices: Any, depth: int, on_value: Any = 1.0, off_value: Any = 0.0,
            axis: int = -1, dtype: Any = dtypes.float32, name: Optional[str] = None) -> Tensor:
    """A new axis of size ``depth`` at ``axis`` holding ``on_value`` at each index and
    ``off_value`` elsewhere; indices outside ``[0, depth)`` give all-off rows (as TF).
    ``depth``, ``on_value`` and ``off_value`` are Python numbers. No gradient."""
    indices = indices if isinstance(indices, Tensor) else constant(indices, dtypes.int64)
    for v in (on_value, off_value):
        if isinstance(v, Tensor) or np.ndim(v) != 0:
            raise TypeError(f"one_hot: on_value and off_value must be Python numbers, got {v!r}")
    rank = None if indices.ndim is None else indices.ndim + 1
    attrs = {"depth": int(depth) if is_int(depth) else depth, "on_value": on_value,
             "off_value": off_value, "axis": axis_attr(axis, rank),
             "dtype": dtypes.as_dtype(dtype)}
    return apply1("one_hot", [indices], attrs, name=name)
