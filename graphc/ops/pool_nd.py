"""N-d pooling in channels-first layout (N, C, *spatial), with dilations: ``max_pool``,
``avg_pool``, ``max_pool_argmax`` and their gradient ops.

These are the general pooling ops (1, 2 or 3 spatial axes — any number, in fact); the 2-D
``max_pool2d``/``avg_pool2d`` of :mod:`graphc.ops.pool` keep their own op names (the cpu
target has hand-written kernels for them) and share this module's reference code.

Attributes (all tuples with one entry per spatial axis): ``ksize``, ``strides``,
``dilations`` (window cell ``j`` of output position ``i`` reads padded index
``i*s + j*d``, as ONNX and PyTorch), and ``padding``: ``"SAME"`` (TF's rule, resolved from
the run-time size) or explicit ``((begin, end), ...)``. Each pad must be smaller than the
dilated window ``(k-1)*d + 1``; with dilations a window can still hold padded cells only —
such a window's maximum is ``-inf`` and its average ``0`` (its count is taken as 1).

Padded cells never win a max and are not counted in averages (``count_include_pad=False``);
ONNX's counted padding and ``ceil_mode`` are expressed on import with an explicit ``pad``
and extra end padding. Ties go to the first maximum in row-major window order.

Gradients are ops with gradients (second order works): ``max_pool_grad(x, g)`` routes g to
each window's maximum, ``max_pool_grad_grad(x, h)`` picks h there (the two are adjoint in
their second input; neither depends smoothly on x); ``avg_pool_grad(g, like)`` spreads
``g / count`` over each window and is the adjoint of ``avg_pool``.

``max_pool_argmax`` gives ONNX ``MaxPool``'s ``Indices`` (TF's ``max_pool_with_argmax``
with ``include_batch_in_index``): the row-major flat index into all of ``x`` of each
window's first maximum, ``-1`` where that maximum is a padded cell. It is integer-valued
and has no gradient.
"""

from __future__ import annotations

import itertools
from typing import Any, Optional

import numpy as np

from graphc import dtypes
from graphc.errors import DTypeError, ShapeError
from graphc.graph import Tensor, TensorSpec
from graphc.op import Kind, apply1, defop
from graphc.ops.args import fail
from graphc.ops.conv import out_dim, resolve_pads, windows
from graphc.ops.conv_nd import nd_padding_attr, tuple_attr
from graphc.ops.elementwise import _as_tensor
from graphc.shapes import format_shape, merge_shapes

__all__ = ["max_pool", "avg_pool", "max_pool_argmax"]


# -- shapes -----------------------------------------------------------------------------------

def infer_pool(x: TensorSpec, *, ksize: tuple, strides: tuple, dilations: tuple,
               padding: Any) -> TensorSpec:
    """The pooled spec of ``x`` (N, C, *spatial); every attribute has one entry per axis."""
    if not x.dtype.is_floating:
        raise DTypeError(f"expects a float tensor, got {x.dtype}")
    nd = len(ksize)
    shape = (None,) * (nd + 2) if x.shape is None else x.shape
    if len(shape) != nd + 2:
        raise ShapeError(f"a {nd}-d window needs an input of rank {nd + 2} (N, C, "
                         f"*spatial), got shape {list(shape)}")
    if len(strides) != nd or len(dilations) != nd or (padding != "SAME" and len(padding) != nd):
        raise ShapeError(f"ksize {ksize}, strides {strides}, dilations {dilations} and "
                         f"padding {padding} must have one entry per spatial axis")
    if min(ksize) < 1 or min(strides) < 1 or min(dilations) < 1:
        raise ShapeError(f"pool_size {ksize}, strides {strides} and dilations {dilations} "
                         "must be positive")
    if padding != "SAME":
        for a in range(nd):
            if min(padding[a]) < 0 or max(padding[a]) > (ksize[a] - 1) * dilations[a]:
                dil = f" dilated by {dilations}" if max(dilations) > 1 else ""
                raise ShapeError(f"padding {padding} must be non-negative and smaller than "
                                 f"the window {ksize}{dil} (a window must reach a real cell)")
    out = tuple(out_dim(shape[2 + a], ksize[a], strides[a], dilations[a], padding, a)
                for a in range(nd))
    return TensorSpec(tuple(shape[:2]) + out, x.dtype)


def geometry(shape: tuple, ksize: tuple, strides: tuple, dilations: tuple,
             padding: Any) -> tuple:
    """(explicit pads, output spatial sizes) for the run-time ``shape``."""
    pads = resolve_pads(padding, shape[2:], ksize, strides, dilations)
    try:
        out = tuple(out_dim(shape[2 + a], ksize[a], strides[a], dilations[a], pads, a)
                    for a in range(len(ksize)))
    except ShapeError as err:
        raise err.with_context("pool") from None
    return pads, out


def _padded(x: np.ndarray, pads: tuple, value: float) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0)) + tuple(pads), constant_values=value)


def _win_axes(nd: int) -> tuple:
    return tuple(range(2 + nd, 2 + 2 * nd))


def _spread(vals: np.ndarray, like_shape: tuple, pads: tuple, ksize: tuple, strides: tuple,
            dilations: tuple) -> np.ndarray:
    """Sum of ``vals`` (N, C, *out[, *k]) written over every window cell, cropped to
    ``like_shape``'s spatial size (the adjoint of reading the windows)."""
    nd = len(ksize)
    out = vals.shape[2:2 + nd]
    plane = like_shape[2:]
    buf = np.zeros(tuple(vals.shape[:2]) + tuple(plane[a] + sum(pads[a]) for a in range(nd)),
                   vals.dtype)
    for cell in itertools.product(*(range(k) for k in ksize)):
        part = vals if vals.ndim == 2 + nd else vals[(Ellipsis,) + cell]
        index = tuple(slice(cell[a] * dilations[a],
                            cell[a] * dilations[a] + strides[a] * (out[a] - 1) + 1, strides[a])
                      for a in range(nd))
        buf[(slice(None), slice(None)) + index] += part
    crop = tuple(slice(pads[a][0], pads[a][0] + plane[a]) for a in range(nd))
    return np.ascontiguousarray(buf[(slice(None), slice(None)) + crop])


# -- max pooling ------------------------------------------------------------------------------

def _cols(x: np.ndarray, value: float, ksize: tuple, strides: tuple, dilations: tuple,
          padding: Any) -> tuple:
    pads, out = geometry(x.shape, ksize, strides, dilations, padding)
    return windows(_padded(x, pads, value), out, ksize, strides, dilations), pads


def max_ref(x: np.ndarray, *, ksize: tuple, strides: tuple, dilations: tuple,
            padding: Any) -> np.ndarray:
    """The maximum of each window (padded cells are -inf)."""
    cols, _ = _cols(x, -np.inf, ksize, strides, dilations, padding)
    return cols.max(axis=_win_axes(len(ksize)))


def _first_max(x: np.ndarray, ksize: tuple, strides: tuple, dilations: tuple,
               padding: Any) -> tuple:
    """(each window's first maximum as a flat window offset (N, C, *out), pads)."""
    cols, pads = _cols(x, -np.inf, ksize, strides, dilations, padding)
    nd = len(ksize)
    window = int(np.prod(cols.shape[2 + nd:]))  # not -1: a batch of 0 leaves it ambiguous
    return cols.reshape(cols.shape[:2 + nd] + (window,)).argmax(axis=-1), pads


def _onehot(x: np.ndarray, ksize: tuple, strides: tuple, dilations: tuple,
            padding: Any) -> tuple:
    """A (N, C, *out, *k) 0/1 array marking each window's first maximum, and the pads."""
    first, pads = _first_max(x, ksize, strides, dilations, padding)
    hot = np.zeros(first.shape + (int(np.prod(ksize)),), x.dtype)
    np.put_along_axis(hot, first[..., None], 1, axis=-1)
    return hot.reshape(first.shape + tuple(ksize)), pads


def max_grad_ref(x: np.ndarray, g: np.ndarray, *, ksize: tuple, strides: tuple,
                 dilations: tuple, padding: Any) -> np.ndarray:
    """g routed to each window's first maximum of x."""
    hot, pads = _onehot(x, ksize, strides, dilations, padding)
    vals = hot * g.reshape(g.shape + (1,) * len(ksize))
    return _spread(vals, x.shape, pads, ksize, strides, dilations)


def max_grad_grad_ref(x: np.ndarray, h: np.ndarray, *, ksize: tuple, strides: tuple,
                      dilations: tuple, padding: Any) -> np.ndarray:
    """h picked at each window's first maximum of x."""
    hot, pads = _onehot(x, ksize, strides, dilations, padding)
    out = hot.shape[2:2 + len(ksize)]
    cols = windows(_padded(h, pads, 0.0), out, ksize, strides, dilations)
    return (cols * hot).sum(axis=_win_axes(len(ksize))).astype(x.dtype, copy=False)


def argmax_ref(x: np.ndarray, *, ksize: tuple, strides: tuple, dilations: tuple,
               padding: Any) -> np.ndarray:
    """The row-major flat index into ``x`` of each window's first maximum (-1: padding)."""
    first, pads = _first_max(x, ksize, strides, dilations, padding)
    nd = len(ksize)
    offsets = np.unravel_index(first, ksize)
    grid = np.indices(first.shape[2:], sparse=True)
    pos = [grid[a] * strides[a] + offsets[a] * dilations[a] - pads[a][0] for a in range(nd)]
    spatial = x.shape[2:]
    real = np.logical_and.reduce([(p >= 0) & (p < spatial[a]) for a, p in enumerate(pos)])
    inside = np.ravel_multi_index(tuple(np.clip(p, 0, spatial[a] - 1)
                                        for a, p in enumerate(pos)), spatial)
    nc = np.arange(x.shape[0] * x.shape[1]).reshape(x.shape[:2] + (1,) * nd)
    flat = nc * int(np.prod(spatial)) + inside
    return np.where(real, flat, -1).astype(np.int64)


def _infer_like_x(x: TensorSpec, g: TensorSpec, **attrs: Any) -> TensorSpec:
    """``x``'s spec, once ``g`` is checked to be shaped as the pooled output."""
    out = infer_pool(x, **attrs)
    if g.dtype != x.dtype:
        raise DTypeError(f"inputs have different dtypes: {x.dtype}, {g.dtype}")
    try:
        merge_shapes(g.shape, out.shape)
    except ShapeError:
        raise ShapeError(f"the gradient's shape {format_shape(g.shape)} is not the pooled "
                         f"shape {format_shape(out.shape)}") from None
    return TensorSpec((None,) * len(out.shape) if x.shape is None else x.shape, x.dtype)


def _infer_grad_grad(x: TensorSpec, h: TensorSpec, **attrs: Any) -> TensorSpec:
    if h.dtype != x.dtype:
        raise DTypeError(f"inputs have different dtypes: {x.dtype}, {h.dtype}")
    try:
        merge_shapes(h.shape, x.shape)
    except ShapeError:
        raise ShapeError(f"h {format_shape(h.shape)} must have x's shape "
                         f"{format_shape(x.shape)}") from None
    return infer_pool(x, **attrs)


defop("max_pool", kind=Kind.OPAQUE, infer=infer_pool, ref=max_ref,
      vjp=lambda n, g: [apply1("max_pool_grad", [n.inputs[0], g], n.attrs)],
      doc="N-d max pooling with dilations (padded cells never win)")
defop("max_pool_grad", kind=Kind.OPAQUE, infer=_infer_like_x, ref=max_grad_ref,
      input_names=("x", "g"),
      vjp=lambda n, h: [None, apply1("max_pool_grad_grad", [n.inputs[0], h], n.attrs)],
      doc="the gradient of max_pool: g routed to each window's (first) maximum of x")
defop("max_pool_grad_grad", kind=Kind.OPAQUE, infer=_infer_grad_grad, ref=max_grad_grad_ref,
      input_names=("x", "h"),
      vjp=lambda n, g: [None, apply1("max_pool_grad", [n.inputs[0], g], n.attrs)],
      doc="h picked at each window's (first) maximum of x: the adjoint of max_pool_grad")
defop("max_pool_argmax", kind=Kind.OPAQUE, ref=argmax_ref,
      infer=lambda x, **attrs: TensorSpec(infer_pool(x, **attrs).shape, dtypes.int64),
      vjp=lambda n, g: [None],
      doc="the flat index into x of each window's (first) maximum (ONNX MaxPool's Indices)")


# -- average pooling --------------------------------------------------------------------------

def _counts(shape: tuple, pads: tuple, out: tuple, ksize: tuple, strides: tuple,
            dilations: tuple, dtype: Any) -> np.ndarray:
    """How many real cells each window holds (*out), at least 1."""
    ones = _padded(np.ones((1, 1) + tuple(shape[2:]), dtype), pads, 0.0)
    counts = windows(ones, out, ksize, strides, dilations).sum(axis=_win_axes(len(ksize)))
    return np.maximum(counts[0, 0], 1)


def avg_ref(x: np.ndarray, *, ksize: tuple, strides: tuple, dilations: tuple,
            padding: Any) -> np.ndarray:
    """The mean of each window's real cells."""
    pads, out = geometry(x.shape, ksize, strides, dilations, padding)
    sums = windows(_padded(x, pads, 0.0), out, ksize, strides, dilations).sum(
        axis=_win_axes(len(ksize)))
    return (sums / _counts(x.shape, pads, out, ksize, strides, dilations, x.dtype)).astype(
        x.dtype)


def avg_grad_ref(g: np.ndarray, like: np.ndarray, *, ksize: tuple, strides: tuple,
                 dilations: tuple, padding: Any) -> np.ndarray:
    """g / count spread over each window of like's shape."""
    pads, out = geometry(like.shape, ksize, strides, dilations, padding)
    if tuple(g.shape[2:]) != tuple(out):
        raise ShapeError(f"avg_pool_grad: the gradient's size {g.shape[2:]} is not the "
                         f"pooled size {out}")
    scaled = (g / _counts(like.shape, pads, out, ksize, strides, dilations, g.dtype))
    return _spread(scaled.astype(g.dtype), like.shape, pads, ksize, strides, dilations)


defop("avg_pool", kind=Kind.OPAQUE, infer=infer_pool, ref=avg_ref,
      vjp=lambda n, g: [apply1("avg_pool_grad", [g, n.inputs[0]], n.attrs)],
      doc="N-d average pooling with dilations (padding not counted)")
defop("avg_pool_grad", kind=Kind.OPAQUE, input_names=("g", "like"),
      infer=lambda g, like, **attrs: TensorSpec(_infer_like_x(like, g, **attrs).shape, g.dtype),
      ref=avg_grad_ref,
      vjp=lambda n, h: [apply1("avg_pool", [h], n.attrs), None],
      doc="the gradient of avg_pool: g / count spread over each window of like's shape")


# -- builders ---------------------------------------------------------------------------------

def _pool(op: str, x: Any, pool_size: Any, strides: Any, padding: Any, dilations: Any,
          name: Optional[str]) -> Tensor:
    x = _as_tensor(x)
    if x.ndim is None or x.ndim < 3:
        raise fail(ShapeError(f"needs an input of known rank >= 3 (N, C, *spatial), got "
                              f"{'unknown rank' if x.ndim is None else x.ndim}"), op, x)
    nd = x.ndim - 2
    ksize = tuple_attr(pool_size, nd, "pool_size", op)
    attrs = {"ksize": ksize,
             "strides": ksize if strides is None else tuple_attr(strides, nd, "strides", op),
             "dilations": tuple_attr(dilations, nd, "dilations", op),
             "padding": nd_padding_attr(padding, nd, op)}
    return apply1(op, [x], attrs, name=name)


def max_pool(x: Any, pool_size: Any, strides: Any = None, padding: Any = "VALID",
             dilations: Any = 1, name: Optional[str] = None) -> Tensor:
    """The maximum over ``pool_size`` windows of ``x`` (N, C, *spatial), any number of
    spatial axes. ``strides`` default to ``pool_size``; ``dilations`` space the window's
    cells; ``padding``: "VALID", "SAME" (TF's rule), an int, one int per axis or one
    (begin, end) pair per axis (padded cells never win)."""
    return _pool("max_pool", x, pool_size, strides, padding, dilations, name)


def avg_pool(x: Any, pool_size: Any, strides: Any = None, padding: Any = "VALID",
             dilations: Any = 1, name: Optional[str] = None) -> Tensor:
    """The mean over ``pool_size`` windows of ``x`` (N, C, *spatial); arguments as
    :func:`max_pool`. Padded cells are **not** counted (``count_include_pad=False``)."""
    return _pool("avg_pool", x, pool_size, strides, padding, dilations, name)


def max_pool_argmax(x: Any, pool_size: Any, strides: Any = None, padding: Any = "VALID",
                    dilations: Any = 1, name: Optional[str] = None) -> Tensor:
    """int64 flat indices (row-major over all of ``x``) of the maxima that
    :func:`max_pool` with the same arguments picks: ONNX ``MaxPool``'s ``Indices``."""
    return _pool("max_pool_argmax", x, pool_size, strides, padding, dilations, name)
