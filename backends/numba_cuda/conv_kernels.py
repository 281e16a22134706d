"""Convolution on the device (``conv2d`` and its two gradients): im2col + the GEMM kernel.

The *columns* of a convolution hold, for every output position ``p = (i, j)`` and input
tap ``r = (c, a, b)``, the cell ``x[n, c, i*sh + a*dh - pt, j*sw + b*dw - pl]``, zero
outside the input (no padded copy of ``x`` is made). One kernel, :func:`im2col`, writes
them with one thread per entry at offset ``n*sn + r*sr + p``, so it writes both layouts the
GEMMs (:func:`.matmul_kernels.gemm`) need:

* ``conv2d``: cols ``(N, CK, P)``; ``y(N, O, P) = W(1, O, CK) @ cols``: the GEMM's batch
  of one broadcasts the weights over the samples, and the result is already NCHW;
* ``conv2d_backprop_filter``: cols ``(CK, N, P)``; ``dW(O, CK) = G(O, N*P) @ cols^T``,
  with the NCHW gradient transposed to ``(O, N, P)`` by :func:`.layout_kernels.permute_into`;
* ``conv2d_backprop_input``: ``dcols(N, CK, P) = W^T @ G`` (the GEMM's transpose flag, no
  copy of W), then :func:`col2im`, a *gather*: one thread per input cell sums the column
  entries that read it (no atomics: the result is deterministic).

Geometry is the ops' own: the run-time shapes go through the op's inference (which the
reference runs too), SAME pads through ``resolve_pads``, output sizes through ``out_dim``,
and the transposed convolution's size is the inferred one (``like``, else ``size``, else
the natural size). Shapes inference refuses return None: the reference raises its error.

The column buffers persist per node across runs (reallocated when a shape changes), so a
training step at steady state allocates nothing; they hold the whole batch
(N*C*kh*kw*Ho*Wo elements). The kernels have no compile-time flags: Numba compiles each on
its first launch, once per dtype, and keeps it in the dispatcher.

On the device: ``groups == 1``, float32/float64, non-empty inputs. Grouped and depthwise
convolutions (``groups > 1``), other dtypes and empty inputs return None (host fallback).
The N-d ops ``conv``, ``conv_backprop_input`` and ``conv_backprop_filter`` run these
kernels when they have two spatial axes (their attributes mean the same); 1-D and 3-D ones
return None (host fallback).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from graphc import dtypes
from graphc.backends.numba_cpu.kernels import by_shapes
from graphc.errors import GraphcError
from graphc.graph import TensorSpec
from graphc.op import get_op
from graphc.ops.conv import out_dim, resolve_pads

from .device import cuda, launch
from .kernels import Alloc, lower
from .layout_kernels import permute_into
from .matmul_kernels import gemm
from .scratch import Scratch

__all__ = ["Window", "window", "run_spec", "window_source",
           "gather_kernel", "im2col", "col2im"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class Window(NamedTuple):
    """A 2-D window op's geometry, as the kernels take it (tuples of ints)."""

    dims: tuple  # (N, C, H, W, Ho, Wo): the windowed input and the output plane
    win: tuple   # (kh, kw, sh, sw, dh, dw, pad_top, pad_left)


def window(shape: tuple, k: tuple, strides: tuple, dilations: tuple, padding: Any) -> Window:
    """The geometry of windows ``k`` over an input of ``shape`` (N, C, H, W): pads resolved
    for these sizes and output sizes, by the ops' own helpers."""
    pads = resolve_pads(padding, shape[2:], k, strides, dilations)
    out = tuple(out_dim(shape[2 + a], k[a], strides[a], dilations[a], pads, a)
                for a in range(2))
    return Window(tuple(shape) + out,
                  tuple(k) + tuple(strides) + tuple(dilations) + (pads[0][0], pads[1][0]))


def run_spec(node: Any, args: list) -> Optional[TensorSpec]:
    """The node's output spec for the run-time shapes, by the op's inference (the checks
    the reference makes); None where it refuses them, or where the inputs are not all
    non-empty float32/float64 of rank 4: the host reference then runs (and raises)."""
    if any(a.dtype not in _FLOATS or a.ndim != 4 or a.size == 0 for a in args):
        return None
    specs = [TensorSpec(tuple(a.shape), dtypes.as_dtype(a.dtype)) for a in args]
    try:
        return get_op(node.op).infer(*specs, **node.attrs)
    except GraphcError:
        return None


@cuda.jit(device=True)
def window_source(pos, cell, d, s, out):  # noqa: ANN001, ANN201 - a device function
    """The output index ``o`` whose window reads padded position ``pos`` through window
    cell ``cell`` (``pos == o*s + cell*d``), or -1 when there is none."""
    t = pos - cell * d
    if t < 0 or t % s != 0:
        return -1
    o = t // s
    return o if o < out else -1


@cuda.jit
def _im2col(cols, x, dims, win, sn, sr):
    n_, c_, h, w, ho, wo = dims
    kh, kw, sh, sw, dh, dw, pt, pl = win
    span = ho * wo
    taps = c_ * kh * kw
    i = cuda.grid(1)
    while i < n_ * taps * span:
        p = i % span
        r = (i // span) % taps
        n = i // (span * taps)
        y = (p // wo) * sh + ((r // kw) % kh) * dh - pt
        xx = (p % wo) * sw + (r % kw) * dw - pl
        if 0 <= y < h and 0 <= xx < w:
            cols[n * sn + r * sr + p] = x[((n * c_ + r // (kh * kw)) * h + y) * w + xx]
        else:
            cols[n * sn + r * sr + p] = 0
        i += cuda.gridsize(1)


def gather_kernel(term: Any) -> Any:
    """A kernel ``(out, x, v, dims, win)`` with one thread per input cell ``out[n, c, y, x]``
    (the input plane of ``dims``): the sum, in float64, of the device function
    ``term(x, v, nc, oi, oj, cell, dims, win)`` over every window ``(oi, oj)`` that reads
    the cell, through its window ``cell`` (row-major over kh x kw; ``nc`` is n*C + c).
    An adjoint written as a gather: no atomics, so the sums are deterministic."""
    @cuda.jit
    def gather(out, x, v, dims, win):
        _, _, h, w, ho, wo = dims
        kh, kw, sh, sw, dh, dw, pt, pl = win
        i = cuda.grid(1)
        while i < out.shape[0]:
            xx = i % w
            y = (i // w) % h
            nc = i // (h * w)
            acc = 0.0
            for a in range(kh):
                oi = window_source(y + pt, a, dh, sh, ho)
                if oi >= 0:
                    for b in range(kw):
                        oj = window_source(xx + pl, b, dw, sw, wo)
                        if oj >= 0:
                            acc += term(x, v, nc, oi, oj, a * kw + b, dims, win)
            out[i] = acc
            i += cuda.gridsize(1)
    return gather


@cuda.jit(device=True)
def _column_entry(x, dcols, nc, oi, oj, cell, dims, win):  # noqa: ANN001, ANN202
    # dcols (N, C*kh*kw, P): row n*C*kh*kw + c*kh*kw + cell = nc*kh*kw + cell.
    span = dims[4] * dims[5]
    return dcols[(nc * win[0] * win[1] + cell) * span + oi * dims[5] + oj]


_col2im = gather_kernel(_column_entry)


def im2col(cols: Any, x: Any, geo: Window, sn: int, sr: int) -> None:
    """Write the columns of the device array ``x`` (N, C, H, W) into ``cols`` (any shape
    of N*C*kh*kw*Ho*Wo elements): entry (n, r, p) at flat offset ``n*sn + r*sr + p``."""
    n, c, _, _, ho, wo = geo.dims
    total = n * c * geo.win[0] * geo.win[1] * ho * wo
    blocks, threads = launch(total)
    _im2col[blocks, threads](cols.reshape(cols.size), x.reshape(x.size), geo.dims, geo.win,
                             sn, sr)


def col2im(dx: Any, dcols: Any, geo: Window) -> None:
    """``dx`` (N, C, H, W): each cell the sum of the entries of ``dcols`` (N, C*kh*kw, P)
    that :func:`im2col` reads from it (the adjoint of im2col, as a gather)."""
    blocks, threads = launch(dx.size)
    flat = dcols.reshape(dcols.size)
    _col2im[blocks, threads](dx.reshape(dx.size), flat, flat, geo.dims, geo.win)


def _geometry(node: Any, shape_at: Optional[int], kernel_at: int) -> Callable[[list], Any]:
    """Memoized ``args -> (output spec, Window) | None`` of a convolution node: the window
    slides over ``args[shape_at]`` (None: over the inferred output, the transposed case)."""
    attrs = node.attrs

    def compute(args: list) -> Optional[tuple]:
        spec = run_spec(node, args)
        if spec is None or attrs["groups"] != 1:
            return None
        shape = spec.shape if shape_at is None else tuple(args[shape_at].shape)
        return spec, window(shape, tuple(args[kernel_at].shape)[2:], attrs["strides"],
                            attrs["dilations"], attrs["padding"])
    return by_shapes(compute)


def _forward(node: Any) -> Callable[[list, Alloc, int], Any]:
    """``y(N, O, P) = W(1, O, CK) @ cols(N, CK, P)``."""
    geometry, scratch = _geometry(node, 0, 1), Scratch()

    def run(args: list, alloc: Alloc, step: int) -> Any:
        found = geometry(args)
        if found is None:
            return None
        spec, geo = found
        x, w = args
        n, o, ho, wo = spec.shape
        taps, span = w.size // o, ho * wo
        cols = scratch.get("cols", (n, taps, span), x.dtype)
        im2col(cols, x, geo, taps * span, span)
        y = alloc((n, o, ho, wo), x.dtype)
        gemm(w.reshape((1, o, taps)), cols, y.reshape((n, o, span)), False, False)
        return y
    return run


def _backprop_input(node: Any) -> Callable[[list, Alloc, int], Any]:
    """``dcols(N, CK, P) = W^T @ G(N, O, P)``, then col2im to the inferred (N, C, H, W)."""
    geometry, scratch = _geometry(node, None, 1), Scratch()

    def run(args: list, alloc: Alloc, step: int) -> Any:
        found = geometry(args)
        if found is None:
            return None
        spec, geo = found
        g, w = args[0], args[1]
        n, o, ho, wo = tuple(g.shape)
        taps, span = w.size // o, ho * wo
        dcols = scratch.get("dcols", (n, taps, span), g.dtype)
        gemm(w.reshape((1, o, taps)), g.reshape((n, o, span)), dcols, True, False)
        dx = alloc(tuple(spec.shape), g.dtype)
        col2im(dx, dcols, geo)
        return dx
    return run


def _backprop_filter(node: Any) -> Callable[[list, Alloc, int], Any]:
    """``dW(O, CK) = G(O, N*P) @ cols(CK, N*P)^T``."""
    geometry, scratch = _geometry(node, 0, 2), Scratch()

    def run(args: list, alloc: Alloc, step: int) -> Any:
        found = geometry(args)
        if found is None:
            return None
        spec, geo = found
        x, g = args[0], args[1]
        n, o, ho, wo = tuple(g.shape)
        span = ho * wo
        taps = x.shape[1] * geo.win[0] * geo.win[1]
        cols = scratch.get("cols", (taps, n, span), x.dtype)
        im2col(cols, x, geo, span, n * span)
        gt = scratch.get("g", (o, n, span), g.dtype)  # G (N, O, P) as (O, N, P)
        permute_into(gt, g.reshape((n, o, span)), (1, 0, 2))
        dw = alloc(tuple(spec.shape), x.dtype)
        gemm(gt.reshape((1, o, n * span)), cols.reshape((1, taps, n * span)),
             dw.reshape((1, o, taps)), False, True)
        return dw
    return run


# The N-d ops share the factories: with two spatial axes their attributes mean the same.
for _ops, _factory in ((("conv2d", "conv"), _forward),
                       (("conv2d_backprop_input", "conv_backprop_input"), _backprop_input),
                       (("conv2d_backprop_filter", "conv_backprop_filter"), _backprop_filter)):
    for _op in _ops:
        lower(_op)(_factory)
