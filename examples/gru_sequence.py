"""A GRU reads each 8x8 digit row by row (8 steps of 8 pixels) and classifies it.

The same task and script as examples/lstm_sequence.py with a GRU(64) cell (Keras's
reset_after variant). Prints the test accuracy (>= 95 % with the defaults) and time per
epoch; writes gru_sequence.png when matplotlib is installed.

    python examples/gru_sequence.py [--target cpu|reference|...] [--epochs 25] [--fast]
"""

from __future__ import annotations

import importlib.util
import os


def _lstm_example():
    # the sibling script, loaded by path so this works from any working directory
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lstm_sequence.py")
    spec = importlib.util.spec_from_file_location("lstm_sequence", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> dict:
    """Train the GRU variant; returns what lstm_sequence.main returns."""
    return _lstm_example().main(argv, cell="gru")


if __name__ == "__main__":
    main()
