"""``eliminate_dead``: drop the nodes that no fetch or variable write needs.

Other passes leave their replaced nodes behind; this pass removes them (networkx
ancestors of the roots). Feed nodes stay: a program's feed positions are its signature.
"""

from __future__ import annotations

from graphc.passes.ir import IR, PassResult, live_nodes

__all__ = ["eliminate_dead"]


def eliminate_dead(ir: IR) -> PassResult:
    """Remove nodes not needed by any root."""
    keep = live_nodes(ir)
    result = PassResult("eliminate_dead")
    kept = []
    for n in ir.nodes:
        if n.uid in keep or n.op == "feed":
            kept.append(n)
        else:
            result.changes.append(f"removed {n.name} ({n.op})")
    ir.nodes = kept
    return result
