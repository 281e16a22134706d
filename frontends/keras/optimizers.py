"""Keras optimizers mapped onto ``gc.train``'s.

A Keras optimizer here is a small description: its hyperparameters, with
``learning_rate`` a plain attribute that callbacks (LearningRateScheduler,
ReduceLROnPlateau) may change between steps. ``compile`` turns it into a ``gc.train``
optimizer whose learning rate is a scalar placeholder, fed from that attribute on every
step, so changing it never recompiles.

Mapping and conventions (Keras 3 defaults and equations, where they differ from TF1's):

* ``SGD(learning_rate=0.01, momentum=0.0, nesterov=False)``: ``GradientDescentOptimizer``,
  or ``MomentumOptimizer`` for momentum > 0 (accumulator ``a = m a + g; w -= lr a``; Keras
  keeps ``v = m v - lr g``: the same steps while lr is constant).
* ``Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)``: ``AdamOptimizer``.
  Keras and TF1 use the same update (epsilon added to ``sqrt(v)`` outside the bias
  correction), so Keras's epsilon 1e-7 is passed through unchanged (TF1's default is 1e-8).
* ``RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False)``:
  ``RMSPropOptimizer`` with its mean-square slot started at **zeros** (Keras), not ones
  (TF1); epsilon inside the root in both.
* ``Adagrad(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7)``:
  ``AdagradOptimizer`` plus Keras's epsilon outside the root, ``g / (sqrt(acc) + eps)``.

``clipnorm`` / ``clipvalue`` are passed to ``gc.train`` (per-variable, as Keras).
"""

from __future__ import annotations

from typing import Any, Optional

import graphc as gc
from graphc.graph import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad", "get", "OPTIMIZERS"]


class Optimizer:
    """Base: ``learning_rate`` (a float, changeable between steps) and the clip options."""

    def __init__(self, learning_rate: float, clipnorm: Optional[float] = None,
                 clipvalue: Optional[float] = None) -> None:
        self.learning_rate = float(learning_rate)
        if not self.learning_rate > 0:
            raise ValueError(f"{type(self).__name__}: learning_rate must be > 0, got "
                             f"{learning_rate!r}")
        self.clipnorm, self.clipvalue = clipnorm, clipvalue

    @property
    def lr(self) -> float:
        """Keras's old name for :attr:`learning_rate`."""
        return self.learning_rate

    @lr.setter
    def lr(self, value: float) -> None:
        self.learning_rate = float(value)

    def build(self, learning_rate: Tensor) -> gc.train.Optimizer:
        """The ``gc.train`` optimizer that applies this rule with ``learning_rate``."""
        raise NotImplementedError

    def _clip(self) -> dict:
        return {"clipnorm": self.clipnorm, "clipvalue": self.clipvalue}

    def __repr__(self) -> str:
        return f"<gc.keras.optimizers.{type(self).__name__} learning_rate={self.learning_rate}>"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def build(self, learning_rate):
        if self.momentum == 0.0:
            return gc.train.GradientDescentOptimizer(learning_rate, name="SGD", **self._clip())
        return gc.train.MomentumOptimizer(learning_rate, self.momentum, self.nesterov,
                                          name="SGD", **self._clip())


class Adam(Optimizer):
    """Adam with Keras's defaults (epsilon 1e-7)."""

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def build(self, learning_rate):
        return gc.train.AdamOptimizer(learning_rate, self.beta_1, self.beta_2, self.epsilon,
                                      **self._clip())


class _KerasRMSProp(gc.train.RMSPropOptimizer):
    """TF1's RMSProp with the mean square started at zeros, as Keras."""

    def _create_slots(self, var):
        self._slot(var, "rms", 0.0)
        if self._centered:
            self._slot(var, "mg")
        self._slot(var, "momentum")


class RMSprop(Optimizer):
    """RMSprop with Keras's defaults and zero-initialized mean square."""

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)

    def build(self, learning_rate):
        return _KerasRMSProp(learning_rate, self.rho, self.momentum, self.epsilon,
                             self.centered, **self._clip())


class _KerasAdagrad(gc.train.AdagradOptimizer):
    """TF1's Adagrad plus Keras's epsilon outside the root."""

    def __init__(self, learning_rate, initial_accumulator_value, epsilon, **kwargs):
        super().__init__(learning_rate, initial_accumulator_value, **kwargs)
        self._keras_epsilon = epsilon

    def _apply_dense(self, grad, var, shared):
        accum = self.get_slot(var, "accumulator")
        accum_new = accum + grad * grad
        lr = self._hyper(self._learning_rate, var)
        return [(accum, accum_new),
                (var, var - lr * grad / (gc.sqrt(accum_new) + self._keras_epsilon))]


class Adagrad(Optimizer):
    """Adagrad with Keras's defaults."""

    def __init__(self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)

    def build(self, learning_rate):
        return _KerasAdagrad(learning_rate, self.initial_accumulator_value, self.epsilon,
                             **self._clip())


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adagrad": Adagrad}


def get(identifier: Any) -> Optimizer:
    """An optimizer by name (default hyperparameters) or an Optimizer object."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in OPTIMIZERS:
        return OPTIMIZERS[identifier.lower()]()
    if isinstance(identifier, gc.train.Optimizer):
        raise TypeError("compile() takes a gc.keras optimizer (its learning rate is fed per "
                        "step); use gc.keras.optimizers.SGD/Adam/RMSprop/Adagrad")
    raise ValueError(f"unknown optimizer {identifier!r}; use one of {', '.join(OPTIMIZERS)} "
                     "or a gc.keras.optimizers object")
