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
    p.add_argument("--plot", default="cnn_digits.png", help="curve PNG ('' for none)")
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    return p.parse_args(argv)


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
    args = parse(argv, epochs=30)
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    x_train, x_test = x_train[:, None], x_test[:, None]  # NCHW: one channel
    epochs = args.epochs
    if args.fast:
        x_train, y_train, epochs = x_train[:600], y_train[:600], min(epochs, 3)
    with gc.Graph().as_default():
        model = build()
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"], target=args.target)
    if args.verbose:
        model.summary()
    timer = keras.callbacks.EpochTimer()
    schedule = keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: 2e-3 * (0.5 ** (epoch // 10)))
    history = model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.1,
                        callbacks=[timer, schedule], verbose=args.verbose)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=256)
    target = model.session.target
    print(f"target {target}: test accuracy {accuracy:.4f}, test loss {loss:.4f} after "
          f"{epochs} epochs, {timer.per_epoch():.2f} s per epoch")
    if args.plot:
        keras.utils.try_plot_history(history, args.plot, title="CNN on 8x8 digits")
    return {"test_accuracy": accuracy, "test_loss": loss, "epochs": epochs,
            "seconds_per_epoch": timer.per_epoch(), "target": target}


if __name__ == "__main__":
    main()
