"""``gc.regularizers``: weight penalties, Keras semantics.

Each factory returns a callable that maps a float Tensor ``w`` to a scalar Tensor of
``w``'s dtype, to be added to the loss::

    l1(scale)           scale * sum(|w|)
    l2(scale)           scale * sum(w ** 2)            (NOT halved)
    l1_l2(l1, l2)       l1 * sum(|w|) + l2 * sum(w ** 2)

``l2`` follows Keras (``keras.regularizers.l2``), **not** TF1's
``tf.contrib.layers.l2_regularizer``, which is ``scale * tf.nn.l2_loss(w)`` =
``scale * sum(w ** 2) / 2``; use ``l2(scale / 2)`` to get TF1's value. A zero coefficient
contributes nothing: with every coefficient zero the penalty is a constant 0 (so it has no
gradient), as in Keras (TF1 returned None there).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from graphc.errors import DTypeError
from graphc.graph import Tensor
from graphc.ops.elementwise import abs as _abs, square
from graphc.ops.reduce import reduce_sum
from graphc.ops.state import constant, convert_to_tensor

__all__ = ["Regularizer", "L1L2", "l1", "l2", "l1_l2"]


class Regularizer:
    """Base class: a callable ``Tensor -> scalar Tensor``."""

    def __call__(self, weights: Any) -> Tensor:
        raise NotImplementedError


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w ** 2)``; ``l1``, ``l2``: finite numbers >= 0."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:  # noqa: E741
        self.l1 = _scale("l1", l1)
        self.l2 = _scale("l2", l2)
        self._repr = f"l1_l2(l1={self.l1!r}, l2={self.l2!r})"

    def __call__(self, weights: Any) -> Tensor:
        w = weights if isinstance(weights, Tensor) else convert_to_tensor(weights)
        if not w.dtype.is_floating:
            raise DTypeError(f"{self!r}: the weights must be a float tensor, got {w.describe()}")
        penalty = None
        if self.l1:
            penalty = self.l1 * reduce_sum(_abs(w))
        if self.l2:
            term = self.l2 * reduce_sum(square(w))
            penalty = term if penalty is None else penalty + term
        if penalty is None:
            return constant(np.zeros((), w.dtype.np), graph=w.graph)
        return penalty

    def get_config(self) -> dict:
        """The coefficients, as Keras's ``get_config``."""
        return {"l1": self.l1, "l2": self.l2}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, L1L2) and (self.l1, self.l2) == (other.l1, other.l2)

    def __hash__(self) -> int:
        return hash((L1L2, self.l1, self.l2))

    def __repr__(self) -> str:
        return f"<gc.regularizers.{self._repr}>"


def l1(scale: float) -> L1L2:
    """``scale * sum(|w|)``."""
    reg = L1L2(l1=_scale("scale", scale))
    reg._repr = f"l1(scale={reg.l1!r})"
    return reg


def l2(scale: float) -> L1L2:
    """``scale * sum(w ** 2)`` (Keras's l2; not halved like TF1's ``l2_loss``)."""
    reg = L1L2(l2=_scale("scale", scale))
    reg._repr = f"l2(scale={reg.l2!r})"
    return reg


def l1_l2(l1: float = 0.0, l2: float = 0.0) -> L1L2:  # noqa: E741
    """``l1 * sum(|w|) + l2 * sum(w ** 2)``."""
    return L1L2(l1=l1, l2=l2)


def _scale(what: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"regularizer {what} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"regularizer {what} must be a finite number >= 0, got {value}")
    return value
