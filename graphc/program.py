"""What a backend compiles: a :class:`Program`, the part of a graph one run needs.

A program is a pure step function: given the fed arrays, the variables' values and the
step number, it computes the fetched tensors and the variables' new values. It lists the
nodes to evaluate (topological order), the placeholders it is fed, the variables it reads
and the writes (``assign`` nodes) to apply when the run ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Sequence, Union

from graphc.errors import FeedError, GraphError
from graphc.graph import Graph, Node, Tensor
from graphc.op import Kind, get_op

__all__ = ["Program", "build_program"]

Fetch = Union[Tensor, Node]


@dataclass
class Program:
    """The nodes one run evaluates, with its inputs, outputs and effects."""

    graph: Graph
    nodes: list[Node]
    feeds: list[Tensor]
    fetches: list[Tensor]
    reads: list[str] = field(default_factory=list)       # variable names
    writes: dict[str, Tensor] = field(default_factory=dict)  # variable name -> new value
    uses_random: bool = False

    @cached_property
    def read_set(self) -> frozenset[str]:
        """``reads`` as a set (a session checks every run that they have values)."""
        return frozenset(self.reads)

    def fed_keys(self) -> set[tuple[int, int]]:
        """(node id, output index) of every fed tensor."""
        return {(t.node.id, t.index) for t in self.feeds}


def build_program(graph: Graph, fetches: Sequence[Fetch], feeds: Sequence[Tensor]) -> Program:
    """Prune ``graph`` to what ``fetches`` need when ``feeds`` are given, and check it."""
    fed = {(t.node.id, t.index) for t in feeds}
    needed: dict[int, Node] = {}
    stack: list[Node] = [f.node if isinstance(f, Tensor) else f for f in fetches]
    while stack:
        node = stack.pop()
        if node.id in needed:
            continue
        needed[node.id] = node
        if node.outputs and all((node.id, i) in fed for i in range(len(node.outputs))):
            continue  # a fed tensor: its inputs are not needed
        stack.extend(t.node for t in node.inputs)
    nodes = [needed[i] for i in sorted(needed)]
    program = Program(graph, nodes, list(feeds), [f for f in fetches if isinstance(f, Tensor)])
    for node in nodes:
        if all((node.id, i) in fed for i in range(len(node.outputs))) and node.outputs:
            continue
        if node.op == "placeholder":
            raise FeedError(_missing_feed(node, fetches))
        if node.op == "variable":
            program.reads.append(node.name)
        elif node.op == "assign":
            _add_write(program, node)
        if get_op(node.op).kind == Kind.RANDOM:
            program.uses_random = True
    return program


def _add_write(program: Program, node: Node) -> None:
    var_name = node.inputs[0].node.name
    previous = program.writes.get(var_name)
    if previous is not None:
        raise GraphError(f"variable {var_name} is assigned twice in one run: by {previous.node.name}"
                         f" (at {previous.node.location}) and by {node.name} (at {node.location});"
                         " run them in separate session.run calls")
    program.writes[var_name] = node.outputs[0]


def _missing_feed(node: Node, fetches: Sequence[Fetch]) -> str:
    t = node.outputs[0]
    names = ", ".join(f.name for f in fetches)
    where = f"\n  placeholder created at {node.location}" if node.location else ""
    return (f"placeholder {t.name} ({t.dtype.name}{_fmt(t)}) must be fed: "
            f"fetching {names} needs it; pass feed_dict={{{t.name}: ...}}{where}")


def _fmt(t: Tensor) -> str:
    from graphc.shapes import format_shape

    return format_shape(t.shape)
