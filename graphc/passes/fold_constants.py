"""``fold_constants``: evaluate, once at compile time, what depends only on constants.

A pure node whose inputs are all constants is run through its NumPy ``ref`` and replaced by
constant nodes. ``shape`` and ``size`` of a tensor whose shape is fully known statically
are folded too (their input need not be constant). Random and stateful nodes are never
folded (they must draw a new value each step), and results larger than
:data:`MAX_FOLD_ELEMENTS` are left to the run (a folded constant costs memory in the plan).
"""

from __future__ import annotations

import numpy as np

from graphc.op import Kind, get_op
from graphc.passes.ir import IR, PassResult, constant_node, constant_value
from graphc.shapes import is_fully_known

__all__ = ["fold_constants", "MAX_FOLD_ELEMENTS"]

MAX_FOLD_ELEMENTS = 1 << 20
_NEVER = {"feed", "variable", "placeholder", "constant", "assign", "group"}


def fold_constants(ir: IR) -> PassResult:
    """Replace constant subexpressions by their values."""
    result = PassResult("fold_constants")
    for node in list(ir.nodes):
        if node.op in _NEVER or not node.pure or node.kind == Kind.RANDOM:
            continue
        values = [constant_value(r) for r in node.inputs]
        static = node.op in ("shape", "size") and node.inputs and \
            node.inputs[0][0].specs[node.inputs[0][1]].shape is not None and \
            is_fully_known(node.inputs[0][0].specs[node.inputs[0][1]].shape)
        if not static and any(v is None for v in values):
            continue
        if not all(s.shape is not None and is_fully_known(s.shape) and
                   int(np.prod(s.shape)) <= MAX_FOLD_ELEMENTS for s in node.specs):
            continue
        if static:  # only the input's shape matters: a zero array of that shape stands in
            src, i = node.inputs[0]
            values = [np.zeros(src.specs[i].shape, src.specs[i].dtype.np)]
        try:
            with np.errstate(all="ignore"):
                out = get_op(node.op).ref(*values, **node.attrs)
        except Exception:  # noqa: BLE001 - a failing fold is left for the run to report
            continue
        outs = out if isinstance(out, tuple) else (out,)
        if len(outs) != len(node.specs):
            continue
        pos = ir.nodes.index(node)
        for i, (spec, value) in enumerate(zip(node.specs, outs)):
            value = np.asarray(value, dtype=spec.dtype.np)
            const = constant_node(value, f"{node.name}/folded", node.location)
            ir.nodes.insert(pos, const)
            pos += 1
            ir.replace_uses((node, i), (const, 0))
        ir.remove(node)
        result.changes.append(f"folded {node.name} ({node.op})")
    return result
