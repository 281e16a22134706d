"""BatchNormalization and LayerNormalization.

``BatchNormalization`` normalizes over every axis but ``axis`` (default 1: the channels of
NCHW images, and the features of ``(N, F)`` inputs). While training (the graph's training
flag is True) it uses the batch's statistics and updates the moving ones (its update ops
run with each training step); otherwise it uses the moving statistics. Keras defaults:
momentum 0.99, epsilon 1e-3.
"""

from __future__ import annotations

from typing import Any

from graphc.errors import ShapeError
from graphc.graph import Tensor
from graphc.shapes import format_shape
from graphc.frontends.keras.layers.base import Layer

__all__ = ["BatchNormalization", "LayerNormalization"]


class BatchNormalization(Layer):
    """Batch normalization with moving statistics (non-trainable weights)."""

    needs_training_flag = True

    def __init__(self, axis: int = 1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", moving_mean_initializer: Any = "zeros",
                 moving_variance_initializer: Any = "ones", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.inits = (gamma_initializer, beta_initializer, moving_mean_initializer,
                      moving_variance_initializer)

    def build(self, input_shape: Any) -> None:
        if input_shape is None or not -len(input_shape) <= self.axis < len(input_shape) or \
                input_shape[self.axis] is None:
            raise ShapeError(f"layer {self.name} (BatchNormalization): axis {self.axis} must be "
                             f"a known axis of the input, got {format_shape(input_shape)}")
        c = (input_shape[self.axis],)
        self.gamma = self.add_weight("gamma", c, self.inits[0]) if self.scale else None
        self.beta = self.add_weight("beta", c, self.inits[1]) if self.center else None
        self.moving_mean = self.add_weight("moving_mean", c, self.inits[2], trainable=False)
        self.moving_variance = self.add_weight("moving_variance", c, self.inits[3],
                                               trainable=False)

    def call(self, inputs: Tensor, training: Any = None) -> Tensor:
        from graphc.ops.normalization import batch_norm

        return batch_norm(inputs, self.gamma, self.beta, self.moving_mean, self.moving_variance,
                          training=training, momentum=self.momentum, eps=self.epsilon,
                          axis=self.axis)


class LayerNormalization(Layer):
    """Normalize each example over ``axis`` (default the last), then scale and shift
    (Keras's default epsilon 1e-3)."""

    def __init__(self, axis: int = -1, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis, self.epsilon = int(axis), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)

    def build(self, input_shape: Any) -> None:
        if input_shape is None or not -len(input_shape) <= self.axis < len(input_shape) or \
                input_shape[self.axis] is None:
            raise ShapeError(f"layer {self.name} (LayerNormalization): axis {self.axis} must be "
                             f"a known axis of the input, got {format_shape(input_shape)}")
        c = (input_shape[self.axis],)
        self.gamma = self.add_weight("gamma", c, "ones") if self.scale else None
        self.beta = self.add_weight("beta", c, "zeros") if self.center else None

    def call(self, inputs: Tensor, training: Any = None) -> Tensor:
        from graphc.ops.normalization import layer_norm

        return layer_norm(inputs, self.gamma, self.beta, axis=self.axis, eps=self.epsilon)
