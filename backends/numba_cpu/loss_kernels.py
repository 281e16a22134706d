"""Softmax cross-entropy for the cpu target: one pass per row instead of NumPy's five
temporaries (max, shifted, exp, sum, take_along_axis).

``sparse_softmax_cross_entropy_with_logits(labels, logits)`` is ``logsumexp(row) -
row[label]`` per row of the logits viewed as (rows, classes), computed in float64 and
rounded once (the reference rounds each float32 step: results differ by float32 rounding
only). A label outside [0, classes) raises the reference's own FeedError, found by the
kernel and reported from Python. Its gradient, the primitive
``sparse_softmax_cross_entropy_grad`` = ``g * (softmax(logits) - one_hot)``, is one pass
per row as well.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numba
import numpy as np

from .kernels import Alloc, lower

__all__ = ["softmax_xent_rows", "softmax_xent_grad_rows"]


@numba.njit(cache=True, nogil=True)
def softmax_xent_rows(labels, logits, out):  # pragma: no cover - compiled
    """``out[r] = logsumexp(logits[r]) - logits[r, labels[r]]``; returns the first row
    whose label is out of range, or -1 (then ``out`` is complete)."""
    rows, k = logits.shape
    for r in range(rows):
        lab = labels[r]
        if lab < 0 or lab >= k:
            return r
        row = logits[r]
        m = row[0]
        for j in range(1, k):
            v = row[j]
            m = v if (v > m or v != v) else m
        s = 0.0
        for j in range(k):
            s += math.exp(np.float64(row[j]) - m)
        out[r] = math.log(s) - (np.float64(row[lab]) - m)
    return -1


@numba.njit(cache=True, nogil=True)
def softmax_xent_grad_rows(labels, logits, g, out):  # pragma: no cover - compiled
    """``out[r] = g[r] * (softmax(logits[r]) - one_hot(labels[r]))``; returns the first row
    whose label is out of range, or -1."""
    rows, k = logits.shape
    for r in range(rows):
        lab = labels[r]
        if lab < 0 or lab >= k:
            return r
        row, dst = logits[r], out[r]
        m = row[0]
        for j in range(1, k):
            v = row[j]
            m = v if (v > m or v != v) else m
        s = 0.0
        for j in range(k):
            e = math.exp(np.float64(row[j]) - m)
            dst[j] = e
            s += e
        scale = g[r] / s
        for j in range(k):
            dst[j] = dst[j] * scale
        dst[lab] -= g[r]
    return -1


@lower("sparse_softmax_cross_entropy_grad")
def _sparse_xent_grad(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    from graphc.op import get_op

    ref = get_op(node.op).ref
    if node.specs[0].dtype.name not in ("float32", "float64"):
        return lambda args, alloc: ref(*args)

    def run(args: list, alloc: Alloc) -> np.ndarray:
        labels, logits, g = args
        if logits.ndim == 0 or logits.shape[-1] == 0 or labels.shape != logits.shape[:-1] \
                or g.shape != labels.shape:
            return ref(labels, logits, g)  # degenerate or broadcast shapes: the reference
        out = alloc(logits.shape, logits.dtype)
        k = logits.shape[-1]
        bad = softmax_xent_grad_rows(np.ascontiguousarray(labels).reshape(-1),
                                     np.ascontiguousarray(logits).reshape(-1, k),
                                     np.ascontiguousarray(g).reshape(-1), out.reshape(-1, k))
        if bad >= 0:
            return ref(labels, logits, g)  # raises the reference's FeedError
        return out
    return run


@lower("sparse_softmax_cross_entropy_with_logits")
def _sparse_xent(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    from graphc.op import get_op

    ref = get_op(node.op).ref
    if node.specs[0].dtype.name not in ("float32", "float64"):
        return lambda args, alloc: ref(*args)

    def run(args: list, alloc: Alloc) -> np.ndarray:
        labels, logits = args
        if logits.ndim == 0 or logits.shape[-1] == 0 or labels.shape != logits.shape[:-1]:
            return ref(labels, logits)  # degenerate shapes: the reference's own behavior
        out = alloc(labels.shape, logits.dtype)
        k = logits.shape[-1]
        bad = softmax_xent_rows(np.ascontiguousarray(labels).reshape(-1),
                                np.ascontiguousarray(logits).reshape(-1, k), out.reshape(-1))
        if bad >= 0:
            return ref(labels, logits)  # raises the reference's FeedError
        return out
    return run
