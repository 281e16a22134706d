"""Max pooling kernels for the cpu target (NCHW), written once as plain Numba functions.

NumPy's reference reduces a strided window view (``windows(...).max(axis=(4, 5))``), which
the LeNet benchmark's profile showed to dominate its step; these loops read each input
cell a few times from cache instead. Semantics are the reference's: padded cells are
``-inf``, NaN propagates, and the gradient goes to each window's *first* maximum in
row-major order. Geometry (pads, output size) comes from the op's own helpers.

Unpadded 2x2 windows with strides 2 (LeNet's) run the straight-line kernels of
:mod:`.pool_2x2` instead (3.5x / 4.5x faster forward / gradient than the loops below,
which keep every other window, stride and padding); the gradient on Numba's threads for
big inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from .kernels import Alloc, by_shapes, lower
from .pool_2x2 import maxpool2x2_backward, maxpool2x2_backward_par, maxpool2x2_forward
from .threads import PARALLEL_LOCK, choose_threading_layer

#: Input cells below which the 2x2 gradient runs on one thread. At 2 threads it measured
#: 1.9x faster on (32, 32, 64, 64) (4.2M cells) but 15% slower on LeNet's (64, 6, 28, 28)
#: (301k): waking the pool costs more there. The forward pass, memory-bound, never gained.
PARALLEL_MIN_ELEMENTS = 1 << 20

__all__ = ["maxpool_backward", "maxpool_forward", "pool_geometry"]


@numba.njit(cache=True, nogil=True)
def maxpool_forward(xp, out, kh, kw, sh, sw):  # pragma: no cover - compiled
    """``out[n, c, i, j]`` = max of the (kh, kw) window of the padded input at (i*sh, j*sw).

    The window offsets (a, b) are the outer loops and the output row the inner one, with a
    branch-free select: measured 8x faster than a tiny (a, b) loop per output cell (and
    faster than 1-D row views, whose reference counting costs more than they save). A NaN
    replaces the running max and is never replaced, as in the reference."""
    n_, c_, ho, wo = out.shape
    for n in range(n_):
        for c in range(c_):
            for i in range(ho):
                for j in range(wo):
                    out[n, c, i, j] = xp[n, c, i * sh, j * sw]
                for a in range(kh):
                    for b in range(kw):
                        for j in range(wo):
                            v = xp[n, c, i * sh + a, j * sw + b]
                            m = out[n, c, i, j]
                            out[n, c, i, j] = v if (v > m or v != v) else m


@numba.njit(cache=True, nogil=True)
def maxpool_backward(xp, g, dxp, kh, kw, sh, sw):  # pragma: no cover - compiled
    """Add ``g[n, c, i, j]`` to ``dxp`` at its window's first maximum (``dxp`` zeroed).

    As in :func:`maxpool_forward`, one output row at a time with the window offsets
    outside: the running max and its offset (a, b) live in row buffers allocated once.
    (1.8 ms on (64, 6, 28, 28) at one thread: the argmax selects compile to branches that
    random data mispredicts; :mod:`.pool_2x2` shows the branch-free way for 2x2 windows.)"""
    n_, c_, ho, wo = g.shape
    mrow = np.empty(wo, xp.dtype)
    arow = np.empty(wo, np.int64)
    brow = np.empty(wo, np.int64)
    for n in range(n_):
        for c in range(c_):
            for i in range(ho):
                for j in range(wo):
                    mrow[j] = xp[n, c, i * sh, j * sw]
                    arow[j] = 0
                    brow[j] = 0
                for a in range(kh):
                    for b in range(kw):
                        for j in range(wo):
                            v = xp[n, c, i * sh + a, j * sw + b]
                            m = mrow[j]
                            take = (v > m) | ((v != v) & (m == m))
                            mrow[j] = v if take else m
                            arow[j] = a if take else arow[j]
                            brow[j] = b if take else brow[j]
                for j in range(wo):
                    dxp[n, c, i * sh + arow[j], j * sw + brow[j]] += g[n, c, i, j]


def pool_geometry(x: np.ndarray, node: Any) -> tuple:
    """(pads, (Ho, Wo)) of a 2-D pooling node over the run-time ``x`` (the op's own rule)."""
    from graphc.ops.pool import _geometry

    a = node.attrs
    return _geometry(x.shape, a["ksize"], a["strides"], a["padding"])


def _threads(x: np.ndarray) -> int:
    """Chunks for the 2x2 gradient over ``x``: Numba's pool size for big inputs, else 1."""
    threads = numba.config.NUMBA_NUM_THREADS
    return 1 if threads <= 1 or x.size < PARALLEL_MIN_ELEMENTS else threads


def _run_2x2(serial: Any, parallel: Any, x: np.ndarray, *args: np.ndarray) -> None:
    """``serial(x, *args)``, or ``parallel(x, *args, chunks)`` launched as :mod:`.threads`
    requires when ``x`` is big."""
    threads = _threads(x)
    if threads == 1:
        serial(x, *args)
        return
    choose_threading_layer()
    with PARALLEL_LOCK:
        parallel(x, *args, threads)


def _is_2x2(node: Any) -> bool:
    """2x2 windows with strides 2: :mod:`.pool_2x2`'s kernels apply when unpadded."""
    return tuple(node.attrs["ksize"]) == (2, 2) and tuple(node.attrs["strides"]) == (2, 2)


def _unpadded(pads: tuple) -> bool:
    return not any(p for pair in pads for p in pair)


def _pad(x: np.ndarray, pads: tuple) -> np.ndarray:
    if _unpadded(pads):
        return np.ascontiguousarray(x)
    return np.pad(x, ((0, 0), (0, 0)) + tuple(pads), constant_values=-np.inf)


@lower("max_pool2d")
def _max_pool2d(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    (kh, kw), (sh, sw) = node.attrs["ksize"], node.attrs["strides"]

    geometry = by_shapes(lambda args: pool_geometry(args[0], node))
    fast = _is_2x2(node)

    def run(args: list, alloc: Alloc) -> np.ndarray:
        (x,) = args
        pads, (ho, wo) = geometry(args)
        out = alloc((x.shape[0], x.shape[1], ho, wo), x.dtype)
        if fast and _unpadded(pads):
            maxpool2x2_forward(np.ascontiguousarray(x), out)
            return out
        maxpool_forward(_pad(x, pads), out, kh, kw, sh, sw)
        return out
    return run


@lower("max_pool2d_grad")
def _max_pool2d_grad(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    (kh, kw), (sh, sw) = node.attrs["ksize"], node.attrs["strides"]

    geometry = by_shapes(lambda args: pool_geometry(args[0], node))
    fast = _is_2x2(node)

    def run(args: list, alloc: Alloc) -> np.ndarray:
        x, g = args
        pads, _ = geometry(args)
        out = alloc(x.shape, x.dtype)
        if fast and _unpadded(pads):
            _run_2x2(maxpool2x2_backward, maxpool2x2_backward_par, np.ascontiguousarray(x),
                     np.ascontiguousarray(g), out)
            return out
        xp = _pad(x, pads)
        if xp.shape == x.shape:  # no padding: accumulate straight into the output
            out[...] = 0
            maxpool_backward(xp, np.ascontiguousarray(g), out, kh, kw, sh, sw)
            return out
        dxp = np.zeros(xp.shape, x.dtype)
        maxpool_backward(xp, np.ascontiguousarray(g), dxp, kh, kw, sh, sw)
        (pt, _pb), (pl, _pr) = pads
        h, w = x.shape[2:]
        out[...] = dxp[:, :, pt:pt + h, pl:pl + w]
        return out
    return run
