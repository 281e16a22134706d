"""Lowering: a :class:`~graphc.program.Program` -> a :class:`Plan` of steps.

The program is copied into the passes' IR, the pipeline runs over it, and every remaining
node (or fused group) gets one step of a *kind* that says how a backend runs it:

* ``fused``: a group of elementwise/broadcast nodes (or a single one) with scalar formulas;
  the backend generates one loop for it from the formulas (no per-op code);
* ``library``: an op the backend has a dedicated kernel for (its table, e.g. GEMM -> BLAS);
* ``fallback``: the op's own NumPy ``ref`` (shape ops, gathers, reductions... until a
  backend gives them a kernel); each backend documents which ops take this path;
* ``variable`` / ``constant`` / ``feed``: values the runtime provides;
* ``alias``: the node's output is its input (``assign`` outputs the value it writes).

The choice depends only on the op and static types, so a backend's coverage test can
list, for every registered op, which kind it gets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Optional, Sequence

from graphc.passes import DEFAULT_PIPELINE, LOWERING_ONLY, Pass, PassResult, run_pipeline
from graphc.passes.fuse_elementwise import fusible
from graphc.passes.ir import IR, INode, Ref, from_program
from graphc.program import Program

__all__ = ["Step", "Plan", "lower", "step_kind"]


@dataclass
class Step:
    """One unit of work: ``nodes`` (a fused group's members, else one node)."""

    kind: str
    nodes: list[INode]
    inputs: list[Ref] = field(default_factory=list)

    @property
    def node(self) -> INode:
        """The node whose outputs this step defines (a group's root)."""
        return self.nodes[-1]


@dataclass
class SlotTable:
    """Values numbered densely: ``index[(node uid, output)]``, and the slots of the feeds,
    fetches and variable writes (``handed_out``: values that leave the program)."""

    index: dict[tuple[int, int], int]
    feeds: list[int]
    fetches: list[int]
    writes: list[tuple[str, int]]
    handed_out: set[int]


@dataclass
class Plan:
    """The lowered program: the IR after the passes, and the steps in order."""

    program: Program
    ir: IR
    steps: list[Step]
    reports: list[PassResult]

    def slot_table(self) -> "SlotTable":
        """A dense numbering of the IR's values, as both Numba runtimes index them."""
        ir = self.ir
        index: dict[tuple[int, int], int] = {}
        for node in ir.nodes:
            for i in range(len(node.specs)):
                index[(node.uid, i)] = len(index)
        fetches = [index[(n.uid, i)] for n, i in ir.fetches]
        writes = [(name, index[(n.uid, i)]) for name, (n, i) in ir.writes.items()]
        return SlotTable(index, [index[(f.uid, 0)] for f in ir.feeds], fetches, writes,
                         set(fetches) | {slot for _, slot in writes})

    def counts(self) -> dict[str, int]:
        """How many steps of each kind (and how many nodes the fused steps hold)."""
        out: dict[str, int] = {}
        for s in self.steps:
            out[s.kind] = out.get(s.kind, 0) + 1
        out["fused_nodes"] = sum(len(s.nodes) for s in self.steps if s.kind == "fused")
        return out


def step_kind(node: INode, library: Collection[str]) -> str:
    """How ``node`` runs when it is not part of a larger group."""
    if node.op in ("feed", "variable", "constant"):
        return node.op
    if node.op == "assign":
        return "alias"
    if node.op == "group":
        return "skip"
    if node.op in library:
        return "library"
    if fusible(node):
        return "fused"
    return "fallback"


def lower(program: Program, library: Collection[str], *,
          passes: Optional[Sequence[Pass]] = None, fuse: bool = True,
          check: Optional[bool] = None, explain: Optional[bool] = None) -> Plan:
    """Run the passes over a copy of ``program`` and choose a kind for every node.

    ``passes`` defaults to :data:`~graphc.passes.DEFAULT_PIPELINE` when ``fuse`` is true and
    to :data:`~graphc.passes.LOWERING_ONLY` (every node on its own) otherwise.
    """
    ir = from_program(program)
    if passes is None:
        passes = DEFAULT_PIPELINE if fuse else LOWERING_ONLY
    reports = run_pipeline(ir, passes, check=check, explain=explain)
    member_of = {m.uid: root for root, ms in ir.groups.items() for m in ms}
    steps: list[Step] = []
    for node in ir.nodes:
        root = member_of.get(node.uid)
        if root is not None:
            if root == node.uid:
                members = ir.groups[root]
                inside = {m.uid for m in members}
                ext = list(dict.fromkeys((s, i) for m in members for s, i in m.inputs
                                         if s.uid not in inside))
                steps.append(Step("fused", members, ext))
            continue
        kind = step_kind(node, library)
        if kind != "skip":
            steps.append(Step(kind, [node], list(node.inputs)))
    return Plan(program, ir, steps, reports)
