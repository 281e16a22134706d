"""A small residual network on the 8x8 digits, built with the functional API.

stem conv 3x3 (32) -> two residual blocks (conv-BN-relu-conv-BN + identity, relu) ->
a downsampling block (stride 2, 1x1 projection shortcut, 64 channels) -> global average
pooling -> dense 10 softmax. Images are NCHW (N, 1, 8, 8). Prints the test accuracy and
time per epoch; writes resnet_digits.png when matplotlib is installed.

    python examples/resnet_digits.py [--target cpu|reference|...] [--epochs 20] [--fast]
"""

from __future__ import annotations

from _common import example_parser, fit_classifier

import graphc as gc
from graphc import datasets
from graphc.frontends import keras
from graphc.frontends.keras import layers as L



def conv_bn(x: gc.Tensor, filters: int, kernel: int = 3, strides: int = 1) -> gc.Tensor:
    """conv (no bias: BN follows) -> batch norm."""
    x = L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                 kernel_initializer="he_normal")(x)
    return L.BatchNormalization(momentum=0.9)(x)


def residual_block(x: gc.Tensor, filters: int, strides: int = 1) -> gc.Tensor:
    """relu(F(x) + shortcut(x)); the shortcut is a strided 1x1 conv when the shape changes."""
    shortcut = x
    if strides != 1 or x.shape[1] != filters:
        shortcut = conv_bn(x, filters, kernel=1, strides=strides)
    y = L.Activation("relu")(conv_bn(x, filters, strides=strides))
    y = conv_bn(y, filters)
    return L.Activation("relu")(L.Add()([y, shortcut]))


def build() -> keras.Model:
    """The residual network, as a functional Model."""
    inputs = keras.Input((1, 8, 8), name="image")
    x = L.Activation("relu")(conv_bn(inputs, 32))
    x = residual_block(x, 32)
    x = residual_block(x, 32)
    x = residual_block(x, 64, strides=2)
    x = L.GlobalAveragePooling2D()(x)
    outputs = L.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="resnet_digits")


def main(argv: list[str] | None = None) -> dict:
    """Train, evaluate, print and return {"test_accuracy", "test_loss", "epochs",
    "seconds_per_epoch", "target", "params"}."""
    args = example_parser(__doc__, epochs=20, plot="resnet_digits.png").parse_args(argv)
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    x_train, x_test = x_train[:, None], x_test[:, None]
    epochs = args.epochs
    if args.fast:
        x_train, y_train, epochs = x_train[:400], y_train[:400], min(epochs, 2)
    with gc.Graph().as_default():
        model = build()
    plateau = keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=3, min_lr=1e-4)
    result = fit_classifier(model, (x_train, y_train), (x_test, y_test), args, epochs, 2e-3,
                            "ResNet on 8x8 digits", callbacks=[plateau])
    print(f"{model.count_params():,} parameters")
    return {**result, "params": model.count_params()}


if __name__ == "__main__":
    main()
