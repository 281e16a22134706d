"""Average pooling kernels for the cpu target (NCHW): ``avg_pool2d`` and its gradient.

The reference pads the input, reads a strided window view and divides by each window's
count of real cells, with NumPy temporaries at every call (and the gradient loops over the
window cells with ``+=`` on strided slices). These loops read the input once, in place:
each window is clipped to the input, so padded cells are never read and the count is the
clipped window's area (the op guarantees a real cell in every window). Sums accumulate in
float64, so results differ from the reference's float32 sums by rounding only. Geometry
(pads, output size) comes from the op's own helpers; float16 and integer inputs run the
reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from .kernels import Alloc, by_shapes, lower, numba_float, ref_kernel, ref_of
from .pool_kernels import pool_geometry

__all__ = ["avgpool_backward", "avgpool_forward"]


@numba.njit(cache=True, nogil=True, inline="always")
def _span(k, size, stride, pad, window):  # pragma: no cover - compiled
    """The clipped [lo, hi) of output ``k``'s window along one axis."""
    lo = k * stride - pad
    return max(lo, 0), min(lo + window, size)


@numba.njit(cache=True, nogil=True)
def avgpool_forward(x, out, kh, kw, sh, sw, pt, pl):  # pragma: no cover - compiled
    """``out[n, c, i, j]`` = the mean of the real cells of the (kh, kw) window at
    (i*sh - pt, j*sw - pl) of ``x`` (N, C, H, W)."""
    n_, c_, h, w = x.shape
    ho, wo = out.shape[2], out.shape[3]
    for n in range(n_):
        for c in range(c_):
            for i in range(ho):
                r0, r1 = _span(i, h, sh, pt, kh)
                for j in range(wo):
                    s0, s1 = _span(j, w, sw, pl, kw)
                    acc = 0.0
                    for r in range(r0, r1):
                        for s in range(s0, s1):
                            acc += x[n, c, r, s]
                    out[n, c, i, j] = acc / max((r1 - r0) * (s1 - s0), 1)


@numba.njit(cache=True, nogil=True)
def avgpool_backward(g, dx, kh, kw, sh, sw, pt, pl):  # pragma: no cover - compiled
    """``dx`` (N, C, H, W) = each ``g[n, c, i, j]`` divided by its window's count and added
    to every real cell of the window (the adjoint of :func:`avgpool_forward`)."""
    n_, c_, h, w = dx.shape
    ho, wo = g.shape[2], g.shape[3]
    for n in range(n_):
        for c in range(c_):
            dx[n, c] = 0
            for i in range(ho):
                r0, r1 = _span(i, h, sh, pt, kh)
                for j in range(wo):
                    s0, s1 = _span(j, w, sw, pl, kw)
                    v = g[n, c, i, j] / max((r1 - r0) * (s1 - s0), 1)
                    for r in range(r0, r1):
                        for s in range(s0, s1):
                            dx[n, c, r, s] += v


def _lowering(node: Any, shape_of: int, kernel: Callable) -> Callable[[list, Alloc], Any]:
    """``run(args, alloc)``: ``kernel(args, alloc, pads, out_size, window, ref)`` with the
    geometry of ``args[shape_of]`` and window = (kh, kw, sh, sw); the reference for the
    dtypes the loops do not take."""
    if not numba_float(node):
        return ref_kernel(node)
    ref = ref_of(node)
    geometry = by_shapes(lambda args: pool_geometry(args[shape_of], node))
    window = (*node.attrs["ksize"], *node.attrs["strides"])
    return lambda args, alloc: kernel(args, alloc, *geometry(args), window, ref)


@lower("avg_pool2d")
def _avg_pool2d(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    def run(args: list, alloc: Alloc, pads: tuple, size: tuple, window: tuple,
            ref: Callable) -> np.ndarray:
        (x,) = args
        out = alloc((x.shape[0], x.shape[1], *size), x.dtype)
        avgpool_forward(np.ascontiguousarray(x), out, *window, pads[0][0], pads[1][0])
        return out
    return _lowering(node, 0, run)


@lower("avg_pool2d_grad")
def _avg_pool2d_grad(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    def run(args: list, alloc: Alloc, pads: tuple, size: tuple, window: tuple,
            ref: Callable) -> np.ndarray:
        g, like = args
        if tuple(g.shape[2:]) != tuple(size) or g.shape[:2] != like.shape[:2]:
            return ref(g, like)  # the reference's error (or broadcast)
        dx = alloc(like.shape, g.dtype)
        avgpool_backward(np.ascontiguousarray(g), dx, *window, pads[0][0], pads[1][0])
        return dx
    return _lowering(node, 1, run)
