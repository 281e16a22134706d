"""``fuse_elementwise``: group elementwise/broadcast nodes into single-loop kernels.

A group is a tree of nodes that all have a scalar ``formula``: a producer joins its
consumer's group only when that consumer is its sole reader and its value is not handed
out (fetched or written to a variable). So a node needed by two kernels, or by the user, is
materialized once, and every group is convex (no path leaves it and comes back). The
consumer is the group's root; the group's loop runs over the root's (broadcast) shape and
its external inputs are broadcast to it.

Nodes of unknown rank, float16 (Numba has no float16 arithmetic on CPU) and groups that
would take more than :data:`MAX_GROUP_INPUTS` arrays (Numba compiles slowly past ~30
arguments) are not fused. The grouping is stored in ``ir.groups`` (root uid -> members in
topological order); ``graphc.lower`` turns each group into one generated kernel. Nodes
outside any group that have a formula become one-node kernels.
"""

from __future__ import annotations

from graphc.op import Kind, get_op
from graphc.passes.ir import IR, INode, PassResult

__all__ = ["fuse_elementwise", "fusible", "MAX_GROUP_INPUTS"]

MAX_GROUP_INPUTS = 16


def fusible(node: INode) -> bool:
    """True when ``node`` can run inside a generated elementwise loop."""
    if node.op in ("feed", "variable", "placeholder") or len(node.specs) != 1:
        return False
    opdef = get_op(node.op)
    if opdef.kind not in (Kind.ELEMENTWISE, Kind.BROADCAST) or not opdef.formula:
        return False
    specs = [node.specs[0], *(s.specs[i] for s, i in node.inputs)]
    return all(s.shape is not None and s.dtype.name != "float16" for s in specs)


def _external_inputs(members: list[INode]) -> set[tuple[int, int]]:
    inside = {m.uid for m in members}
    return {(s.uid, i) for m in members for s, i in m.inputs if s.uid not in inside}


def fuse_elementwise(ir: IR) -> PassResult:
    """Form maximal single-reader trees of fusible nodes; record them in ``ir.groups``."""
    result = PassResult("fuse_elementwise")
    users = ir.users()
    roots = ir.root_refs()
    group_of: dict[int, list[INode]] = {}
    for node in ir.nodes:
        if not fusible(node):
            continue
        members = [node]
        for src, i in dict.fromkeys(node.inputs):
            if src.uid not in group_of or (src.uid, 0) in roots:
                continue
            if any(u is not node for u in users[src.uid]):
                continue  # needed by another kernel too: materialize it once
            candidate = group_of[src.uid] + members
            if len(_external_inputs(candidate)) > MAX_GROUP_INPUTS:
                continue
            members = candidate
            del group_of[src.uid]
        group_of[node.uid] = members
    by_uid = {n.uid: k for k, n in enumerate(ir.nodes)}
    ir.groups = {}
    for root_uid, members in group_of.items():
        members.sort(key=lambda m: by_uid[m.uid])
        ir.groups[root_uid] = members
        if len(members) > 1:
            root = members[-1]
            result.changes.append(f"fused {len(members)} ops into {root.name}: "
                                  + " ".join(m.op for m in members))
    return result
