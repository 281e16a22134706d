"""Shape ops: reshape, expand_dims, squeeze, transpose, concat, stack, unstack, split, pad,
tile, broadcast_to and shape (TF1 names and semantics). Indexing ops (slice, ``t[...]``,
gather, one_hot) live in :mod:`graphc.ops.indexing`.

Static arguments (target shapes, begin/size, paddings, multiples, depth, split sizes) are
Python ints held in attributes, never tensors: that is what lets shape inference compute
result shapes when the graph is built.

Gradients must work when dims are unknown (None) until run time, so every gradient that
needs a size reads it at run time from a tensor passed only for its shape (``like``), as
``sum_to_like`` does in :mod:`graphc.ops.reduce`:

* ``reshape_like(x, like)``: ``x`` reshaped to ``like``'s shape (reshape, expand_dims and
  squeeze gradients);
* ``split_like(g, *values, axis)``: ``g`` cut along ``axis`` into pieces as long as each of
  ``values`` (multi-output; the concat gradient);
* ``strided_slice_grad(g, like, spec)``: ``g`` scattered into zeros of ``like``'s shape at
  the sliced positions (slice and indexing gradients);
* ``scatter_add_like(g, indices, like, axis)``: ``np.add.at`` into zeros of ``like``'s shape,
  so repeated indices accumulate (the gather gradient);
* ``tile_grad(g, like, multiples)``: ``g`` summed over the repeats;
* ``pad_grad(g, like, paddings, mode)``: the REFLECT/SYMMETRIC padding folded back onto the
  input (a CONSTANT pad's gradient is a plain slice).

Each of these has a vjp built from the forward op (the adjoint of an adjoint), so gradients
of gradients work too.

Indexing (``t[1:, ::-1, None, ...]``) and ``slice`` share one primitive, ``strided_slice``,
whose ``spec`` attribute is a normalized, hashable tuple with one item per index entry:
an ``int`` (pick, dropping the axis), ``(start, stop, step)`` (a Python slice; step never
None), ``"newaxis"``, or ``"ellipsis"`` (kept only when the rank is unknown; otherwise
expanded into full slices). Trailing full slices are dropped, so ``t[0]`` and ``t[0, :]``
are one node. Its semantics are NumPy's: out-of-range slice bounds clip.

``shape(x)`` returns int32 by default, as TF1's ``tf.shape`` does (``out_type=gc.int64``
for graphc's default int). ``gather`` refuses out-of-range and negative indices at run time
(as TF on CPU) rather than wrapping them as NumPy does.
"""

from __future__ import annotations

import builtins
from typing import Any, Optional, Sequence, Union

import numpy as np

from graphc import dtypes
from graphc.errors import DTypeError, ShapeError
from graphc.graph import Tensor, TensorSpec
from graphc.op import Kind, apply, apply1, defop
from graphc.ops.args import (INDEX_DTYPES, axis_attr, check_axis, fail, is_int, same_dtype, static_ints,
                             tensor_list)
from graphc.ops.elementwise import _as_tensor
from graphc.ops.indexing import strided_slice
from graphc.ops.reduce import sum_to_like
from graphc.shapes import format_shape, merge_shapes, normalize_axes, normalize_axis, num_elements

__all__ = ["reshape", "expand_dims", "squeeze", "transpose", "concat", "stack", "unstack",
           "split", "pad", "tile", "broadcast_to", "shape", "reshape_like"]

Axis = Union[None, int, Sequence[int]]


def _infer_reshape(x: TensorSpec, *, shape: tuple[int, ...]) -> TensorSpec:
    if any(d < -1 for d in shape) or list(shape).count(-1) > 1:
        raise ShapeError(f"bad target shape {list(shape)}: use non-negative ints and at most "
                         "one -1")
    known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
    n = num_elements(x.shape)
    if -1 in shape:
        if known == 0:
            raise ShapeError(f"cannot infer the -1 in {list(shape)}: the other dimensions "
                             "hold no elements")
        if n is None:
            return TensorSpec(tuple(None if d == -1 else d for d in shape), x.dtype)
        if n % known:
            raise ShapeError(f"cannot reshape {format_shape(x.shape)} ({n} elements) to "
                             f"{list(shape)}: {n} is not a multiple of {known}")
        return TensorSpec(tuple(n // known if d == -1 else d for d in shape), x.dtype)
    if n is not None and n != known:
        raise ShapeError(f"cannot reshape {format_shape(x.shape)} ({n} elements) to "
                         f"{format_shape(shape)} ({known} elements)")
    if n is None and x.shape is not None:
        part = int(np.prod([d for d in x.shape if d is not None], dtype=np.int64))
        if (part == 0 and known != 0) or (part and known % part):
            raise ShapeError(f"cannot reshape {format_shape(x.shape)} to {format_shape(shape)}"
                             f": {known} elements is not a multiple of {part}")
    return TensorSpec(tuple(shape), x.dtype)


def _infer_reshape_like(x: TensorSpec, like: TensorSpec) -> TensorSpec:
    n, m = num_elements(x.shape), num_elements(like.shape)
    if n is not None and m is not None and n != m:
        raise ShapeError(f"cannot reshape {format_shape(x.shape)} ({n} elements) to "
                         f"{format_shape(like.shape)} ({m} elements)")
    return TensorSpec(like.shape, x.dtype)


def _vjp_to_input_shape(node: Any, g: Tensor) -> list:
    return [reshape_like(g, node.inputs[0])]


defop("reshape", kind=Kind.SHAPE, infer=_infer_reshape,
      ref=lambda x, *, shape: np.reshape(x, shape).copy(), vjp=_vjp_to_input_shape,
      doc="the same elements in row-major order, in `shape` (one dim may be -1)")
defop("reshape_like", kind=Kind.SHAPE, infer=_infer_reshape_like,
      ref=lambda x, like: np.reshape(x, like.shape).copy(), input_names=("x", "like"),
      vjp=lambda n, g: [reshape_like(g, n.inputs[0]), None],
      doc="x reshaped to `like`'s run-time shape (the gradient of reshapes)")


def reshape(tensor: Any, shape: Any, name: Optional[str] = None) -> Tensor:
    """``tensor``'s elements (row-major) in ``shape``, a list of ints where one may be -1
    (inferred from the element count). Unknown dims stay unknown: ``(None, 4, 4)`` reshaped
    to ``(-1, 16)`` is ``(None, 16)``; a count mismatch is caught when the graph is built
    when the sizes are known."""
    tensor = _as_tensor(tensor)
    return apply1("reshape", [tensor], {"shape": static_ints(shape, "reshape: shape")},
                  name=name)


def reshape_like(x: Tensor, like: Tensor) -> Tensor:
    """``x`` reshaped to ``like``'s run-time shape (``x`` itself when provably equal)."""
    if x.shape == like.shape and x.shape is not None and None not in x.shape:
        return x
    return apply1("reshape_like", [x, like])


# -- expand_dims / squeeze ----------------------------------------------------------------

def _infer_expand_dims(x: TensorSpec, *, axis: int) -> TensorSpec:
    if x.shape is None:
        check_axis(axis, None)
        return TensorSpec(None, x.dtype)
    a = normalize_axis(axis, len(x.shape) + 1)
    return TensorSpec(x.shape[:a] + (1,) + x.shape[a:], x.dtype)


def _infer_squeeze(x: TensorSpec, *, axes: Optional[tuple[int, ...]]) -> TensorSpec:
    if x.shape is None:
        for a in axes or ():
            check_axis(a, None)
        return TensorSpec(None, x.dtype)
    if axes is None:  # every size-1 dim: the rank is unknown if some dim is
        if None in x.shape:
            return TensorSpec(None, x.dtype)
        return TensorSpec(tuple(d for d in x.shape if d != 1), x.dtype)
    axes = normalize_axes(axes, len(x.shape))
    for a in axes:
        if x.shape[a] not in (1, None):
            raise ShapeError(f"cannot squeeze axis {a} of size {x.shape[a]}: only dimensions "
                             "of size 1 can be squeezed")
    return TensorSpec(tuple(d for i, d in enumerate(x.shape) if i not in axes), x.dtype)


defop("expand_dims", kind=Kind.SHAPE, infer=_infer_expand_dims, vjp=_vjp_to_input_shape,
      ref=lambda x, *, axis: np.expand_dims(x, axis).copy(),
      doc="x with a new axis of size 1 at `axis` (counted in the result)")
defop("squeeze", kind=Kind.SHAPE, infer=_infer_squeeze, vjp=_vjp_to_input_shape,
      ref=lambda x, *, axes: np.squeeze(x, axis=axes).copy(),
      doc="x without its size-1 axes `axes` (None: all of them)")


def expand_dims(input: Any, axis: int, name: Optional[str] = None) -> Tensor:  # noqa: A002
    """``input`` with a new axis of size 1 inserted at ``axis`` (an index in the result:
    ``-1`` appends one)."""
    x = _as_tensor(input)
    rank = None if x.ndim is None else x.ndim + 1
    return apply1("expand_dims", [x], {"axis": axis_attr(axis, rank)}, name=name)


def squeeze(input: Any, axis: Axis = None, name: Optional[str] = None) -> Tensor:  # noqa: A002
    """``input`` without the size-1 axes ``axis`` (an int or a sequence, negative allowed);
    ``None`` removes every size-1 axis. Squeezing an axis known not to be 1 is a ShapeError."""
    x = _as_tensor(input)
    axes = None
    if axis is not None:
        axes = (axis,) if is_int(axis) else tuple(axis)
        if x.ndim is not None and all(is_int(a) and -x.ndim <= a < x.ndim for a in axes) \
                and len({a % x.ndim for a in axes}) == len(axes):
            axes = normalize_axes(axes, x.ndim)
    return apply1("squeeze", [x], {"axes": axes}, name=name)


# -- transpose ----------------------------------------------------------------------------

def _infer_transpose(x: TensorSpec, *, perm: Optional[tuple[int, ...]]) -> TensorSpec:
    if perm is None:
        return TensorSpec(None if x.shape is None else x.shape[::-1], x.dtype)
    if not all(is_int(p) for p in perm) or sorted(perm) != list(builtins.range(len(perm))):
        raise ShapeError(f"perm {list(perm)} is not a permutation of 0..{len(perm) - 1}")
    if x.shape is None:
        return TensorSpec((None,) * len(perm), x.dtype)
    if len(perm) != len(x.shape):
        raise ShapeError(f"perm {list(perm)} has {len(perm)} entries for a rank-{len(x.shape)} "
                         "tensor")
    return TensorSpec(tuple(x.shape[p] for p in perm), x.dtype)


def _vjp_transpose(node: Any, g: Tensor) -> list:
    perm = node.attrs["perm"]
    inverse = None if perm is None else tuple(int(i) for i in np.argsort(perm))
    return [apply1("transpose", [g], {"perm": inverse})]


defop("transpose", kind=Kind.SHAPE, infer=_infer_transpose, vjp=_vjp_transpose,
      ref=lambda x, *, perm: np.transpose(x, perm).copy(),
      doc="x with its axes permuted: result axis i is input axis perm[i] (None: reversed)")


def transpose(a: Any, perm: Optional[Sequence[int]] = None, name: Optional[str] = None) -> Tensor:
    """``a`` with its axes permuted by ``perm`` (result axis ``i`` is input axis ``perm[i]``);
    the default reverses the axes (a matrix transpose for rank 2)."""
    x = _as_tensor(a)
    if perm is None:
        if x.ndim is not None:
            perm = tuple(builtins.range(x.ndim))[::-1]
    else:
        perm = static_ints(perm, "transpose: perm")
        if x.ndim is not None and all(-x.ndim <= p < x.ndim for p in perm):
            perm = tuple(p % x.ndim for p in perm)
    return apply1("transpose", [x], {"perm": perm}, name=name)


# -- concat / split / stack / unstack ------------------------------------------------------

def _infer_concat(*values: TensorSpec, axis: int) -> TensorSpec:
    if not values:
        raise ShapeError("needs at least one tensor")
    dtype = same_dtype(values)
    ranks = sorted({len(v.shape) for v in values if v.shape is not None})
    if len(ranks) > 1:
        raise ShapeError("inputs have different ranks: "
                         + ", ".join(format_shape(v.shape) for v in values))
    if not ranks:
        check_axis(axis, None)
        return TensorSpec(None, dtype)
    if ranks[0] == 0:
        raise ShapeError("cannot concatenate scalars; use gc.stack")
    a = normalize_axis(axis, ranks[0])
    out: list = [None] * ranks[0]
    for i in builtins.range(ranks[0]):
        if i == a:
            dims = [None if v.shape is None else v.shape[a] for v in values]
            out[i] = None if None in dims else sum(dims)
            continue
        for v in values:
            d = None if v.shape is None else v.shape[i]
            if d is not None and out[i] is not None and d != out[i]:
                raise ShapeError(f"dimension {i} differs ({out[i]} vs {d}); only the concat "
                                 f"axis {a} may differ: "
                                 + ", ".join(format_shape(v.shape) for v in values))
            out[i] = out[i] if d is None else d
    return TensorSpec(tuple(out), dtype)


def _vjp_concat(node: Any, g: Tensor) -> list:
    return list(apply("split_like", [g, *node.inputs], {"axis": node.attrs["axis"]}).outputs)


def _infer_split_like(g: TensorSpec, *values: TensorSpec, axis: int) -> tuple:
    out = []
    for v in values:
        if v.shape is None and g.shape is None:
            out.append(TensorSpec(None, g.dtype))
            continue
        rank = len(v.shape if v.shape is not None else g.shape)
        a = normalize_axis(axis, rank)
        if v.shape is None:
            shape = g.shape[:a] + (None,) + g.shape[a + 1:]
        elif g.shape is None:
            shape = v.shape
        else:
            shape = tuple(vd if vd is not None or i == a else gd
                          for i, (vd, gd) in enumerate(zip(v.shape, g.shape)))
        out.append(TensorSpec(shape, g.dtype))
    return tuple(out)


def _split_like_ref(g: np.ndarray, *values: np.ndarray, axis: int) -> tuple:
    ends = np.cumsum([v.shape[axis] for v in values])[:-1]
    return tuple(p.copy() for p in np.split(g, ends, axis=axis))


defop("concat", kind=Kind.SHAPE, infer=_infer_concat, vjp=_vjp_concat,
      ref=lambda *values, axis: np.concatenate(values, axis=axis),
      doc="the inputs joined along `axis`")
defop("split_like", kind=Kind.SHAPE, infer=_infer_split_like, ref=_split_like_ref,
      vjp=lambda n, *gs: [concat(list(gs), n.attrs["axis"])] + [None] * (len(n.inputs) - 1),
      doc="g cut along `axis` into pieces as long as each of the other inputs' (the "
          "gradient of concat; one output per other input)")


def concat(values: Any, axis: int, name: Optional[str] = None) -> Tensor:
    """The tensors ``values`` (of one dtype and rank) joined along ``axis``; the other dims
    must agree. Python values take the tensors' dtype."""
    values = tensor_list(values)
    rank = next((v.ndim for v in values if v.ndim is not None), None)
    return apply1("concat", values, {"axis": axis_attr(axis, rank)}, name=name)


def _infer_split(x: TensorSpec, *, axis: int, num: Optional[int],
                 sizes: Optional[tuple[int, ...]]) -> tuple:
    if sizes is None:
        if not is_int(num) or num < 1:
            raise ShapeError(f"the number of splits must be a positive int, got {num!r}")
        count = num
    else:
        if not sizes or any(s < -1 for s in sizes) or list(sizes).count(-1) > 1:
            raise ShapeError(f"bad split sizes {list(sizes)}: use non-negative ints and at "
                             "most one -1")
        count = len(sizes)
    if x.shape is None:
        check_axis(axis, None)
        return tuple(TensorSpec(None, x.dtype) for _ in builtins.range(count))
    a = normalize_axis(axis, len(x.shape))
    d = x.shape[a]
    if sizes is None:
        if d is not None and d % num:
            raise ShapeError(f"dimension {a} of size {d} cannot be split into {num} equal parts")
        dims: list = [None if d is None else d // num] * num
    else:
        known = sum(s for s in sizes if s != -1)
        if d is not None and (known > d or (-1 not in sizes and known != d)):
            raise ShapeError(f"split sizes {list(sizes)} do not add up to dimension {a} of "
                             f"size {d}")
        rest = None if d is None else d - known
        dims = [rest if s == -1 else s for s in sizes]
    return tuple(TensorSpec(x.shape[:a] + (dim,) + x.shape[a + 1:], x.dtype) for dim in dims)


def _split_ref(x: np.ndarray, *, axis: int, num: Optional[int],
               sizes: Optional[tuple[int, ...]]) -> tuple:
    if sizes is None:
        return tuple(p.copy() for p in np.split(x, num, axis=axis))
    d = x.shape[axis]
    known = sum(s for s in sizes if s != -1)
    sizes = tuple(d - known if s == -1 else s for s in sizes)
    if sum(sizes) != d or min(sizes) < 0:
        raise ShapeError(f"split: sizes {list(sizes)} do not add up to the size {d} of axis "
                         f"{axis}")
    return tuple(p.copy() for p in np.split(x, np.cumsum(sizes)[:-1], axis=axis))


defop("split", kind=Kind.SHAPE, infer=_infer_split, ref=_split_ref,
      vjp=lambda n, *gs: [concat(list(gs), n.attrs["axis"])],
      doc="x cut along `axis` into `num` equal parts or parts of `sizes` (one may be -1)")


def split(value: Any, num_or_size_splits: Any, axis: int = 0, num: Optional[int] = None,
          name: Optional[str] = None) -> list[Tensor]:
    """``value`` cut along ``axis``: into ``num_or_size_splits`` equal parts (an int), or
    into parts of the given sizes (a list; one may be -1 for the rest). Returns a list."""
    x = _as_tensor(value)
    if is_int(num_or_size_splits):
        attrs = {"num": int(num_or_size_splits), "sizes": None}
    else:
        sizes = static_ints(num_or_size_splits, "split: num_or_size_splits")
        attrs = {"num": None, "sizes": sizes}
    count = attrs["num"] if attrs["sizes"] is None else len(attrs["sizes"])
    if num is not None and num != count:
        raise fail(ShapeError(f"num={num} but {count} splits were asked for"), "split", x)
    attrs["axis"] = axis_attr(axis, x.ndim)
    return list(apply("split", [x], attrs, name=name).outputs)


def stack(values: Any, axis: int = 0, name: Optional[str] = None) -> Tensor:
    """The tensors ``values`` (all of one shape) stacked along a new axis ``axis``."""
    values = tensor_list(values)
    shape = None
    try:
        for v in values:
            shape = merge_shapes(shape, v.shape)
    except ShapeError:
        raise fail(ShapeError("values must have the same shape, got "
                               + ", ".join(format_shape(v.shape) for v in values)),
                    "stack", *values) from None
    axis = axis_attr(axis, None if shape is None else len(shape) + 1)
    return concat([expand_dims(v, axis) for v in values], axis, name=name)


def unstack(value: Any, num: Optional[int] = None, axis: int = 0,
            name: Optional[str] = None) -> list[Tensor]:
    """``value`` cut into its slices along ``axis`` (a list of ``num`` tensors, each without
    that axis). ``num`` is needed when that dim is unknown."""
    x = _as_tensor(value)
    try:
        a = check_axis(axis, x.ndim)
    except ShapeError as err:
        raise fail(err, "unstack", x) from None
    a = axis if a is None else a
    d = None if x.ndim is None else x.shape[a]
    if num is None and d is None:
        raise fail(ShapeError(f"cannot tell the number of slices along axis {axis} of "
                               f"{format_shape(x.shape)}; pass num="), "unstack", x)
    if num is not None and d is not None and num != d:
        raise fail(ShapeError(f"num={num}, but axis {axis} has size {d}"), "unstack", x)
    return [squeeze(part, [a]) for part in split(x, d if num is None else num, a, name=name)]



# -- pad ----------------------------------------------------------------------------------

_PAD_MODES = {"CONSTANT": "constant", "REFLECT": "reflect", "SYMMETRIC": "symmetric"}


def _infer_pad(x: TensorSpec, *, paddings: tuple, mode: str, constant_values: Any) -> TensorSpec:
    if mode not in _PAD_MODES:
        raise ShapeError(f"mode must be one of {', '.join(_PAD_MODES)}, got {mode!r}")
    if x.shape is None:
        return TensorSpec((None,) * len(paddings), x.dtype)
    if len(paddings) != len(x.shape):
        raise ShapeError(f"paddings has {len(paddings)} rows for a rank-{len(x.shape)} tensor; "
                         "give one (before, after) pair per axis")
    limit = {"REFLECT": 1, "SYMMETRIC": 0}.get(mode)
    out = []
    for i, (d, (b, e)) in enumerate(zip(x.shape, paddings)):
        if limit is not None and d is not None and max(b, e) > d - limit:
            raise ShapeError(f"{mode} padding ({b}, {e}) of axis {i} must be at most "
                             f"{d - limit} for its size {d}")
        out.append(None if d is None else d + b + e)
    return TensorSpec(tuple(out), x.dtype)


def _pad_ref(x: np.ndarray, *, paddings: tuple, mode: str, constant_values: Any) -> np.ndarray:
    if mode == "CONSTANT":
        return np.pad(x, paddings, mode="constant", constant_values=constant_values)
    limit = 1 if mode == "REFLECT" else 0
    for i, (d, (b, e)) in enumerate(zip(x.shape, paddings)):
        if max(b, e) > d - limit:
            raise ShapeError(f"pad: {mode} padding ({b}, {e}) of axis {i} must be at most "
                             f"{d - limit} for its size {d}")
    return np.pad(x, paddings, mode=_PAD_MODES[mode])


def _pad_grad_ref(g: np.ndarray, like: np.ndarray, *, paddings: tuple, mode: str) -> np.ndarray:
    out = g
    for axis, (b, e) in enumerate(paddings):
        d = like.shape[axis]
        src = np.arange(d + b + e) - b  # the input position each padded position copies
        if mode == "REFLECT":
            src = np.abs(src)
            src = np.where(src > d - 1, 2 * (d - 1) - src, src)
        else:
            src = np.where(src < 0, -src - 1, src)
            src = np.where(src > d - 1, 2 * d - 1 - src, src)
        folded = np.zeros(out.shape[:axis] + (d,) + out.shape[axis + 1:], g.dtype)
        np.add.at(np.moveaxis(folded, axis, 0), src, np.moveaxis(out, axis, 0))
        out = folded
    return out


def _vjp_pad(node: Any, g: Tensor) -> list:
    x, paddings, mode = node.inputs[0], node.attrs["paddings"], node.attrs["mode"]
    if mode == "CONSTANT":
        spec = [(b or None, -e or None, 1) for b, e in paddings]
        return [strided_slice(g, spec, "pad")]
    return [apply1("pad_grad", [g, x], {"paddings": paddings, "mode": mode})]


defop("pad", kind=Kind.SHAPE, infer=_infer_pad, ref=_pad_ref, vjp=_vjp_pad,
      doc="x padded by (before, after) per axis: CONSTANT, REFLECT or SYMMETRIC (as TF)")
defop("pad_grad", kind=Kind.OPAQUE, input_names=("g", "like"), ref=_pad_grad_ref,
      infer=lambda g, like, *, paddings, mode: TensorSpec(like.shape, g.dtype),
      vjp=lambda n, g: [apply1("pad", [g], {**n.attrs, "constant_values": 0}), None],
      doc="a REFLECT/SYMMETRIC padding's gradient: the padded cells of g added to the "
          "input cells they copy")


def pad(tensor: Any, paddings: Any, mode: str = "CONSTANT", constant_values: Any = 0,
        name: Optional[str] = None) -> Tensor:
    """``tensor`` padded by ``paddings[i] = (before, after)`` cells on each axis ``i``.
    ``mode``: ``"CONSTANT"`` (``constant_values``, a Python number), ``"REFLECT"`` (mirror
    without the edge; pads < the size) or ``"SYMMETRIC"`` (mirror with the edge; pads <=
    the size)."""
    x = _as_tensor(tensor)
    if isinstance(paddings, Tensor):
        raise TypeError(f"pad: paddings must be static Python ints, not the tensor {paddings.name}")
    rows = np.asarray(paddings)
    if rows.size == 0:
        rows = rows.reshape(0, 2)
    if rows.ndim != 2 or rows.shape[1] != 2:
        raise TypeError(f"pad: paddings must be one (before, after) pair per axis, "
                        f"got {paddings!r}")
    pairs = tuple(static_ints(p, "pad: paddings") for p in rows)
    if any(v < 0 for p in pairs for v in p):
        raise fail(ShapeError(f"paddings must be non-negative, got {[list(p) for p in pairs]}"),
                    "pad", x)
    if isinstance(constant_values, Tensor) or np.ndim(constant_values) != 0:
        raise TypeError(f"pad: constant_values must be a Python number, got {constant_values!r}")
    mode = str(mode).upper()
    attrs = {"paddings": pairs, "mode": mode,
             "constant_values": constant_values if mode == "CONSTANT" else 0}
    return apply1("pad", [x], attrs, name=name)


# -- tile / broadcast_to / shape ----------------------------------------------------------

def _infer_tile(x: TensorSpec, *, multiples: tuple[int, ...]) -> TensorSpec:
    if any(m < 0 for m in multiples):
        raise ShapeError(f"multiples must be non-negative, got {list(multiples)}")
    if x.shape is None:
        return TensorSpec((None,) * len(multiples), x.dtype)
    if len(multiples) != len(x.shape):
        raise ShapeError(f"multiples {list(multiples)} has {len(multiples)} entries for a "
                         f"rank-{len(x.shape)} tensor")
    return TensorSpec(tuple(0 if m == 0 else None if d is None else d * m
                            for d, m in zip(x.shape, multiples)), x.dtype)


def _tile_ref(x: np.ndarray, multiples: tuple[int, ...]) -> np.ndarray:
    if len(multiples) != x.ndim:
        raise ShapeError(f"tile: multiples {list(multiples)} has {len(multiples)} entries for a "
                         f"rank-{x.ndim} tensor")
    return np.array(np.tile(x, multiples), copy=True).reshape(
        tuple(d * m for d, m in zip(x.shape, multiples)))


def _tile_grad_ref(g: np.ndarray, like: np.ndarray, *, multiples: tuple[int, ...]) -> np.ndarray:
    split = [n for pair in zip(multiples, like.shape) for n in pair]
    axes = tuple(builtins.range(0, 2 * like.ndim, 2))
    return g.reshape(split).sum(axis=axes).astype(g.dtype, copy=False).reshape(like.shape)


defop("tile", kind=Kind.SHAPE, infer=_infer_tile,
      ref=lambda x, *, multiples: _tile_ref(x, multiples),
      vjp=lambda n, g: [apply1("tile_grad", [g, n.inputs[0]], n.attrs)],
      doc="x repeated multiples[i] times along each axis i")
defop("tile_grad", kind=Kind.REDUCE, input_names=("g", "like"), ref=_tile_grad_ref,
      infer=lambda g, like, *, multiples: TensorSpec(like.shape, g.dtype),
      vjp=lambda n, g: [apply1("tile", [g], n.attrs), None],
      doc="g summed over the repeats of a tile of `like` (the gradient of tile)")


def tile(input: Any, multiples: Any, name: Optional[str] = None) -> Tensor:  # noqa: A002
    """``input`` repeated ``multiples[i]`` times along each axis ``i`` (one int per axis)."""
    x = _as_tensor(input)
    return apply1("tile", [x], {"multiples": static_ints(multiples, "tile: multiples")},
                  name=name)


def _infer_broadcast_to(x: TensorSpec, *, shape: tuple[int, ...]) -> TensorSpec:
    if any(d < 0 for d in shape):
        raise ShapeError(f"the target shape {list(shape)} must be non-negative ints")
    if x.shape is not None:
        ok = len(x.shape) <= len(shape) and all(
            xd in (None, 1, td) for xd, td in zip(x.shape[::-1], shape[::-1]))
        if not ok:
            raise ShapeError(f"cannot broadcast {format_shape(x.shape)} to {format_shape(shape)}")
    return TensorSpec(tuple(shape), x.dtype)


defop("broadcast_to", kind=Kind.BROADCAST, infer=_infer_broadcast_to,
      ref=lambda x, *, shape: np.broadcast_to(x, shape).copy(),
      vjp=lambda n, g: [sum_to_like(g, n.inputs[0])],
      doc="x broadcast (NumPy rules) to the static `shape`")


def broadcast_to(input: Any, shape: Any, name: Optional[str] = None) -> Tensor:  # noqa: A002
    """``input`` broadcast to ``shape`` (static ints) by NumPy's rules. For a shape known
    only at run time, broadcast by arithmetic (``x + gc.zeros_like(y)``)."""
    x = _as_tensor(input)
    return apply1("broadcast_to", [x], {"shape": static_ints(shape, "broadcast_to: shape")},
                  name=name)


def _infer_shape(x: TensorSpec, *, out_type: dtypes.DType) -> TensorSpec:
    if out_type not in INDEX_DTYPES:
        raise DTypeError(f"out_type must be int32 or int64, got {out_type}")
    return TensorSpec((None,) if x.shape is None else (len(x.shape),), out_type)


defop("shape", kind=Kind.SHAPE, infer=_infer_shape, vjp=lambda n, g: [None],
      ref=lambda x, *, out_type: np.asarray(x.shape, out_type.np),
      doc="x's run-time shape as a 1-D integer tensor (no gradient)")


def shape(input: Any, out_type: Any = dtypes.int32,  # noqa: A002
          name: Optional[str] = None) -> Tensor:
    """``input``'s run-time shape as a 1-D tensor of ``out_type`` (int32 by default, as TF1's
    ``tf.shape``). Use ``t.shape`` for the static shape."""
    return apply1("shape", [_as_tensor(input)], {"out_type": dtypes.as_dtype(out_type)},
                  name=name)
