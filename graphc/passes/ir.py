"""The passes' internal IR: a mutable copy of one :class:`~graphc.program.Program`.

Passes never touch the user's :class:`~graphc.graph.Graph` (users hold Tensor handles into
it, and other programs share its nodes). Instead a program is copied into :class:`IR`:
mutable :class:`INode` s whose inputs are :data:`Ref` s ``(node, output index)``. Fed
tensors become ``feed`` nodes (whatever op produced them in the graph), so a pass never
sees what a feed replaces. Each INode keeps its ``origin`` graph node (for names, user
lines and debugging), or None for nodes that a pass created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import networkx as nx

from graphc.errors import GraphcError
from graphc.graph import Literal, Location, Node, TensorSpec
from graphc.op import Kind, get_op
from graphc.program import Program

__all__ = ["INode", "Ref", "IR", "from_program", "verify", "PassResult"]


class INode:
    """A mutable IR node: ``op``, ``inputs`` (Refs), ``attrs``, output ``specs``."""

    __slots__ = ("op", "inputs", "attrs", "specs", "name", "location", "serial", "origin",
                 "uid")
    _counter = 0

    def __init__(self, op: str, inputs: list["Ref"], attrs: dict[str, Any],
                 specs: tuple[TensorSpec, ...], name: str, location: Optional[Location] = None,
                 serial: Optional[int] = None, origin: Optional[Node] = None) -> None:
        INode._counter += 1
        self.uid = INode._counter
        self.op, self.inputs, self.attrs, self.specs = op, list(inputs), dict(attrs), tuple(specs)
        self.name, self.location, self.serial, self.origin = name, location, serial, origin

    @property
    def kind(self) -> Kind:
        """The op's fusion kind (feeds count as state)."""
        return Kind.STATE if self.op == "feed" else get_op(self.op).kind

    @property
    def pure(self) -> bool:
        """True when the node may be merged, folded or removed if unused."""
        return (self.serial is None and self.op not in ("feed", "variable", "placeholder")
                and self.kind not in (Kind.RANDOM,) and not (
                    self.op != "feed" and get_op(self.op).stateful))

    def __repr__(self) -> str:
        return f"<INode {self.name}: {self.op}>"


Ref = tuple  # (INode, output index)


@dataclass
class PassResult:
    """What one pass changed: human-readable lines (empty when nothing changed)."""

    name: str
    changes: list[str] = field(default_factory=list)


@dataclass
class IR:
    """The nodes of one program (topological order) and its roots."""

    nodes: list[INode]
    feeds: list[INode]                      # feed nodes, in Program.feeds order
    fetches: list[Ref]
    writes: dict[str, Ref]                  # variable name -> new value
    effects: list[INode] = field(default_factory=list)  # nodes run for effects only
    groups: dict[int, list[INode]] = field(default_factory=dict)  # fuse_elementwise's groups
    inplace: dict[int, Ref] = field(default_factory=dict)  # uid -> input whose buffer it reuses
    inplace_var: dict[int, str] = field(default_factory=dict)  # uid -> variable it writes into

    def roots(self) -> list[INode]:
        """The nodes a run must evaluate for their results or effects."""
        return [r[0] for r in self.fetches] + [r[0] for r in self.writes.values()] + self.effects

    def users(self) -> dict[int, list[INode]]:
        """uid -> the nodes reading any output of it (with repeats)."""
        out: dict[int, list[INode]] = {n.uid: [] for n in self.nodes}
        for n in self.nodes:
            for src, _ in n.inputs:
                out.setdefault(src.uid, []).append(n)
        return out

    def root_refs(self) -> set[tuple[int, int]]:
        """(uid, index) of every tensor the run hands out (fetched or written)."""
        return {(n.uid, i) for n, i in [*self.fetches, *self.writes.values()]}

    def digraph(self) -> nx.DiGraph:
        """The dataflow as a networkx DiGraph over uids (edges producer -> consumer)."""
        g = nx.DiGraph()
        g.add_nodes_from(n.uid for n in self.nodes)
        g.add_edges_from((src.uid, n.uid) for n in self.nodes for src, _ in n.inputs)
        return g

    def replace_uses(self, old: Ref, new: Ref) -> None:
        """Make every reader of ``old`` (and the roots) read ``new`` instead."""
        o = (old[0].uid, old[1])
        for n in self.nodes:
            n.inputs = [new if (s.uid, i) == o else (s, i) for s, i in n.inputs]
        self.fetches = [new if (s.uid, i) == o else (s, i) for s, i in self.fetches]
        self.writes = {k: new if (s.uid, i) == o else (s, i) for k, (s, i) in self.writes.items()}

    def remove(self, node: INode) -> None:
        """Drop ``node`` (its uses must already be replaced)."""
        self.nodes = [n for n in self.nodes if n is not node]

    def resort(self) -> None:
        """Restore topological order after inserting nodes (networkx, stable by position)."""
        pos = {n.uid: k for k, n in enumerate(self.nodes)}
        by_uid = {n.uid: n for n in self.nodes}
        order = nx.lexicographical_topological_sort(self.digraph(), key=lambda u: pos[u])
        self.nodes = [by_uid[u] for u in order]


def from_program(program: Program) -> IR:
    """A mutable copy of ``program``'s nodes (the user's graph is left untouched)."""
    fed = {(t.node.id, t.index): k for k, t in enumerate(program.feeds)}
    feeds: list[Optional[INode]] = [None] * len(program.feeds)
    refs: dict[tuple[int, int], Ref] = {}
    nodes: list[INode] = []
    for node in program.nodes:
        for i, spec in enumerate(node.specs):
            k = fed.get((node.id, i))
            if k is not None and feeds[k] is None:
                f = INode("feed", [], {"index": k}, (spec,), node.outputs[i].name,
                          node.location, origin=node)
                feeds[k] = f
                nodes.append(f)
        if node.outputs and all((node.id, i) in fed for i in range(len(node.outputs))):
            for i in range(len(node.outputs)):
                refs[(node.id, i)] = (feeds[fed[(node.id, i)]], 0)
            continue
        inode = INode(node.op, [refs[(t.node.id, t.index)] for t in node.inputs], node.attrs,
                      node.specs, node.name, node.location, node.serial, node)
        nodes.append(inode)
        for i in range(len(node.outputs)):
            k = fed.get((node.id, i))
            refs[(node.id, i)] = (feeds[k], 0) if k is not None else (inode, i)
        if not node.outputs:
            refs[(node.id, -1)] = (inode, -1)
    for k, t in enumerate(program.feeds):  # a fed tensor outside the pruned nodes
        if feeds[k] is None:
            feeds[k] = INode("feed", [], {"index": k}, (t.spec,), t.name, t.node.location,
                             origin=t.node)
            nodes.insert(0, feeds[k])
    fetches = [refs[(t.node.id, t.index)] for t in program.fetches]
    writes = {name: refs[(t.node.id, t.index)] for name, t in program.writes.items()}
    # Groups have no outputs and assigns are roots through `writes`: nothing else has effects.
    return IR(nodes, feeds, fetches, writes)  # type: ignore[arg-type]


def verify(ir: IR) -> None:
    """Re-infer every node and check order and specs; raise GraphcError on a pass bug."""
    seen: set[int] = set()
    for n in ir.nodes:
        for src, i in n.inputs:
            if src.uid not in seen:
                raise GraphcError(f"verify: {n.name} reads {src.name} before it is computed")
        seen.add(n.uid)
        if n.op in ("feed", "variable", "placeholder"):
            continue
        opdef = get_op(n.op)
        out = opdef.infer(*(s.specs[i] for s, i in n.inputs), **n.attrs)
        specs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        for want, got in zip(n.specs, specs):
            if want.dtype != got.dtype or not _compatible(want.shape, got.shape):
                raise GraphcError(f"verify: {n.name} ({n.op}) now infers {got}, was {want}")
    for r in [*ir.fetches, *ir.writes.values()]:
        if r[0].uid not in seen:
            raise GraphcError(f"verify: root {r[0].name} is not in the program")


def _compatible(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return True
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def constant_node(value: Any, name: str, location: Optional[Location] = None) -> INode:
    """A new ``constant`` INode holding ``value``."""
    import numpy as np

    from graphc import dtypes

    array = np.asarray(value)
    lit = Literal(array)
    return INode("constant", [], {"value": lit},
                 (TensorSpec(array.shape, dtypes.as_dtype(array.dtype)),), name, location)


def constant_value(ref: Ref) -> Optional[Any]:
    """The array of a constant node's output, else None."""
    node, _ = ref
    return node.attrs["value"].array if node.op == "constant" else None


def live_nodes(ir: IR, extra: Iterable[INode] = ()) -> set[int]:
    """uids of the nodes the roots need (networkx ancestors)."""
    g = ir.digraph()
    keep: set[int] = set()
    for r in [*ir.roots(), *extra]:
        if r.uid not in keep:
            keep.add(r.uid)
            keep |= nx.ancestors(g, r.uid)
    return keep
