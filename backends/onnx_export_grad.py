"""Exporters for graphc's gradient helper ops, so backward graphs export too.

* ``sum_to_like`` -> ``ReduceSum`` over the broadcast axes (found at run time from
  ``Shape(like) == 1`` when a dim is unknown statically; reducing a size-1 axis is harmless);
* ``broadcast_like`` -> ``Unsqueeze`` + ``Expand(Shape(like))``;
* ``strided_slice_grad``, ``scatter_add_like``, ``pad_grad``, ``tile_grad`` share one trick:
  run the *forward* op on an index tensor ``arange(size(like)).reshape(shape(like))``; the
  result says, for every element of ``g``, which element of ``like`` it came from, and a
  ``ScatterElements`` (``reduction="add"`` where positions repeat, opset >= 16) of the
  flattened ``g`` into zeros puts the gradient back. One exact, fully dynamic rule for four ops.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from onnx import numpy_helper

from graphc.backends.onnx_export import Emitter, exporter
from graphc.backends.onnx_export_shape import pad, slice_spec
from graphc.graph import Node


@exporter("sum_to_like")
def _sum_to_like(em: Emitter, node: Node, ins: list) -> list:
    g, like = node.inputs
    if g.ndim is None or like.ndim is None:
        raise em.error("sum_to_like needs known ranks")
    lead = g.ndim - like.ndim
    y = ins[0]
    if lead:
        y = em.reduce("ReduceSum", y, list(range(lead)), False)
    if None not in like.shape:
        axes = [i for i, d in enumerate(like.shape) if d == 1 and g.shape[lead + i] != 1]
        if axes:
            y = em.reduce("ReduceSum", y, axes, True)
        return [y if y != ins[0] else em.op("Identity", [y])]
    ones = em.op("Equal", [em.shape(ins[1]), em.ints([1])])
    axes = em.squeeze(em.op("NonZero", [ones]), [0])
    y = em.reduce_dyn("ReduceSum", y, axes, True, noop_with_empty_axes=1)
    return [em.op("Reshape", [y, em.shape(ins[1])])]


@exporter("broadcast_like")
def _broadcast_like(em: Emitter, node: Node, ins: list) -> list:
    axes = node.attrs["axes"]
    a = em.unsqueeze(ins[0], list(axes)) if axes else ins[0]
    return [em.op("Expand", [a, em.shape(ins[1])])]


def _scatter_back(em: Emitter, g: str, like: str, dtype: np.dtype,
                  forward: Callable[[str], str], add: bool) -> str:
    """Zeros of ``like``'s shape with ``g`` scattered where ``forward`` took it from."""
    if add and em.opset < 16:
        raise em.error("accumulating gradients need ScatterElements(reduction='add'), "
                       "opset >= 16")
    n = em.op("Size", [like])
    positions = em.op("Reshape", [em.op("Range", [em.const(np.int64(0)), n,
                                                  em.const(np.int64(1))]), em.shape(like)])
    taken = em.op("Reshape", [forward(positions), em.ints([-1])])
    zeros = em.op("ConstantOfShape", [em.op("Reshape", [n, em.ints([1])])],
                  value=numpy_helper.from_array(np.zeros(1, dtype)))
    flat = em.op("ScatterElements", [zeros, taken, em.op("Reshape", [g, em.ints([-1])])],
                 axis=0, reduction="add" if add else None)
    return em.op("Reshape", [flat, em.shape(like)])


@exporter("strided_slice_grad")
def _strided_slice_grad(em: Emitter, node: Node, ins: list) -> list:
    spec = node.attrs["spec"]
    return [_scatter_back(em, ins[0], ins[1], node.inputs[0].dtype.np,
                          lambda idx: slice_spec(em, idx, spec), add=False)]


@exporter("scatter_add_like")
def _scatter_add_like(em: Emitter, node: Node, ins: list) -> list:
    g, indices, like = ins
    axis = node.attrs["axis"]
    if node.inputs[1].dtype.np != np.int64:
        indices = em.op("Cast", [indices], to=7)  # INT64
    return [_scatter_back(em, g, like, node.inputs[0].dtype.np,
                          lambda idx: em.op("Gather", [idx, indices], axis=axis), add=True)]


@exporter("pad_grad")
def _pad_grad(em: Emitter, node: Node, ins: list) -> list:
    a = node.attrs
    return [_scatter_back(em, ins[0], ins[1], node.inputs[0].dtype.np,
                          lambda idx: pad(em, idx, a["paddings"], a["mode"], 0, np.int64),
                          add=True)]


@exporter("tile_grad")
def _tile_grad(em: Emitter, node: Node, ins: list) -> list:
    reps = node.attrs["multiples"]
    return [_scatter_back(em, ins[0], ins[1], node.inputs[0].dtype.np,
                          lambda idx: em.op("Tile", [idx, em.ints(reps)]), add=True)]
