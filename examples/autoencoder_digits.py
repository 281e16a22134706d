"""Autoencoders on the 8x8 digits: a dense one and a convolutional one.

dense: 64 -> 32 -> 8 (the code) -> 32 -> 64 sigmoid.
conv:  (1, 8, 8) -> conv 3x3/2 (16) -> conv 3x3/2 (8)  [code (8, 2, 2)] ->
       transposed conv 3x3/2 (16) -> transposed conv 3x3/2 (1, sigmoid) -> (1, 8, 8).
Both minimize the mean squared reconstruction error (Adam). The script reports each
model's test reconstruction error next to the baseline of always answering the mean
training image, and writes autoencoder_digits.png (curves and reconstructions) when
matplotlib is installed.

    python examples/autoencoder_digits.py [--target cpu|reference|...] [--epochs 40] [--fast]
"""

from __future__ import annotations

import argparse

from _common import example_parser

import numpy as np

import graphc as gc
from graphc import datasets
from graphc.frontends import keras
from graphc.frontends.keras import layers as L


def parse(argv: list[str] | None, epochs: int) -> argparse.Namespace:
    return example_parser(__doc__, epochs, plot="autoencoder_digits.png", verbose=0).parse_args(argv)


def dense_autoencoder() -> keras.Model:
    """64 -> 32 -> 8 -> 32 -> 64."""
    return keras.Sequential([
        keras.Input((64,)),
        L.Dense(32, activation="relu"), L.Dense(8, activation="relu", name="code"),
        L.Dense(32, activation="relu"), L.Dense(64, activation="sigmoid"),
    ])


def conv_autoencoder() -> keras.Model:
    """(1, 8, 8) -> (8, 2, 2) -> (1, 8, 8), NCHW."""
    return keras.Sequential([
        keras.Input((1, 8, 8)),
        L.Conv2D(16, 3, strides=2, padding="same", activation="relu"),
        L.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
        L.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu"),
        L.Conv2DTranspose(1, 3, strides=2, padding="same", activation="sigmoid"),
    ])


def train(model: keras.Model, x_train: np.ndarray, x_test: np.ndarray, epochs: int,
          args: argparse.Namespace) -> tuple[float, float, object, np.ndarray]:
    """Fit ``model`` to reproduce its input; returns (test MSE, s/epoch, history, recon)."""
    model.compile(keras.optimizers.Adam(3e-3), "mse", target=args.target)
    timer = keras.callbacks.EpochTimer()
    history = model.fit(x_train, x_train, batch_size=32, epochs=epochs,
                        validation_data=(x_test, x_test), callbacks=[timer],
                        verbose=args.verbose)
    recon = model.predict(x_test, batch_size=256)
    return float(np.mean((recon - x_test) ** 2)), timer.per_epoch(), history, recon


def main(argv: list[str] | None = None) -> dict:
    """Train both autoencoders; print and return their test reconstruction errors."""
    args = parse(argv, epochs=40)
    keras.utils.set_random_seed(0)
    (x_train, _), (x_test, _) = datasets.load_digits()
    epochs = args.epochs
    if args.fast:
        x_train, epochs = x_train[:600], min(epochs, 12)
    baseline = float(np.mean((x_test - x_train.mean(0)) ** 2))
    results, histories, recons = {"baseline_mse": baseline}, {}, {}
    for kind, make, shape in (("dense", dense_autoencoder, (-1, 64)),
                              ("conv", conv_autoencoder, (-1, 1, 8, 8))):
        with gc.Graph().as_default():
            model = make()
        mse, per_epoch, histories[kind], recon = train(
            model, x_train.reshape(shape), x_test.reshape(shape), epochs, args)
        recons[kind] = recon.reshape(-1, 8, 8)
        results[f"{kind}_mse"], results[f"{kind}_seconds_per_epoch"] = mse, per_epoch
        results["target"] = model.session.target
        print(f"{kind:5s} autoencoder on {model.session.target}: test reconstruction MSE "
              f"{mse:.4f} (baseline {baseline:.4f}, {mse / baseline:.0%} of it), "
              f"{per_epoch:.2f} s per epoch, {model.count_params():,} parameters")
    if args.plot:
        _plot(histories, x_test, recons, args.plot)
    return results


def _plot(histories: dict, x_test: np.ndarray, recons: dict, path: str) -> None:
    """Loss curves and a strip of originals over their reconstructions."""
    if not keras.utils.have_matplotlib():
        print(f"(no plot: {keras.utils.INSTALL_HINT})")
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(10, 6))
    ax = fig.add_subplot(6, 1, (1, 2))  # rows 1-2: curves; row 3: space; 4-6: images
    for kind, h in histories.items():
        ax.plot(h.history["val_loss"], label=f"{kind} (test)")
    ax.set_yscale("log"), ax.set_xlabel("epoch"), ax.set_ylabel("MSE"), ax.legend()
    n = 10
    rows = [x_test[:n], recons["dense"][:n], recons["conv"][:n]]
    for r, images in enumerate(rows):
        for i in range(n):
            sub = fig.add_subplot(6, n, (3 + r) * n + i + 1)
            sub.imshow(images[i], cmap="gray_r", vmin=0, vmax=1)
            sub.axis("off")
    fig.suptitle("autoencoders: originals / dense / conv reconstructions")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"plot written to {path}")


if __name__ == "__main__":
    main()
