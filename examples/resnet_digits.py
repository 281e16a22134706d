"""A small residual network on the 8x8 digits, built with the functional API.

stem conv 3x3 (32) -> two residual blocks (conv-BN-relu-conv-BN + identity, relu) ->
a downsampling block (stride 2, 1x1 projection shortcut, 64 channels) -> global average
pooling -> dense 10 softmax. Images are NCHW (N, 1, 8, 8). Prints the test accuracy and
time per epoch; writes resnet_digits.png when matplotlib is installed.

    python examples/resnet_digits.py [--target cpu|reference|...] [--epochs 20] [--fast]
"""

from __future__ import annotations

import argparse

import graphc as gc
from graphc import datasets
from graphc.frontends import keras
from graphc.frontends.keras import layers as L


def parse(argv: list[str] | None, epochs: int) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="cpu", help="graphc target (cpu falls back to the "
                   "default target while it is not built)")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--fast", action="store_true", help="a short run for the tests")
    p.add_argument("--plot", default="resnet_digits.png", help="curve PNG ('' for none)")
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    return p.parse_args(argv)


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
    args = parse(argv, epochs=20)
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    x_train, x_test = x_train[:, None], x_test[:, None]
    epochs = args.epochs
    if args.fast:
        x_train, y_train, epochs = x_train[:400], y_train[:400], min(epochs, 2)
    with gc.Graph().as_default():
        model = build()
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"], target=args.target)
    if args.verbose:
        model.summary()
    timer = keras.callbacks.EpochTimer()
    plateau = keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=3, min_lr=1e-4)
    history = model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.1,
                        callbacks=[timer, plateau], verbose=args.verbose)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=256)
    target = model.session.target
    print(f"target {target}: test accuracy {accuracy:.4f}, test loss {loss:.4f} after "
          f"{epochs} epochs, {timer.per_epoch():.2f} s per epoch, "
          f"{model.count_params():,} parameters")
    if args.plot:
        keras.utils.try_plot_history(history, args.plot, title="ResNet on 8x8 digits")
    return {"test_accuracy": accuracy, "test_loss": loss, "epochs": epochs,
            "seconds_per_epoch": timer.per_epoch(), "target": target,
            "params": model.count_params()}


if __name__ == "__main__":
    main()
