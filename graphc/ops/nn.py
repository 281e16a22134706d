"""Neural-network ops: activations, softmax, cross-entropies, bias_add, l2_loss.

Activations with a cheap scalar form are primitives (relu, leaky_relu, elu, softplus);
the others are compositions of primitives (relu6, selu, gelu, softmax, log_softmax and the
dense cross-entropies), so the fusion pass sees through them and no backend needs code for
them. Softmax-type ops subtract the row maximum (held constant for the gradient, where it
cancels) so exp never overflows.

``sparse_softmax_cross_entropy_with_logits`` is a primitive: its reference checks that every
label is in range (an out-of-range label is an error, never a silently-zero loss), and it is
the unit the fused softmax + cross-entropy kernel and the ONNX exporter map to.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from graphc.errors import DTypeError, FeedError, ShapeError
from graphc.graph import Tensor, TensorSpec
from graphc.op import Kind, apply1, defop
from graphc.ops import elementwise as E
from graphc.ops.elementwise import FLOAT, _as_tensor, _unary, promote
from graphc.ops.reduce import broadcast_like, reduce_max, reduce_sum
from graphc.shapes import format_shape, merge_shapes

__all__ = ["relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "softplus", "softmax",
           "log_softmax", "bias_add", "l2_loss", "softmax_cross_entropy_with_logits",
           "sparse_softmax_cross_entropy_with_logits", "sigmoid_cross_entropy_with_logits"]

_relu = _unary("relu", lambda x: np.maximum(x, 0), "max({0}, 0.0)",
               lambda n, g: [E.where(n.inputs[0] > 0.0, g, 0.0)], FLOAT, "max(x, 0)")
_softplus = _unary("softplus", lambda x: np.logaddexp(0, x),
                   "(max({0}, 0.0) + math.log1p(math.exp(-abs({0}))))",
                   lambda n, g: [g * E.sigmoid(n.inputs[0])], FLOAT,
                   "log(1 + exp(x)), computed without overflow")

defop("leaky_relu", kind=Kind.ELEMENTWISE, infer=E._infer(FLOAT),
      ref=E._ref(lambda x, *, alpha: np.where(x > 0, x, alpha * x)),
      formula="({0} if {0} > 0 else {alpha} * {0})",
      vjp=lambda n, g: [E.where(n.inputs[0] > 0.0, g, g * n.attrs["alpha"])],
      doc="x if x > 0 else alpha * x")
defop("elu", kind=Kind.ELEMENTWISE, infer=E._infer(FLOAT),
      # where, not minimum: elu(-0.0) is expm1(-0.0) = -0.0 (IEEE, as the kernels give)
      ref=E._ref(lambda x, *, alpha: np.where(x > 0, x, alpha * np.expm1(np.where(x > 0, 0, x)))),
      formula="({0} if {0} > 0 else {alpha} * math.expm1({0}))",
      vjp=lambda n, g: [E.where(n.inputs[0] > 0.0, g, g * (n.outputs[0] + n.attrs["alpha"]))],
      doc="x if x > 0 else alpha * (exp(x) - 1)")

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def relu(features: Any, name: Optional[str] = None) -> Tensor:
    """``max(features, 0)``."""
    return _relu(features, name)


def relu6(features: Any, name: Optional[str] = None) -> Tensor:
    """``min(max(features, 0), 6)``."""
    return E.minimum(_relu(features), 6.0, name)


def leaky_relu(features: Any, alpha: float = 0.2, name: Optional[str] = None) -> Tensor:
    """``features`` where positive, else ``alpha * features``."""
    return apply1("leaky_relu", [_as_tensor(features)], {"alpha": float(alpha)}, name=name)


def elu(features: Any, alpha: float = 1.0, name: Optional[str] = None) -> Tensor:
    """``features`` where positive, else ``alpha * (exp(features) - 1)``."""
    return apply1("elu", [_as_tensor(features)], {"alpha": float(alpha)}, name=name)


def selu(features: Any, name: Optional[str] = None) -> Tensor:
    """Scaled ELU with the self-normalizing constants of Klambauer et al. (2017)."""
    return E.multiply(elu(features, _SELU_ALPHA), _SELU_SCALE, name)


def gelu(features: Any, approximate: bool = False, name: Optional[str] = None) -> Tensor:
    """Gaussian error linear unit: exact ``x * Phi(x)`` via erf, or the tanh approximation."""
    x = _as_tensor(features)
    if approximate:
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return E.multiply(0.5 * x, 1.0 + E.tanh(inner), name)
    return E.multiply(0.5 * x, 1.0 + E.erf(x * (1.0 / math.sqrt(2.0))), name)


def softplus(features: Any, name: Optional[str] = None) -> Tensor:
    """``log(1 + exp(features))``, stable for large |features|."""
    return _softplus(features, name)


def _shifted(logits: Tensor, axis: int) -> Tensor:
    # The row max is held constant: it cancels in softmax, so its gradient is zero anyway.
    return logits - E.stop_gradient(reduce_max(logits, axis, keepdims=True))


def softmax(logits: Any, axis: int = -1, name: Optional[str] = None) -> Tensor:
    """``exp(logits) / sum(exp(logits))`` along ``axis``, stable for large logits."""
    e = E.exp(_shifted(_as_tensor(logits), axis))
    return E.divide(e, reduce_sum(e, axis, keepdims=True), name)


def log_softmax(logits: Any, axis: int = -1, name: Optional[str] = None) -> Tensor:
    """``logits - log(sum(exp(logits)))`` along ``axis`` (log-sum-exp, stable)."""
    shifted = _shifted(_as_tensor(logits), axis)
    return E.subtract(shifted, E.log(reduce_sum(E.exp(shifted), axis, keepdims=True)), name)


def bias_add(value: Any, bias: Any, data_format: Optional[str] = None,
             name: Optional[str] = None) -> Tensor:
    """``value + bias`` along the channel axis: the last one (``"NHWC"``/None, TF's default)
    or axis 1 (``"NCHW"``, graphc's convolution layout)."""
    value, bias = promote(value, bias)
    if bias.ndim != 1:
        raise ShapeError(f"bias_add: bias must be 1-D, got {bias.describe()}")
    if data_format in (None, "NHWC", "NWC", "N...C"):
        return E.add(value, bias, name)
    if data_format not in ("NCHW", "NCW", "NC..."):
        raise ValueError(f"bias_add: unknown data_format {data_format!r}")
    from graphc.ops.shape import reshape

    return E.add(value, reshape(bias, (-1,) + (1,) * (value.ndim - 2)), name)


def l2_loss(t: Any, name: Optional[str] = None) -> Tensor:
    """``sum(t ** 2) / 2`` (TF1's halved form)."""
    return E.multiply(reduce_sum(E.square(t)), 0.5, name)


def softmax_cross_entropy_with_logits(labels: Any, logits: Any, axis: int = -1,
                                      name: Optional[str] = None) -> Tensor:
    """Per-example ``-sum(labels * log_softmax(logits))``; labels are probabilities."""
    labels, logits = promote(labels, logits)
    return E.negative(reduce_sum(labels * log_softmax(logits, axis), axis), name)


def sigmoid_cross_entropy_with_logits(labels: Any, logits: Any,
                                      name: Optional[str] = None) -> Tensor:
    """Elementwise ``-z log(sigmoid(x)) - (1 - z) log(1 - sigmoid(x))``, computed as
    ``max(x, 0) - x z + log(1 + exp(-|x|))`` so it never overflows."""
    z, x = promote(labels, logits)
    return E.add(_relu(x) - x * z, E.log1p(E.exp(-E.abs(x))), name)


# -- sparse softmax cross-entropy: one primitive ---------------------------------------------

def _infer_sparse_xent(labels: TensorSpec, logits: TensorSpec) -> TensorSpec:
    if not labels.dtype.is_integer:
        raise DTypeError(f"labels must be integers (class indices), got {labels.dtype}")
    if not logits.dtype.is_floating:
        raise DTypeError(f"logits must be floats, got {logits.dtype}")
    if logits.shape is None or not logits.shape or logits.shape[-1] is None:
        raise ShapeError(f"logits {format_shape(logits.shape)} need a known last (class) axis")
    if labels.shape is not None:
        if len(logits.shape) != len(labels.shape) + 1 or any(
                a is not None and b is not None and a != b
                for a, b in zip(labels.shape, logits.shape[:-1])):
            raise ShapeError(f"labels {format_shape(labels.shape)} must have the shape of logits "
                             f"{format_shape(logits.shape)} without its last (class) axis")
    return TensorSpec(logits.shape[:-1], logits.dtype)


def _check_labels(labels: np.ndarray, logits: np.ndarray) -> None:
    """The run-time checks the static shapes could not make (a batch size, the labels)."""
    if labels.shape != logits.shape[:-1]:
        raise ShapeError(f"sparse_softmax_cross_entropy_with_logits: labels "
                         f"{format_shape(labels.shape)} must have the shape of logits "
                         f"{format_shape(logits.shape)} without its last (class) axis")
    depth = logits.shape[-1]
    bad = (labels < 0) | (labels >= depth)
    if np.any(bad):
        raise FeedError(f"sparse_softmax_cross_entropy_with_logits: label "
                        f"{labels[bad].flat[0]} is outside [0, {depth}) (the number of classes)")


def _sparse_xent_ref(labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    _check_labels(labels, logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis=-1))
    picked = np.take_along_axis(shifted, labels[..., None].astype(np.intp), -1)[..., 0]
    return (lse - picked).astype(logits.dtype)


def _vjp_sparse_xent(node: Any, g: Tensor) -> list:
    labels, logits = node.inputs
    return [None, apply1("sparse_softmax_cross_entropy_grad", [labels, logits, g])]


defop("sparse_softmax_cross_entropy_with_logits", kind=Kind.OPAQUE, infer=_infer_sparse_xent,
      ref=_sparse_xent_ref, vjp=_vjp_sparse_xent, input_names=("labels", "logits"),
      doc="per-example -log(softmax(logits)[label]); labels out of range are an error")


# Its gradient is a primitive too, ``g[..., None] * (softmax(logits) - one_hot(labels))``,
# so that a backend computes it in one pass per row (max, exp, sum, scale) instead of a
# chain of seven kernels and a one-hot temporary.

def _infer_sparse_xent_grad(labels: TensorSpec, logits: TensorSpec,
                            g: TensorSpec) -> TensorSpec:
    loss = _infer_sparse_xent(labels, logits)
    if g.dtype != logits.dtype:
        raise DTypeError(f"the incoming gradient is {g.dtype}, the logits are {logits.dtype}")
    merge_shapes(g.shape, loss.shape)
    return logits


def _sparse_xent_grad_ref(labels: np.ndarray, logits: np.ndarray, g: np.ndarray) -> np.ndarray:
    depth = logits.shape[-1]
    _check_labels(labels, logits)  # the loss itself may not run when only gradients are fetched
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    probs = e / e.sum(axis=-1, keepdims=True)
    onehot = labels[..., None] == np.arange(depth)
    return (g[..., None] * (probs - onehot)).astype(logits.dtype)


def _vjp_sparse_xent_grad(node: Any, grad: Tensor) -> list:
    # d/dlogits of g * (p - onehot) is g * (diag(p) - p p^T), applied to ``grad``; d/dg is
    # the row sum of (p - onehot) * grad.
    from graphc.ops.indexing import one_hot

    labels, logits, g = node.inputs
    p = softmax(logits)
    gb = broadcast_like(g, logits, (logits.ndim - 1,))
    pg = p * grad
    d_logits = gb * (pg - p * reduce_sum(pg, axis=-1, keepdims=True))
    onehot = one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    return [None, d_logits, reduce_sum((p - onehot) * grad, axis=-1)]


defop("sparse_softmax_cross_entropy_grad", kind=Kind.OPAQUE, infer=_infer_sparse_xent_grad,
      ref=_sparse_xent_grad_ref, vjp=_vjp_sparse_xent_grad,
      input_names=("labels", "logits", "grad"),
      doc="the logits' gradient of sparse softmax cross-entropy: g * (softmax - one_hot)")


def sparse_softmax_cross_entropy_with_logits(labels: Any, logits: Any,
                                             name: Optional[str] = None) -> Tensor:
    """Per-example ``-log(softmax(logits)[labels])`` for integer class labels."""
    return apply1("sparse_softmax_cross_entropy_with_logits",
                  [_as_tensor(labels), _as_tensor(logits)], name=name)
