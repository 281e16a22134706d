"""An LSTM reads each 8x8 digit row by row (8 steps of 8 pixels) and classifies it.

LSTM(64) over the rows -> Dense(10, softmax); the recurrent loop is one graphc `scan`, so
the graph does not grow with the sequence length. Prints the test accuracy (>= 95 % with
the defaults) and time per epoch; writes lstm_sequence.png when matplotlib is installed.
`--cell gru` gives the GRU variant (examples/gru_sequence.py).

    python examples/lstm_sequence.py [--target cpu|reference|...] [--epochs 25] [--fast]
"""

from __future__ import annotations

import argparse

from _common import example_parser, fit_classifier

import graphc as gc
from graphc import datasets
from graphc.frontends import keras
from graphc.frontends.keras import layers as L

CELLS = {"lstm": L.LSTM, "gru": L.GRU, "simple_rnn": L.SimpleRNN}


def parse(argv: list[str] | None, epochs: int, cell: str) -> argparse.Namespace:
    p = example_parser(__doc__, epochs, plot=None)  # None: {cell}_sequence.png
    p.add_argument("--cell", default=cell, choices=sorted(CELLS))
    p.add_argument("--units", type=int, default=64)
    return p.parse_args(argv)


def build(cell: str, units: int) -> keras.Model:
    """A recurrent layer over the 8 rows, then a softmax classifier."""
    return keras.Sequential([keras.Input((8, 8)), CELLS[cell](units),
                             L.Dense(10, activation="softmax")])


def main(argv: list[str] | None = None, cell: str = "lstm") -> dict:
    """Train, evaluate, print and return {"test_accuracy", "test_loss", "epochs",
    "seconds_per_epoch", "target", "cell"}."""
    args = parse(argv, epochs=25, cell=cell)
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()  # (N, 8 rows, 8 pixels)
    epochs = args.epochs
    if args.fast:
        x_train, y_train, epochs = x_train[:600], y_train[:600], min(epochs, 5)
    with gc.Graph().as_default():
        model = build(args.cell, args.units)
    if args.plot is None:
        args.plot = f"{args.cell}_sequence.png"
    result = fit_classifier(model, (x_train, y_train), (x_test, y_test), args, epochs, 5e-3,
                            f"{args.cell.upper()} reading digit rows")
    return {**result, "cell": args.cell}


if __name__ == "__main__":
    main()
