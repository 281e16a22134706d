"""Symbolic reverse-mode differentiation: :func:`gradients` adds backward nodes to the graph.

The walk visits, in reverse topological order, the nodes that lie on a path from some
``x`` to some ``y``, calling each op's ``vjp`` with the gradients of its outputs. Gradients
are graphs built from ordinary ops, so they can be differentiated again, fused and exported.

Only float tensors carry gradients: an integer or bool input gets none, and an ``x`` that no
``y`` depends on gets ``None``. Backward nodes are attributed to the forward node's source
line, so errors and NaN reports in the backward pass point at the user's code.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

from graphc.errors import GradientError, GraphError, ShapeError
from graphc.graph import Node, Tensor
from graphc.op import get_op
from graphc.shapes import format_shape, merge_shapes

__all__ = ["gradients"]

TensorList = Union[Tensor, Sequence[Tensor]]


def gradients(ys: TensorList, xs: TensorList,
              grad_ys: Optional[TensorList] = None) -> list[Optional[Tensor]]:
    """d(sum(ys))/d(xs): one gradient tensor per x (``None`` where no y depends on it).

    ``grad_ys`` weights each y's gradient (default: ones), as in TF1.
    """
    ys, xs = _as_list(ys, "ys"), _as_list(xs, "xs")
    graph = ys[0].graph
    for t in (*ys, *xs):
        if t.graph is not graph:
            raise GraphError(f"gradients: {t.name} belongs to another graph than {ys[0].name}")
    seeds = _initial_grads(ys, grad_ys)
    between = _nodes_between(ys, xs)
    grads: dict[tuple[int, int], list[Tensor]] = {}
    for y, g in zip(ys, seeds):
        if y.dtype.is_floating:
            grads.setdefault((y.node.id, y.index), []).append(g)
    between_ids = {n.id for n in between}
    for node in reversed(between):
        if not any(t.node.id in between_ids for t in node.inputs):
            continue  # an x whose inputs lead to no other x: nothing to propagate
        out_grads = [_total(grads, (node.id, i)) for i in range(len(node.outputs))]
        if all(g is None for g in out_grads):
            continue
        for inp, g in zip(node.inputs, _input_grads(node, out_grads)):
            if g is not None and inp.dtype.is_floating:
                grads.setdefault((inp.node.id, inp.index), []).append(g)
    return [_total(grads, (x.node.id, x.index)) if x.dtype.is_floating else None for x in xs]


def _as_list(value: TensorList, what: str) -> list[Tensor]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    for t in items:
        if not isinstance(t, Tensor):
            raise GraphError(f"gradients: {what} must be tensors, got {t!r}")
    if not items:
        raise GraphError(f"gradients: {what} is empty")
    return items


def _initial_grads(ys: list[Tensor], grad_ys: Optional[TensorList]) -> list[Tensor]:
    from graphc.ops.creation import ones_like
    from graphc.ops.state import convert_to_tensor

    if grad_ys is None:
        return [ones_like(y) for y in ys]
    given = list(grad_ys) if isinstance(grad_ys, (list, tuple)) else [grad_ys]
    if len(given) != len(ys):
        raise GraphError(f"gradients: {len(given)} grad_ys for {len(ys)} ys")
    out = []
    for y, g in zip(ys, given):
        g = ones_like(y) if g is None else convert_to_tensor(g, y.dtype, graph=y.graph)
        try:
            merge_shapes(g.shape, y.shape)
        except ShapeError:
            raise ShapeError(f"gradients: grad_ys shape {format_shape(g.shape)} does not match "
                             f"{y.describe()}") from None
        out.append(g)
    return out


def _nodes_between(ys: list[Tensor], xs: list[Tensor]) -> list[Node]:
    """The nodes that depend on some x and that some y depends on, in topological order."""
    ancestors: set[int] = set()
    stack = [y.node for y in ys]
    while stack:
        node = stack.pop()
        if node.id not in ancestors:
            ancestors.add(node.id)
            stack.extend(t.node for t in node.inputs)
    graph = ys[0].graph
    from_x: set[tuple[int, int]] = {(x.node.id, x.index) for x in xs}
    between = []
    for node in graph.nodes[min(x.node.id for x in xs):max(y.node.id for y in ys) + 1]:
        if node.id not in ancestors:
            continue
        reached = any((t.node.id, t.index) in from_x for t in node.inputs)
        is_x = any((node.id, i) in from_x for i in range(len(node.outputs)))
        if reached:
            from_x.update((node.id, i) for i in range(len(node.outputs)))
        if reached or is_x:
            between.append(node)
    return between


def _total(grads: dict, key: tuple[int, int]) -> Optional[Tensor]:
    parts = grads.get(key)
    if not parts:
        return None
    total = parts[0]
    for g in parts[1:]:
        total = total + g
    grads[key] = [total]
    return total


def _input_grads(node: Node, out_grads: list[Optional[Tensor]]) -> list[Optional[Tensor]]:
    opdef = get_op(node.op)
    if opdef.vjp is None:
        if not any(t.dtype.is_floating for t in node.inputs):
            return [None] * len(node.inputs)
        raise GradientError(f"{node.op}: has no gradient, but {node.name} lies between the "
                            f"differentiated tensors" + (f"\n  at {node.location}" if node.location else ""))
    from graphc.ops.creation import zeros_like

    filled = [g if g is not None else zeros_like(out) for g, out in zip(out_grads, node.outputs)]
    with node.graph.at_location(node.location):
        result = list(opdef.vjp(node, *filled))
    if len(result) != len(node.inputs):
        raise GradientError(f"{node.op}: its vjp returned {len(result)} gradients for "
                            f"{len(node.inputs)} inputs (a graphc bug)")
    return result
