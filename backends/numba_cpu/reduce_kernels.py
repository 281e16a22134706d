"""Reductions and the inverses of broadcasting for the cpu target.

Backward graphs are full of them (bias gradients are ``sum_to_like``, a mean's gradient is
``broadcast_like``), and NumPy's versions allocate a result, and for ``np.sum(axis=...)``
over several axes also a temporary, at every call. Every supported case is viewed as a
3-D array ``(A, B, C)`` reduced over ``A`` and ``C`` to ``(B,)`` (leading axes, trailing
axes, or both, as a conv bias's (N, C, H, W) -> (C, 1, 1)); a reduction whose kept axes are
not one contiguous run runs the reference instead. One Numba kernel per dtype serves
sum and mean, another max and min, written into the step's persistent buffer.

Sums accumulate in float64 (NumPy sums float32 pairwise in float32): the result differs
from the reference by float32 rounding only, and is the more accurate. max/min propagate
NaN as NumPy does. Only float32/float64 take the kernel; other dtypes run the reference.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numba
import numpy as np

from .kernels import Alloc, Scratch, lower, numba_float, ref_kernel, ref_of

__all__ = ["arg_extreme3", "extreme3", "reduced_axes", "split_axes", "sum3"]

SUM, MAX, MIN = 0, 1, 2


# 'reassoc' only (not full fastmath, which would assume no NaN): lets LLVM vectorize the
# float64 sums; the accumulation order is then not sequential, which only matters at
# float64 rounding. Sums and max/min are separate kernels because each compiles only when
# a graph uses it: one kernel serving all three took 0.44 s to compile on an empty cache,
# the sums alone 0.22 s (a training step has sums only: bias gradients, means).
@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def sum3(x, out, acc, scale):  # pragma: no cover - compiled
    """``out[b]`` = ``scale`` * the sum of ``x[:, b, :]`` for a C-contiguous ``x`` (A, B,
    C), read once, in memory order. ``acc``: a float64 scratch array of B elements (the
    caller's: np.zeros here took 0.44 s of this kernel's first compile on a machine).
    Indexes with loop counters only, no row views (each view costs a reference count),
    and when C is 1 (a bias gradient) the inner loop runs over B, where it vectorizes."""
    a_, b_, c_ = x.shape
    for b in range(b_):
        acc[b] = 0.0
    for a in range(a_):
        if c_ == 1:
            for b in range(b_):
                acc[b] += x[a, b, 0]
            continue
        for b in range(b_):
            s = 0.0
            for c in range(c_):
                s += x[a, b, c]
            acc[b] += s
    for b in range(b_):
        out[b] = acc[b] * scale


@numba.njit(cache=True, nogil=True)
def extreme3(x, out, largest):  # pragma: no cover - compiled
    """``out[b]`` = the max (``largest``) or min of ``x[:, b, :]`` (A >= 1, C >= 1: the
    caller never passes an empty ``x``), read in memory order. A NaN, once taken, is never
    replaced (as np.max)."""
    a_, b_, c_ = x.shape
    for b in range(b_):
        out[b] = x[0, b, 0]
    for a in range(a_):
        for b in range(b_):
            m = out[b]
            for c in range(c_):
                v = x[a, b, c]
                if largest:
                    m = v if (v > m or v != v) else m
                else:
                    m = v if (v < m or v != v) else m
            out[b] = m


@numba.njit(cache=True, nogil=True)
def arg_extreme3(x, out, largest):  # pragma: no cover - compiled
    """``out[a*C + c]`` = the index along B of the max (``largest``) or min of
    ``x[a, :, c]`` for ``x`` (A, B, C) with B >= 1: the first on ties, the first NaN if
    any (as np.argmax and np.argmin)."""
    a_, b_, c_ = x.shape
    for a in range(a_):
        for c in range(c_):
            m, k = x[a, 0, c], 0
            if m == m:  # noqa: PLR0124 (not NaN)
                for b in range(1, b_):
                    v = x[a, b, c]
                    if v != v:  # noqa: PLR0124 (NaN)
                        k = b
                        break
                    if (v > m) if largest else (v < m):
                        m, k = v, b
            out[a * c_ + c] = k


def split_axes(shape: tuple, reduced: set[int]) -> Optional[tuple[int, int, int]]:
    """``(A, B, C)`` when the axes of ``shape`` not in ``reduced`` form one contiguous run
    (size-1 axes may go either way), else None."""
    # (math.prod, not np.prod: this runs at every step, and np.prod cost ~10 us a call)
    kept = [i for i, d in enumerate(shape) if i not in reduced and d != 1]
    if not kept:
        return math.prod(shape), 1, 1
    lo, hi = kept[0], kept[-1] + 1
    for i in range(lo, hi):
        if i in reduced and shape[i] != 1:
            return None
    return math.prod(shape[:lo]), math.prod(shape[lo:hi]), math.prod(shape[hi:])


def reduced_axes(axes: Optional[Sequence[int]], rank: int) -> set[int]:
    """The positions a reduction with the ``axes`` attribute (None: all) reduces."""
    return set(range(rank)) if axes is None else {ax % rank for ax in axes} if rank \
        else set()


def _run_reduce(x: np.ndarray, reduced: set[int], out_shape: tuple, kind: int, mean: bool,
                alloc: Alloc, scratch: Scratch, fallback: Callable[[], np.ndarray]
                ) -> np.ndarray:
    split = split_axes(x.shape, reduced)
    if split is None or (kind != SUM and x.size == 0):
        return fallback()  # an awkward axis pattern, or NumPy's error for an empty max
    a, b, c = split
    count = a * c
    scale = (1.0 / count if count else np.nan) if mean else 1.0
    out = alloc(out_shape, x.dtype)
    x3 = np.ascontiguousarray(x).reshape(a, b, c)
    if kind == SUM:
        sum3(x3, out.reshape(b), scratch.get("acc", (b,), np.float64), scale)
    else:
        extreme3(x3, out.reshape(b), kind == MAX)
    return out


def _make_reduce(op: str, kind: int, mean: bool) -> None:
    @lower(op)
    def factory(node: Any) -> Callable[[list, Alloc], np.ndarray]:
        if not numba_float(node):
            return ref_kernel(node)
        ref, scratch = ref_of(node), Scratch()
        axes, keepdims = node.attrs["axes"], node.attrs["keepdims"]

        def run(args: list, alloc: Alloc) -> np.ndarray:
            (x,) = args
            reduced = reduced_axes(axes, x.ndim)
            if keepdims:
                shape = tuple(1 if i in reduced else d for i, d in enumerate(x.shape))
            else:
                shape = tuple(d for i, d in enumerate(x.shape) if i not in reduced)
            return _run_reduce(x, reduced, shape, kind, mean, alloc, scratch, lambda: ref(x))
        return run


for _op, _kind, _mean in (("reduce_sum", SUM, False), ("reduce_mean", SUM, True),
                          ("reduce_max", MAX, False), ("reduce_min", MIN, False)):
    _make_reduce(_op, _kind, _mean)


@lower("sum_to_like")
def _sum_to_like(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    """The axes broadcasting added (leading ones, and 1s of ``like`` that ``g`` expanded)."""
    if not numba_float(node):
        return ref_kernel(node)
    ref, scratch = ref_of(node), Scratch()

    def run(args: list, alloc: Alloc) -> np.ndarray:
        g, like = args
        lead = g.ndim - like.ndim
        reduced = set(range(lead)) | {lead + i for i, d in enumerate(like.shape)
                                      if d == 1 and g.shape[lead + i] != 1}
        if not reduced:
            return ref(g, like)  # a reshape: no work
        return _run_reduce(g, reduced, like.shape, SUM, False, alloc, scratch,
                           lambda: ref(g, like))
    return run


@lower("broadcast_like")
def _broadcast_like(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    """``a`` (with ``axes`` re-inserted) copied into a persistent buffer of like's shape."""
    axes = node.attrs["axes"]

    def run(args: list, alloc: Alloc) -> np.ndarray:
        a, like = args
        out = alloc(like.shape, a.dtype)
        np.copyto(out, np.expand_dims(a, axes) if axes else a)
        return out
    return run


@lower("fill_like")
def _fill_like(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    """``value`` written into a persistent buffer of like's run-time shape (refilled every
    run: a later kernel may have reused the buffer in place)."""
    value = node.attrs["value"].array

    def run(args: list, alloc: Alloc) -> np.ndarray:
        out = alloc(args[0].shape, value.dtype)
        out.fill(value)
        return out
    return run
