"""An LSTM reads each 8x8 digit row by row (8 steps of 8 pixels) and classifies it.

LSTM(64) over the rows -> Dense(10, softmax); the recurrent loop is one graphc `scan`, so
the graph does not grow with the sequence length. Prints the test accuracy (>= 95 % with
the defaults) and time per epoch; writes lstm_sequence.png when matplotlib is installed.
`--cell gru` gives the GRU variant (examples/gru_sequence.py).

    python examples/lstm_sequence.py [--target cpu|reference|...] [--epochs 25] [--fast]
"""

from __future__ import annotations

import argparse

import graphc as gc
from graphc import datasets
from graphc.frontends import keras
from graphc.frontends.keras import layers as L

CELLS = {"lstm": L.LSTM, "gru": L.GRU, "simple_rnn": L.SimpleRNN}


def parse(argv: list[str] | None, epochs: int, cell: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="cpu", help="graphc target (cpu falls back to the "
                   "default target while it is not built)")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--cell", default=cell, choices=sorted(CELLS))
    p.add_argument("--units", type=int, default=64)
    p.add_argument("--fast", action="store_true", help="a short run for the tests")
    p.add_argument("--plot", default=None, help="curve PNG (default: {cell}_sequence.png; "
                   "'' for none)")
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
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
    model.compile(keras.optimizers.Adam(5e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"], target=args.target)
    if args.verbose:
        model.summary()
    timer = keras.callbacks.EpochTimer()
    history = model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.1,
                        callbacks=[timer], verbose=args.verbose)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=256)
    target = model.session.target
    print(f"{args.cell} on {target}: test accuracy {accuracy:.4f}, test loss {loss:.4f} after "
          f"{epochs} epochs, {timer.per_epoch():.2f} s per epoch")
    plot = f"{args.cell}_sequence.png" if args.plot is None else args.plot
    if plot:
        keras.utils.try_plot_history(history, plot, title=f"{args.cell.upper()} reading digit "
                                     "rows")
    return {"test_accuracy": accuracy, "test_loss": loss, "epochs": epochs,
            "seconds_per_epoch": timer.per_epoch(), "target": target, "cell": args.cell}


if __name__ == "__main__":
    main()
