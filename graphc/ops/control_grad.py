"""The gradient of ``scan``: a reverse scan over the gradient of the body.

For a forward scan ``(c_T, ys) = scan(c_0, xs, ks)`` with body ``(c, x, k) -> (c', y)``,
the backward scan runs the steps in the opposite order with

* carries ``(gc, gk)``: the gradient reaching the carry after this step (starting from the
  gradient of the final carry) and the running sum of the consts' gradients (from zeros);
* scanned inputs ``(x[t], c[t], gy[t])``: the forward slice, the carry *before* the
  forward step (saved by the forward scan) and the gradient of ``ys[t]``;
* consts ``ks``;

and its body is ``gradients([c', y], [c, x, k], grad_ys=[gc, gy])`` built on a copy of
the forward body: new carries ``(dc, gk + dk)``, ys ``dx``. So the gradients of the
initial carries and of the consts (captured tensors: weights) are the backward scan's
final carries, and the gradients of the scanned inputs are its stacked ys.

The carries before each step come for free when the forward body outputs each new carry as
a y (TF1's scan: ``ys`` are the accumulators): they are ``[c_0, ys[:-1]]``. Otherwise the
vjp adds a second forward scan whose body also outputs the carries it reads (recomputing
the forward pass once).

The backward scan is an ordinary scan node whose body is built from ordinary ops, so it is
differentiated the same way: second (and higher) order gradients work wherever every op
of the forward body has a differentiable gradient. Only float carries, scanned inputs,
consts and ys take part; integer ones get no gradient.

The gradient body of a forward body is built once and cached on it, so asking for
gradients twice gives hash-consed (shared) nodes.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from graphc.graph import Graph, Tensor
from graphc.op import get_op
from graphc.ops.control import Body, _same_as_carry, scan_op

__all__ = ["scan_vjp", "clone_body"]


def scan_vjp(node: Any, *grads: Tensor) -> list[Optional[Tensor]]:
    """The vjp of a ``scan`` node (see the module docstring)."""
    from graphc.ops.creation import zeros_like

    body: Body = node.attrs["body"]
    reverse: bool = node.attrs["reverse"]
    nc, nx = body.n_carry, body.n_xs
    xs, consts = list(node.inputs[nc:nc + nx]), list(node.inputs[nc + nx:])
    gbody, fc, fx, fk, fy = _grad_body(body)
    if not (fc or fy) or not (fc or fx or fk):
        return [None] * len(node.inputs)
    history = _carry_history(node)
    carries = [grads[i] for i in fc] + [zeros_like(consts[j]) for j in fk]
    gys = [grads[nc + j] for j in fy]
    finals, dxs = scan_op(gbody, carries, [*xs, *history, *gys], consts, reverse=not reverse,
                          name="scan_grad")
    out: list[Optional[Tensor]] = [None] * len(node.inputs)
    for i, g in zip(fc, finals[:len(fc)]):
        out[i] = g
    for i, g in zip(fx, dxs):
        out[nc + i] = g
    for j, g in zip(fk, finals[len(fc):]):
        out[nc + nx + j] = g
    return out


def _carry_history(node: Any) -> list[Tensor]:
    """For each carry, the stack of its values *before* each step, indexed like ``xs``."""
    from graphc.ops.shape import concat, expand_dims

    body: Body = node.attrs["body"]
    reverse = node.attrs["reverse"]
    nc = body.n_carry
    history: list[Optional[Tensor]] = []
    for i in range(nc):
        j = next((j for j, y in enumerate(body.outputs[nc:])
                  if _same_as_carry(body, y) == i), None)
        if j is None:
            history.append(None)
            continue
        after, first = node.outputs[nc + j], expand_dims(node.inputs[i], 0)
        # ys[t] is the carry after step t, so the carry before it is ys[t-1] (ys[t+1]
        # when scanning in reverse), or the initial value.
        history.append(concat([after, first], 0)[1:] if reverse else concat([first, after], 0)[:-1])
    if any(h is None for h in history):
        with_history = _body_with_history(body)
        _, ys = scan_op(with_history, node.inputs[:nc], node.inputs[nc:nc + body.n_xs],
                        node.inputs[nc + body.n_xs:], reverse=reverse, name="scan_history")
        history = [h if h is not None else ys[body.n_ys + i] for i, h in enumerate(history)]
    return history  # type: ignore[return-value]


def _body_with_history(body: Body) -> Body:
    """The same body, also outputting (as ys) the carries it reads."""
    cached = body.cache.get("with_history")
    if cached is None:
        cached = body.cache["with_history"] = Body(
            body.graph, body.inputs, [*body.outputs, *body.inputs[:body.n_carry]],
            body.n_carry, body.n_xs)
    return cached


def clone_body(graph: Graph, body: Body, inputs: Sequence[Tensor]) -> list[Tensor]:
    """Copy ``body``'s nodes into ``graph`` with ``inputs`` in place of its placeholders;
    returns the copies of its outputs."""
    mapping = {(t.node.id, t.index): new for t, new in zip(body.inputs, inputs)}
    for node in body.graph.nodes:
        if node.outputs and all((node.id, i) in mapping for i in range(len(node.outputs))):
            continue
        ins = [mapping[(t.node.id, t.index)] for t in node.inputs]
        with graph.at_location(node.location):
            new = graph.add_node(node.op, ins, node.attrs, node.specs, name=node.name,
                                 stateful=get_op(node.op).stateful)
        for i, out in enumerate(new.outputs):
            mapping[(node.id, i)] = out
    return [mapping[(t.node.id, t.index)] for t in body.outputs]


def _grad_body(body: Body) -> tuple[Body, list[int], list[int], list[int], list[int]]:
    """The backward body of ``body`` and which carries, xs, consts and ys are float."""
    cached = body.cache.get("grad")
    if cached is None:
        cached = body.cache["grad"] = _build_grad_body(body)
    return cached


def _build_grad_body(body: Body) -> tuple[Body, list[int], list[int], list[int], list[int]]:
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
        outs = clone_body(graph, body, [*c_ph, *x_ph, *k_ph])
        targets = [outs[i] for i in fc] + [outs[nc + j] for j in fy]
        wrt = [c_ph[i] for i in fc] + [x_ph[i] for i in fx] + [k_ph[j] for j in fk]
        grads = gradients(targets, wrt, grad_ys=[*gc_ph, *gy_ph]) if targets and wrt \
            else [None] * len(wrt)
        grads = [zeros_like(w) if g is None else g for g, w in zip(grads, wrt)]
        dc, dx, dk = grads[:len(fc)], grads[len(fc):len(fc) + len(fx)], grads[len(fc) + len(fx):]
        sums = [acc + d for acc, d in zip(gk_ph, dk)]
    gbody = Body(graph, [*gc_ph, *gk_ph, *x_ph, *c_ph, *gy_ph, *k_ph], [*dc, *sums, *dx],
                 len(fc) + len(fk), len(x_ph) + len(c_ph) + len(gy_ph))
    return gbody, fc, fx, fk, fy
