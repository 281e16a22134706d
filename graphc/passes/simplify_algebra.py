"""``simplify_algebra``: local rewrites that remove work without changing results.

Rules (each only where it is exact, NaN and Inf included, except ``log(exp(x)) -> x``, the
classic compiler identity, which also removes the overflow of ``exp``):

* ``x * 1``, ``1 * x``, ``x / 1``, ``x + 0``, ``0 + x``, ``x - 0`` -> ``x`` when the constant
  is a single element and the result has exactly ``x``'s type (so no broadcast is lost);
* ``x * 0`` -> zeros, and ``x - x`` -> zeros, for integer ``x`` only (for floats ``NaN * 0``
  and ``Inf - Inf`` are NaN);
* ``identity(x)``, ``stop_gradient(x)`` -> ``x`` (the gradient is already built);
* ``transpose(transpose(x, p), q)`` -> one transpose (or ``x`` when the perms cancel);
* ``reshape(reshape(x))`` -> one reshape; a reshape to ``x``'s own static shape -> ``x``;
* ``log(exp(x))`` -> ``x``;
* ``cast(cast(x, a), b)`` -> ``cast(x, b)`` when the first cast is lossless, and ``x`` when
  ``b`` is ``x``'s dtype;
* static forms when shapes are fully known: ``sum_to_like(g, x)`` and ``broadcast_like(a, x)``
  of equal shapes -> the input, ``reshape_like(x, like)`` -> ``reshape``.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from graphc.passes.ir import IR, INode, PassResult, Ref, constant_node, constant_value
from graphc.shapes import is_fully_known

__all__ = ["simplify_algebra"]


def _spec(ref: Ref) -> Any:
    return ref[0].specs[ref[1]]


def _is_unit(ref: Ref, value: float, like: Ref) -> bool:
    v = constant_value(ref)
    return (v is not None and v.size == 1 and v.ndim <= (len(_spec(like).shape or ()))
            and _spec(like).shape is not None and bool(np.all(v == value)))


def _same_type(node: INode, ref: Ref) -> bool:
    return node.specs[0] == _spec(ref)


def _fully_known(ref: Ref) -> bool:
    shape = _spec(ref).shape
    return shape is not None and is_fully_known(shape)


def _rewrite(node: INode, ir: IR) -> Optional[tuple[Ref, str]]:
    """The Ref that replaces ``node``'s output 0 (and a description), or None."""
    op, ins = node.op, node.inputs
    if op in ("identity", "stop_gradient") and _same_type(node, ins[0]):
        return ins[0], f"{op}(x) -> x"
    if op in ("multiply", "add") and len(ins) == 2:
        unit = 1 if op == "multiply" else 0
        for a, b in ((0, 1), (1, 0)):
            if _is_unit(ins[b], unit, ins[a]) and _same_type(node, ins[a]):
                return ins[a], f"{op} by {unit} removed"
    if op in ("divide", "subtract") and _is_unit(ins[1], 1 if op == "divide" else 0, ins[0]) \
            and _same_type(node, ins[0]):
        return ins[0], f"{op} by {1 if op == 'divide' else 0} removed"
    integer = node.specs[0].dtype.is_integer
    if integer and _fully_known((node, 0)) and (
            (op == "subtract" and ins[0] == ins[1]) or
            (op == "multiply" and any(_is_unit(r, 0, r2) for r, r2 in ((ins[0], ins[1]),
                                                                       (ins[1], ins[0]))))):
        zero = constant_node(np.zeros(node.specs[0].shape, node.specs[0].dtype.np),
                             f"{node.name}/zeros", node.location)
        return (zero, 0), f"integer {op} -> zeros"
    src = ins[0][0] if ins else None
    if op == "transpose" and src is not None and src.op == "transpose" and \
            _spec(ins[0]).shape is not None:
        rank = len(_spec(ins[0]).shape)
        p = src.attrs["perm"] or tuple(range(rank))[::-1]
        q = node.attrs["perm"] or tuple(range(rank))[::-1]
        composed = tuple(p[i] for i in q)
        if composed == tuple(range(rank)):
            return src.inputs[0], "transpose pair cancelled"
        return _new(ir, node, "transpose", [src.inputs[0]], {"perm": composed}), \
            "transpose pair composed"
    if op == "reshape" and src is not None and src.op == "reshape":
        return _new(ir, node, "reshape", [src.inputs[0]], dict(node.attrs)), "reshape pair merged"
    if op == "reshape" and _fully_known(ins[0]) and _same_type(node, ins[0]):
        return ins[0], "reshape to the same shape removed"
    if op == "log" and src is not None and src.op == "exp":
        return src.inputs[0], "log(exp(x)) -> x"
    if op == "cast" and src is not None and src.op == "cast":
        x = src.inputs[0]
        if np.can_cast(_spec(x).dtype.np, src.specs[0].dtype.np, "safe"):
            if _spec(x).dtype == node.specs[0].dtype:
                return x, "cast round trip removed"
            return _new(ir, node, "cast", [x], dict(node.attrs)), "cast chain merged"
    if op in ("sum_to_like", "broadcast_like") and _fully_known(ins[0]) and \
            _fully_known(ins[1]) and _spec(ins[0]).shape == _spec(ins[1]).shape and \
            not node.attrs.get("axes") and _same_type(node, ins[0]):
        return ins[0], f"static {op} removed"
    if op == "reshape_like" and _fully_known(ins[1]):
        if _same_type(node, ins[0]):
            return ins[0], "reshape_like to the same shape removed"
        return _new(ir, node, "reshape", [ins[0]], {"shape": tuple(_spec(ins[1]).shape)}), \
            "static reshape_like -> reshape"
    return None


def _new(ir: IR, like: INode, op: str, inputs: list[Ref], attrs: dict) -> Ref:
    node = INode(op, inputs, attrs, like.specs, f"{like.name}/simplified", like.location)
    ir.nodes.insert(ir.nodes.index(like), node)
    return node, 0


def simplify_algebra(ir: IR) -> PassResult:
    """Apply the rules until nothing changes (each sweep is in topological order)."""
    result = PassResult("simplify_algebra")
    changed = True
    done: set[int] = set()
    while changed:
        changed = False
        for node in list(ir.nodes):
            if node.uid in done or not node.pure or len(node.specs) != 1:
                continue
            hit = _rewrite(node, ir)
            if hit is None:
                continue
            new, what = hit
            if new[0].op == "constant" and new[0] not in ir.nodes:
                ir.nodes.insert(ir.nodes.index(node), new[0])
            ir.replace_uses((node, 0), new)
            ir.remove(node)
            done.add(node.uid)
            result.changes.append(f"{node.name}: {what}")
            changed = True
    return result
