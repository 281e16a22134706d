"""Keras metrics as graph builders: ``metric(y_true, y_pred) -> scalar Tensor`` (the batch
mean); ``fit``/``evaluate`` average them over an epoch weighted by batch size (Keras's
running mean).

``"accuracy"`` / ``"acc"`` resolve from the loss as in Keras: sparse categorical accuracy
for ``sparse_categorical_crossentropy``, binary accuracy (threshold 0.5) for
``binary_crossentropy``, categorical accuracy otherwise when the output has more than one
unit. The history key is the name the user gave.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import graphc as gc
from graphc.graph import Tensor

__all__ = ["sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy",
           "mean_absolute_error", "mean_squared_error", "get", "METRICS"]


def _mean_float(t: Tensor, like: Tensor) -> Tensor:
    return gc.reduce_mean(gc.cast(t, like.dtype))


def sparse_categorical_accuracy(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """How often ``argmax(y_pred)`` equals the integer label."""
    return _mean_float(gc.equal(gc.argmax(y_pred, -1), gc.cast(y_true, gc.int64)), y_pred)


def categorical_accuracy(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """How often ``argmax(y_pred)`` equals ``argmax(y_true)`` (one-hot labels)."""
    return _mean_float(gc.equal(gc.argmax(y_pred, -1), gc.argmax(y_true, -1)), y_pred)


def binary_accuracy(y_true: Tensor, y_pred: Tensor, threshold: float = 0.5) -> Tensor:
    """How often ``y_pred > threshold`` matches ``y_true > threshold`` (the labels are
    thresholded too, so smoothed labels such as 0.9 count as 1; Keras compares them as
    they are)."""
    predicted = gc.greater(y_pred, threshold)
    actual = gc.greater(gc.cast(y_true, y_pred.dtype), threshold)
    return _mean_float(gc.equal(gc.cast(predicted, y_pred.dtype), gc.cast(actual, y_pred.dtype)),
                       y_pred)


def mean_absolute_error(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """``mean(|y_pred - y_true|)``."""
    return gc.losses.absolute_difference(gc.cast(y_true, y_pred.dtype), y_pred)


def mean_squared_error(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """``mean((y_pred - y_true) ** 2)``."""
    return gc.losses.mean_squared_error(gc.cast(y_true, y_pred.dtype), y_pred)


METRICS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "categorical_accuracy": categorical_accuracy, "binary_accuracy": binary_accuracy,
    "mae": mean_absolute_error, "mean_absolute_error": mean_absolute_error,
    "mse": mean_squared_error, "mean_squared_error": mean_squared_error,
}


def get(identifier: Any, loss_name: Optional[str] = None,
        output_units: Optional[int] = None) -> tuple[str, Callable[[Tensor, Tensor], Tensor]]:
    """``(history name, builder)`` for a metric name or callable; ``"accuracy"`` resolves
    from the loss (see the module docstring)."""
    if callable(identifier):
        return getattr(identifier, "__name__", "metric"), identifier
    if identifier in ("accuracy", "acc"):
        if loss_name == "sparse_categorical_crossentropy":
            return identifier, sparse_categorical_accuracy
        if loss_name == "binary_crossentropy" or output_units == 1:
            return identifier, binary_accuracy
        return identifier, categorical_accuracy
    if identifier in METRICS:
        return identifier, METRICS[identifier]
    raise ValueError(f"unknown metric {identifier!r}; use one of accuracy, "
                     f"{', '.join(METRICS)}, or a callable (y_true, y_pred) -> scalar Tensor")
