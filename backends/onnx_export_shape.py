"""The exporter table for graphc's shape and indexing ops (see :mod:`.onnx_export`).

Static arguments (target shapes, axes, pads) become ``Constant`` inputs, as opset 13+
wants them. Sizes known only at run time (a ``-1`` split of an unknown dim, ``split_like``)
are computed from ``Shape`` in the model, so dynamic batch sizes keep working.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from graphc.backends.onnx_export import Emitter, exporter, onnx_dtype
from graphc.backends.onnx_export_ops import INT64_MAX, INT64_MIN
from graphc.graph import Node


@exporter("reshape")
def _reshape(em: Emitter, node: Node, ins: list) -> list:
    shape = node.attrs["shape"]
    zero = 0 in shape and em.opset >= 14
    return [em.op("Reshape", [ins[0], em.ints(shape)], allowzero=1 if zero else None)]


@exporter("reshape_like")
def _reshape_like(em: Emitter, node: Node, ins: list) -> list:
    return [em.op("Reshape", [ins[0], em.shape(ins[1])],
                  allowzero=1 if em.opset >= 14 else None)]


@exporter("expand_dims")
def _expand_dims(em: Emitter, node: Node, ins: list) -> list:
    return [em.unsqueeze(ins[0], [node.attrs["axis"]])]


@exporter("squeeze")
def _squeeze(em: Emitter, node: Node, ins: list) -> list:
    axes = node.attrs["axes"]
    return [em.squeeze(ins[0], None if axes is None else list(axes))]


@exporter("transpose")
def _transpose(em: Emitter, node: Node, ins: list) -> list:
    perm = node.attrs["perm"]
    return [em.op("Transpose", ins, perm=None if perm is None else list(perm))]


@exporter("concat")
def _concat(em: Emitter, node: Node, ins: list) -> list:
    return [em.op("Concat", ins, axis=node.attrs["axis"])]


def _dim(em: Emitter, x: str, axis: int) -> str:
    """``x``'s run-time size along ``axis`` as a 1-element int64 vector."""
    return em.op("Gather", [em.shape(x), em.ints([axis])], axis=0)


def _split(em: Emitter, x: str, sizes: str, n: int, axis: int) -> list:
    outs = em.op("Split", [x, sizes], n_out=n, axis=axis)
    return outs if n != 1 else [outs]


@exporter("split")
def _split_op(em: Emitter, node: Node, ins: list) -> list:
    x, axis = node.inputs[0], node.attrs["axis"]
    num, sizes = node.attrs["num"], node.attrs["sizes"]
    d = None if x.shape is None else x.shape[axis]
    if sizes is None:
        if d is not None:
            return _split(em, ins[0], em.ints([d // num] * num), num, axis)
        if em.opset >= 18:
            outs = em.op("Split", ins, n_out=num, axis=axis, num_outputs=num)
        else:
            outs = em.op("Split", ins, n_out=num, axis=axis)
        return outs if num != 1 else [outs]
    known = sum(s for s in sizes if s != -1)
    if -1 not in sizes:
        return _split(em, ins[0], em.ints(sizes), len(sizes), axis)
    if d is not None:
        return _split(em, ins[0], em.ints([d - known if s == -1 else s for s in sizes]),
                      len(sizes), axis)
    rest = em.op("Sub", [_dim(em, ins[0], axis), em.ints([known])])
    parts = [rest if s == -1 else em.ints([s]) for s in sizes]
    return _split(em, ins[0], em.op("Concat", parts, axis=0), len(sizes), axis)


@exporter("split_like")
def _split_like(em: Emitter, node: Node, ins: list) -> list:
    axis = node.attrs["axis"]
    dims = [None if v.shape is None else v.shape[axis] for v in node.inputs[1:]]
    if all(d is not None for d in dims):
        sizes = em.ints(dims)
    else:
        sizes = em.op("Concat", [_dim(em, v, axis) for v in ins[1:]], axis=0)
    return _split(em, ins[0], sizes, len(dims), axis)


def slice_spec(em: Emitter, x: str, spec: Sequence[Any]) -> str:
    """``x[spec]`` for a normalized strided_slice spec: Slice, Squeeze, Unsqueeze."""
    starts, ends, axes, steps, picked, new = [], [], [], [], [], []
    k = out = 0
    for item in spec:
        if item == "newaxis":
            new.append(out)
            out += 1
            continue
        if item == "ellipsis":
            raise em.error("an ellipsis index on a tensor of unknown rank")
        if isinstance(item, tuple):
            start, stop, step = item
            starts.append(start if start is not None else (0 if step > 0 else INT64_MAX))
            ends.append(stop if stop is not None else (INT64_MAX if step > 0 else INT64_MIN))
            steps.append(step)
            out += 1
        else:
            starts.append(item)
            ends.append(item + 1 if item != -1 else INT64_MAX)
            steps.append(1)
            picked.append(k)
        axes.append(k)
        k += 1
    y = x
    if axes:
        y = em.op("Slice", [y, em.ints(starts), em.ints(ends), em.ints(axes), em.ints(steps)])
    if picked:
        y = em.squeeze(y, picked)
    if new:
        y = em.unsqueeze(y, new)
    return y if y != x else em.op("Identity", [x])


@exporter("strided_slice")
def _strided_slice(em: Emitter, node: Node, ins: list) -> list:
    return [slice_spec(em, ins[0], node.attrs["spec"])]


@exporter("gather")
def _gather(em: Emitter, node: Node, ins: list) -> list:
    return [em.op("Gather", ins, axis=node.attrs["axis"])]


@exporter("one_hot")
def _one_hot(em: Emitter, node: Node, ins: list) -> list:
    a = node.attrs
    idx = node.inputs[0]
    positions = em.const(np.arange(a["depth"], dtype=idx.dtype.np))
    hot = em.op("Equal", [em.unsqueeze(ins[0], [-1]), positions])
    dt = a["dtype"].np
    out = em.op("Where", [hot, em.const(np.asarray(a["on_value"], dt)),
                          em.const(np.asarray(a["off_value"], dt))])
    axis = a["axis"]
    rank = None if idx.ndim is None else idx.ndim + 1
    if axis == -1 or (rank is not None and axis == rank - 1):
        return [out]
    if rank is None:
        raise em.error("one_hot along an inner axis of a tensor of unknown rank")
    perm = list(range(axis)) + [rank - 1] + list(range(axis, rank - 1))
    return [em.op("Transpose", [out], perm=perm)]


def pad(em: Emitter, x: str, paddings: Sequence[Sequence[int]], mode: str,
        constant: Any, dtype: Any) -> str:
    """``x`` padded as graphc's ``pad`` (SYMMETRIC built from reversed slices)."""
    if mode == "SYMMETRIC":
        y = x
        for axis, (b, e) in enumerate(paddings):
            parts = [y]
            if b:  # y[b-1::-1] along axis
                parts.insert(0, em.op("Slice", [y, em.ints([b - 1]), em.ints([INT64_MIN]),
                                                em.ints([axis]), em.ints([-1])]))
            if e:  # y[:-e-1:-1] along axis
                parts.append(em.op("Slice", [y, em.ints([-1]), em.ints([-e - 1]),
                                             em.ints([axis]), em.ints([-1])]))
            if len(parts) > 1:
                y = em.op("Concat", parts, axis=axis)
        return y if y != x else em.op("Identity", [x])
    pads = em.ints([p[0] for p in paddings] + [p[1] for p in paddings])
    if mode == "CONSTANT":
        value = em.const(np.asarray(constant, np.dtype(dtype)))
        return em.op("Pad", [x, pads, value], mode="constant")
    return em.op("Pad", [x, pads], mode="reflect")


@exporter("pad")
def _pad(em: Emitter, node: Node, ins: list) -> list:
    a = node.attrs
    return [pad(em, ins[0], a["paddings"], a["mode"], a["constant_values"],
                node.inputs[0].dtype.np)]


@exporter("tile")
def _tile(em: Emitter, node: Node, ins: list) -> list:
    return [em.op("Tile", [ins[0], em.ints(node.attrs["multiples"])])]


@exporter("broadcast_to")
def _broadcast_to(em: Emitter, node: Node, ins: list) -> list:
    return [em.op("Expand", [ins[0], em.ints(node.attrs["shape"])])]


@exporter("shape")
def _shape(em: Emitter, node: Node, ins: list) -> list:
    out = em.op("Shape", ins)
    want = node.attrs["out_type"].np
    return [out if want == np.int64 else em.op("Cast", [out], to=onnx_dtype(want))]
