"""Keras losses as graph builders: ``loss(y_true, y_pred) -> scalar Tensor`` (the batch mean).

Probability outputs: when ``y_pred`` came from a softmax/sigmoid activation of a layer, the
cross-entropies use the recorded logits instead (stable and exact, as Keras does for its
outputs); otherwise probabilities are clipped to ``[1e-7, 1 - 1e-7]`` (Keras's epsilon).
``from_logits=True`` says ``y_pred`` already is logits.
"""

from __future__ import annotations

from typing import Any, Callable

import graphc as gc
from graphc.graph import Tensor, warn_user
from graphc.frontends.keras import backend

__all__ = ["MeanSquaredError", "MeanAbsoluteError", "Huber", "BinaryCrossentropy",
           "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "get", "LOSSES"]

EPSILON = 1e-7


class Loss:
    """Base: callable ``(y_true, y_pred) -> scalar``; ``sparse`` says the labels are class
    indices (an integer tensor of ``y_pred``'s shape without its last axis)."""

    name = "loss"
    sparse = False

    def __call__(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<gc.keras.losses.{type(self).__name__}>"


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def __call__(self, y_true, y_pred):
        return gc.losses.mean_squared_error(y_true, y_pred)


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"

    def __call__(self, y_true, y_pred):
        return gc.losses.absolute_difference(y_true, y_pred)


class Huber(Loss):
    name = "huber"

    def __init__(self, delta: float = 1.0) -> None:
        self.delta = float(delta)

    def __call__(self, y_true, y_pred):
        return gc.losses.huber_loss(y_true, y_pred, delta=self.delta)


# Ops whose output is a linear map's: a model ending in one (a Dense without activation)
# outputs logits, not probabilities.
_LINEAR_OUTPUTS = ("matmul", "add", "conv2d", "conv")


def _logits(y_pred: Tensor, from_logits: bool, loss: str) -> Any:
    if from_logits:
        return y_pred
    logits = backend.logits_of(y_pred)
    if logits is None and y_pred.node.op in _LINEAR_OUTPUTS:
        # Keras's default reads y_pred as probabilities and clips them to [1e-7, 1 - 1e-7]:
        # logits there give a loss of 5-16 that barely moves, with no error to say why.
        warn_user(f"{loss}: the model's output comes from {y_pred.node.op!r} with no softmax "
                  "or sigmoid activation, but from_logits=False reads it as probabilities "
                  "(clipped to [1e-7, 1 - 1e-7]); if it is logits, pass from_logits=True to "
                  "the loss, or give the last layer an activation")
    return logits


class BinaryCrossentropy(Loss):
    name = "binary_crossentropy"

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = bool(from_logits)

    def __call__(self, y_true, y_pred):
        logits = _logits(y_pred, self.from_logits, self.name)
        if logits is not None:
            return gc.losses.sigmoid_cross_entropy(y_true, logits)
        p = gc.clip_by_value(y_pred, EPSILON, 1.0 - EPSILON)
        return gc.reduce_mean(-(y_true * gc.log(p) + (1.0 - y_true) * gc.log(1.0 - p)))


class CategoricalCrossentropy(Loss):
    name = "categorical_crossentropy"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0) -> None:
        self.from_logits, self.label_smoothing = bool(from_logits), float(label_smoothing)

    def __call__(self, y_true, y_pred):
        logits = _logits(y_pred, self.from_logits, self.name)
        if logits is not None:
            return gc.losses.softmax_cross_entropy(y_true, logits,
                                                   label_smoothing=self.label_smoothing)
        if self.label_smoothing:
            k = float(y_pred.shape[-1])
            y_true = y_true * (1.0 - self.label_smoothing) + self.label_smoothing / k
        p = y_pred / gc.reduce_sum(y_pred, -1, keepdims=True)
        p = gc.clip_by_value(p, EPSILON, 1.0 - EPSILON)
        return gc.reduce_mean(-gc.reduce_sum(y_true * gc.log(p), -1))


class SparseCategoricalCrossentropy(Loss):
    name = "sparse_categorical_crossentropy"
    sparse = True

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = bool(from_logits)

    def __call__(self, y_true, y_pred):
        logits = _logits(y_pred, self.from_logits, self.name)
        if logits is not None:
            return gc.losses.sparse_softmax_cross_entropy(y_true, logits)
        onehot = gc.one_hot(y_true, y_pred.shape[-1], dtype=y_pred.dtype)
        p = gc.clip_by_value(y_pred, EPSILON, 1.0 - EPSILON)
        return gc.reduce_mean(-gc.reduce_sum(onehot * gc.log(p), -1))


LOSSES: dict[str, Callable[[], Loss]] = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def get(identifier: Any) -> Any:
    """A loss by Keras name, a Loss object, or any callable ``(y_true, y_pred) -> scalar``."""
    if isinstance(identifier, str):
        if identifier not in LOSSES:
            raise ValueError(f"unknown loss {identifier!r}; use one of {', '.join(LOSSES)}, or "
                             "a callable (y_true, y_pred) -> scalar Tensor")
        return LOSSES[identifier]()
    if callable(identifier):
        return identifier
    raise TypeError(f"loss must be a name or a callable, got {identifier!r}")
