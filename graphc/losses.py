"""``gc.losses``: training losses reduced to a scalar (TF1's ``tf.losses`` names).

Each takes ``weights`` (a scalar or a tensor broadcastable to the per-element loss) and
``reduction``: ``"mean"`` (the default: the mean of the weighted losses, which equals TF1's
SUM_BY_NONZERO_WEIGHTS when the weights are a scalar), ``"sum"``, or ``"none"``.
"""

from __future__ import annotations

from typing import Any

from graphc.graph import Tensor
from graphc.ops import elementwise as E
from graphc.ops import nn
from graphc.ops.reduce import count, reduce_mean, reduce_sum

__all__ = ["mean_squared_error", "absolute_difference", "huber_loss", "log_loss",
           "softmax_cross_entropy", "sparse_softmax_cross_entropy", "sigmoid_cross_entropy"]

REDUCTIONS = ("mean", "sum", "none")


def _reduce(losses: Tensor, weights: Any, reduction: str) -> Tensor:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    weighted = losses if isinstance(weights, (int, float)) and weights == 1.0 else losses * weights
    if reduction == "none":
        return weighted
    return reduce_mean(weighted) if reduction == "mean" else reduce_sum(weighted)


def mean_squared_error(labels: Any, predictions: Any, weights: Any = 1.0,
                       reduction: str = "mean") -> Tensor:
    """``(predictions - labels) ** 2``, reduced."""
    labels, predictions = E.promote(labels, predictions)
    return _reduce(E.square(predictions - labels), weights, reduction)


def absolute_difference(labels: Any, predictions: Any, weights: Any = 1.0,
                        reduction: str = "mean") -> Tensor:
    """``|predictions - labels|``, reduced."""
    labels, predictions = E.promote(labels, predictions)
    return _reduce(E.abs(predictions - labels), weights, reduction)


def huber_loss(labels: Any, predictions: Any, weights: Any = 1.0, delta: float = 1.0,
               reduction: str = "mean") -> Tensor:
    """Quadratic ``0.5 e**2`` for ``|e| <= delta``, linear ``delta (|e| - 0.5 delta)`` beyond."""
    labels, predictions = E.promote(labels, predictions)
    error = E.abs(predictions - labels)
    quadratic = E.minimum(error, delta)
    linear = error - quadratic
    return _reduce(0.5 * quadratic * quadratic + delta * linear, weights, reduction)


def log_loss(labels: Any, predictions: Any, weights: Any = 1.0, epsilon: float = 1e-7,
             reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities: ``-z log(p + eps) - (1 - z) log(1 - p + eps)``."""
    z, p = E.promote(labels, predictions)
    losses = -z * E.log(p + epsilon) - (1.0 - z) * E.log(1.0 - p + epsilon)
    return _reduce(losses, weights, reduction)


def softmax_cross_entropy(onehot_labels: Any, logits: Any, weights: Any = 1.0,
                          label_smoothing: float = 0.0, reduction: str = "mean") -> Tensor:
    """Cross-entropy of one-hot (or probability) labels against logits, with optional
    label smoothing ``labels * (1 - s) + s / num_classes``."""
    labels, logits = E.promote(onehot_labels, logits)
    if label_smoothing:
        classes = count(logits, (logits.ndim - 1,), logits.dtype)
        labels = labels * (1.0 - label_smoothing) + label_smoothing / classes
    return _reduce(nn.softmax_cross_entropy_with_logits(labels, logits), weights, reduction)


def sparse_softmax_cross_entropy(labels: Any, logits: Any, weights: Any = 1.0,
                                 reduction: str = "mean") -> Tensor:
    """Cross-entropy of integer class labels against logits."""
    return _reduce(nn.sparse_softmax_cross_entropy_with_logits(labels, logits), weights, reduction)


def sigmoid_cross_entropy(multi_class_labels: Any, logits: Any, weights: Any = 1.0,
                          reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of 0/1 labels against logits (stable)."""
    return _reduce(nn.sigmoid_cross_entropy_with_logits(multi_class_labels, logits),
                   weights, reduction)
