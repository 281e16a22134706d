"""2-D pooling in NCHW layout: ``max_pool2d``, ``avg_pool2d`` and ``global_avg_pool2d``
(N-d pooling with dilations: :mod:`graphc.ops.pool_nd`, whose reference code these share).

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


from graphc.errors import ShapeError
from graphc.graph import Tensor, TensorSpec
from graphc.op import Kind, apply1, defop
from graphc.ops import pool_nd as nd
from graphc.ops.conv import pair_attr, padding_attr
from graphc.ops.elementwise import _as_tensor
from graphc.ops.reduce import reduce_mean

__all__ = ["max_pool2d", "avg_pool2d", "global_avg_pool2d"]

_ONE = (1, 1)


def _nd(attrs: dict) -> dict:
    """The 2-D attributes as :mod:`graphc.ops.pool_nd`'s (no dilation)."""
    return dict(attrs, dilations=_ONE)


def _infer_pool(x: TensorSpec, **attrs: Any) -> TensorSpec:
    if x.shape is not None and len(x.shape) != 4:
        raise ShapeError(f"the input must have rank 4 (N, C, H, W), got shape {list(x.shape)}")
    return nd.infer_pool(x, **_nd(attrs))


def _geometry(shape: tuple, ksize: tuple, strides: tuple, padding: Any) -> tuple:
    """(pads, (Ho, Wo)) for run-time ``shape``, checked as inference checks."""
    return nd.geometry(shape, ksize, strides, _ONE, padding)


def _with_nd(fn: Any) -> Any:
    return lambda *arrays, **attrs: fn(*arrays, **_nd(attrs))


def _infer_like_x(x: TensorSpec, g: TensorSpec, **attrs: Any) -> TensorSpec:
    _infer_pool(x, **attrs)
    return nd._infer_like_x(x, g, **_nd(attrs))


def _infer_grad_grad(x: TensorSpec, h: TensorSpec, **attrs: Any) -> TensorSpec:
    _infer_pool(x, **attrs)
    return nd._infer_grad_grad(x, h, **_nd(attrs))


# The semantics (and reference code) are pool_nd's with dilations 1; the ops keep their
# own names because the cpu target has dedicated 2-D kernels for them.
defop("max_pool2d", kind=Kind.OPAQUE, infer=_infer_pool, ref=_with_nd(nd.max_ref),
      vjp=lambda n, g: [apply1("max_pool2d_grad", [n.inputs[0], g], n.attrs)],
      doc="the maximum of each window (padded cells never win)")
defop("max_pool2d_grad", kind=Kind.OPAQUE, infer=_infer_like_x, ref=_with_nd(nd.max_grad_ref),
      input_names=("x", "g"),
      vjp=lambda n, h: [None, apply1("max_pool2d_grad_grad", [n.inputs[0], h], n.attrs)],
      doc="the gradient of max_pool2d: g routed to each window's (first) maximum of x")
defop("max_pool2d_grad_grad", kind=Kind.OPAQUE, infer=_infer_grad_grad,
      ref=_with_nd(nd.max_grad_grad_ref), input_names=("x", "h"),
      vjp=lambda n, g: [None, apply1("max_pool2d_grad", [n.inputs[0], g], n.attrs)],
      doc="h picked at each window's (first) maximum of x: the adjoint of max_pool2d_grad")
defop("avg_pool2d", kind=Kind.OPAQUE, infer=_infer_pool, ref=_with_nd(nd.avg_ref),
      vjp=lambda n, g: [apply1("avg_pool2d_grad", [g, n.inputs[0]], n.attrs)],
      doc="the mean of each window's real cells (padding not counted)")
defop("avg_pool2d_grad", kind=Kind.OPAQUE, input_names=("g", "like"),
      infer=lambda g, like, **attrs: TensorSpec(_infer_like_x(like, g, **attrs).shape, g.dtype),
      ref=_with_nd(nd.avg_grad_ref),
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
