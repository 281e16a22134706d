"""The gc.keras examples run in a fast mode (few epochs, subsets), with floors that a
broken training loop would miss; the full runs are marked slow."""

from __future__ import annotations

import subprocess
import sys

import pytest

from example_loader import EXAMPLES, load_example as load
from test_keras_helpers import TARGET

pytest.importorskip("sklearn")  # the digits ship with scikit-learn


def run(name: str, *extra: str, fast: bool = True) -> dict:
    argv = ["--target", TARGET, "--plot", "", *(["--fast"] if fast else []), *extra]
    return load(name).main(argv)


def test_mlp_digits_fast():
    result = run("mlp_digits", "--verbose", "0")
    assert result["test_accuracy"] >= 0.93  # 8 epochs; the full run reaches >= 0.97
    assert result["epochs"] == 8 and result["seconds_per_epoch"] > 0


def test_early_stopping_stops_and_restores():
    result = run("early_stopping", "--verbose", "0", "--epochs", "30")
    assert result["epochs_run"] < 30  # patience 2 in fast mode: it stops early
    assert result["epochs_run"] == result["stopped_epoch"] + 1
    assert result["best_epoch"] < result["stopped_epoch"]
    assert result["test_accuracy"] >= 0.85  # 600 training images


def test_cnn_digits_fast():
    result = run("cnn_digits", "--verbose", "0")
    assert result["test_accuracy"] >= 0.75  # 3 epochs on 600 images


def test_resnet_digits_fast():
    result = run("resnet_digits", "--verbose", "0")
    assert result["test_accuracy"] >= 0.75  # 2 epochs on 400 images
    assert result["params"] > 50_000


def test_autoencoders_beat_the_mean_image():
    result = run("autoencoder_digits")
    assert result["dense_mse"] < 0.8 * result["baseline_mse"]
    assert result["conv_mse"] < 0.8 * result["baseline_mse"]


def test_gan_generates_digit_like_images():
    result = run("gan_digits")
    samples = result["samples"]
    assert samples.shape == (1000, 64) and 0.0 <= samples.min() and samples.max() <= 1.0
    assert samples.std(axis=0).mean() > 0.01  # not one constant image
    assert result["classes"] >= 3


@pytest.mark.parametrize("name", ["lstm_sequence", "gru_sequence"])
def test_recurrent_examples_fast(name):
    result = run(name, "--verbose", "0")
    assert result["test_accuracy"] >= 0.75  # 5 epochs on 600 sequences


def test_mlp_digits_runs_as_a_script(tmp_path):
    out = subprocess.run([sys.executable, str(EXAMPLES / "mlp_digits.py"), "--fast",
                          "--target", TARGET, "--epochs", "2", "--plot",
                          str(tmp_path / "c.png")], capture_output=True, text=True, check=True,
                         cwd=tmp_path).stdout
    assert "test accuracy" in out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "pip install matplotlib" in out
    else:
        assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


# -- the full runs: the accuracies the examples promise --------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name, floor", [("mlp_digits", 0.97), ("cnn_digits", 0.98),
                                         ("lstm_sequence", 0.95), ("gru_sequence", 0.95),
                                         ("resnet_digits", 0.97)])
def test_full_example_accuracy(name, floor):
    result = run(name, "--verbose", "0", fast=False)
    assert result["test_accuracy"] >= floor
