"""Convolution kernels for the cpu target: Numba im2col/col2im around one BLAS GEMM per group.

The reference contracts a strided window view with ``np.tensordot``, which copies the
windows into a fresh temporary and the result into another at every call; the LeNet
profile showed that to be most of its step. Here the column matrix has the layout
``cols[(c*kh + a)*kw + b, n*P + i*Wo + j]`` (``P = Ho*Wo``), filled by a Numba loop into a
buffer that persists across runs, so that all three ops are single 2-D GEMMs per group
(``np.dot`` with ``out=``, rows of a group are contiguous):

* ``conv2d``:                 ``Y(O, N*P)   = W(O, C/G*K) @ cols``, then (O, N, P) -> (N, O, P);
* ``conv2d_backprop_input``:  ``dcols       = W.T @ G(O, N*P)``, then col2im (adds overlaps);
* ``conv2d_backprop_filter``: ``dW(O, C/G*K) = G(O, N*P) @ cols.T``.

The (N, O) <-> (O, N) reorders are skipped at batch 1. Geometry (SAME pads resolved at run
time, output sizes, the transposed output's size) comes from the op's own helpers, so
strides, padding, dilations and groups mean exactly what the reference means. float16
(which Numba cannot compute with on the CPU) runs the reference.
"""

from __future__ import annotations

from typing import Any, Callable

import numba
import numpy as np

from .kernels import Alloc, by_shapes, lower

__all__ = ["im2col", "col2im", "Scratch"]


@numba.njit(cache=True, nogil=True)
def im2col(xp, cols, kh, kw, sh, sw, dh, dw, ho, wo):  # pragma: no cover - compiled
    """Fill ``cols`` (C*kh*kw, N*ho*wo) with the windows of the *padded* input ``xp``.

    Every index is reached through 1-D views indexed by non-negative loop counters: Numba
    then emits no negative-index wraparound test and LLVM vectorizes the copy (measured
    2.5x faster than indexing ``xp[n, c, ih, j*sw + b*dw]`` directly)."""
    n_, c_ = xp.shape[0], xp.shape[1]
    p = ho * wo
    for c in range(c_):
        for a in range(kh):
            for b in range(kw):
                crow = cols[(c * kh + a) * kw + b]
                off = b * dw
                for n in range(n_):
                    for i in range(ho):
                        src = xp[n, c, i * sh + a * dh, off:]
                        dst = crow[n * p + i * wo:n * p + i * wo + wo]
                        if sw == 1:
                            for j in range(wo):
                                dst[j] = src[j]
                        else:
                            for j in range(wo):
                                dst[j] = src[j * sw]


@numba.njit(cache=True, nogil=True)
def col2im(dcols, dxp, kh, kw, sh, sw, dh, dw, ho, wo):  # pragma: no cover - compiled
    """``dxp`` (N, C, Hp, Wp, padded) = the adjoint of :func:`im2col` applied to
    ``dcols``: every column cell added to the cell it was read from."""
    n_, c_ = dxp.shape[0], dxp.shape[1]
    p = ho * wo
    dxp[...] = 0
    for n in range(n_):
        for c in range(c_):
            for a in range(kh):
                for b in range(kw):
                    crow = dcols[(c * kh + a) * kw + b]
                    off = b * dw
                    for i in range(ho):
                        dst = dxp[n, c, i * sh + a * dh, off:]
                        src = crow[n * p + i * wo:n * p + i * wo + wo]
                        if sw == 1:
                            for j in range(wo):
                                dst[j] += src[j]
                        else:
                            for j in range(wo):
                                dst[j * sw] += src[j]


class Scratch:
    """Work buffers of one kernel that persist across runs while their shape holds (the
    plan runs steps one at a time, so a kernel's scratch is never in use twice)."""

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def get(self, key: str, shape: tuple, dtype: Any, zeros: bool = False) -> np.ndarray:
        """A C-contiguous buffer of ``shape`` and ``dtype`` (contents undefined, or zeros
        when it is new and ``zeros`` is set)."""
        buf = self._bufs.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._bufs[key] = (np.zeros if zeros else np.empty)(shape, dtype)
        return buf

    def padded(self, x: np.ndarray, pads: tuple) -> np.ndarray:
        """``x`` (N, C, H, W) zero-padded by ``((top, bottom), (left, right))``: a buffer
        whose border is zeroed once, when it is made, and never written after."""
        (pt, pb), (pl, pr) = pads
        if not (pt or pb or pl or pr):
            return np.ascontiguousarray(x)
        n, c, h, w = x.shape
        xp = self.get("xp", (n, c, h + pt + pb, w + pl + pr), x.dtype, zeros=True)
        xp[:, :, pt:pt + h, pl:pl + w] = x
        return xp


def _attrs(node: Any) -> tuple:
    a = node.attrs
    return a["strides"], a["padding"], a["dilations"], a["groups"]


def _known(node: Any) -> bool:
    """True when every static shape of the node is fully known: run-time shapes then equal
    them and the reference's run-time re-inference cannot fail."""
    specs = [node.specs[0], *(s.specs[i] for s, i in node.inputs)]
    return all(s.shape is not None and None not in s.shape for s in specs)


def _ref_run(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    from graphc.op import get_op

    ref, attrs = get_op(node.op).ref, dict(node.attrs)
    return lambda args, alloc: ref(*args, **attrs)


def _to_on(src: np.ndarray, dst: np.ndarray, n: int, o: int, p: int) -> None:
    """Copy ``src`` (N, O, P) into ``dst`` laid out (O, N*P)."""
    np.copyto(dst.reshape(o, n, p), src.reshape(n, o, p).transpose(1, 0, 2))


def _as_on(g: np.ndarray, scratch: Scratch) -> np.ndarray:
    """``g`` (N, O, Ho, Wo) as the (O, N*P) matrix (a view at batch 1, else a copy)."""
    n, o, ho, wo = g.shape
    if n == 1 and g.flags.c_contiguous:
        return g.reshape(o, ho * wo)
    gt = scratch.get("g", (o, n * ho * wo), g.dtype)
    _to_on(g, gt, n, o, ho * wo)
    return gt


@lower("conv2d")
def _conv2d(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    """im2col + one GEMM per group; see the module docstring."""
    from graphc.ops.conv import _checked_at_run, _infer_conv, out_dim, resolve_pads

    if node.specs[0].dtype.name == "float16":
        return _ref_run(node)
    strides, padding, dil, groups = _attrs(node)
    known, scratch = _known(node), Scratch()

    def compute(args: list) -> tuple:
        x, w = args
        if not known:
            _checked_at_run("conv2d", _infer_conv, (x, w), strides=strides, padding=padding,
                            dilations=dil, groups=groups)
        kh, kw = w.shape[2:]
        pads = resolve_pads(padding, x.shape[2:], (kh, kw), strides, dil)
        return (pads, out_dim(x.shape[2], kh, strides[0], dil[0], pads, 0),
                out_dim(x.shape[3], kw, strides[1], dil[1], pads, 1))
    geometry = by_shapes(compute)

    def run(args: list, alloc: Alloc) -> np.ndarray:
        x, w = args
        pads, ho, wo = geometry(args)
        n, c = x.shape[:2]
        o, cg, kh, kw = w.shape
        p, k = ho * wo, cg * kh * kw
        cols = scratch.get("cols", (c * kh * kw, n * p), x.dtype)
        im2col(scratch.padded(x, pads), cols, kh, kw, strides[0], strides[1], dil[0], dil[1],
               ho, wo)
        y = alloc((n, o, ho, wo), x.dtype)
        w2 = np.ascontiguousarray(w).reshape(o, k)
        ym = y.reshape(o, p) if n == 1 else scratch.get("y", (o, n * p), x.dtype)
        og = o // groups
        for gi in range(groups):
            np.dot(w2[gi * og:(gi + 1) * og], cols[gi * k:(gi + 1) * k],
                   out=ym[gi * og:(gi + 1) * og])
        if n != 1:
            np.copyto(y.reshape(n, o, p), ym.reshape(o, n, p).transpose(1, 0, 2))
        return y
    return run


@lower("conv2d_backprop_input")
def _conv2d_backprop_input(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    """One GEMM per group into the column matrix, then col2im."""
    from graphc.ops.conv import _checked_at_run, _infer_bp_input, resolve_pads

    if node.specs[0].dtype.name == "float16":
        return _ref_run(node)
    strides, padding, dil, groups = _attrs(node)
    size = node.attrs["size"]
    known, scratch = _known(node), Scratch()
    static_hw = tuple(node.specs[0].shape[2:]) if known else None

    def compute(args: list) -> tuple:
        if known:
            h, wd = static_hw
        else:
            spec = _checked_at_run("conv2d_backprop_input", _infer_bp_input, args, size=size,
                                   strides=strides, padding=padding, dilations=dil,
                                   groups=groups)
            h, wd = spec.shape[2:]
        return (h, wd) + resolve_pads(padding, (h, wd), args[1].shape[2:], strides, dil)
    geometry = by_shapes(compute)

    def run(args: list, alloc: Alloc) -> np.ndarray:
        g, w = args[0], args[1]
        h, wd, (pt, pb), (pl, pr) = geometry(args)
        n, o, ho, wo = g.shape
        _, cg, kh, kw = w.shape
        k, og = cg * kh * kw, o // groups
        gt = _as_on(g, scratch)
        w2 = np.ascontiguousarray(w).reshape(o, k)
        dcols = scratch.get("cols", (groups * k, n * ho * wo), g.dtype)
        for gi in range(groups):
            np.dot(w2[gi * og:(gi + 1) * og].T, gt[gi * og:(gi + 1) * og],
                   out=dcols[gi * k:(gi + 1) * k])
        dx = alloc((n, groups * cg, h, wd), g.dtype)
        padded = pt or pb or pl or pr
        dxp = scratch.get("dxp", (n, groups * cg, h + pt + pb, wd + pl + pr), g.dtype) \
            if padded else dx
        col2im(dcols, dxp, kh, kw, strides[0], strides[1], dil[0], dil[1], ho, wo)
        if padded:
            dx[...] = dxp[:, :, pt:pt + h, pl:pl + wd]
        return dx
    return run


@lower("conv2d_backprop_filter")
def _conv2d_backprop_filter(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    """im2col of the input, then ``dW = G @ cols.T`` per group."""
    from graphc.ops.conv import _checked_at_run, _infer_bp_filter, resolve_pads

    if node.specs[0].dtype.name == "float16":
        return _ref_run(node)
    strides, padding, dil, groups = _attrs(node)
    known, scratch = _known(node), Scratch()

    def compute(args: list) -> tuple:
        if not known:
            _checked_at_run("conv2d_backprop_filter", _infer_bp_filter, args, strides=strides,
                            padding=padding, dilations=dil, groups=groups)
        return resolve_pads(padding, args[0].shape[2:], args[2].shape[2:], strides, dil)
    geometry = by_shapes(compute)

    def run(args: list, alloc: Alloc) -> np.ndarray:
        x, g, like = args
        pads = geometry(args)
        n, c = x.shape[:2]
        o, ho, wo = g.shape[1:]
        kh, kw = like.shape[2:]
        cg = c // groups
        k, og = cg * kh * kw, o // groups
        cols = scratch.get("cols", (c * kh * kw, n * ho * wo), x.dtype)
        im2col(scratch.padded(x, pads), cols, kh, kw, strides[0], strides[1], dil[0], dil[1],
               ho, wo)
        gt = _as_on(g, scratch)
        dw = alloc((o, cg, kh, kw), x.dtype)
        dw2 = dw.reshape(o, k)
        for gi in range(groups):
            np.dot(gt[gi * og:(gi + 1) * og], cols[gi * k:(gi + 1) * k].T,
                   out=dw2[gi * og:(gi + 1) * og])
        return dw
    return run
