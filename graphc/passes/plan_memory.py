"""``plan_memory``: decide which kernels write into buffers that are already there.

Every kernel-owned result (a fused group's root, a GEMM) gets a buffer that persists
across runs (so the steady state allocates nothing). On top of that, by liveness over the
schedule:

* a group may overwrite one of its external inputs (``ir.inplace``) when that input is a
  kernel-owned buffer of the same static shape and dtype whose only reader is the group and
  which is not handed out (readers of its shape alone, such as the ``like`` input of
  ``sum_to_like``, do not count: overwriting keeps the shape): the GEMM + bias + activation epilogue then runs in the GEMM's
  output without a second buffer;
* a group whose result is written to a variable (``assign``) writes straight into the
  variable's array (``ir.inplace_var``) when every other reader of the variable's old value
  runs earlier and the result is the whole variable (same static shape): optimizer updates
  (``w - lr * g``, momentum and Adam slots) then run in place, without a copy at the end.

Elementwise loops read element ``i`` of an input before writing element ``i`` of the
output, and never read another element of a same-shape input, which is what makes both
safe. Results are decided at run time only where shapes are unknown (checked there).
"""

from __future__ import annotations

from graphc.op import get_op
from graphc.passes.ir import IR, INode, PassResult

__all__ = ["plan_memory", "kernel_owned"]


def kernel_owned(ir: IR, node: INode) -> bool:
    """True when ``node``'s output buffer is allocated by the plan (group root or GEMM)."""
    return node.uid in ir.groups or node.op == "matmul"


def _reads_values(user: INode, src: INode) -> bool:
    """True unless ``user`` reads ``src`` only for its shape (the ``like`` inputs of gradient
    helpers, ``shape``, ``size``): overwriting a buffer keeps its shape."""
    if user.op in ("shape", "size"):
        return False
    names = get_op(user.op).input_names if user.op != "feed" else ()
    for k, (s, _) in enumerate(user.inputs):
        if s is src and not (k < len(names) and names[k] == "like"):
            return True
    return False


def plan_memory(ir: IR) -> PassResult:
    """Fill ``ir.inplace`` and ``ir.inplace_var`` (see the module docstring)."""
    result = PassResult("plan_memory")
    ir.inplace, ir.inplace_var = {}, {}
    by_uid = {n.uid: n for n in ir.nodes}
    users = {uid: [u for u in us if _reads_values(u, by_uid[uid])]
             for uid, us in ir.users().items() if uid in by_uid}
    roots = ir.root_refs()
    pos = {n.uid: k for k, n in enumerate(ir.nodes)}
    written_by = {}  # uid of the value node -> variable name
    for name, (assign, _) in ir.writes.items():
        value, vi = assign.inputs[1] if assign.op == "assign" else (assign, 0)
        written_by.setdefault(value.uid, []).append((name, assign))
    taken: set[int] = set()
    for root_uid, members in ir.groups.items():
        root = members[-1]
        # 1. write into the variable the result is assigned to
        for name, assign in written_by.get(root_uid, []):
            var = assign.inputs[0][0]
            if var.op != "variable" or var.specs[0] != root.specs[0] or (var.uid, 0) in roots:
                continue
            if (root.uid, 0) in {(r[0].uid, r[1]) for r in ir.fetches}:
                continue
            others = [u for u in users[var.uid] if u is not assign]
            member_ids = {m.uid for m in members}
            if all(u.uid in member_ids or pos[u.uid] < pos[root.uid] for u in others) \
                    and var.uid not in taken:
                ir.inplace_var[root.uid] = name
                taken.add(var.uid)
                result.changes.append(f"{root.name} updates variable {name} in place")
                break
        if root.uid in ir.inplace_var:
            continue
        # 2. reuse a dying input buffer (GEMM epilogues, chains of materialized groups);
        # never for a value handed to the user, which must not be a buffer a later run reuses
        if (root.uid, 0) in roots:
            continue
        inside = {m.uid for m in members}
        for m in members:
            for src, i in m.inputs:
                if src.uid in inside or not kernel_owned(ir, src) or (src.uid, i) in roots:
                    continue
                if any(u.uid not in inside for u in users[src.uid]):
                    continue
                if src.specs[i] != root.specs[0] or src.uid in ir.inplace_var:
                    continue
                ir.inplace[root.uid] = (src, i)
                result.changes.append(f"{root.name} reuses the buffer of {src.name}")
                break
            if root.uid in ir.inplace:
                break
    return result
