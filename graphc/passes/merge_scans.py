"""``merge_scans``: run a scan and a copy of it that only outputs more, as one scan.

The gradient of a scan saves forward values (:mod:`graphc.ops.control_grad`) with a
second forward scan: the same inputs, the same direction and a body that is the
original's with extra ys appended (the same body graph and inputs, the original outputs
as a prefix). Both compute the same steps; this pass keeps the bigger one and points the
smaller one's consumers at the bigger one's outputs (same positions: carries first, then
ys), so the forward loop runs once. Chains (a second-order gradient saves still more)
merge into the biggest.

Two scans merge only when this is provably the same computation: the same input tensors
(after CSE), the same ``reverse``, bodies on the same graph with the same placeholders
and counts, and one's outputs a prefix of the other's. Scans whose extra outputs differ
(neither a prefix of the other) are left apart.
"""

from __future__ import annotations

from typing import Any

from graphc.passes.ir import IR, INode, PassResult

__all__ = ["merge_scans"]


def _refs(tensors: Any) -> tuple:
    return tuple((t.node.id, t.index) for t in tensors)


def _group_key(node: INode) -> tuple:
    """What two mergeable scans share: their inputs, direction and body (but outputs)."""
    body = node.attrs["body"]
    return (tuple((s.uid, i) for s, i in node.inputs), bool(node.attrs["reverse"]),
            id(body.graph), _refs(body.inputs), body.n_carry, body.n_xs)


def _extends(big: Any, small: Any) -> bool:
    """True when ``big``'s outputs start with all of ``small``'s."""
    return len(big.outputs) >= len(small.outputs) and \
        _refs(big.outputs[:len(small.outputs)]) == _refs(small.outputs)


def merge_scans(ir: IR) -> PassResult:
    """Merge each scan into a scan with the same inputs whose body extends its body."""
    result = PassResult("merge_scans")
    groups: dict[tuple, list[INode]] = {}
    for node in ir.nodes:
        if node.op == "scan" and node.pure:
            groups.setdefault(_group_key(node), []).append(node)
    merged = False
    for nodes in groups.values():
        # Biggest first: each scan merges into the biggest one that extends it.
        nodes = sorted(nodes, key=lambda n: -len(n.attrs["body"].outputs))
        kept: list[INode] = []
        for node in nodes:
            into = next((k for k in kept if _extends(k.attrs["body"], node.attrs["body"])),
                        None)
            if into is None:
                kept.append(node)
                continue
            for i in range(len(node.specs)):
                ir.replace_uses((node, i), (into, i))
            ir.remove(node)
            merged = True
            n_more = len(into.specs) - len(node.specs)
            result.changes.append(f"merged {node.name} into {into.name} (scan with "
                                  f"{n_more} more output(s))")
    if merged:
        ir.resort()  # the kept scan may come after the removed one's consumers
    return result
