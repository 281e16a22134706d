"""Composite patterns the ONNX exporter maps to one ONNX op.

graphc builds softmax, log_softmax and dense layers from primitives (so its own backends
need no code for them); ONNX has ops for them, which runtimes implement well. This module
finds those patterns in a program and returns *rewrites*: ``node id -> (exporter, leaves)``,
meaning "export this node by calling ``exporter`` on the leaves' values" — the pattern's
inner nodes are then exported only if something else still needs them.

Patterns (exactly what :mod:`graphc.ops.nn` builds):

* softmax:     ``divide(E, reduce_sum(E, (a,), keepdims))`` with
  ``E = exp(subtract(X, stop_gradient(reduce_max(X, (a,), keepdims))))`` -> ``Softmax(X, a)``
* log_softmax: ``subtract(S, log(reduce_sum(exp(S), (a,), keepdims)))`` with
  ``S = subtract(X, stop_gradient(reduce_max(X, (a,), keepdims)))`` -> ``LogSoftmax(X, a)``
* dense:       ``add(matmul(A, B), bias)`` with 2-D float A, B, a 1-D bias and the matmul
  used only there -> ``Gemm(A, B, bias)``
* normalization: graphc's ``batch_normalization`` composite ``x * inv + (beta - mean * inv)``
  with ``inv = rsqrt(var + eps) * gamma``: -> ``LayerNormalization`` when mean/var are x's
  statistics over trailing axes (layer_norm; opset >= 17), else ``BatchNormalization`` when
  every parameter is per channel along axis 1 (inference batch norm).
"""

from __future__ import annotations

import functools
from typing import Any, Optional

from graphc.backends.onnx_export_ops import (batch_norm, gemm_bias, layer_norm, log_softmax,
                                             softmax)
from graphc.graph import Node, Tensor
from graphc.program import Program

__all__ = ["find_rewrites"]


def _single_axis_reduce(t: Tensor, op: str) -> Optional[int]:
    node = t.node
    if node.op != op or not node.attrs.get("keepdims"):
        return None
    axes = node.attrs["axes"]
    return axes[0] if axes is not None and len(axes) == 1 else None


def _shifted_logits(s: Tensor) -> Optional[tuple[Tensor, int]]:
    """(X, axis) if ``s`` is ``X - stop_gradient(reduce_max(X, axis, keepdims=True))``."""
    if s.node.op != "subtract":
        return None
    x, sg = s.node.inputs
    if sg.node.op != "stop_gradient":
        return None
    m = sg.node.inputs[0]
    axis = _single_axis_reduce(m, "reduce_max")
    if axis is None or not _same(m.node.inputs[0], x):
        return None
    return x, axis


def _same(a: Tensor, b: Tensor) -> bool:
    return a.node is b.node and a.index == b.index


def _softmax(node: Node) -> Optional[tuple[Any, list[Tensor]]]:
    e, rs = node.inputs
    axis = _single_axis_reduce(rs, "reduce_sum")
    if axis is None or not _same(rs.node.inputs[0], e) or e.node.op != "exp":
        return None
    found = _shifted_logits(e.node.inputs[0])
    if found is None or found[1] != axis:
        return None
    return functools.partial(softmax, axis=axis), [found[0]]


def _log_softmax(node: Node) -> Optional[tuple[Any, list[Tensor]]]:
    s, lg = node.inputs
    found = _shifted_logits(s)
    if found is None or lg.node.op != "log":
        return None
    rs = lg.node.inputs[0]
    axis = _single_axis_reduce(rs, "reduce_sum")
    ex = rs.node.inputs[0] if axis is not None else None
    if ex is None or ex.node.op != "exp" or not _same(ex.node.inputs[0], s) or \
            axis != found[1]:
        return None
    return functools.partial(log_softmax, axis=axis), [found[0]]


def _dense(node: Node, consumers: dict[int, int], fetched: set[int]) -> Optional[tuple]:
    for mm_t, bias in (node.inputs, node.inputs[::-1]):
        mm = mm_t.node
        if mm.op != "matmul" or consumers.get(mm.id, 0) != 1 or mm.id in fetched:
            continue
        a, b = mm.inputs
        if a.ndim == 2 and b.ndim == 2 and a.dtype.is_floating and bias.ndim == 1 \
                and node.outputs[0].shape == mm_t.shape:
            return gemm_bias, [a, b, bias]
    return None


def _rsqrt_eps(inv: Tensor) -> Optional[tuple[Tensor, float, Optional[Tensor]]]:
    """(VAR, eps, GAMMA or None) if ``inv`` is ``rsqrt(VAR + eps) [* GAMMA]``."""
    gamma = None
    if inv.node.op == "multiply":
        inv, gamma = inv.node.inputs
    if inv.node.op != "rsqrt" or inv.node.inputs[0].node.op != "add":
        return None
    var, eps = inv.node.inputs[0].node.inputs
    if eps.node.op != "constant" or eps.node.attrs["value"].array.size != 1:
        return None
    return var, float(eps.node.attrs["value"].array.reshape(-1)[0]), gamma


def _normalization(node: Node, opset: int) -> Optional[tuple]:
    """``x * inv + (beta - mean * inv)`` (graphc's batch_normalization, which layer_norm
    uses too) as ``LayerNormalization`` (statistics of x over trailing axes, opset >= 17) or
    ``BatchNormalization`` (per-channel statistics along axis 1, inference form)."""
    xm, shift = node.inputs
    if xm.node.op != "multiply":
        return None
    x, inv = xm.node.inputs
    found = _rsqrt_eps(inv)
    if found is None or x.ndim is None or x.ndim < 2:
        return None
    var, eps, gamma = found
    if shift.node.op == "subtract":
        beta, m = shift.node.inputs
    elif shift.node.op == "multiply":
        beta, m = None, shift
    else:
        return None
    if m.node.op != "multiply" or not _same(m.node.inputs[1], inv):
        return None
    mean = m.node.inputs[0]
    if beta is None:
        if mean.node.op != "negative":
            return None
        mean = mean.node.inputs[0]
    if (mean.node.op == "reduce_mean" and _same(mean.node.inputs[0], x)
            and var.node.op == "reduce_mean" and var.node.inputs[0].node.op == "square"):
        centered = var.node.inputs[0].node.inputs[0]
        axes = mean.node.attrs["axes"]
        if (centered.node.op != "subtract" or not _same(centered.node.inputs[0], x)
                or not _same(centered.node.inputs[1], mean) or var.node.attrs["axes"] != axes
                or gamma is None or opset < 17 or axes is None
                or tuple(axes) != tuple(range(axes[0], x.ndim))):
            return None
        tail = x.shape[axes[0]:]
        if any(p is not None and p.shape != tail for p in (gamma, beta)):
            return None
        return functools.partial(layer_norm, axis=axes[0], eps=eps, has_beta=beta is not None), \
            [x, gamma] + ([beta] if beta is not None else [])
    channels = x.shape[1]
    want = (1, channels) + (1,) * (x.ndim - 2)
    params = [gamma, beta, mean, var]
    for p in params:
        if p is None:
            continue
        shape = p.shape
        if channels is None or shape is None or len(shape) > x.ndim or \
                (1,) * (x.ndim - len(shape)) + tuple(shape) != want:
            return None
    return functools.partial(batch_norm, eps=eps, channels=channels,
                             present=tuple(p is not None for p in params)), \
        [x] + [p for p in params if p is not None]


def find_rewrites(program: Program, opset: int = 17) -> dict[int, tuple[Any, list[Tensor]]]:
    """The pattern rewrites of ``program``'s nodes (see the module doc)."""
    consumers: dict[int, int] = {}
    for node in program.nodes:
        for t in node.inputs:
            consumers[t.node.id] = consumers.get(t.node.id, 0) + 1
    fetched = {t.node.id for t in program.fetches} | {t.node.id for t in program.writes.values()}
    rewrites: dict[int, tuple[Any, list[Tensor]]] = {}
    for node in program.nodes:
        found = None
        if node.op == "divide":
            found = _softmax(node)
        elif node.op == "subtract":
            found = _log_softmax(node)
        elif node.op == "add":
            found = _dense(node, consumers, fetched) or _normalization(node, opset)
        if found is not None:
            rewrites[node.id] = found
    return rewrites
