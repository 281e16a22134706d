"""A generative adversarial network on the 8x8 digits (flattened to 64 pixels).

generator:     z (16) -> dense 128 leaky-relu -> dense 64 sigmoid (an image)
discriminator: image (64) -> dense 128 leaky-relu -> dropout -> dense 1 sigmoid (real?)

Both live in one graph and one session: the discriminator is compiled on its own; the
combined model ``D(G(z))`` re-applies the discriminator's layers to the generator's
output (shared weights) and is compiled with the discriminator frozen, so each of the two
optimizers updates only its own network (the Keras recipe). Each step trains D on a real
and a generated batch, then G to make D answer "real".

How good are the samples? A small classifier trained on the real digits labels 1000
generated images; the script reports its mean confidence and how many of the 10 classes
appear (a collapsed generator makes one). Writes gan_digits.png (samples and losses) when
matplotlib is installed.

    python examples/gan_digits.py [--target cpu|reference|...] [--epochs 60] [--fast]
"""

from __future__ import annotations

import argparse

from _common import example_parser
import time

import numpy as np

import graphc as gc
from graphc import datasets
from graphc.frontends import keras
from graphc.frontends.keras import layers as L

LATENT = 16


def parse(argv: list[str] | None, epochs: int) -> argparse.Namespace:
    p = example_parser(__doc__, epochs, plot="gan_digits.png", verbose=1)
    p.add_argument("--batch-size", type=int, default=64)
    return p.parse_args(argv)


def build(target: str) -> tuple[keras.Model, keras.Model, keras.Model]:
    """(generator, discriminator, combined), compiled, in one new graph."""
    with gc.Graph().as_default():
        z = keras.Input((LATENT,), name="z")
        h = L.Dense(128, activation=lambda t: gc.nn.leaky_relu(t, 0.2))(z)
        generator = keras.Model(z, L.Dense(64, activation="sigmoid")(h), name="generator")
        image = keras.Input((64,), name="image")
        h = L.Dense(128, activation=lambda t: gc.nn.leaky_relu(t, 0.2))(image)
        h = L.Dropout(0.3)(h)
        discriminator = keras.Model(image, L.Dense(1, activation="sigmoid")(h),
                                    name="discriminator")
        discriminator.compile(keras.optimizers.Adam(1e-3, beta_1=0.5), "binary_crossentropy",
                              metrics=["accuracy"], target=target)
        for layer in discriminator.layers:  # frozen inside the combined model only
            layer.trainable = False
        combined = keras.Model(z, discriminator(generator.outputs[0]), name="combined")
        combined.compile(keras.optimizers.Adam(1e-3, beta_1=0.5), "binary_crossentropy",
                         target=target)
    return generator, discriminator, combined


def digit_classifier(x: np.ndarray, y: np.ndarray, target: str) -> keras.Model:
    """A quick MLP on the real digits, to judge the generated ones."""
    with gc.Graph().as_default():
        model = keras.Sequential([keras.Input((64,)), L.Dense(64, activation="relu"),
                                  L.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", target=target)
    model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    return model


def main(argv: list[str] | None = None) -> dict:
    """Train the GAN; print and return {"d_loss", "g_loss", "confidence", "classes",
    "seconds_per_epoch", "target"}."""
    args = parse(argv, epochs=60)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    (x_train, y_train), _ = datasets.load_digits()
    x = x_train.reshape(-1, 64)
    epochs = min(args.epochs, 5) if args.fast else args.epochs
    generator, discriminator, combined = build(args.target)
    bs, steps = args.batch_size, len(x) // args.batch_size
    real, fake = np.full((bs, 1), 0.9, np.float32), np.zeros((bs, 1), np.float32)  # smoothing
    history: dict[str, list[float]] = {"d_loss": [], "g_loss": [], "d_accuracy": []}
    times = []
    for epoch in range(epochs):
        start, d_logs, g_logs = time.perf_counter(), [], []
        for _ in range(steps):
            batch = x[rng.integers(0, len(x), bs)]
            generated = generator.predict_on_batch(rng.normal(size=(bs, LATENT)))
            d_real = discriminator.train_on_batch(batch, real)
            d_fake = discriminator.train_on_batch(generated, fake)
            d_logs.append((np.asarray(d_real) + np.asarray(d_fake)) / 2)
            g_logs.append(combined.train_on_batch(rng.normal(size=(bs, LATENT)),
                                                  np.ones((bs, 1), np.float32)))
        times.append(time.perf_counter() - start)
        d_mean = np.mean(d_logs, axis=0)
        history["d_loss"].append(float(d_mean[0]))
        history["d_accuracy"].append(float(d_mean[1]))
        history["g_loss"].append(float(np.mean(g_logs)))
        if args.verbose and (epoch % 10 == 0 or epoch == epochs - 1):
            print(f"epoch {epoch + 1}/{epochs}: d_loss {history['d_loss'][-1]:.3f} "
                  f"(accuracy {history['d_accuracy'][-1]:.2f}), g_loss "
                  f"{history['g_loss'][-1]:.3f}", flush=True)
    samples = generator.predict(rng.normal(size=(1000, LATENT)), batch_size=250)
    judge = digit_classifier(x, y_train, args.target)
    probs = judge.predict(samples, batch_size=250)
    confidence = float(probs.max(1).mean())
    classes = int(len(np.unique(probs.argmax(1))))
    per_epoch = sorted(times[1:] or times)[len(times[1:] or times) // 2]
    target = combined.session.target
    print(f"target {target}: generated digits are classified with mean confidence "
          f"{confidence:.2f}; {classes} of 10 classes appear; {per_epoch:.2f} s per epoch")
    if args.plot:
        _plot(samples, history, args.plot)
    return {"d_loss": history["d_loss"][-1], "g_loss": history["g_loss"][-1],
            "confidence": confidence, "classes": classes, "seconds_per_epoch": per_epoch,
            "target": target, "samples": samples}


def _plot(samples: np.ndarray, history: dict, path: str) -> None:
    if not keras.utils.have_matplotlib():
        print(f"(no plot: {keras.utils.INSTALL_HINT})")
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(10, 4.5))
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(history["d_loss"], label="discriminator")
    ax.plot(history["g_loss"], label="generator")
    ax.set_xlabel("epoch"), ax.set_title("losses"), ax.legend()
    grid = samples[:64].reshape(8, 8, 8, 8).transpose(0, 2, 1, 3).reshape(64, 64)
    ax = fig.add_subplot(1, 2, 2)
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1)
    ax.set_title("generated digits"), ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"plot written to {path}")


if __name__ == "__main__":
    main()
