"""Classification on the device: ``sparse_softmax_cross_entropy_with_logits`` (one kernel:
max, log-sum-exp and the picked logit per row), its gradient
``sparse_softmax_cross_entropy_grad`` (one kernel: ``g * (softmax - one_hot)`` per row) and
``one_hot``.

A row's classes are reduced by one thread (class counts of classification heads are small;
rows are many). An out-of-range label must be an error, never a silently-zero loss: the
kernel raises a flag in a one-element device array, the host reads it back (4 bytes) and,
when set, runs the reference, which raises the FeedError naming the label.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .device import cuda, launch
from .kernels import Alloc, lower

__all__: list[str] = []


@cuda.jit(device=True)
def _row_stats(logits, base, depth):
    """The row's maximum and its sum of exp(logit - maximum)."""
    top = logits[base]
    for c in range(1, depth):
        v = logits[base + c]
        top = v if v > top else top  # (not max: numba/numba#10753)
    total = 0.0
    for c in range(depth):
        total += math.exp(logits[base + c] - top)
    return top, total


@cuda.jit
def _sparse_xent(out, labels, logits, depth, bad):
    row = cuda.grid(1)
    while row < out.shape[0]:
        base = row * depth
        top, total = _row_stats(logits, base, depth)
        label = labels[row]
        if label < 0 or label >= depth:
            bad[0] = 1
        else:
            out[row] = math.log(total) - (logits[base + label] - top)
        row += cuda.gridsize(1)


@cuda.jit
def _sparse_xent_grad(out, labels, logits, g, depth, bad):
    row = cuda.grid(1)
    while row < g.shape[0]:
        base = row * depth
        top, total = _row_stats(logits, base, depth)
        label = labels[row]
        if label < 0 or label >= depth:
            bad[0] = 1
        else:
            scale = g[row] / total
            for c in range(depth):
                out[base + c] = math.exp(logits[base + c] - top) * scale
            out[base + label] -= g[row]
        row += cuda.gridsize(1)


def _row_lowering(node: Any, kernel: Any, per_class: bool) -> Callable[[list, Alloc, int], Any]:
    """Launch ``kernel(out, labels, logits, [g,] depth, bad)`` over the rows of the logits;
    ``per_class``: the output has the logits' shape (else the labels'). None (the host
    reference runs) for other dtypes, empty or broadcast shapes and out-of-range labels."""
    dtype = node.specs[0].dtype.np

    def run(args: list, alloc: Alloc, step: int) -> Any:
        labels, logits, *rest = args
        shape = tuple(logits.shape)
        if dtype not in (np.float32, np.float64) or logits.size == 0 or shape[-1] == 0 \
                or any(tuple(g.shape) != shape[:-1] for g in rest):
            return None
        out = alloc(shape if per_class else shape[:-1], dtype)
        bad = cuda.to_device(np.zeros(1, np.int32))
        blocks, threads = launch(labels.size)
        kernel[blocks, threads](out.reshape(out.size), labels.reshape(labels.size),
                                logits.reshape(logits.size),
                                *[g.reshape(g.size) for g in rest], shape[-1], bad)
        if bad.copy_to_host()[0]:
            return None  # the host reference raises the FeedError naming the label
        return out
    return run


@lower("sparse_softmax_cross_entropy_with_logits")
def _xent(node: Any) -> Callable[[list, Alloc, int], Any]:
    return _row_lowering(node, _sparse_xent, per_class=False)


@lower("sparse_softmax_cross_entropy_grad")
def _xent_grad(node: Any) -> Callable[[list, Alloc, int], Any]:
    return _row_lowering(node, _sparse_xent_grad, per_class=True)


@cuda.jit
def _one_hot(out, indices, depth, inner, on, off):
    # out viewed as (outer, depth, inner); indices as (outer, inner).
    i = cuda.grid(1)
    while i < out.shape[0]:
        j = i % inner
        c = (i // inner) % depth
        o = i // (inner * depth)
        out[i] = on if indices[o * inner + j] == c else off
        i += cuda.gridsize(1)


@lower("one_hot")
def _one_hot_factory(node: Any) -> Callable[[list, Alloc, int], Any]:
    attrs = node.attrs
    depth, dtype = attrs["depth"], attrs["dtype"].np

    def run(args: list, alloc: Alloc, step: int) -> Any:
        idx = args[0]
        ishape = tuple(idx.shape)
        axis = attrs["axis"] % (len(ishape) + 1)
        shape = ishape[:axis] + (depth,) + ishape[axis:]
        out = alloc(shape, dtype)
        if out.size == 0:
            return out
        inner = math.prod(ishape[axis:])
        blocks, threads = launch(out.size)
        on, off = (np.asarray(getattr(v, "array", v), dtype)[()]  # a number or a Literal
                   for v in (attrs["on_value"], attrs["off_value"]))
        _one_hot[blocks, threads](out.reshape(out.size), idx.reshape(idx.size), depth, inner,
                                  on, off)
        return out
    return run
