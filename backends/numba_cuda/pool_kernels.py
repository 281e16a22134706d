"""Pooling on the device: ``max_pool2d``, ``max_pool2d_grad``, ``max_pool2d_grad_grad``,
``avg_pool2d``, ``avg_pool2d_grad``, and the N-d ``max_pool``, ``max_pool_grad``,
``max_pool_grad_grad``, ``max_pool_argmax``, ``avg_pool``, ``avg_pool_grad`` when they have
two spatial axes (they add dilations; 1-D and 3-D ones return None: host fallback).

The semantics are :mod:`graphc.ops.pool_nd`'s reference, to the letter:

* a max scans the window in row-major order with padded cells as ``-inf`` candidates: the
  winner is the first maximum, a NaN beats everything and the first NaN wins (as
  ``np.argmax``); a padded cell can win a window of ``-inf`` (the max is then ``-inf`` and
  no real cell receives that window's gradient; ``max_pool_argmax`` gives -1);
* ``max_pool_grad(x, g)``: each input cell sums ``g * [it is the window's first maximum]``
  over the windows that read it, *multiplied*, not selected, so an inf/NaN in ``g`` spreads
  NaN over its window as the reference's ``g * one_hot`` does; ``max_pool_grad_grad(x, h)``
  sums ``h * one_hot`` over each window's real cells;
* averages count the real cells only (``count_include_pad=False``; a window of padding
  only counts 1), and ``avg_pool_grad(g, like)`` spreads ``g / count`` over like's cells.

Two kernel shapes, each built from a device function: one thread per pooled value (the
window scan) and, for the gradients, :func:`.conv_kernels.gather_kernel`'s one thread per
input cell (no atomics: deterministic). The max gradient recomputes the argmax of each
window that reads its cell instead of storing argmaxes in a buffer: kh*kw reads per window
(cached), no scratch array and no second launch. Sums are float64; float32/float64 only
(other dtypes, empty inputs and shapes inference refuses return None: host fallback).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from graphc.backends.numba_cpu.kernels import by_shapes

from .conv_kernels import gather_kernel, run_spec, window
from .device import cuda, launch
from .kernels import Alloc, lower

__all__ = ["per_window_kernel"]


@cuda.jit(device=True)
def _first_max(x, plane, y0, x0, dims, win):  # noqa: ANN001, ANN202
    """(value, cell) of the window's first maximum: NaN first, padded cells -inf."""
    h, w, kh, kw, dh, dw = dims[2], dims[3], win[0], win[1], win[4], win[5]
    best = -math.inf
    cell = 0
    for a in range(kh):
        y = y0 + a * dh
        for b in range(kw):
            xx = x0 + b * dw
            v = -math.inf
            if 0 <= y < h and 0 <= xx < w:
                v = x[plane + y * w + xx]
            if v > best or (v != v and best == best):
                best = v
                cell = a * kw + b
    return best, cell


@cuda.jit(device=True)
def _count(y0, x0, dims, win):  # noqa: ANN001, ANN202
    """How many real cells the window holds (at least 1, as the reference counts)."""
    rows = 0
    for a in range(win[0]):
        if 0 <= y0 + a * win[4] < dims[2]:
            rows += 1
    cols = 0
    for b in range(win[1]):
        if 0 <= x0 + b * win[5] < dims[3]:
            cols += 1
    # Not max(): two-argument max/min fail to compile for CUDA in Numba >= 0.66
    # (numba/numba#10753).
    return rows * cols if rows * cols > 0 else 1


# -- one value per window: f(x, v, plane, y0, x0, dims, win) --------------------------------

@cuda.jit(device=True)
def _max(x, v, plane, y0, x0, dims, win):  # noqa: ANN001, ANN202
    return _first_max(x, plane, y0, x0, dims, win)[0]


@cuda.jit(device=True)
def _argmax(x, v, plane, y0, x0, dims, win):  # noqa: ANN001, ANN202
    cell = _first_max(x, plane, y0, x0, dims, win)[1]
    y = y0 + (cell // win[1]) * win[4]
    xx = x0 + (cell % win[1]) * win[5]
    if 0 <= y < dims[2] and 0 <= xx < dims[3]:
        return plane + y * dims[3] + xx
    return -1


@cuda.jit(device=True)
def _picked(x, h, plane, y0, x0, dims, win):  # noqa: ANN001, ANN202
    first = _first_max(x, plane, y0, x0, dims, win)[1]
    acc = 0.0
    for a in range(win[0]):
        y = y0 + a * win[4]
        for b in range(win[1]):
            xx = x0 + b * win[5]
            if 0 <= y < dims[2] and 0 <= xx < dims[3]:  # (padded h is 0: adds nothing)
                acc += h[plane + y * dims[3] + xx] * (1.0 if a * win[1] + b == first else 0.0)
    return acc


@cuda.jit(device=True)
def _mean(x, v, plane, y0, x0, dims, win):  # noqa: ANN001, ANN202
    acc = 0.0
    for a in range(win[0]):
        y = y0 + a * win[4]
        for b in range(win[1]):
            xx = x0 + b * win[5]
            if 0 <= y < dims[2] and 0 <= xx < dims[3]:
                acc += x[plane + y * dims[3] + xx]
    return acc / _count(y0, x0, dims, win)


def per_window_kernel(value: Any) -> Any:
    """A kernel ``(out, x, v, dims, win)`` with one thread per pooled cell ``out[n, c, i, j]``:
    the device function ``value(x, v, plane, y0, x0, dims, win)`` of its window, whose
    top-left cell is ``(y0, x0)`` (may be padding) in the plane at flat offset ``plane``."""
    @cuda.jit
    def per_window(out, x, v, dims, win):
        _, _, h, w, ho, wo = dims
        sh, sw, pt, pl = win[2], win[3], win[6], win[7]
        i = cuda.grid(1)
        while i < out.shape[0]:
            out[i] = value(x, v, (i // (ho * wo)) * h * w, ((i // wo) % ho) * sh - pt,
                           (i % wo) * sw - pl, dims, win)
            i += cuda.gridsize(1)
    return per_window


# -- one value per input cell: term(x, v, nc, oi, oj, cell, dims, win) ------------------------

@cuda.jit(device=True)
def _routed(x, g, nc, oi, oj, cell, dims, win):  # noqa: ANN001, ANN202
    h, w, ho, wo = dims[2], dims[3], dims[4], dims[5]
    first = _first_max(x, nc * h * w, oi * win[2] - win[6], oj * win[3] - win[7], dims, win)[1]
    return g[(nc * ho + oi) * wo + oj] * (1.0 if first == cell else 0.0)


@cuda.jit(device=True)
def _spread(x, g, nc, oi, oj, cell, dims, win):  # noqa: ANN001, ANN202
    count = _count(oi * win[2] - win[6], oj * win[3] - win[7], dims, win)
    return g[(nc * dims[4] + oi) * dims[5] + oj] / count


def _lowering(kernel: Any, at: int, values_at: int, pooled: bool) -> Callable[[Any], Callable]:
    """The factory launching ``kernel(out, x, v, dims, win)`` with the windows over
    ``args[at]`` and ``v = args[values_at]``; the output is pooled-shaped or input-shaped."""
    def factory(node: Any) -> Callable[[list, Alloc, int], Any]:
        attrs, dtype = node.attrs, node.specs[0].dtype.np

        def compute(args: list) -> Any:
            if run_spec(node, args) is None:
                return None
            return window(tuple(args[at].shape), attrs["ksize"], attrs["strides"],
                          attrs.get("dilations", (1, 1)), attrs["padding"])
        geometry = by_shapes(compute)

        def run(args: list, alloc: Alloc, step: int) -> Any:
            geo = geometry(args)
            if geo is None:
                return None
            n, c, h, w, ho, wo = geo.dims
            out = alloc((n, c, ho, wo) if pooled else (n, c, h, w), dtype)
            x, v = args[at], args[values_at]
            blocks, threads = launch(out.size)
            kernel[blocks, threads](out.reshape(out.size), x.reshape(x.size),
                                    v.reshape(v.size), geo.dims, geo.win)
            return out
        return run
    return factory


# op names (2-D, N-d) -> (kernel, windowed input, values input, pooled output)
_OPS = {
    ("max_pool2d", "max_pool"): (per_window_kernel(_max), 0, 0, True),
    ("avg_pool2d", "avg_pool"): (per_window_kernel(_mean), 0, 0, True),
    ("max_pool2d_grad_grad", "max_pool_grad_grad"): (per_window_kernel(_picked), 0, 1, True),
    ("max_pool_argmax",): (per_window_kernel(_argmax), 0, 0, True),
    ("max_pool2d_grad", "max_pool_grad"): (gather_kernel(_routed), 0, 1, False),
    ("avg_pool2d_grad", "avg_pool_grad"): (gather_kernel(_spread), 1, 0, False),
}
for _names, _how in _OPS.items():
    for _op in _names:
        lower(_op)(_lowering(*_how))
