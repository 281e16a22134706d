"""2-D pooling in NCHW layout: ``max_pool2d``, ``avg_pool2d`` and ``global_avg_pool2d``.

Padding is as for :func:`graphc.ops.conv.conv2d` ("VALID", "SAME" by TF's rule, ints or
explicit pairs); explicit pads must be smaller than the window, so every window holds at
least one real cell. Padded cells never win a max (they are -inf) and are **not counted**
in averages (``count_include_pad=False``, as TF's "SAME" average pooling; PyTorch's default
counts them).

Gradients are ops with their own gradients, so pooling can be differentiated twice:

* ``max_pool2d_grad(x, g)`` routes each window's gradient to the position of its maximum
  (the first in row-major window order on ties, as PyTorch; TF also picks one);
  ``max_pool2d_grad_grad(x, h)`` picks ``h`` at those positions — the two are adjoint (in
  their second input), and neither depends smoothly on ``x`` (its gradient is zero);
* ``avg_pool2d_grad(g, like)`` spreads ``g / count`` over each window, the adjoint of
  ``avg_pool2d``.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from graphc.errors import DTypeError, ShapeError
from graphc.graph import Tensor, TensorSpec
from graphc.op import Kind, apply1, defop
from graphc.ops.conv import out_dim, pair_attr, padding_attr, resolve_pads, windows
from graphc.ops.elementwise import _as_tensor
from graphc.ops.reduce import reduce_mean
from graphc.shapes import format_shape, merge_shapes

__all__ = ["max_pool2d", "avg_pool2d", "global_avg_pool2d"]

_ONE = (1, 1)


def _infer_pool(x: TensorSpec, *, ksize: tuple, strides: tuple, padding: Any) -> TensorSpec:
    if not x.dtype.is_floating:
        raise DTypeError(f"expects a float tensor, got {x.dtype}")
    shape = (None,) * 4 if x.shape is None else x.shape
    if len(shape) != 4:
        raise ShapeError(f"the input must have rank 4 (N, C, H, W), got shape {list(shape)}")
    if min(ksize) < 1 or min(strides) < 1:
        raise ShapeError(f"pool_size {ksize} and strides {strides} must be positive")
    if padding != "SAME":
        for a in range(2):
            if min(padding[a]) < 0 or max(padding[a]) >= ksize[a]:
                raise ShapeError(f"padding {padding} must be non-negative and smaller than "
                                 f"the window {ksize} (a window must hold a real cell)")
    out = tuple(out_dim(shape[2 + a], ksize[a], strides[a], 1, padding, a) for a in range(2))
    return TensorSpec(shape[:2] + out, x.dtype)


def _geometry(shape: tuple, ksize: tuple, strides: tuple, padding: Any) -> tuple:
    """(pads, (Ho, Wo)) for run-time ``shape``, checked as inference checks."""
    pads = resolve_pads(padding, shape[2:], ksize, strides, _ONE)
    try:
        out = tuple(out_dim(shape[2 + a], ksize[a], strides[a], 1, pads, a) for a in range(2))
    except ShapeError as err:
        raise err.with_context("pool") from None
    return pads, out


def _padded(x: np.ndarray, pads: tuple, value: float) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0)) + tuple(pads), constant_values=value)


def _spread(vals: np.ndarray, plane: tuple, pads: tuple, ksize: tuple,
            strides: tuple) -> np.ndarray:
    """Sum of ``vals`` (N, C, Ho, Wo[, kh, kw]) written over every window cell, cropped."""
    n, c, ho, wo = vals.shape[:4]
    (pt, pb), (pl, pr) = pads
    out = np.zeros((n, c, plane[0] + pt + pb, plane[1] + pl + pr), vals.dtype)
    for a in range(ksize[0]):
        for b in range(ksize[1]):
            part = vals if vals.ndim == 4 else vals[..., a, b]
            out[:, :, a:a + strides[0] * (ho - 1) + 1:strides[0],
                b:b + strides[1] * (wo - 1) + 1:strides[1]] += part
    return np.ascontiguousarray(out[:, :, pt:pt + plane[0], pl:pl + plane[1]])


# -- max pooling --------------------------------------------------------------------------

def _max_ref(x: np.ndarray, *, ksize: tuple, strides: tuple, padding: Any) -> np.ndarray:
    pads, out = _geometry(x.shape, ksize, strides, padding)
    return windows(_padded(x, pads, -np.inf), out, ksize, strides, _ONE).max(axis=(4, 5))


def _argmax_onehot(x: np.ndarray, ksize: tuple, strides: tuple, padding: Any) -> tuple:
    """A (N, C, Ho, Wo, kh, kw) 0/1 array marking each window's first maximum, and pads."""
    pads, out = _geometry(x.shape, ksize, strides, padding)
    cols = windows(_padded(x, pads, -np.inf), out, ksize, strides, _ONE)
    flat = cols.reshape(cols.shape[:4] + (-1,))
    first = flat.argmax(axis=-1)  # the first maximum in row-major window order
    onehot = np.zeros(flat.shape, x.dtype)
    np.put_along_axis(onehot, first[..., None], 1, axis=-1)
    return onehot.reshape(cols.shape), pads


def _max_grad_ref(x: np.ndarray, g: np.ndarray, *, ksize: tuple, strides: tuple,
                  padding: Any) -> np.ndarray:
    onehot, pads = _argmax_onehot(x, ksize, strides, padding)
    return _spread(onehot * g[..., None, None], x.shape[2:], pads, ksize, strides)


def _max_grad_grad_ref(x: np.ndarray, h: np.ndarray, *, ksize: tuple, strides: tuple,
                       padding: Any) -> np.ndarray:
    onehot, pads = _argmax_onehot(x, ksize, strides, padding)
    cols = windows(_padded(h, pads, 0.0), onehot.shape[2:4], ksize, strides, _ONE)
    return (cols * onehot).sum(axis=(4, 5)).astype(x.dtype, copy=False)


def _infer_like_x(x: TensorSpec, g: TensorSpec, **attrs: Any) -> TensorSpec:
    """``x``'s spec, once ``g`` is checked to be shaped as the pooled output."""
    out = _infer_pool(x, **attrs)
    if g.dtype != x.dtype:
        raise DTypeError(f"inputs have different dtypes: {x.dtype}, {g.dtype}")
    try:
        merge_shapes(g.shape, out.shape)
    except ShapeError:
        raise ShapeError(f"the gradient's shape {format_shape(g.shape)} is not the pooled "
                         f"shape {format_shape(out.shape)}") from None
    return TensorSpec((None,) * 4 if x.shape is None else x.shape, x.dtype)


def _infer_grad_grad(x: TensorSpec, h: TensorSpec, **attrs: Any) -> TensorSpec:
    if h.dtype != x.dtype:
        raise DTypeError(f"inputs have different dtypes: {x.dtype}, {h.dtype}")
    try:
        merge_shapes(h.shape, x.shape)
    except ShapeError:
        raise ShapeError(f"h {format_shape(h.shape)} must have x's shape "
                         f"{format_shape(x.shape)}") from None
    return _infer_pool(x, **attrs)


defop("max_pool2d", kind=Kind.OPAQUE, infer=_infer_pool, ref=_max_ref,
      vjp=lambda n, g: [apply1("max_pool2d_grad", [n.inputs[0], g], n.attrs)],
      doc="the maximum of each window (padded cells never win)")
defop("max_pool2d_grad", kind=Kind.OPAQUE, infer=_infer_like_x, ref=_max_grad_ref,
      input_names=("x", "g"),
      vjp=lambda n, h: [None, apply1("max_pool2d_grad_grad", [n.inputs[0], h], n.attrs)],
      doc="the gradient of max_pool2d: g routed to each window's (first) maximum of x")
defop("max_pool2d_grad_grad", kind=Kind.OPAQUE, infer=_infer_grad_grad, ref=_max_grad_grad_ref,
      input_names=("x", "h"),
      vjp=lambda n, g: [None, apply1("max_pool2d_grad", [n.inputs[0], g], n.attrs)],
      doc="h picked at each window's (first) maximum of x: the adjoint of max_pool2d_grad")


# -- average pooling ----------------------------------------------------------------------

def _counts(shape: tuple, pads: tuple, out: tuple, ksize: tuple, strides: tuple,
            dtype: Any) -> np.ndarray:
    """How many real (unpadded) cells each window holds, (Ho, Wo)."""
    ones = _padded(np.ones((1, 1) + tuple(shape[2:]), dtype), pads, 0.0)
    return windows(ones, out, ksize, strides, _ONE).sum(axis=(4, 5))[0, 0]


def _avg_ref(x: np.ndarray, *, ksize: tuple, strides: tuple, padding: Any) -> np.ndarray:
    pads, out = _geometry(x.shape, ksize, strides, padding)
    sums = windows(_padded(x, pads, 0.0), out, ksize, strides, _ONE).sum(axis=(4, 5))
    return (sums / _counts(x.shape, pads, out, ksize, strides, x.dtype)).astype(x.dtype)


def _avg_grad_ref(g: np.ndarray, like: np.ndarray, *, ksize: tuple, strides: tuple,
                  padding: Any) -> np.ndarray:
    pads, out = _geometry(like.shape, ksize, strides, padding)
    if tuple(g.shape[2:]) != tuple(out):
        raise ShapeError(f"avg_pool2d_grad: the gradient's size {g.shape[2:]} is not the "
                         f"pooled size {out}")
    scaled = g / _counts(like.shape, pads, out, ksize, strides, g.dtype)
    return _spread(scaled.astype(g.dtype), like.shape[2:], pads, ksize, strides)


defop("avg_pool2d", kind=Kind.OPAQUE, infer=_infer_pool, ref=_avg_ref,
      vjp=lambda n, g: [apply1("avg_pool2d_grad", [g, n.inputs[0]], n.attrs)],
      doc="the mean of each window's real cells (padding not counted)")
defop("avg_pool2d_grad", kind=Kind.OPAQUE, input_names=("g", "like"),
      infer=lambda g, like, **attrs: TensorSpec(_infer_like_x(like, g, **attrs).shape, g.dtype),
      ref=_avg_grad_ref,
      vjp=lambda n, h: [apply1("avg_pool2d", [h], n.attrs), None],
      doc="the gradient of avg_pool2d: g / count spread over each window of like's shape")


# -- builders -------------------------------------------------------------------------------

def _pool(op: str, x: Any, pool_size: Any, strides: Any, padding: Any, data_format: str,
          name: Optional[str]) -> Tensor:
    if data_format != "NCHW":
        raise ValueError(f"{op}: only data_format='NCHW' is supported, got {data_format!r}")
    ksize = pair_attr(pool_size, "pool_size", op)
    attrs = {"ksize": ksize,
             "strides": ksize if strides is None else pair_attr(strides, "strides", op),
             "padding": padding_attr(padding, op)}
    return apply1(op, [_as_tensor(x)], attrs, name=name)


def max_pool2d(x: Any, pool_size: Any, strides: Any = None, padding: Any = "VALID",
               data_format: str = "NCHW", name: Optional[str] = None) -> Tensor:
    """The maximum over ``pool_size`` windows of ``x`` (N, C, H, W). ``strides`` default to
    ``pool_size``; ``padding`` as in :func:`~graphc.ops.conv.conv2d` (padded cells never
    win). The gradient goes to each window's maximum, the first one on ties."""
    return _pool("max_pool2d", x, pool_size, strides, padding, data_format, name)


def avg_pool2d(x: Any, pool_size: Any, strides: Any = None, padding: Any = "VALID",
               data_format: str = "NCHW", name: Optional[str] = None) -> Tensor:
    """The mean over ``pool_size`` windows of ``x`` (N, C, H, W); arguments as
    :func:`max_pool2d`. Padded cells are **not** counted (``count_include_pad=False``)."""
    return _pool("avg_pool2d", x, pool_size, strides, padding, data_format, name)


def global_avg_pool2d(x: Any, data_format: str = "NCHW", name: Optional[str] = None) -> Tensor:
    """The mean over H and W of ``x`` (N, C, H, W) -> (N, C)."""
    if data_format != "NCHW":
        raise ValueError(f"global_avg_pool2d: only data_format='NCHW' is supported, got "
                         f"{data_format!r}")
    x = _as_tensor(x)
    if x.ndim is not None and x.ndim != 4:
        from graphc.ops.args import fail

        raise fail(ShapeError(f"the input must have rank 4 (N, C, H, W), got {x.ndim}"),
                   "global_avg_pool2d", x)
    return reduce_mean(x, axis=(2, 3), name=name)
