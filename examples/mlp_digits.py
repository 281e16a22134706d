"""A multilayer perceptron on the 8x8 handwritten digits, with gc.keras.

64 pixels -> Dense(128, relu) -> Dense(64, relu) -> Dense(10, softmax), Adam, sparse
categorical cross-entropy, 10 % of the training set held out for validation. Prints the
test accuracy (>= 97 % with the defaults) and the time per epoch, and writes the training
curves to mlp_digits.png when matplotlib is installed.

    python examples/mlp_digits.py [--target cpu|reference|...] [--epochs 40] [--fast]
"""

from __future__ import annotations

import argparse

from graphc import datasets
from graphc.frontends import keras


def parse(argv: list[str] | None, epochs: int) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="cpu", help="graphc target (cpu falls back to the "
                   "default target while it is not built)")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--fast", action="store_true", help="a short run for the tests")
    p.add_argument("--plot", default="mlp_digits.png", help="curve PNG ('' for none)")
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    return p.parse_args(argv)


def build() -> keras.Model:
    """The MLP."""
    return keras.Sequential([
        keras.layers.Dense(128, activation="relu", kernel_initializer="he_normal",
                           input_shape=(64,)),
        keras.layers.Dense(64, activation="relu", kernel_initializer="he_normal"),
        keras.layers.Dense(10, activation="softmax"),
    ])


def main(argv: list[str] | None = None) -> dict:
    """Train, evaluate, print and return {"test_accuracy", "test_loss", "epochs",
    "seconds_per_epoch", "target"}."""
    args = parse(argv, epochs=40)
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    x_train, x_test = x_train.reshape(-1, 64), x_test.reshape(-1, 64)
    epochs = min(args.epochs, 8) if args.fast else args.epochs
    model = build()
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"], target=args.target)
    if args.verbose:
        model.summary()
    timer = keras.callbacks.EpochTimer()
    history = model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.1,
                        callbacks=[timer], verbose=args.verbose)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=256)
    target = model.session.target
    print(f"target {target}: test accuracy {accuracy:.4f}, test loss {loss:.4f} after "
          f"{epochs} epochs, {timer.per_epoch() * 1000:.0f} ms per epoch")
    if args.plot:
        keras.utils.try_plot_history(history, args.plot, title="MLP on 8x8 digits")
    return {"test_accuracy": accuracy, "test_loss": loss, "epochs": epochs,
            "seconds_per_epoch": timer.per_epoch(), "target": target}


if __name__ == "__main__":
    main()
