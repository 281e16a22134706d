"""The examples run in the test suite (fast), and what they print is checked."""

from __future__ import annotations

import subprocess
import sys

import pytest

from example_loader import EXAMPLES, load_example as load


def test_linear_regression_agrees_with_numpy(capsys) -> None:
    results = load("linear_regression").main(["--target", "reference"])
    through_origin = results["H(x) = w*x"]
    assert through_origin["gap"] <= 1e-6
    assert through_origin["w"] == pytest.approx(1.2070175, abs=1e-6)  # the least-squares slope
    assert results["H(x) = w*x + b"]["cost"] < 2.0
    assert "plain NumPy loop" in capsys.readouterr().out


def test_xor_needs_a_hidden_layer() -> None:
    accuracy = load("xor").main(["--target", "reference", "--steps", "1500"])
    assert accuracy["perceptron"] <= 0.75
    assert accuracy["mlp"] == 1.0


def test_backprop_gradients_match_the_chain_rule() -> None:
    grads = load("backprop").main(["--target", "reference"])
    assert grads["loss"] == 49.0 and grads["dL/db"] == 14.0
    assert grads["dL/dW"].tolist() == [[14.0, 14.0], [14.0, 14.0]]


def test_linear_regression_runs_as_a_script() -> None:
    out = subprocess.run([sys.executable, str(EXAMPLES / "linear_regression.py"), "--steps", "5"],
                         capture_output=True, text=True, check=True).stdout
    assert "H(x) = w*x + b" in out
