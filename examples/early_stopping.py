"""Regularization and early stopping: an over-sized MLP on the 8x8 digits with L2 weight
penalties and dropout, stopped by EarlyStopping on a validation split.

EarlyStopping watches val_loss, waits `--patience` epochs without an improvement of at
least 0.001, then stops
and restores the best epoch's weights. The script prints where it stopped, the best epoch
and the test accuracy, and writes early_stopping.png when matplotlib is installed.

    python examples/early_stopping.py [--target cpu|reference|...] [--epochs 200] [--fast]
"""

from __future__ import annotations

import argparse

from _common import example_parser

import graphc as gc
from graphc import datasets
from graphc.frontends import keras
from graphc.frontends.keras import layers as L


def parse(argv: list[str] | None, epochs: int) -> argparse.Namespace:
    p = example_parser(__doc__, epochs, plot="early_stopping.png")
    p.add_argument("--patience", type=int, default=5)
    return p.parse_args(argv)


def build(l2: float = 1e-4) -> keras.Model:
    """Two wide hidden layers with L2 penalties and dropout."""
    reg = gc.regularizers.l2(l2)
    return keras.Sequential([
        keras.Input((64,)),
        L.Dense(512, activation="relu", kernel_initializer="he_normal", kernel_regularizer=reg),
        L.Dropout(0.3),
        L.Dense(512, activation="relu", kernel_initializer="he_normal", kernel_regularizer=reg),
        L.Dropout(0.3),
        L.Dense(10, activation="softmax", kernel_regularizer=reg),
    ])


def main(argv: list[str] | None = None) -> dict:
    """Train until early stopping; print and return {"test_accuracy", "stopped_epoch",
    "best_epoch", "epochs_run", "best_val_loss", "seconds_per_epoch", "target"}."""
    args = parse(argv, epochs=200)
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    x_train, x_test = x_train.reshape(-1, 64), x_test.reshape(-1, 64)
    patience = args.patience
    if args.fast:
        x_train, y_train, patience = x_train[:600], y_train[:600], min(patience, 2)
    with gc.Graph().as_default():
        model = build()
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"], target=args.target)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, min_delta=1e-3,
                                         restore_best_weights=True, verbose=1)
    timer = keras.callbacks.EpochTimer()
    history = model.fit(x_train, y_train, batch_size=64, epochs=args.epochs,
                        validation_split=0.2, callbacks=[stop, timer], verbose=args.verbose)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=256)
    epochs_run = len(history.epoch)
    target = model.session.target
    best_val = min(history.history["val_loss"])
    print(f"target {target}: ran {epochs_run} of at most {args.epochs} epochs; best val_loss "
          f"{best_val:.4f} at epoch {stop.best_epoch + 1} (weights restored from it)")
    print(f"test accuracy {accuracy:.4f}, test loss {loss:.4f}, "
          f"{timer.per_epoch() * 1000:.0f} ms per epoch")
    if args.plot:
        keras.utils.try_plot_history(history, args.plot,
                                     title="L2 + dropout + early stopping (digits)")
    return {"test_accuracy": accuracy, "stopped_epoch": stop.stopped_epoch,
            "best_epoch": stop.best_epoch, "epochs_run": epochs_run, "best_val_loss": best_val,
            "seconds_per_epoch": timer.per_epoch(), "target": target}


if __name__ == "__main__":
    main()
