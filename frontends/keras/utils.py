"""``gc.keras.utils``: training-curve plots and the seed for reproducible models."""

from __future__ import annotations

import os
from typing import Any, Optional

from graphc.frontends.keras.backend import set_random_seed
from graphc.serialization import atomic_output

__all__ = ["plot_history", "try_plot_history", "set_random_seed", "have_matplotlib"]

INSTALL_HINT = "pip install matplotlib   (or: pip install 'graphc[examples]')"


def have_matplotlib() -> bool:
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot_history(history: Any, path: Any, title: Optional[str] = None) -> str:
    """Write a PNG of the curves in ``history`` (a History or its ``.history`` dict): one
    panel per quantity (loss, accuracy...), training and ``val_`` curves together.
    Needs matplotlib; raises ImportError saying how to install it otherwise."""
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs:
        raise ValueError("plot_history: expected a History (from fit) with at least one epoch")
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(f"plot_history needs matplotlib: {INSTALL_HINT}") from None
    names = [k for k in logs if not k.startswith("val_") and k != "learning_rate"]
    names += [k[4:] for k in logs if k.startswith("val_") and k[4:] not in names]
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if key in logs:
                epochs = range(1, len(logs[key]) + 1)
                ax.plot(epochs, logs[key], marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = os.fspath(path)
    with atomic_output(path) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path


def try_plot_history(history: Any, path: Any, title: Optional[str] = None) -> Optional[str]:
    """:func:`plot_history` when matplotlib is installed (returns the path); otherwise print
    how to install it and return None. For scripts where the plot is a bonus."""
    if not have_matplotlib():
        print(f"(no curve plot: {INSTALL_HINT})")
        return None
    return plot_history(history, path, title)
