"""Convolution and pooling layers, channels-first.

graphc's images are **NCHW** (batch, channels, height, width) and conv kernels **OIHW**
(out channels, in channels / groups, kh, kw), as ONNX and PyTorch, not Keras's default
NHWC/HWIO. ``data_format`` accepts only ``"channels_first"`` and says so otherwise.
``Conv2DTranspose`` kernels are ``(in channels, filters, kh, kw)`` (PyTorch's layout).
"""

from __future__ import annotations

from typing import Any

import graphc as gc
from graphc.graph import Tensor
from graphc.frontends.keras.layers.base import Layer, activate, get_activation

__all__ = ["Conv2D", "Conv2DTranspose", "MaxPooling2D", "AveragePooling2D",
           "GlobalAveragePooling2D"]


def _padding(padding: Any, layer: str) -> Any:
    if isinstance(padding, str):
        if padding.lower() not in ("valid", "same"):
            raise ValueError(f"{layer}: padding must be 'valid', 'same' or ints, got {padding!r}")
        return padding.upper()
    return padding


def _channels_first(data_format: Any, layer: str) -> None:
    if data_format not in (None, "channels_first", "NCHW"):
        raise ValueError(f"{layer}: graphc layers are channels-first (NCHW); got data_format="
                         f"{data_format!r}. Transpose NHWC images with x.transpose(0, 3, 1, 2)")


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


class Conv2D(Layer):
    """2-D convolution over NCHW inputs: ``filters`` output channels, kernel OIHW."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: Any = "valid",
                 data_format: Any = None, dilation_rate: Any = 1, groups: int = 1,
                 activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _channels_first(data_format, type(self).__name__)
        self.filters, self.kernel_size = int(filters), _pair(kernel_size)
        self.strides, self.dilation_rate = strides, dilation_rate
        self.padding, self.groups = _padding(padding, type(self).__name__), int(groups)
        self.activation, self.use_bias = get_activation(activation), bool(use_bias)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer

    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        if channels % self.groups or self.filters % self.groups:
            raise ValueError(f"layer {self.name}: channels ({channels}) and filters "
                             f"({self.filters}) must be multiples of groups ({self.groups})")
        return (self.filters, channels // self.groups, *self.kernel_size)

    def build(self, input_shape: Any) -> None:
        self.check_rank(input_shape, 4, "NCHW images (N, C, H, W)")
        if input_shape[1] is None:
            raise ValueError(f"layer {self.name}: the channel axis (1, NCHW) must be known")
        self.kernel = self.add_weight("kernel", self._kernel_shape(input_shape[1]),
                                      self.kernel_initializer, self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                    self.bias_regularizer) if self.use_bias else None

    def _conv(self, inputs: Tensor) -> Tensor:
        from graphc.ops.conv import conv2d

        return conv2d(inputs, self.kernel, strides=self.strides, padding=self.padding,
                      dilations=self.dilation_rate, groups=self.groups)

    def call(self, inputs: Tensor, training: Any = None) -> Tensor:
        out = self._conv(inputs)
        if self.bias is not None:
            out = gc.nn.bias_add(out, self.bias, data_format="NCHW")
        return activate(self.activation, out)


class Conv2DTranspose(Conv2D):
    """Transposed convolution over NCHW inputs (kernel ``(C_in, filters, kh, kw)``);
    ``"same"`` padding multiplies H and W by the strides, as Keras."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: Any = "valid",
                 **kwargs: Any) -> None:
        super().__init__(filters, kernel_size, strides, padding, **kwargs)

    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        if self.groups != 1:
            raise ValueError(f"layer {self.name}: Conv2DTranspose supports groups=1 only")
        return (channels, self.filters, *self.kernel_size)

    def _conv(self, inputs: Tensor) -> Tensor:
        from graphc.ops.conv import conv2d_transpose

        return conv2d_transpose(inputs, self.kernel, strides=self.strides, padding=self.padding,
                                dilations=self.dilation_rate)


class _Pool(Layer):
    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: Any = "valid",
                 data_format: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _channels_first(data_format, type(self).__name__)
        self.pool_size, self.strides = pool_size, strides
        self.padding = _padding(padding, type(self).__name__)

    def build(self, input_shape: Any) -> None:
        self.check_rank(input_shape, 4, "NCHW images (N, C, H, W)")


class MaxPooling2D(_Pool):
    """The maximum over ``pool_size`` windows (strides default to ``pool_size``)."""

    def call(self, inputs: Tensor, training: Any = None) -> Tensor:
        from graphc.ops.pool import max_pool2d

        return max_pool2d(inputs, self.pool_size, self.strides, self.padding)


class AveragePooling2D(_Pool):
    """The mean over ``pool_size`` windows (padded cells not counted)."""

    def call(self, inputs: Tensor, training: Any = None) -> Tensor:
        from graphc.ops.pool import avg_pool2d

        return avg_pool2d(inputs, self.pool_size, self.strides, self.padding)


class GlobalAveragePooling2D(Layer):
    """``(N, C, H, W) -> (N, C)``: the mean over H and W."""

    def __init__(self, data_format: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _channels_first(data_format, type(self).__name__)

    def build(self, input_shape: Any) -> None:
        self.check_rank(input_shape, 4, "NCHW images (N, C, H, W)")

    def call(self, inputs: Tensor, training: Any = None) -> Tensor:
        from graphc.ops.pool import global_avg_pool2d

        return global_avg_pool2d(inputs)
