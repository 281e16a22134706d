"""Reductions on the device: block tree reductions for reduce_sum/mean/max/min/prod and
sum_to_like.

One block per output element (grid-stride over outputs): its threads stride over the
reduced elements accumulating in float64, then combine their partials in shared memory by
halving (a tree: log2(threads) steps). Which input elements belong to an output is index
arithmetic over two (shape, strides) tuples, the kept dims and the reduced dims, so any set
of axes works without a transpose and a kernel is specialized on rank, not sizes.

Float dtypes only (an int64 sum in float64 could round); integer and empty reductions take
the host fallback (``run`` returns None).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numba

from .device import cuda, flat_offset, simulated, threads_per_block
from .kernels import Alloc, lower

__all__ = ["SUM", "MAX", "MIN", "PROD", "reduce_axes"]

SUM, MAX, MIN, PROD = 0, 1, 2, 3
_KERNELS: dict[tuple, Any] = {}


def _build(kind: int, threads: int) -> Any:
    init = {SUM: 0.0, MAX: -math.inf, MIN: math.inf, PROD: 1.0}[kind]

    @cuda.jit(device=True)
    def combine(x, y):  # noqa: ANN001, ANN202
        if kind == SUM:
            return x + y
        if kind == PROD:
            return x * y
        if kind == MAX:  # NaN wins, as in np.max
            return x if (x > y or x != x) else y
        return x if (x < y or x != x) else y

    @cuda.jit
    def tree_reduce(out, x, kshape, kstrides, rshape, rstrides, nred, scale):
        partial = cuda.shared.array(threads, numba.float64)
        tid = cuda.threadIdx.x
        o = cuda.blockIdx.x
        while o < out.shape[0]:
            base = flat_offset(o, kshape, kstrides)
            acc = init
            r = tid
            while r < nred:
                acc = combine(acc, numba.float64(x[base + flat_offset(r, rshape, rstrides)]))
                r += cuda.blockDim.x
            partial[tid] = acc
            cuda.syncthreads()
            s = threads // 2
            while s > 0:
                if tid < s:
                    partial[tid] = combine(partial[tid], partial[tid + s])
                cuda.syncthreads()
                s //= 2
            if tid == 0:
                out[o] = partial[0] * scale
            cuda.syncthreads()
            o += cuda.gridDim.x
    return tree_reduce


def _kernel(kind: int) -> Any:
    threads = threads_per_block()
    kernel = _KERNELS.get((kind, threads))
    if kernel is None:
        kernel = _KERNELS[(kind, threads)] = _build(kind, threads)
    return kernel


def reduce_axes(x: Any, axes: tuple, out: Any, kind: int, mean: bool = False) -> None:
    """Reduce the contiguous device array ``x`` over ``axes`` into ``out`` (the kept dims
    in order, any shape of that size)."""
    xs = tuple(x.shape)  # the simulator's shapes do not slice
    strides = [math.prod(xs[d + 1:]) for d in range(x.ndim)]
    kept = [d for d in range(x.ndim) if d not in axes]
    # Length-1 padding: an empty tuple has no element type for Numba to index.
    kshape = tuple(xs[d] for d in kept) or (1,)
    kstrides = tuple(strides[d] for d in kept) or (0,)
    rshape = tuple(xs[d] for d in axes) or (1,)
    rstrides = tuple(strides[d] for d in axes) or (0,)
    nred = math.prod(xs[d] for d in axes)
    scale = 1.0 / nred if mean else 1.0
    flat_out = out.reshape(out.size)
    blocks = max(1, min(out.size, 2 if simulated() else 65535))
    _kernel(kind)[blocks, threads_per_block()](flat_out, x.reshape(x.size), kshape, kstrides,
                                               rshape, rstrides, nred, scale)


def _reducer(kind: int, mean: bool) -> Callable[[Any], Callable]:
    def factory(node: Any) -> Callable[[list, Alloc, int], Any]:
        dtype = node.specs[0].dtype.np
        axes_attr, keepdims = node.attrs["axes"], node.attrs["keepdims"]

        def run(args: list, alloc: Alloc, step: int) -> Any:
            x = args[0]
            axes = tuple(range(x.ndim)) if axes_attr is None else \
                tuple(sorted(a % x.ndim for a in axes_attr)) if x.ndim else ()
            if dtype.kind != "f" or x.dtype != dtype or x.size == 0:
                return None
            xs = tuple(x.shape)
            shape = tuple(1 if d in axes else n for d, n in enumerate(xs)) if keepdims \
                else tuple(n for d, n in enumerate(xs) if d not in axes)
            out = alloc(shape, dtype)
            reduce_axes(x, axes, out, kind, mean)
            return out
        return run
    return factory


for _op, _kind, _mean in (("reduce_sum", SUM, False), ("reduce_mean", SUM, True),
                          ("reduce_max", MAX, False), ("reduce_min", MIN, False),
                          ("reduce_prod", PROD, False)):
    lower(_op)(_reducer(_kind, _mean))


@lower("sum_to_like")
def _sum_to_like(node: Any) -> Callable[[list, Alloc, int], Any]:
    """``g`` summed over the axes broadcasting added to ``like``'s shape (bias gradients)."""
    dtype = node.specs[0].dtype.np

    def run(args: list, alloc: Alloc, step: int) -> Any:
        g, like = args
        gs, ls = tuple(g.shape), tuple(like.shape)
        lead = g.ndim - like.ndim
        axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(ls)
                                          if d == 1 and gs[lead + i] != 1)
        if not axes:
            return g.reshape(ls)
        if dtype.kind != "f" or g.size == 0:
            return None
        out = alloc(ls, dtype)
        reduce_axes(g, axes, out, SUM)
        return out
    return run
