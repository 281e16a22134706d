"""Core layers: Dense, Activation, Flatten, Reshape, Dropout, Embedding."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import graphc as gc
from graphc.errors import ShapeError
from graphc.graph import Tensor
from graphc.shapes import format_shape
from graphc.frontends.keras.layers.base import Layer, activate, get_activation

__all__ = ["Dense", "Activation", "Flatten", "Reshape", "Dropout", "Embedding"]


class Dense(Layer):
    """``activation(x @ kernel + bias)``, kernel ``(in, out)``; on inputs of rank > 2 it acts
    on the last axis (as Keras)."""

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"Dense: units must be a positive int, got {units!r}")
        self.units = units
        self.activation = get_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer

    def build(self, input_shape: Any) -> None:
        if input_shape is None or len(input_shape) < 2 or input_shape[-1] is None:
            raise ShapeError(f"layer {self.name} (Dense) needs inputs of rank >= 2 with a known "
                             f"last axis, got {format_shape(input_shape)}")
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units),
                                      self.kernel_initializer, self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.units,), self.bias_initializer,
                                    self.bias_regularizer) if self.use_bias else None

    def call(self, inputs: Tensor, training: Any = None) -> Tensor:
        out = gc.matmul(inputs, self.kernel)
        if self.bias is not None:
            out = out + self.bias
        return activate(self.activation, out)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}


class Activation(Layer):
    """An activation by name or callable, as a layer."""

    def __init__(self, activation: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = get_activation(activation)

    def call(self, inputs: Tensor, training: Any = None) -> Tensor:
        return activate(self.activation, gc.identity(inputs))


class Flatten(Layer):
    """``(N, d1, d2, ...) -> (N, d1 * d2 * ...)``; the non-batch dims must be known."""

    def build(self, input_shape: Any) -> None:
        if input_shape is None or any(d is None for d in input_shape[1:]):
            raise ShapeError(f"layer {self.name} (Flatten) needs known non-batch dims, got "
                             f"{format_shape(input_shape)}")

    def call(self, inputs: Tensor, training: Any = None) -> Tensor:
        return gc.reshape(inputs, (-1, math.prod(inputs.shape[1:])))


class Reshape(Layer):
    """Reshape to ``(N, *target_shape)``; one entry of ``target_shape`` may be -1."""

    def __init__(self, target_shape: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)

    def build(self, input_shape: Any) -> None:
        known = input_shape is not None and all(d is not None for d in input_shape[1:])
        if known and -1 not in self.target_shape and \
                math.prod(input_shape[1:]) != math.prod(self.target_shape):
            raise ShapeError(f"layer {self.name} (Reshape): cannot reshape "
                             f"{format_shape(input_shape)} to (None, "
                             f"{', '.join(map(str, self.target_shape))}): the sizes differ")

    def call(self, inputs: Tensor, training: Any = None) -> Tensor:
        return gc.reshape(inputs, (-1, *self.target_shape))


class Dropout(Layer):
    """Zero a ``rate`` fraction of the inputs while training (scaling the rest by
    ``1 / (1 - rate)``); the identity at inference. Driven by the training flag."""

    needs_training_flag = True

    def __init__(self, rate: float, seed: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate!r}")
        self.rate, self.seed = float(rate), seed

    def call(self, inputs: Tensor, training: Any = None) -> Tensor:
        from graphc.ops.dropout import dropout

        return dropout(inputs, self.rate, training=training, seed=self.seed)


class Embedding(Layer):
    """Integer ids ``(N, ...)`` -> vectors ``(N, ..., output_dim)`` from a trainable table."""

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer: Any = "random_uniform",
                 embeddings_regularizer: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = embeddings_initializer
        self.embeddings_regularizer = embeddings_regularizer

    def build(self, input_shape: Any) -> None:
        # gc.init.random_uniform defaults to Keras's [-0.05, 0.05]
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer,
                                          self.embeddings_regularizer)

    def call(self, inputs: Tensor, training: Any = None) -> Tensor:
        from graphc.ops.embedding import embedding_lookup

        if not inputs.dtype.is_integer:
            inputs = gc.cast(inputs, gc.int64)  # Keras accepts float ids
        return embedding_lookup(self.embeddings, inputs)
