"""Merge layers: Add, Concatenate."""

from __future__ import annotations

from typing import Any

import graphc as gc
from graphc.errors import ShapeError
from graphc.graph import Tensor
from graphc.shapes import format_shape
from graphc.frontends.keras.layers.base import Layer

__all__ = ["Add", "Concatenate"]


def _check_list(layer: Layer, input_shape: Any) -> None:
    if not isinstance(input_shape, list) or len(input_shape) < 2:
        raise ValueError(f"layer {layer.name} ({type(layer).__name__}) must be called on a "
                         "list of at least 2 tensors")


class Add(Layer):
    """The elementwise sum of a list of tensors of one shape."""

    def build(self, input_shape: Any) -> None:
        _check_list(self, input_shape)
        first = input_shape[0]
        for other in input_shape[1:]:
            if first is None or other is None or len(first) != len(other) or any(
                    a is not None and b is not None and a != b for a, b in zip(first, other)):
                raise ShapeError(f"layer {self.name} (Add): inputs must have one shape, got "
                                 + ", ".join(format_shape(s) for s in input_shape))

    def call(self, inputs: list[Tensor], training: Any = None) -> Tensor:
        out = inputs[0]
        for t in inputs[1:]:
            out = out + t
        return out


class Concatenate(Layer):
    """Join a list of tensors along ``axis`` (default -1, the last)."""

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = int(axis)

    def build(self, input_shape: Any) -> None:
        _check_list(self, input_shape)

    def call(self, inputs: list[Tensor], training: Any = None) -> Tensor:
        return gc.concat(list(inputs), axis=self.axis)
