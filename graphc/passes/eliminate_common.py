"""``eliminate_common``: common-subexpression elimination by hash-consing.

Two pure nodes with the same op, inputs and attributes compute the same value; the later
one is replaced by the earlier. The graph already hash-conses when it is built, but other
passes (folding, simplification) create new equal nodes. Random draws, variables, feeds and
assignments are never merged: each carries its own identity (``serial``).
"""

from __future__ import annotations

from graphc.passes.ir import IR, PassResult

__all__ = ["eliminate_common"]


def _key(node) -> tuple:
    attrs = tuple(sorted(node.attrs.items()))
    return (node.op, tuple((s.uid, i) for s, i in node.inputs), attrs)


def eliminate_common(ir: IR) -> PassResult:
    """Merge equal pure nodes (in topological order, so chains merge in one sweep)."""
    result = PassResult("eliminate_common")
    seen: dict[tuple, object] = {}
    for node in ir.nodes:
        if not node.pure:
            continue
        try:
            key = _key(node)
            first = seen.setdefault(key, node)
        except TypeError:  # an unhashable attribute: leave the node alone
            continue
        if first is not node:
            for i in range(len(node.specs)):
                ir.replace_uses((node, i), (first, i))
            ir.remove(node)
            result.changes.append(f"merged {node.name} into {first.name} ({node.op})")
    return result
