"""Backpropagation by hand and by graphc, side by side.

f(x) = w . relu(W x + c) + b with x, W, c, w and b all ones (two units), and the loss
(f - 0)**2. graphc's symbolic gradients are printed next to the chain rule worked out in
NumPy.

    python examples/backprop.py [--target cpu|reference|...]
"""

from __future__ import annotations

import argparse

import numpy as np

import graphc as gc

N = 2


def by_graphc(target: str | None) -> dict[str, np.ndarray]:
    """Every gradient of the loss, from graphc."""
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float64, (N,), name="x")
        W = gc.Variable(np.ones((N, N)), name="W")
        c = gc.Variable(np.ones(N), name="c")
        w = gc.Variable(np.ones(N), name="w")
        b = gc.Variable(1.0, dtype=gc.float64, name="b")
        f = gc.reduce_sum(w * gc.nn.relu(gc.matmul(W, x) + c)) + b
        loss = gc.square(f - 0.0)
        names = ["loss", "f", "dL/dx", "dL/dW", "dL/dc", "dL/dw", "dL/db"]
        grads = gc.gradients(loss, [x, W, c, w, b])
    values = gc.Session(graph, target=target).run([loss, f, *grads], {x: np.ones(N)})
    return dict(zip(names, values))


def by_hand() -> dict[str, np.ndarray]:
    """The same gradients by the chain rule."""
    x, W, c, w, b = np.ones(N), np.ones((N, N)), np.ones(N), np.ones(N), 1.0
    z = W @ x + c
    h = np.maximum(z, 0)
    f = w @ h + b
    dL_df = 2 * f
    dL_dz = dL_df * w * (z > 0)
    return {"loss": f ** 2, "f": f, "dL/dx": W.T @ dL_dz, "dL/dW": np.outer(dL_dz, x),
            "dL/dc": dL_dz, "dL/dw": dL_df * h, "dL/db": dL_df}


def main(argv: list[str] | None = None) -> dict:
    """Print both and check they agree."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=None)
    args = parser.parse_args(argv)
    ours, theirs = by_graphc(args.target), by_hand()
    for name, value in ours.items():
        print(f"{name:>6} = {np.array2string(np.asarray(value), separator=', ')}"
              f"   (by hand: {np.array2string(np.asarray(theirs[name]), separator=', ')})")
        np.testing.assert_allclose(value, theirs[name], rtol=1e-12)
    print("graphc's gradients agree with the chain rule.")
    return ours


if __name__ == "__main__":
    main()
