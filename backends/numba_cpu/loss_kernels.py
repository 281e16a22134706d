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

from .kernels import Alloc, lower, numba_float, ref_kernel, ref_of

__all__ = ["softmax_xent_rows", "softmax_xent_grad_rows"]


@numba.njit(cache=True, nogil=True)
def _row_max(row):  # pragma: no cover - compiled
    """The row's maximum, NaN if it holds one (then the row's results are NaN, as NumPy's)."""
    m = row[0]
    for j in range(1, row.shape[0]):
        v = row[j]
        m = v if (v > m or v != v) else m
    return np.float64(m)


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
        m = _row_max(row)
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
        m = _row_max(row)
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


def _row_lowering(node: Any, kernel: Any, per_class: bool) -> Callable[[list, Alloc], np.ndarray]:
    """Run ``kernel(labels, logits, [g,] out)`` over the rows of the logits viewed as
    (rows, classes); ``per_class``: the output has the logits' shape (else the labels')."""
    if not numba_float(node):
        return ref_kernel(node)
    ref = ref_of(node)

    def run(args: list, alloc: Alloc) -> np.ndarray:
        labels, logits, *rest = args
        if logits.ndim == 0 or logits.shape[-1] == 0 or labels.shape != logits.shape[:-1] \
                or any(g.shape != labels.shape for g in rest):
            return ref(*args)  # degenerate or broadcast shapes: the reference's behavior
        k = logits.shape[-1]
        out = alloc(logits.shape if per_class else labels.shape, logits.dtype)
        flat = [np.ascontiguousarray(labels).reshape(-1),
                np.ascontiguousarray(logits).reshape(-1, k),
                *[np.ascontiguousarray(g).reshape(-1) for g in rest]]
        if kernel(*flat, out.reshape(-1, k) if per_class else out.reshape(-1)) >= 0:
            return ref(*args)  # a label out of range: the reference raises its FeedError
        return out
    return run


@lower("sparse_softmax_cross_entropy_grad")
def _sparse_xent_grad(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    return _row_lowering(node, softmax_xent_grad_rows, per_class=True)


@lower("sparse_softmax_cross_entropy_with_logits")
def _sparse_xent(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    return _row_lowering(node, softmax_xent_rows, per_class=False)
