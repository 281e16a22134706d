"""ONNX importers for shape and indexing ops.

graphc's shape ops take static arguments, so ONNX's tensor-valued ones (Reshape's shape,
Slice's starts, Pad's pads...) must be constants after folding (see ``Context.const``);
otherwise the import fails naming the node. Version changes handled: Squeeze/Unsqueeze and
Split take axes/sizes as inputs from 13 (Split: ``num_outputs`` from 18), Slice from 10,
Pad from 11 (``axes`` from 18), Reshape's ``allowzero`` from 14, Shape's start/end from 15.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import graphc as gc
from graphc.frontends.onnx_import import importer
from graphc.frontends.onnx_import_ctx import Context
from graphc.ops.shape import reshape_like

BIG = 2 ** 62  # ONNX's "to the end" markers are INT64_MAX/MIN; anything past this is one


def _ints(value: Any) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def dynamic_fill(ctx: Context, shape: Any, value: Any, dtype: Any) -> Any:
    """A tensor of the run-time shape held in the 1-D int tensor ``shape`` (its length must
    be static): per dim, a ``range`` of that length, broadcast together."""
    n = None if shape.shape is None else shape.shape[0]
    if n is None:
        raise ctx.fail("a run-time shape of unknown length")
    out = gc.constant(np.asarray(value, dtype))
    for i in range(n):
        dim = gc.cast(shape[i], gc.int64)
        line = gc.zeros_like(gc.range(gc.constant(np.int64(0)), dim, gc.constant(np.int64(1))),
                             dtype=dtype)
        out = out + gc.reshape(line, [-1 if j == i else 1 for j in range(n)])
    return out


@importer("Reshape", since=5)
def _reshape(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    x = ins[0]
    if ctx.const(ins[1]) is None:  # a run-time shape (e.g. Concat(Shape(x)[0], [-1]))
        target = gc.cast(ins[1], gc.int64)
        if not attrs.get("allowzero", 0) and x.ndim is not None and target.shape is not None \
                and target.shape[0] is not None and target.shape[0] <= x.ndim:
            own = gc.shape(x, out_type=gc.int64)[:target.shape[0]]
            target = gc.where(gc.equal(target, 0), own, target)
        known = gc.reduce_prod(gc.where(gc.equal(target, -1), gc.ones_like(target), target))
        size = gc.reduce_prod(gc.shape(x, out_type=gc.int64))
        target = gc.where(gc.equal(target, -1), gc.zeros_like(target) + size // known, target)
        return [reshape_like(x, dynamic_fill(ctx, target, False, np.bool_))]
    shape = _ints(ctx.need_const(ins[1], "the target shape"))
    if not attrs.get("allowzero", 0):  # 0 copies the input's dim
        for i, d in enumerate(shape):
            if d == 0:
                if x.ndim is None or i >= x.ndim:
                    raise ctx.fail("a 0 in the shape copies an input dim, but the rank is unknown")
                shape[i] = x.shape[i] if x.shape[i] is not None else -2
    if -2 in shape:  # copied dims unknown statically: at most one unknown -> -1
        if shape.count(-2) + shape.count(-1) > 1:
            raise ctx.fail(f"target shape {shape} has several dims unknown until run time")
        shape = [-1 if d == -2 else d for d in shape]
    return [gc.reshape(x, shape)]


@importer("Flatten")
def _flatten(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    x = ins[0]
    if x.ndim is None:
        raise ctx.fail("needs a known rank")
    axis = attrs.get("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    head, tail = x.shape[:axis], x.shape[axis:]
    if None not in tail:
        return [gc.reshape(x, (-1 if None in head else int(np.prod(head)), int(np.prod(tail))))]
    if None not in head:
        return [gc.reshape(x, (int(np.prod(head)), -1))]
    raise ctx.fail("both sides of the axis have dims unknown until run time")


@importer("Transpose")
def _transpose(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    return [gc.transpose(ins[0], attrs.get("perm"))]


@importer("Concat")
def _concat(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    parts = [t for t in ins if t is not None and (t.shape is None or 0 not in t.shape or
                                                   len(ins) == 1)]
    return [gc.concat(parts or ins[:1], attrs["axis"])]


def _axes_of(ctx: Context, ins: list, attrs: dict, since: int) -> Any:
    if ctx.opset >= since:
        return None if len(ins) < 2 or ins[1] is None else _ints(ctx.need_const(ins[1], "axes"))
    return attrs.get("axes")


@importer("Squeeze")
def _squeeze(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    axes = _axes_of(ctx, ins, attrs, 13)
    return [gc.squeeze(ins[0], axes)]


@importer("Unsqueeze")
def _unsqueeze(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    x = ins[0]
    axes = _axes_of(ctx, ins, attrs, 13)
    if x.ndim is None:
        raise ctx.fail("needs a known rank")
    rank = x.ndim + len(axes)
    for a in sorted(a % rank for a in axes):
        x = gc.expand_dims(x, a)
    return [x if x is not ins[0] else gc.identity(x)]


@importer("Split")
def _split(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    x, axis = ins[0], attrs.get("axis", 0)
    n = len(node.output)
    if ctx.opset >= 13:
        sizes = _ints(ctx.need_const(ins[1], "split")) if len(ins) > 1 and ins[1] is not None \
            else None
    else:
        sizes = attrs.get("split")
    if sizes is None and ctx.opset >= 18 and "num_outputs" in attrs:
        d = None if x.ndim is None else x.shape[axis]
        if d is not None and d % n:  # ONNX 18: the last chunk is smaller
            chunk = -(-d // n)
            sizes = [chunk] * (n - 1) + [d - chunk * (n - 1)]
    out = gc.split(x, n if sizes is None else sizes, axis)
    return out


@importer("Slice")
def _slice_v1(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    return [_slice(ctx, ins[0], attrs["starts"], attrs["ends"], attrs.get("axes"), None)]


@importer("Slice", since=10)
def _slice_v10(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    get = lambda i, what: None if len(ins) <= i or ins[i] is None else \
        _ints(ctx.need_const(ins[i], what))  # noqa: E731
    return [_slice(ctx, ins[0], get(1, "starts"), get(2, "ends"), get(3, "axes"),
                   get(4, "steps"))]


def _slice(ctx: Context, x: Any, starts: list, ends: list, axes: Any, steps: Any) -> Any:
    if x.ndim is None:
        raise ctx.fail("needs a known rank")
    axes = list(range(len(starts))) if axes is None else [a % x.ndim for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    spec: list = [slice(None)] * x.ndim
    for a, b, e, s in zip(axes, starts, ends, steps):
        if s == 0:
            raise ctx.fail("a step of 0")
        b = None if abs(b) >= BIG else b
        e = None if abs(e) >= BIG else e
        spec[a] = slice(b, e, s)
    return x[tuple(spec)] if spec else gc.identity(x)


@importer("Gather")
def _gather(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    x, idx = ins
    axis = attrs.get("axis", 0)
    value = ctx.const(idx)
    d = None if x.ndim is None else x.shape[axis]
    if value is not None and d is not None:  # ONNX counts negative indices from the end
        idx = gc.constant(np.where(value < 0, value + d, value).astype(value.dtype))
    elif value is None or (value < 0).any():
        size = gc.cast(gc.shape(x, out_type=gc.int64)[axis], idx.dtype)
        idx = gc.where(gc.less(idx, gc.zeros_like(idx)), idx + size, idx)
    return [gc.gather(x, idx, axis)]


@importer("GatherElements", since=11)
def _gather_elements(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    x, idx = ins
    if x.shape is None or idx.shape is None or None in x.shape or None in idx.shape:
        raise ctx.fail("needs static shapes")
    axis = attrs.get("axis", 0) % x.ndim
    # The flat position of every picked element: the index's own coordinates, with the
    # `axis` coordinate replaced by the index value.
    strides = np.cumprod((x.shape[1:] + (1,))[::-1])[::-1].astype(np.int64)
    coords = np.indices(idx.shape, dtype=np.int64)
    base = sum(coords[i] * strides[i] for i in range(x.ndim) if i != axis)
    idx64 = gc.cast(idx, gc.int64)
    idx64 = gc.where(gc.less(idx64, 0), idx64 + x.shape[axis], idx64)
    flat = gc.constant(base) + idx64 * int(strides[axis])
    return [gc.gather(gc.reshape(x, (-1,)), flat)]


@importer("Shape")
def _shape(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    x = ins[0]
    if x.shape is not None and None not in x.shape:
        dims = np.asarray(x.shape, np.int64)
        out = gc.constant(dims)
    else:
        out = gc.shape(x, out_type=gc.int64)
    start, end = attrs.get("start", 0), attrs.get("end")
    if start != 0 or end is not None:
        out = out[start:end]
    return [out]


@importer("Size")
def _size(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    x = ins[0]
    if x.shape is not None and None not in x.shape:
        return [gc.constant(np.int64(np.prod(x.shape, dtype=np.int64)))]
    return [gc.reduce_prod(gc.shape(x, out_type=gc.int64))]


@importer("Expand", since=8)
def _expand(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    x = ins[0]
    if ctx.const(ins[1]) is None:  # a run-time shape: broadcast against zeros of it
        zeros = dynamic_fill(ctx, ins[1], 0, x.dtype.np if not x.dtype.is_bool else np.int8)
        return [gc.logical_or(x, gc.cast(zeros, gc.bool)) if x.dtype.is_bool else x + zeros]
    shape = _ints(ctx.need_const(ins[1], "the shape"))
    if x.shape is not None and None not in x.shape:
        return [gc.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(shape)))]
    if x.dtype.is_bool:  # bidirectional broadcasting by arithmetic
        return [gc.logical_or(x, gc.fill(shape, False))]
    return [x + gc.zeros(shape, x.dtype)]


@importer("Tile", since=6)
def _tile(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    return [gc.tile(ins[0], _ints(ctx.need_const(ins[1], "repeats")))]


@importer("Pad", since=2)
def _pad_v2(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    return [_pad(ctx, ins[0], attrs["pads"], attrs.get("mode", "constant"),
                 attrs.get("value", 0.0), None)]


@importer("Pad", since=11)
def _pad_v11(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    pads = _ints(ctx.need_const(ins[1], "pads"))
    value = 0
    if len(ins) > 2 and ins[2] is not None:
        value = ctx.need_const(ins[2], "constant_value").reshape(-1)
        value = value[0].item() if value.size else 0
    axes = _ints(ctx.need_const(ins[3], "axes")) if len(ins) > 3 and ins[3] is not None \
        else None
    return [_pad(ctx, ins[0], pads, attrs.get("mode", "constant"), value, axes)]


def _pad(ctx: Context, x: Any, pads: list, mode: str, value: Any, axes: Any) -> Any:
    if x.ndim is None:
        raise ctx.fail("needs a known rank")
    axes = list(range(x.ndim)) if axes is None else [a % x.ndim for a in axes]
    k = len(axes)
    pairs = [[0, 0] for _ in range(x.ndim)]
    for i, a in enumerate(axes):
        pairs[a] = [pads[i], pads[i + k]]
    if any(v < 0 for p in pairs for v in p):  # negative pads crop
        x = x[tuple(slice(-min(b, 0) or None, min(e, 0) or None) for b, e in pairs)]
        pairs = [[max(b, 0), max(e, 0)] for b, e in pairs]
    modes = {"constant": "CONSTANT", "reflect": "REFLECT"}
    if mode in ("edge", "wrap"):  # a gather of clamped / wrapped positions, per axis
        for a, (b, e) in enumerate(pairs):
            if b or e:
                d = x.shape[a]
                if d is None:
                    raise ctx.fail(f"{mode} padding needs static dims")
                pos = np.arange(-b, d + e)
                pos = np.clip(pos, 0, d - 1) if mode == "edge" else pos % d
                x = gc.gather(x, gc.constant(pos.astype(np.int64)), a)
        return gc.identity(x)
    if mode not in modes:
        raise ctx.fail(f"pad mode {mode!r} is not supported")
    if not any(v for p in pairs for v in p):
        return gc.identity(x)
    return gc.pad(x, pairs, modes[mode], constant_values=value if mode == "constant" else 0)


@importer("Constant")
def _constant(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            value = np.asarray(attrs[key])
            if key.startswith("value_float"):
                value = value.astype(np.float32)
            elif key.startswith("value_int"):
                value = value.astype(np.int64)
            return [gc.constant(value)]
    raise ctx.fail("only tensor, float(s) and int(s) values are supported")


@importer("ConstantOfShape", since=9)
def _constant_of_shape(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    value = attrs.get("value", np.zeros(1, np.float32))
    if ctx.const(ins[0]) is None:
        return [dynamic_fill(ctx, ins[0], np.asarray(value).reshape(-1)[0],
                             np.asarray(value).dtype)]
    shape = _ints(ctx.need_const(ins[0], "the shape"))
    return [gc.fill(shape, np.asarray(value).reshape(-1)[0], np.asarray(value).dtype)]


@importer("Range", since=11)
def _range(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    return [gc.range(*ins)]


@importer("Dropout")
def _dropout(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    # Inference: the identity (training_mode inputs other than a constant False are refused).
    if len(ins) > 2 and ins[2] is not None:
        if bool(np.asarray(ctx.need_const(ins[2], "training_mode")).reshape(-1)[0]):
            raise ctx.fail("training_mode=True draws random numbers; graphc imports inference "
                           "Dropout only")
    x = gc.identity(ins[0])
    return [x, gc.ones_like(x, dtype=gc.bool)]
