"""Max pooling kernels for the cpu target (NCHW), written once as plain Numba functions.

NumPy's reference reduces a strided window view (``windows(...).max(axis=(4, 5))``), which
the LeNet benchmark's profile showed to dominate its step; these loops read each input
cell a few times from cache instead. Semantics are the reference's: padded cells are
``-inf``, NaN propagates, and the gradient goes to each window's *first* maximum in
row-major order. Geometry (pads, output size) comes from the op's own helpers.
"""

from __future__ import annotations

from typing import Any, Callable

import numba
import numpy as np

from .kernels import Alloc, lower

__all__ = ["maxpool_forward", "maxpool_backward"]


@numba.njit(cache=True, nogil=True)
def maxpool_forward(xp, out, kh, kw, sh, sw):  # pragma: no cover - compiled
    """``out[n, c, i, j]`` = max of the (kh, kw) window of the padded input at (i*sh, j*sw)."""
    n_, c_, ho, wo = out.shape
    for n in range(n_):
        for c in range(c_):
            for i in range(ho):
                for j in range(wo):
                    m = xp[n, c, i * sh, j * sw]
                    for a in range(kh):
                        for b in range(kw):
                            v = xp[n, c, i * sh + a, j * sw + b]
                            if v > m or (v != v and m == m):
                                m = v
                    out[n, c, i, j] = m


@numba.njit(cache=True, nogil=True)
def maxpool_backward(xp, g, dxp, kh, kw, sh, sw):  # pragma: no cover - compiled
    """Add ``g[n, c, i, j]`` to ``dxp`` at its window's first maximum (``dxp`` zeroed)."""
    n_, c_, ho, wo = g.shape
    for n in range(n_):
        for c in range(c_):
            for i in range(ho):
                for j in range(wo):
                    m = xp[n, c, i * sh, j * sw]
                    ba, bb = 0, 0
                    for a in range(kh):
                        for b in range(kw):
                            v = xp[n, c, i * sh + a, j * sw + b]
                            if v > m or (v != v and m == m):
                                m, ba, bb = v, a, b
                    dxp[n, c, i * sh + ba, j * sw + bb] += g[n, c, i, j]


def _geometry(x: np.ndarray, node: Any) -> tuple:
    from graphc.ops.pool import _geometry

    a = node.attrs
    return _geometry(x.shape, a["ksize"], a["strides"], a["padding"])


def _pad(x: np.ndarray, pads: tuple) -> np.ndarray:
    if not any(p for pair in pads for p in pair):
        return np.ascontiguousarray(x)
    return np.pad(x, ((0, 0), (0, 0)) + tuple(pads), constant_values=-np.inf)


@lower("max_pool2d")
def _max_pool2d(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    (kh, kw), (sh, sw) = node.attrs["ksize"], node.attrs["strides"]

    def run(args: list, alloc: Alloc) -> np.ndarray:
        (x,) = args
        pads, (ho, wo) = _geometry(x, node)
        out = alloc((x.shape[0], x.shape[1], ho, wo), x.dtype)
        maxpool_forward(_pad(x, pads), out, kh, kw, sh, sw)
        return out
    return run


@lower("max_pool2d_grad")
def _max_pool2d_grad(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    (kh, kw), (sh, sw) = node.attrs["ksize"], node.attrs["strides"]

    def run(args: list, alloc: Alloc) -> np.ndarray:
        x, g = args
        pads, _ = _geometry(x, node)
        xp = _pad(x, pads)
        dxp = np.zeros(xp.shape, x.dtype)
        maxpool_backward(xp, np.ascontiguousarray(g), dxp, kh, kw, sh, sw)
        (pt, _pb), (pl, _pr) = pads
        h, w = x.shape[2:]
        out = alloc(x.shape, x.dtype)
        out[...] = dxp[:, :, pt:pt + h, pl:pl + w]
        return out
    return run
