"""Linear regression, the classic first lab: fit H(x) = w*x, then H(x) = w*x + b.

x = 0..9 and y = 1, 1, 2, 4, 5, 7, 8, 9, 10, 9. The first model starts at w = 1.4 and takes
100 gradient-descent steps (learning rate 0.01) on the mean squared error; graphc's result is
checked against the same steps written as a plain NumPy loop.

    python examples/linear_regression.py [--target cpu|reference|...] [--steps 100]
"""

from __future__ import annotations

import argparse

import numpy as np

import graphc as gc

X = np.arange(10, dtype=np.float64)
Y = np.array([1, 1, 2, 4, 5, 7, 8, 9, 10, 9], dtype=np.float64)
LEARNING_RATE = 0.01


def train_graphc(steps: int, with_bias: bool, target: str | None) -> tuple[float, float, list]:
    """Train H(x) = w*x (+ b) with graphc; returns w, b and the cost after each step."""
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(gc.float64, shape=(None,), name="x")
        y = gc.placeholder(gc.float64, shape=(None,), name="y")
        w = gc.Variable(1.4, dtype=gc.float64, name="w")
        b = gc.Variable(0.0, dtype=gc.float64, name="b", trainable=with_bias)
        hypothesis = w * x + b
        cost = gc.reduce_mean(gc.square(hypothesis - y))
        train = gc.train.GradientDescentOptimizer(LEARNING_RATE).minimize(cost)
    sess = gc.Session(graph, target=target)
    costs = [float(sess.run([cost, train], {x: X, y: Y})[0]) for _ in range(steps)]
    w_value, b_value = sess.run([w, b])
    return float(w_value), float(b_value), costs


def train_numpy(steps: int, with_bias: bool) -> tuple[float, float]:
    """The same gradient-descent steps as a plain NumPy loop."""
    w, b = 1.4, 0.0
    for _ in range(steps):
        error = w * X + b - Y
        grad_w, grad_b = 2 * np.mean(error * X), 2 * np.mean(error)
        w -= LEARNING_RATE * grad_w
        if with_bias:
            b -= LEARNING_RATE * grad_b
    return w, b


def sparkline(values: list, width: int = 40) -> str:
    """A one-line text plot of a curve (log scale, at most ``width`` points), for a terminal."""
    ticks = "▁▂▃▄▅▆▇█"
    picks = np.linspace(0, len(values) - 1, min(len(values), width)).round().astype(int)
    logs = np.log10(np.maximum(np.asarray(values)[picks], 1e-12))
    span = max(logs.max() - logs.min(), 1e-12)
    return "".join(ticks[int((v - logs.min()) / span * (len(ticks) - 1))] for v in logs)


def main(argv: list[str] | None = None) -> dict:
    """Train both models, print what they learned, and return the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=None, help="graphc target (default: the default)")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args(argv)
    target = gc.Session(gc.Graph(), target=args.target).target
    print(f"graphc {gc.__version__}, target {target}: {args.steps} gradient-descent steps, "
          f"learning rate {LEARNING_RATE}")
    results = {}
    for with_bias, label in ((False, "H(x) = w*x"), (True, "H(x) = w*x + b")):
        w, b, costs = train_graphc(args.steps, with_bias, args.target)
        w_np, b_np = train_numpy(args.steps, with_bias)
        gap = max(abs(w - w_np), abs(b - b_np))
        print(f"\n{label}")
        print(f"  cost  {costs[0]:.4f} -> {costs[-1]:.4f}   {sparkline(costs)}")
        print(f"  w = {w:.6f}" + (f", b = {b:.6f}" if with_bias else ""))
        print(f"  plain NumPy loop: w = {w_np:.6f}" + (f", b = {b_np:.6f}" if with_bias else "")
              + f"   (difference {gap:.1e})")
        if gap > 1e-6:
            raise SystemExit(f"graphc and NumPy disagree by {gap:.2e}")
        results[label] = {"w": w, "b": b, "cost": costs[-1], "gap": gap}
    print(f"\nprediction for x = 10 with the second model: {results['H(x) = w*x + b']['w'] * 10 + results['H(x) = w*x + b']['b']:.3f}")
    return results


if __name__ == "__main__":
    main()
