"""A LeNet-style convolutional network on the 8x8 digits, with batch norm and dropout.

Images are channels-first (N, 1, 8, 8), graphc's NCHW layout:
conv 3x3 (32) + BN + relu -> conv 3x3 (32) + BN + relu -> max-pool 2 -> dropout ->
conv 3x3 (64) + BN + relu -> max-pool 2 -> dense 128 + dropout -> dense 10 softmax.
Batch norm and dropout switch to inference mode in evaluate/predict through the graph's
training flag. Prints the test accuracy (>= 98 % with the defaults) and time per epoch;
writes cnn_digits.png (training curves) when matplotlib is installed.

    python examples/cnn_digits.py [--target cpu|reference|...] [--epochs 30] [--fast]
"""

from __future__ import annotations

from _common import example_parser, fit_classifier

import graphc as gc
from graphc import datasets
from graphc.frontends import keras
from graphc.frontends.keras import layers as L



def conv_bn(filters: int) -> list:
    """conv 3x3 'same' -> batch norm -> relu (the conv's bias is redundant before BN)."""
    return [L.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal"),
            L.BatchNormalization(momentum=0.9), L.Activation("relu")]


def build() -> keras.Model:
    """The CNN."""
    return keras.Sequential([
        keras.Input((1, 8, 8)),
        *conv_bn(32), *conv_bn(32), L.MaxPooling2D(2), L.Dropout(0.25),
        *conv_bn(64), L.MaxPooling2D(2),
        L.Flatten(), L.Dense(128, activation="relu", kernel_initializer="he_normal"),
        L.Dropout(0.5), L.Dense(10, activation="softmax"),
    ])


def main(argv: list[str] | None = None) -> dict:
    """Train, evaluate, print and return {"test_accuracy", "test_loss", "epochs",
    "seconds_per_epoch", "target"}."""
    args = example_parser(__doc__, epochs=30, plot="cnn_digits.png").parse_args(argv)
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    x_train, x_test = x_train[:, None], x_test[:, None]  # NCHW: one channel
    epochs = args.epochs
    if args.fast:
        x_train, y_train, epochs = x_train[:600], y_train[:600], min(epochs, 3)
    with gc.Graph().as_default():
        model = build()
    schedule = keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: 2e-3 * (0.5 ** (epoch // 10)))
    return fit_classifier(model, (x_train, y_train), (x_test, y_test), args, epochs, 2e-3,
                          "CNN on 8x8 digits", callbacks=[schedule])


if __name__ == "__main__":
    main()
