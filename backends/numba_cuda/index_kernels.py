"""Gathers, scatters and index reductions on the device: ``gather``, ``scatter_add_like``
(gather's gradient, the embeddings' too), ``argmax`` and ``argmin``.

* ``gather``: one thread per output element, ``params`` viewed as (outer, d, inner) and
  the output as (outer, n_indices, inner). An index outside ``[0, d)`` (the reference
  accepts no negative ones) raises a flag in a one-element device array; the host reads it
  back (4 bytes) and, when set, runs the reference, which raises its IndexError naming
  the index, as loss_kernels.py does for labels.
* ``scatter_add_like``: deterministic and equal to the reference bit for bit, without
  atomics: ``np.add.at`` adds the updates of a row in index order, and float atomics would
  add them in whatever order the threads arrive (results changing in the last bits from
  run to run). The indices (small next to ``g``) come to the host, which checks them
  (the reference's error for a bad one), sorts them stably and uploads a row table: the
  order of the updates, the distinct rows and where each row's updates start. Then one
  thread per (distinct row, column) element sums that row's updates in index order, into
  zeros. float32/float64 only.
* ``argmax``/``argmin``: a block tree reduction of (value, index) pairs per output element
  (as reduce_kernels.py, in the input's own dtype so that integer ties stay exact), under
  NumPy's rules: the first index on ties, and the first NaN when there is one. Kernels are
  built per (kind, dtype) on first use. bool and float16 inputs, and empty reduced axes
  (the reference raises), run the reference.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numba
import numpy as np

from .copy_kernels import c_strides, fill
from .device import cuda, flat_offset, launch, simulated, threads_per_block
from .kernels import Alloc, lower
from .scratch import Scratch

__all__: list[str] = []

Run = Callable[[list, Alloc, int], Any]


def _split_at(shape: tuple, axis: int) -> tuple[int, int, int]:
    """(outer, dim, inner): ``shape`` viewed as three axes around ``axis``."""
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


# -- gather -----------------------------------------------------------------------------------

@cuda.jit
def _gather(out, params, indices, d, inner, bad):
    i = cuda.grid(1)
    n_idx = indices.shape[0]
    while i < out.shape[0]:
        k = i % inner
        t = (i // inner) % n_idx
        o = i // (inner * n_idx)
        r = indices[t]
        if r < 0 or r >= d:
            bad[0] = 1
        else:
            out[i] = params[(o * d + r) * inner + k]
        i += cuda.gridsize(1)


@lower("gather")
def _gather_factory(node: Any) -> Run:
    axis, dtype = node.attrs["axis"], node.specs[0].dtype.np
    clear = np.zeros(1, np.int32)
    flags: list = []  # the node's bad-index flag, uploaded once, cleared when raised

    def run(args: list, alloc: Alloc, step: int) -> Optional[Any]:
        params, indices = args
        ps = tuple(params.shape)
        if params.dtype != dtype or not -len(ps) <= axis < len(ps):
            return None
        a = axis % len(ps)
        outer, d, inner = _split_at(ps, a)
        out = alloc(ps[:a] + tuple(indices.shape) + ps[a + 1:], dtype)
        if out.size == 0:
            return out
        if not flags:
            flags.append(cuda.to_device(clear))
        bad = flags[0]
        blocks, threads = launch(out.size)
        _gather[blocks, threads](out.reshape(out.size), params.reshape(params.size),
                                 indices.reshape(indices.size), d, inner, bad)
        if bad.copy_to_host()[0]:
            bad.copy_to_device(clear)
            return None  # the reference raises its IndexError naming the index
        return out
    return run


# -- scatter_add_like -----------------------------------------------------------------------------

@cuda.jit
def _scatter_rows(out, g, table, n_idx, n_rows, d, inner, total):
    # table = [update order (n_idx) | distinct rows (n_rows) | row starts (n_rows + 1)];
    # out viewed as (outer, d, inner), g as (outer, n_idx, inner); total = outer * n_rows
    # * inner threads' worth of work.
    i = cuda.grid(1)
    while i < total:
        k = i % inner
        u = (i // inner) % n_rows
        o = i // (inner * n_rows)
        base = o * n_idx * inner + k
        lo, hi = table[n_idx + n_rows + u], table[n_idx + n_rows + u + 1]
        acc = g[base + table[lo] * inner]
        for t in range(lo + 1, hi):
            acc += g[base + table[t] * inner]
        out[(o * d + table[n_idx + u]) * inner + k] = acc
        i += cuda.gridsize(1)


def _row_table(indices: np.ndarray) -> tuple[np.ndarray, int]:
    """The packed row table of the flat ``indices`` and its number of distinct rows; padded
    to ``3 * len + 1`` entries, so that its device copy keeps one size per batch shape."""
    order = np.argsort(indices, kind="stable")  # a row's updates stay in index order
    rows, starts = np.unique(indices[order], return_index=True)
    table = np.zeros(3 * indices.size + 1, np.int64)
    n = indices.size
    table[:n], table[n:n + rows.size] = order, rows
    table[n + rows.size:n + 2 * rows.size + 1] = np.append(starts, n)
    return table, rows.size


@lower("scatter_add_like")
def _scatter_add_like(node: Any) -> Run:
    axis, dtype, scratch = node.attrs["axis"], node.specs[0].dtype.np, Scratch()

    def run(args: list, alloc: Alloc, step: int) -> Optional[Any]:
        g, indices, like = args
        ls = tuple(like.shape)
        if dtype not in (np.float32, np.float64) or g.dtype != dtype \
                or not -len(ls) <= axis < len(ls):
            return None
        a = axis % len(ls)
        outer, d, inner = _split_at(ls, a)
        if tuple(g.shape) != ls[:a] + tuple(indices.shape) + ls[a + 1:]:
            return None
        flat = indices.copy_to_host().reshape(-1) if indices.size else np.zeros(0, np.int64)
        if flat.size and (flat.min() < 0 or flat.max() >= d):
            return None  # the reference raises its IndexError naming the index
        out = alloc(ls, dtype)
        fill(out, 0)
        if flat.size == 0 or out.size == 0:
            return out
        table, n_rows = _row_table(flat)
        total = outer * n_rows * inner
        blocks, threads = launch(total)
        _scatter_rows[blocks, threads](out.reshape(out.size), g.reshape(g.size),
                                       scratch.upload("table", table), flat.size, n_rows, d,
                                       inner, total)
        return out
    return run


# -- argmax / argmin --------------------------------------------------------------------------

ARGMAX, ARGMIN = 0, 1
_KERNELS: dict[tuple, Any] = {}


def _build(kind: int, elem: Any, threads: int) -> Any:
    @cuda.jit(device=True)
    def better(v, i, w, j):  # noqa: ANN001, ANN202
        """Whether (w, j) wins over (v, i); index -1 is "nothing yet". A strict order on
        distinct indices, so partials combine in any grouping to NumPy's answer."""
        if j < 0:
            return False
        if i < 0:
            return True
        if v != v:  # a NaN is kept unless an earlier NaN comes
            return w != w and j < i
        if w != w:
            return True
        if (w > v) if kind == ARGMAX else (w < v):
            return True
        return w == v and j < i

    @cuda.jit
    def arg_reduce(out, x, kshape, kstrides, nred, rstride):
        vals = cuda.shared.array(threads, elem)
        idxs = cuda.shared.array(threads, numba.int64)
        tid = cuda.threadIdx.x
        o = cuda.blockIdx.x
        while o < out.shape[0]:
            base = flat_offset(o, kshape, kstrides)
            best_v = x[base]
            best_i = -1
            r = tid
            while r < nred:
                w = x[base + r * rstride]
                if better(best_v, best_i, w, r):
                    best_v = w
                    best_i = r
                r += cuda.blockDim.x
            vals[tid] = best_v
            idxs[tid] = best_i
            cuda.syncthreads()
            s = threads // 2
            while s > 0:
                if tid < s and better(vals[tid], idxs[tid], vals[tid + s], idxs[tid + s]):
                    vals[tid] = vals[tid + s]
                    idxs[tid] = idxs[tid + s]
                cuda.syncthreads()
                s //= 2
            if tid == 0:
                out[o] = idxs[0]
            cuda.syncthreads()
            o += cuda.gridDim.x
    return arg_reduce


def _kernel(kind: int, dtype: np.dtype) -> Any:
    key = (kind, dtype.name, threads_per_block())
    kernel = _KERNELS.get(key)
    if kernel is None:
        kernel = _KERNELS[key] = _build(kind, numba.from_dtype(dtype), key[2])
    return kernel


def _arg_reducer(kind: int) -> Callable[[Any], Run]:
    def factory(node: Any) -> Run:
        axis, dtype = node.attrs["axis"], node.specs[0].dtype.np

        def run(args: list, alloc: Alloc, step: int) -> Optional[Any]:
            x = args[0]
            xs = tuple(x.shape)
            if x.dtype.kind not in "fiu" or x.dtype == np.float16 \
                    or not -len(xs) <= axis < len(xs) or xs[axis % len(xs)] == 0:
                return None
            a = axis % len(xs)
            strides = c_strides(xs)
            kept = [d for d in range(len(xs)) if d != a]
            out = alloc(tuple(xs[d] for d in kept), dtype)
            if out.size == 0:
                return out
            blocks = max(1, min(out.size, 2 if simulated() else 65535))
            _kernel(kind, x.dtype)[blocks, threads_per_block()](
                out.reshape(out.size), x.reshape(x.size),
                tuple(xs[d] for d in kept) or (1,), tuple(strides[d] for d in kept) or (0,),
                xs[a], strides[a])
            return out
        return run
    return factory


lower("argmax")(_arg_reducer(ARGMAX))
lower("argmin")(_arg_reducer(ARGMIN))
