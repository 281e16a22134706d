"""Convolution kernels for the cpu target: blocks of samples through one BLAS GEMM each.

The reference contracts a strided window view with ``np.tensordot``, which copies the
windows into a fresh temporary and the result into another at every call. Here a block of
``nb`` samples is moved by Numba loops (:mod:`.conv_loops`) into a column matrix that
persists across runs, and each op is one 2-D GEMM per block and group (``np.dot`` with
``out=``; NumPy's BLAS, which measured 1.6-2x faster on these small-M shapes than the
scipy BLAS that ``np.dot`` inside ``@njit`` calls):

* ``conv2d``:                 ``Y(O, nb*span)  = W(O, C/G*K) @ cols``, scattered to NCHW;
* ``conv2d_backprop_input``:  ``dcols          = W.T @ G(O, nb*span)``, then the adjoint fill;
* ``conv2d_backprop_filter``: ``dW(O, C/G*K)  += G(O, nb*span) @ cols.T``.

Why blocks (measured at 1 thread on LeNet's shapes, batch 64): the whole-batch column
matrix (5.7 MB for conv1) falls out of L2, and moving the (O, N, P) GEMM result back to
NCHW cost as much as the GEMM; a block's matrices stay in cache and go straight to NCHW.
Blocks of about 2 MB of columns were best (conv1 / conv2 forward 0.66 / 0.81 ms against
0.98 / 0.95 for the former whole-batch im2col, the input gradient 0.76 / 1.06 against
1.33 / 1.19; the filter gradient 10% faster); blocks of 2-4 samples lost 10-25% to the
Python loop. Strides 1 use the full-width layout (see :mod:`.conv_loops`); other strides
the compact one. Convolutions with few input taps (C*kh*kw <= :data:`DIRECT_MAX_TAPS`, such
as LeNet's first layer) run the direct loops of :mod:`.conv_direct` for the forward pass
and the filter gradient instead (there the GEMM's M and K are both tiny).
Geometry (SAME pads resolved at run time, output sizes, the transposed
output's size) comes from the op's own helpers, so strides, padding, dilations and groups
mean exactly what the reference means. float16 (which Numba cannot compute with on the
CPU) runs the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from .conv_direct import (
    direct_filter_grad,
    direct_filter_grad_par,
    direct_forward,
    direct_forward_par,
)
from .conv_loops import add_cols, crop_into, fill_cols, gather_g, scatter_out
from .kernels import Alloc, Scratch, by_shapes, lower, numba_float, ref_kernel
from .threads import PARALLEL_LOCK, choose_threading_layer

__all__ = [
    "BLOCK_ELEMENTS",
    "DIRECT_MAX_TAPS",
    "PARALLEL_MIN_MACS",
    "chunks",
    "layout",
    "use_direct",
]

#: Column-matrix elements per block (2 MB of float32): see the module docstring.
BLOCK_ELEMENTS = 1 << 19

#: The most input taps (C*kh*kw) for which the direct loops of :mod:`.conv_direct` run
#: instead of the GEMMs. One thread, batch 64, forward / filter gradient: 25 taps (LeNet's
#: conv1) 0.41 / 0.53 ms against 0.71 / 1.00; 9, 18 and 27 taps (3x3, 1-3 channels) as
#: fast to 1.6x faster; 150 taps (LeNet's conv2) 1.28 / 1.30 against 0.79 / 0.92.
DIRECT_MAX_TAPS = 32


def use_direct(taps: int, strides: tuple, groups: int) -> bool:
    """Whether a convolution with ``taps`` = C*kh*kw input taps runs the direct loops."""
    return taps <= DIRECT_MAX_TAPS and tuple(strides) == (1, 1) and groups == 1


#: Multiply-adds below which a direct kernel runs on one thread. On the shared 2-core
#: machine, 2 threads were 10-25% slower for LeNet's conv1 at batch 64 and 128 (8M and 15M)
#: and the whole LeNet benchmarks showed no gain, but 1.8x faster (best of 10; 1.2-1.4x in
#: the median) with 32 output channels on 64x64 (210M).
PARALLEL_MIN_MACS = 1 << 25


def chunks(n: int, macs: int) -> int:
    """How many threads a direct kernel over ``n`` samples and ``macs`` multiply-adds
    uses: Numba's pool size (NUMBA_NUM_THREADS), or 1 for small work."""
    threads = numba.config.NUMBA_NUM_THREADS
    return 1 if threads <= 1 or n < 2 or macs < PARALLEL_MIN_MACS else min(threads, n)


def _parallel(kernel: Callable, *args: Any) -> None:
    """Launch a ``parallel=True`` kernel as :mod:`.threads` requires."""
    choose_threading_layer()
    with PARALLEL_LOCK:
        kernel(*args)


def layout(n: int, k_rows: int, wp: int, ho: int, wo: int, strides: tuple) -> tuple:
    """(full, pitch, span, samples per block) of the column matrices (see
    :mod:`.conv_loops`) for ``n`` samples, ``k_rows`` matrix rows, padded input width
    ``wp`` and output (ho, wo): the full-width layout at strides 1, else the compact one."""
    full = tuple(strides) == (1, 1)
    pitch, span = (wp, (ho - 1) * wp + wo) if full else (wo, ho * wo)
    return full, pitch, span, max(1, min(n, BLOCK_ELEMENTS // max(1, k_rows * span)))


def _attrs(node: Any) -> tuple:
    a = node.attrs
    return a["strides"], a["padding"], a["dilations"], a["groups"]


def _known(node: Any) -> bool:
    """True when every static shape of the node is fully known: run-time shapes then equal
    them and the reference's run-time re-inference cannot fail."""
    specs = [node.specs[0], *(s.specs[i] for s, i in node.inputs)]
    return all(s.shape is not None and None not in s.shape for s in specs)


def _groups_dot(a: np.ndarray, b: np.ndarray, out: np.ndarray, groups: int,
                trans_b: bool = False) -> None:
    """``out = a @ b`` (``a @ b.T`` with ``trans_b``) group by group: each group is a slice
    of the rows of ``a``, ``b`` and ``out``."""
    if groups == 1:
        np.dot(a, b.T if trans_b else b, out=out)
        return
    ra, rb = a.shape[0] // groups, b.shape[0] // groups
    for gi in range(groups):
        bg = b[gi * rb:(gi + 1) * rb]
        np.dot(a[gi * ra:(gi + 1) * ra], bg.T if trans_b else bg,
               out=out[gi * ra:(gi + 1) * ra])


@lower("conv2d")
def _conv2d(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    """Per block: fill the columns, one GEMM per group, scatter to NCHW."""
    from graphc.ops.conv import _checked_at_run, _infer_conv, out_dim, resolve_pads

    if not numba_float(node):  # float16
        return ref_kernel(node)
    strides, padding, (dh, dw), groups = _attrs(node)
    (sh, sw), known, scratch = strides, _known(node), Scratch()

    def compute(args: list) -> tuple:
        x, w = args
        if not known:
            _checked_at_run("conv2d", _infer_conv, (x, w), strides=strides, padding=padding,
                            dilations=(dh, dw), groups=groups)
        kh, kw = w.shape[2:]
        pads = resolve_pads(padding, x.shape[2:], (kh, kw), strides, (dh, dw))
        ho = out_dim(x.shape[2], kh, sh, dh, pads, 0)
        wo = out_dim(x.shape[3], kw, sw, dw, pads, 1)
        wp = x.shape[3] + pads[1][0] + pads[1][1]
        direct = use_direct(x.shape[1] * kh * kw, strides, groups)
        return pads, ho, wo, direct, layout(x.shape[0], x.shape[1] * kh * kw, wp, ho, wo,
                                            strides)
    geometry = by_shapes(compute)

    def run(args: list, alloc: Alloc) -> np.ndarray:
        x, w = args
        pads, ho, wo, direct, (full, pitch, span, block) = geometry(args)
        n, rows = x.shape[0], x.shape[1] * w.shape[2] * w.shape[3]
        o, kh, kw = w.shape[0], w.shape[2], w.shape[3]
        xp = scratch.padded(x, pads)
        y = alloc((n, o, ho, wo), x.dtype)
        if direct:
            span = (ho - 1) * xp.shape[3] + wo
            threads = chunks(n, y.size * rows)
            acc = scratch.get("acc", (threads, 2 * span), x.dtype)  # (two channels' rows)
            if threads == 1:
                direct_forward(xp, np.ascontiguousarray(w), y, acc[0], dh, dw)
            else:
                _parallel(direct_forward_par, xp, np.ascontiguousarray(w), y, acc, dh, dw)
            return y
        w2 = np.ascontiguousarray(w).reshape(o, -1)
        cbuf = scratch.get("cols", (rows * block * span,), x.dtype)
        ybuf = scratch.get("y", (o * block * span,), x.dtype)
        for n0 in range(0, n, block):
            nb = min(block, n - n0)
            cols = cbuf[:rows * nb * span].reshape(rows, nb * span)
            yb = ybuf[:o * nb * span].reshape(o, nb * span)
            fill_cols(xp, n0, nb, cols, kh, kw, sh, sw, dh, dw, ho, wo, full, pitch, span)
            _groups_dot(w2, cols, yb, groups)
            scatter_out(yb, y, n0, nb, pitch, span)
        return y
    return run


@lower("conv2d_backprop_input")
def _conv2d_backprop_input(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    """Per block: gather the gradient, one GEMM per group, then the adjoint fill."""
    from graphc.ops.conv import _checked_at_run, _infer_bp_input, resolve_pads

    if not numba_float(node):  # float16
        return ref_kernel(node)
    strides, padding, (dh, dw), groups = _attrs(node)
    (sh, sw), size = strides, node.attrs["size"]
    known, scratch = _known(node), Scratch()
    static_hw = tuple(node.specs[0].shape[2:]) if known else None

    def compute(args: list) -> tuple:
        g, w = args[0], args[1]
        if known:
            h, wd = static_hw
        else:
            spec = _checked_at_run("conv2d_backprop_input", _infer_bp_input, args, size=size,
                                   strides=strides, padding=padding, dilations=(dh, dw),
                                   groups=groups)
            h, wd = spec.shape[2:]
        pads = resolve_pads(padding, (h, wd), w.shape[2:], strides, (dh, dw))
        rows = groups * w.shape[1] * w.shape[2] * w.shape[3]
        wp = wd + pads[1][0] + pads[1][1]
        return h, wd, pads, layout(g.shape[0], rows, wp, g.shape[2], g.shape[3], strides)
    geometry = by_shapes(compute)

    def run(args: list, alloc: Alloc) -> np.ndarray:
        g, w = np.ascontiguousarray(args[0]), args[1]
        h, wd, ((pt, pb), (pl, pr)), (full, pitch, span, block) = geometry(args)
        n, o, ho, wo = g.shape
        _, cg, kh, kw = w.shape
        c, k, og = groups * cg, cg * kh * kw, o // groups
        w2 = np.ascontiguousarray(w).reshape(o, k)
        wt = scratch.get("wt", (groups * k, og), g.dtype)
        for gi in range(groups):
            wt[gi * k:(gi + 1) * k] = w2[gi * og:(gi + 1) * og].T
        dx = alloc((n, c, h, wd), g.dtype)
        cbuf = scratch.get("cols", (groups * k * block * span,), g.dtype)
        gbuf = scratch.get("g", (o * block * span,), g.dtype)
        dxp = scratch.get("dxp", (block, c, h + pt + pb, wd + pl + pr), g.dtype)
        for n0 in range(0, n, block):
            nb = min(block, n - n0)
            dcols = cbuf[:groups * k * nb * span].reshape(groups * k, nb * span)
            gb = gbuf[:o * nb * span].reshape(o, nb * span)
            gather_g(g, gb, n0, nb, pitch, span)
            _groups_dot(wt, gb, dcols, groups)
            add_cols(dcols, dxp, nb, kh, kw, sh, sw, dh, dw, ho, wo, full, pitch, span)
            crop_into(dxp, dx, n0, nb, pt, pl)
        return dx
    return run


@lower("conv2d_backprop_filter")
def _conv2d_backprop_filter(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    """Per block: fill the columns and gather the gradient, ``dW += G @ cols.T`` per group."""
    from graphc.ops.conv import _checked_at_run, _infer_bp_filter, resolve_pads

    if not numba_float(node):  # float16
        return ref_kernel(node)
    strides, padding, (dh, dw), groups = _attrs(node)
    (sh, sw), known, scratch = strides, _known(node), Scratch()

    def compute(args: list) -> tuple:
        x, g, like = args
        if not known:
            _checked_at_run("conv2d_backprop_filter", _infer_bp_filter, args, strides=strides,
                            padding=padding, dilations=(dh, dw), groups=groups)
        pads = resolve_pads(padding, x.shape[2:], like.shape[2:], strides, (dh, dw))
        rows = x.shape[1] * like.shape[2] * like.shape[3]
        wp = x.shape[3] + pads[1][0] + pads[1][1]
        return pads, use_direct(rows, strides, groups), layout(x.shape[0], rows, wp, g.shape[2],
                                                               g.shape[3], strides)
    geometry = by_shapes(compute)

    def run(args: list, alloc: Alloc) -> np.ndarray:
        x, g, like = args
        pads, direct, (full, pitch, span, block) = geometry(args)
        g = np.ascontiguousarray(g)
        n, c, o, ho, wo = x.shape[0], x.shape[1], g.shape[1], g.shape[2], g.shape[3]
        kh, kw = like.shape[2:]
        rows = c * kh * kw
        xp = scratch.padded(x, pads)
        dwt = alloc((o, c // groups, kh, kw), x.dtype)
        if direct:
            span = (ho - 1) * xp.shape[3] + wo
            threads = chunks(n, g.size * rows)
            gbuf = scratch.get("gfull", (threads, o, span), x.dtype)
            if threads == 1:
                direct_filter_grad(xp, g, dwt, gbuf[0], dh, dw)
            else:
                parts = scratch.get("parts", (threads,) + dwt.shape, x.dtype)
                _parallel(direct_filter_grad_par, xp, g, dwt, gbuf, parts, dh, dw)
            return dwt
        dw2 = dwt.reshape(o, -1)
        tmp = scratch.get("dw", dw2.shape, x.dtype)
        cbuf = scratch.get("cols", (rows * block * span,), x.dtype)
        gbuf = scratch.get("g", (o * block * span,), x.dtype)
        if n == 0:
            dw2[...] = 0
        for n0 in range(0, n, block):
            nb = min(block, n - n0)
            cols = cbuf[:rows * nb * span].reshape(rows, nb * span)
            gb = gbuf[:o * nb * span].reshape(o, nb * span)
            fill_cols(xp, n0, nb, cols, kh, kw, sh, sw, dh, dw, ho, wo, full, pitch, span)
            gather_g(g, gb, n0, nb, pitch, span)
            _groups_dot(gb, cols, dw2 if n0 == 0 else tmp, groups, trans_b=True)
            if n0:
                dw2 += tmp
        return dw2.reshape(o, c // groups, kh, kw)
    return run
