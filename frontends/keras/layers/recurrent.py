"""Recurrent layers: SimpleRNN, LSTM, GRU over batch-major ``(N, T, features)`` inputs.

They call ``gc.nn``'s ``simple_rnn`` / ``lstm`` / ``gru`` (one ``scan`` over time) with
Keras's weight layouts: ``kernel`` ``(I, G*H)``, ``recurrent_kernel`` ``(H, G*H)``, gates
side by side in Keras's order (LSTM i, f, c, o; GRU z, r, h). LSTM's forget-gate bias
starts at 1 (``unit_forget_bias``); GRU is Keras's ``reset_after=True`` variant with an
input and a recurrent bias. ``return_sequences`` gives every step's output ``(N, T, H)``;
``return_state`` adds the final states: ``[output, h]`` (``[output, h, c]`` for LSTM).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.errors import ShapeError
from graphc.graph import Tensor
from graphc.shapes import format_shape
from graphc.frontends.keras.layers.base import Layer, get_initializer

__all__ = ["SimpleRNN", "LSTM", "GRU"]


class _RNN(Layer):
    gates = 1

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 return_sequences: bool = False, return_state: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"{type(self).__name__}: units must be a positive int, got {units!r}")
        self.units, self.activation, self.use_bias = units, activation, bool(use_bias)
        self.kernel_initializer, self.recurrent_initializer = kernel_initializer, recurrent_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer, self.recurrent_regularizer = kernel_regularizer, recurrent_regularizer
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)

    def build(self, input_shape: Any) -> None:
        if input_shape is None or len(input_shape) != 3 or input_shape[-1] is None:
            raise ShapeError(f"layer {self.name} ({type(self).__name__}) expects (N, T, "
                             f"features) with known features, got {format_shape(input_shape)}")
        gh = self.gates * self.units
        self.kernel = self.add_weight("kernel", (input_shape[-1], gh), self.kernel_initializer,
                                      self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, gh),
                                                self._recurrent_init(),
                                                self.recurrent_regularizer)
        self.bias = self.add_weight("bias", (gh,), self._bias_init()) if self.use_bias else None

    def _recurrent_init(self) -> Any:
        # Keras's orthogonal recurrent kernel is orthogonal per gate block (H, H)
        init = get_initializer(self.recurrent_initializer)
        gates, units = self.gates, self.units

        def per_gate(shape, dtype=None, seed=None):
            rng = np.random.default_rng(seed)
            blocks = [init((units, units), dtype, seed=int(rng.integers(2**31)))
                      for _ in range(gates)]
            return np.concatenate(blocks, axis=1)
        return per_gate

    def _bias_init(self) -> Any:
        return self.bias_initializer

    def _finish(self, outputs: Tensor, states: list[Tensor]) -> Any:
        out = outputs if self.return_sequences else states[0]
        return [out, *states] if self.return_state else out


class SimpleRNN(_RNN):
    """``h' = activation(x_t @ kernel + bias + h @ recurrent_kernel)``."""

    def call(self, inputs: Tensor, training: Any = None) -> Any:
        from graphc.ops.rnn import simple_rnn

        outputs, h = simple_rnn(inputs, self.kernel, self.recurrent_kernel, self.bias,
                                activation=self.activation, time_major=False)
        return self._finish(outputs, [h])


class LSTM(_RNN):
    """Long short-term memory (gates i, f, c, o; forget bias initialized to 1)."""

    gates = 4

    def __init__(self, units: int, unit_forget_bias: bool = True, **kwargs: Any) -> None:
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_init(self) -> Any:
        base = get_initializer(self.bias_initializer)
        if not self.unit_forget_bias:
            return base
        units = self.units

        def forget_one(shape, dtype=None, seed=None):
            b = base(shape, dtype, seed=seed)
            b[units:2 * units] = 1.0
            return b
        return forget_one

    def call(self, inputs: Tensor, training: Any = None) -> Any:
        from graphc.ops.rnn import lstm

        outputs, (h, c) = lstm(inputs, self.kernel, self.recurrent_kernel, self.bias,
                               time_major=False)
        return self._finish(outputs, [h, c])


class GRU(_RNN):
    """Gated recurrent unit, Keras's ``reset_after=True`` form (gates z, r, h)."""

    gates = 3

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        self.recurrent_bias = self.add_weight("recurrent_bias", (3 * self.units,),
                                              self.bias_initializer) if self.use_bias else None

    def call(self, inputs: Tensor, training: Any = None) -> Any:
        from graphc.ops.rnn import gru

        outputs, h = gru(inputs, self.kernel, self.recurrent_kernel, self.bias,
                         self.recurrent_bias, time_major=False, linear_before_reset=True)
        return self._finish(outputs, [h])
