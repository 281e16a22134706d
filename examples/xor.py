"""XOR: a single perceptron cannot learn it; a two-layer network can.

Both models are trained with gradient descent on the binary cross-entropy of the four
XOR points; the script prints each model's predictions and accuracy.

    python examples/xor.py [--target cpu|reference|...] [--steps 2000]
"""

from __future__ import annotations

import argparse

import numpy as np

import graphc as gc

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def train(hidden: int | None, steps: int, target: str | None, lr: float = 1.0) -> np.ndarray:
    """Train a perceptron (hidden=None) or a 2-layer MLP; returns its probabilities on X."""
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float32, (None, 2), name="x")
        y = gc.placeholder(gc.float32, (None, 1), name="y")
        if hidden is None:
            W = gc.Variable(gc.init.glorot_uniform((2, 1), seed=0), name="W")
            b = gc.Variable(np.zeros(1, np.float32), name="b")
            logits = x @ W + b
        else:
            W1 = gc.Variable(gc.init.glorot_uniform((2, hidden), seed=1), name="W1")
            b1 = gc.Variable(np.zeros(hidden, np.float32), name="b1")
            W2 = gc.Variable(gc.init.glorot_uniform((hidden, 1), seed=2), name="W2")
            b2 = gc.Variable(np.zeros(1, np.float32), name="b2")
            logits = gc.tanh(x @ W1 + b1) @ W2 + b2
        loss = gc.losses.sigmoid_cross_entropy(y, logits)
        step = gc.train.GradientDescentOptimizer(lr).minimize(loss)
        prob = gc.sigmoid(logits)
    sess = gc.Session(graph, target=target)
    for _ in range(steps):
        sess.run(step, {x: X, y: Y})
    return sess.run(prob, {x: X})


def report(name: str, prob: np.ndarray) -> float:
    """Print predictions and return the accuracy."""
    accuracy = float(np.mean((prob > 0.5) == (Y > 0.5)))
    print(f"\n{name}: accuracy {accuracy:.0%}")
    for (a, b), p, t in zip(X, prob[:, 0], Y[:, 0]):
        print(f"  {int(a)} xor {int(b)} = {int(t)}   predicted {p:.3f}")
    return accuracy


def main(argv: list[str] | None = None) -> dict:
    """Train both models and return their accuracies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=None)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args(argv)
    single = report("single perceptron (it cannot separate XOR)", train(None, args.steps, args.target))
    mlp = report("two-layer MLP, 4 tanh units", train(4, args.steps, args.target))
    return {"perceptron": single, "mlp": mlp}


if __name__ == "__main__":
    main()
