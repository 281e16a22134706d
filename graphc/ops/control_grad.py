"""The gradient of ``scan``: a reverse scan over the gradient of the body.

For a forward scan ``(c_T, ys) = scan(c_0, xs, ks)`` with body ``(c, x, k) -> (c', y)``,
the backward scan runs the steps in the opposite order with

* carries ``(gc, gk)``: the gradient reaching the carry after this step (starting from the
  gradient of the final carry) and the running sum of the consts' gradients (from zeros);
* scanned inputs ``(x[t], c[t], gy[t], r[t])``: the forward slice, the carry *before* the
  forward step, the gradient of ``ys[t]`` and the step's *residuals* (below);
* consts ``ks``;

and its body is ``gradients([c', y], [c, x, k], grad_ys=[gc, gy])`` built on a copy of
the forward body: new carries ``(dc, gk + dk)``, ys ``dx``. So the gradients of the
initial carries and of the consts (captured tensors: weights) are the backward scan's
final carries, and the gradients of the scanned inputs are its stacked ys.

**Residuals** (:mod:`graphc.ops.control_residuals`): the values of the forward step that
the gradient reads (an LSTM's gate activations) are not recomputed by the backward body;
they become extra scanned inputs of it, so the copy of the forward body (its GEMM) is dead
there. The forward pass saves them: the vjp adds a forward scan whose body is the original
body with the residuals appended as extra ys (:func:`saving_body`: the same body graph,
more outputs), with the same inputs as the original scan. The ``merge_scans`` pass then
runs the two as one scan (the original's consumers read the bigger one's outputs); without
the pass the result is the same, the forward computed twice.

The carries before each step come for free when the forward body outputs each new carry as
a y (TF1's scan: ``ys`` are the accumulators): they are ``[c_0, ys[:-1]]``, used when no
residual needs saving. Whenever a saving scan runs, its body also outputs the carries it
reads: one copy per step inside the loop, into arrays the compiled loop reuses, where the
concat and slice after the loop copy twice into fresh allocations.

The backward scan is an ordinary scan node whose body is built from ordinary ops, so it is
differentiated the same way (its own residuals saved by its own saving scan): second (and
higher) order gradients work wherever every op of the forward body has a differentiable
gradient. Only float carries, scanned inputs, consts and ys take part; integer ones get no
gradient (and integer values are never residuals: they are recomputed).

The gradient body and the saving body of a forward body are built once and cached on it,
so asking for gradients twice gives hash-consed (shared) nodes.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Sequence

from graphc.graph import Graph, Tensor
from graphc.ops.control import Body, _same_as_carry, scan_op
from graphc.ops.control_residuals import copy_nodes, cut_residuals

__all__ = ["GradBody", "scan_vjp", "clone_body", "copy_nodes", "saving_body"]


class GradBody(NamedTuple):
    """The backward body of a forward body and what it needs."""

    body: Body                 # the backward body
    fc: list[int]              # float carries of the forward body (they get gradients)
    fx: list[int]              # float scanned inputs
    fk: list[int]              # float consts
    fy: list[int]              # float ys
    residuals: list[Tensor]    # forward-body tensors it reads as scanned inputs, in order


def scan_vjp(node: Any, *grads: Tensor) -> list[Optional[Tensor]]:
    """The vjp of a ``scan`` node (see the module docstring)."""
    from graphc.ops.creation import zeros_like

    body: Body = node.attrs["body"]
    reverse: bool = node.attrs["reverse"]
    nc, nx = body.n_carry, body.n_xs
    xs, consts = list(node.inputs[nc:nc + nx]), list(node.inputs[nc + nx:])
    gb = _grad_body(body)
    fc, fx, fk, fy = gb.fc, gb.fx, gb.fk, gb.fy
    if not (fc or fy) or not (fc or fx or fk):
        return [None] * len(node.inputs)
    history, saved = _forward_saves(node, gb.residuals)
    carries = [grads[i] for i in fc] + [zeros_like(consts[j]) for j in fk]
    gys = [grads[nc + j] for j in fy]
    finals, dxs = scan_op(gb.body, carries, [*xs, *history, *gys, *saved], consts,
                          reverse=not reverse, name="scan_grad")
    out: list[Optional[Tensor]] = [None] * len(node.inputs)
    for i, g in zip(fc, finals[:len(fc)]):
        out[i] = g
    for i, g in zip(fx, dxs):
        out[nc + i] = g
    for j, g in zip(fk, finals[len(fc):]):
        out[nc + nx + j] = g
    return out


def _key(t: Tensor) -> tuple[int, int]:
    return (t.node.id, t.index)


def _forward_saves(node: Any, residuals: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """For each carry, the stack of its values *before* each step, and for each residual
    the stack of its values, all indexed like ``xs``: from the forward scan's own ys when
    they hold them all, else from one saving scan (same inputs, :func:`saving_body`)."""
    body: Body = node.attrs["body"]
    nc = body.n_carry
    ys = {_key(y): nc + j for j, y in enumerate(body.outputs[nc:])}
    saved = [node.outputs[ys[_key(r)]] if _key(r) in ys else None for r in residuals]
    history = [_history_from_ys(node, i) for i in range(nc)]
    if all(s is not None for s in saved) and all(h is not None for h in history):
        return history, saved  # type: ignore[return-value]
    # The saving scan also outputs every carry before each step: a copy inside the loop,
    # cheaper than the concat and slice of the ys after it (two copies, two allocations).
    _, more = scan_op(saving_body(body), node.inputs[:nc], node.inputs[nc:nc + body.n_xs],
                      node.inputs[nc + body.n_xs:], reverse=node.attrs["reverse"],
                      name="scan_saved")
    extra = iter(more[body.n_ys:])
    history = [next(extra) for _ in range(nc)]
    return history, [s if s is not None else next(extra) for s in saved]


def _history_from_ys(node: Any, i: int) -> Optional[Tensor]:
    """Carry ``i`` before each step from a y that is its new value (TF1's scan), or None."""
    from graphc.ops.shape import concat, expand_dims

    body: Body = node.attrs["body"]
    nc = body.n_carry
    j = next((j for j, y in enumerate(body.outputs[nc:]) if _same_as_carry(body, y) == i),
             None)
    if j is None:
        return None
    after, first = node.outputs[nc + j], expand_dims(node.inputs[i], 0)
    # ys[t] is the carry after step t, so the carry before it is ys[t-1] (ys[t+1] when
    # scanning in reverse), or the initial value.
    return concat([after, first], 0)[1:] if node.attrs["reverse"] else \
        concat([first, after], 0)[:-1]


def saving_body(body: Body) -> Body:
    """The same body (same graph and inputs) with more ys appended: the carries it reads,
    then the residuals its gradient reads that are not ys already. Built once per body:
    a second gradient gets the same object (hash-consed scans)."""
    cached = body.cache.get("saving")
    if cached is None:
        nc = body.n_carry
        ys = {_key(y) for y in body.outputs[nc:]}
        extra = [r for r in _grad_body(body).residuals if _key(r) not in ys]
        cached = body.cache["saving"] = Body(body.graph, body.inputs,
                                             [*body.outputs, *body.inputs[:nc], *extra], nc,
                                             body.n_xs)
    return cached


def clone_body(graph: Graph, body: Body, inputs: Sequence[Tensor]) -> list[Tensor]:
    """Copy ``body``'s nodes into ``graph`` with ``inputs`` in place of its placeholders;
    returns the copies of its outputs."""
    mapping = {_key(t): new for t, new in zip(body.inputs, inputs)}
    copy_nodes(graph, body.graph.nodes, mapping)
    return [mapping[_key(t)] for t in body.outputs]


def _grad_body(body: Body) -> GradBody:
    """The backward body of ``body`` (built once, cached on it)."""
    cached = body.cache.get("grad")
    if cached is None:
        cached = body.cache["grad"] = _build_grad_body(body)
    return cached


def _build_grad_body(body: Body) -> GradBody:
    from graphc.autodiff import gradients
    from graphc.ops.creation import zeros_like
    from graphc.ops.state import placeholder

    nc, nx = body.n_carry, body.n_xs
    c_in, x_in, k_in = body.inputs[:nc], body.inputs[nc:nc + nx], body.inputs[nc + nx:]
    ys = body.outputs[nc:]
    fc = [i for i, t in enumerate(c_in) if t.dtype.is_floating]
    fx = [i for i, t in enumerate(x_in) if t.dtype.is_floating]
    fk = [j for j, t in enumerate(k_in) if t.dtype.is_floating]
    fy = [j for j, t in enumerate(ys) if t.dtype.is_floating]
    # First the whole gradient on a copy of the forward body (recomputing it), then a
    # second graph that reads the residuals from placeholders instead (cut_residuals).
    graph = Graph()

    def ph(t: Tensor, name: str) -> Tensor:
        return placeholder(t.dtype, t.shape, name=name)

    with graph.as_default():
        gc_ph = [ph(c_in[i], f"grad_carry{i}") for i in fc]
        gk_ph = [ph(k_in[j], f"grad_const{j}") for j in fk]
        x_ph = [ph(t, f"elem{i}") for i, t in enumerate(x_in)]
        c_ph = [ph(t, f"carry{i}") for i, t in enumerate(c_in)]
        gy_ph = [ph(ys[j], f"grad_y{j}") for j in fy]
        k_ph = [ph(t, f"const{j}") for j, t in enumerate(k_in)]
        start = len(graph.nodes)
        mapping = {_key(t): new for t, new in zip(body.inputs, [*c_ph, *x_ph, *k_ph])}
        copy_nodes(graph, body.graph.nodes, mapping)
        outs = [mapping[_key(t)] for t in body.outputs]
        forward = range(start, len(graph.nodes))  # ids of the forward copy's nodes
        targets = [outs[i] for i in fc] + [outs[nc + j] for j in fy]
        wrt = [c_ph[i] for i in fc] + [x_ph[i] for i in fx] + [k_ph[j] for j in fk]
        grads = gradients(targets, wrt, grad_ys=[*gc_ph, *gy_ph]) if targets and wrt \
            else [None] * len(wrt)
        grads = [zeros_like(w) if g is None else g for g, w in zip(grads, wrt)]
        dc, dx, dk = grads[:len(fc)], grads[len(fc):len(fc) + len(fx)], grads[len(fc) + len(fx):]
        sums = [acc + d for acc, d in zip(gk_ph, dk)]
    inputs = [*gc_ph, *gk_ph, *x_ph, *c_ph, *gy_ph]
    cut = cut_residuals(graph, set(forward), inputs, k_ph, [*dc, *sums, *dx],
                        variant={_key(t) for t in [*x_ph, *c_ph]})
    back = {_key(new): old for old, new in mapping.items() if new.node.id in forward}
    residuals = [_original(body, back[_key(r)]) for r in cut.residuals]
    n_xs = len(x_ph) + len(c_ph) + len(gy_ph) + len(cut.residuals)
    gbody = Body(cut.graph, cut.inputs, cut.outputs, len(fc) + len(fk), n_xs)
    return GradBody(gbody, fc, fx, fk, fy, residuals)


def _original(body: Body, key: tuple[int, int]) -> Tensor:
    """The tensor ``key`` = (node id, index) of the forward body's graph."""
    return body.graph.nodes[key[0]].outputs[key[1]]
