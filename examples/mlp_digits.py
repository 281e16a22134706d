"""A multilayer perceptron on the 8x8 handwritten digits, with gc.keras.

64 pixels -> Dense(128, relu) -> Dense(64, relu) -> Dense(10, softmax), Adam, sparse
categorical cross-entropy, 10 % of the training set held out for validation. Prints the
test accuracy (>= 97 % with the defaults) and the time per epoch, and writes the training
curves to mlp_digits.png when matplotlib is installed.

    python examples/mlp_digits.py [--target cpu|reference|...] [--epochs 40] [--fast]
"""

from __future__ import annotations

from _common import example_parser, fit_classifier

from graphc import datasets
from graphc.frontends import keras



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
    args = example_parser(__doc__, epochs=40, plot="mlp_digits.png").parse_args(argv)
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    epochs = min(args.epochs, 8) if args.fast else args.epochs
    return fit_classifier(build(), (x_train.reshape(-1, 64), y_train),
                          (x_test.reshape(-1, 64), y_test), args, epochs, 3e-3,
                          "MLP on 8x8 digits")


if __name__ == "__main__":
    main()
