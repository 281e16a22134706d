"""What the gc.keras examples share: their command-line flags, and the train / evaluate /
report loop of the digit classifiers. (Examples run as `python examples/NAME.py`, which puts
this folder on sys.path.)"""

from __future__ import annotations

import argparse
from typing import Any, Sequence

from graphc.frontends import keras


def example_parser(doc: str, epochs: int, plot: str | None, verbose: int = 2) -> argparse.ArgumentParser:
    """A parser with the flags every example takes; add an example's own before parsing."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--target", default="cpu", help="graphc target: cpu (the default), "
                   "cuda (an NVIDIA GPU), onnx or reference")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--fast", action="store_true", help="a short run for the tests")
    p.add_argument("--plot", default=plot, help="curve PNG ('' for none)")
    p.add_argument("--verbose", type=int, default=verbose, choices=(0, 1, 2))
    return p


def fit_classifier(model: keras.Model, train: tuple, test: tuple, args: argparse.Namespace,
                   epochs: int, learning_rate: float, title: str,
                   callbacks: Sequence[Any] = ()) -> dict:
    """Compile with Adam and sparse cross-entropy, fit with a 10 % validation split, evaluate,
    print the result line, plot the curves; returns {"test_accuracy", "test_loss", "epochs",
    "seconds_per_epoch", "target"}."""
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy",
                  metrics=["accuracy"], target=args.target)
    if args.verbose:
        model.summary()
    timer = keras.callbacks.EpochTimer()
    history = model.fit(*train, batch_size=32, epochs=epochs, validation_split=0.1,
                        callbacks=[timer, *callbacks], verbose=args.verbose)
    loss, accuracy = model.evaluate(*test, batch_size=256)
    target = model.session.target
    print(f"{title} on {target}: test accuracy {accuracy:.4f}, test loss {loss:.4f} after "
          f"{epochs} epochs, {timer.per_epoch():.2f} s per epoch")
    if args.plot:
        keras.utils.try_plot_history(history, args.plot, title=title)
    return {"test_accuracy": accuracy, "test_loss": loss, "epochs": epochs,
            "seconds_per_epoch": timer.per_epoch(), "target": target}
