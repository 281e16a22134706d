"""Which forward values a scan's gradient body reads from the forward pass (residuals).

:func:`graphc.ops.control_grad._build_grad_body` first builds the gradient of a copy of the
forward body (so every forward value is at hand, recomputed). :func:`cut_residuals` then
copies only what the gradient needs into a fresh graph, reading each forward value it
uses from a new placeholder (a *residual*, a scanned input of the backward scan that the
forward pass saves) unless that value is cheaper to recompute than to store:

* values that depend on no carry or scanned input (consts, literals): loop invariants,
  which the compiled loop computes once, not per step;
* layout and elementwise ops of such cheap values and of the body's own inputs (the
  backward body has those anyway): a fused map over inputs costs less than a stored stack;
* integer (and bool) values: never stored (only float values are scanned by the backward
  scan's gradient); they are recomputed, and the float values *they* read become residuals.

Everything else the gradient reads (a GEMM's result, the gate activations of an LSTM) is a
residual, so the copy of the forward's GEMMs is dead in the backward body.

Some reads need only a shape: ``sum_to_like(g, v)`` (the gradient of a broadcasting op,
when ``v``'s shape is not fully known statically) and the other ops of
:data:`~graphc.op.SHAPE_ONLY_INPUTS`. Such a ``v`` computed by a cheap op from values the
backward body has anyway (its inputs, other residuals) is recomputed (one fused multiply
for an LSTM's ``f * c``). Computed by a plain GEMM ``a @ b`` (an LSTM's ``h @ R``), it is
replaced by a donor of the same shape, ``a[..., :1] * b[..., :1, :]``: saving it would
cost a stack the forward writes and nobody reads, recomputing it a GEMM per step. The
compiled cpu loop computes neither (it skips values read only for their shapes).
"""

from __future__ import annotations

from typing import AbstractSet, Any, NamedTuple, Sequence

from graphc.graph import Graph, Tensor
from graphc.op import SHAPE_ONLY_INPUTS, Kind, get_op

__all__ = ["Cut", "copy_nodes", "cut_residuals"]

# Ops cheap enough to recompute from values the backward body has anyway.
_CHEAP_KINDS = (Kind.ELEMENTWISE, Kind.BROADCAST, Kind.SHAPE, Kind.STATE)


class Cut(NamedTuple):
    """The gradient body's graph with the residuals as placeholders."""

    graph: Graph
    inputs: list[Tensor]      # copies of ``inputs``, then the residuals' placeholders, consts
    outputs: list[Tensor]
    residuals: list[Tensor]   # the source graph's tensors the placeholders stand for


def _key(t: Tensor) -> tuple[int, int]:
    return (t.node.id, t.index)


def cut_residuals(graph: Graph, forward: set[int], inputs: Sequence[Tensor],
                  consts: Sequence[Tensor], outputs: Sequence[Tensor],
                  variant: set[tuple[int, int]]) -> Cut:
    """Copy what ``outputs`` need from ``graph`` into a new graph whose placeholders stand
    for ``inputs``, the residuals (see the module docstring) and ``consts``.

    ``forward``: ids of the nodes of ``graph`` that copy the forward body; ``variant``:
    the placeholders that change at each step (carries and scanned slices).
    """
    from graphc.ops.state import placeholder

    changing = _variant_nodes(graph, variant)
    cheap: dict[int, bool] = {}

    def is_cheap(node_id: int) -> bool:
        if node_id not in forward:
            return True  # a placeholder of the gradient body
        if node_id not in cheap:
            node = graph.nodes[node_id]
            cheap[node_id] = node_id not in changing or (
                get_op(node.op).kind in _CHEAP_KINDS
                and all(is_cheap(t.node.id) for t in node.inputs))
        return cheap[node_id]

    # Walk back from the outputs: a gradient node is copied; a forward value is copied
    # (recomputed) when cheap or not float, else read from a residual placeholder.
    copied: set[int] = set()
    forced: set[int] = set()  # not cheap, but recomputed (read only for a shape)
    reads: dict[tuple[int, int], Tensor] = {}
    data: set[tuple[int, int]] = set()  # residuals whose values (not just shapes) are read

    def walk(stack: list[tuple[Tensor, bool]]) -> None:
        while stack:
            t, shape_only = stack.pop()
            node = t.node
            if node.id in forward and t.dtype.is_floating and not is_cheap(node.id) \
                    and node.id not in forced:
                reads[_key(t)] = t
                if not shape_only:
                    data.add(_key(t))
                continue
            if node.id in copied:
                continue
            copied.add(node.id)
            like = SHAPE_ONLY_INPUTS.get(node.op, ())
            stack.extend((u, i in like) for i, u in enumerate(node.inputs))

    walk([(t, False) for t in outputs])
    # A residual read only for its shape, computed by a cheap op (or a plain GEMM, for
    # which a donor stands in) from what the body has anyway (other residuals, cheap or
    # recomputed values), is recomputed instead of saved (LSTM: f * c, whose shape
    # sum_to_like needs, from the saved gate and the carry). A donor is no input to
    # recompute another value from: its values are not the GEMM's.
    donors: set[int] = set()

    def available(u: Tensor) -> bool:
        return is_cheap(u.node.id) or _key(u) in data or (u.node.id in copied
                                                          and u.node.id not in donors)

    while True:
        more = [t for k, t in reads.items() if k not in data and k[0] not in copied
                and (get_op(t.node.op).kind in _CHEAP_KINDS or _plain_gemm(t.node))
                and all(available(u) for u in t.node.inputs)]
        if not more:
            break
        forced.update(t.node.id for t in more)
        donors.update(t.node.id for t in more if _plain_gemm(t.node))
        walk([(t, False) for t in more])
    residuals = [reads[k] for k in sorted(reads) if k[0] not in copied]
    new = Graph()
    with new.as_default():
        ins = [placeholder(t.dtype, t.shape, name=t.node.name) for t in inputs]
        saved = [placeholder(t.dtype, t.shape, name=f"saved{k}") for k, t in enumerate(residuals)]
        ks = [placeholder(t.dtype, t.shape, name=t.node.name) for t in consts]
    mapping = {_key(old): t for old, t in zip([*inputs, *residuals, *consts], [*ins, *saved, *ks])}
    copy_nodes(new, [graph.nodes[i] for i in sorted(copied)], mapping, donors)
    return Cut(new, [*ins, *saved, *ks], [mapping[_key(t)] for t in outputs], residuals)


def _plain_gemm(node: Any) -> bool:
    """A matmul without transposes, whose output shape a broadcast product can give."""
    return node.op == "matmul" and not node.attrs["transpose_a"] \
        and not node.attrs["transpose_b"]


def copy_nodes(graph: Graph, nodes: Sequence[Any], mapping: dict[tuple[int, int], Tensor],
               donors: AbstractSet[int] = frozenset()) -> None:
    """Copy ``nodes`` (topologically ordered) into ``graph``; ``mapping`` maps the source
    tensors already placed ((node id, index) -> tensor) and receives the copies' outputs.
    A node whose outputs are all mapped is not copied (placeholders, residuals). The plain
    GEMMs ``a @ b`` of ``donors`` (read only for their shapes) become ``a[..., :1] *
    b[..., :1, :]``: the same shape, broadcasting batch axes alike, without the GEMM."""
    for node in nodes:
        if node.outputs and all((node.id, i) in mapping for i in range(len(node.outputs))):
            continue
        ins = [mapping[_key(t)] for t in node.inputs]
        with graph.at_location(node.location):
            if node.id in donors:
                mapping[(node.id, 0)] = ins[0][..., :1] * ins[1][..., :1, :]
                continue
            new = graph.add_node(node.op, ins, node.attrs, node.specs, name=node.name,
                                 stateful=get_op(node.op).stateful)
        for i, out in enumerate(new.outputs):
            mapping[(node.id, i)] = out


def _variant_nodes(graph: Graph, variant: set[tuple[int, int]]) -> set[int]:
    """Ids of the nodes that depend on a ``variant`` placeholder (nodes are in order)."""
    out = {k[0] for k in variant}
    for node in graph.nodes:
        if any(t.node.id in out for t in node.inputs):
            out.add(node.id)
    return out
