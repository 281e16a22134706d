"""Where a training step's time goes: each step of the cpu executable timed on its own.

    python bench/profile_steps.py [mlp_sgd mlp_adam lenet lstm lenet_infer]

Prints, per step kind and op, the total milliseconds per run and the number of steps, so
a person can see what bounds a benchmark (BLAS, a kernel, Python dispatch).
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict

import common  # noqa: F401  (pins the thread pools first)
import numpy as np

import graphc as gc
import models


def _profile(sess: gc.Session, fetches: list, feeds: list, arrays: list, runs: int = 30) -> None:
    exe = sess.make_callable(fetches, feeds)
    for _ in range(5):
        exe(*arrays)
    elements = exe._elements
    _program, compiled = sess._program(elements, exe.inputs)
    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    steps = compiled.plan.steps
    for step in steps:
        counts[f"{step.kind}:{step.node.op}"] += 1
    original = list(compiled.runs)

    def timed(key: str, run):  # noqa: ANN001, ANN202
        def wrapper(vals, state, step_no):  # noqa: ANN001, ANN202
            t = time.perf_counter()
            run(vals, state, step_no)
            totals[key] += time.perf_counter() - t
        return wrapper

    compiled.runs[:] = [timed(f"{s.kind}:{s.node.op}", r) for s, r in zip(steps, original)]
    start = time.perf_counter()
    for _ in range(runs):
        exe(*arrays)
    whole = (time.perf_counter() - start) / runs
    compiled.runs[:] = original
    print(f"{len(steps)} steps, {whole * 1e3:.3f} ms a run (with timers)")
    for key, t in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {key:45s} {t / runs * 1e3:8.3f} ms  x{counts[key]}")


def main(names: list[str]) -> None:
    rng = np.random.default_rng(0)
    for name in names:
        print(f"== {name}")
        if name.startswith("mlp"):
            opt = gc.train.MomentumOptimizer(0.01, 0.9) if name == "mlp_sgd" else \
                gc.train.AdamOptimizer(1e-3)
            m = models.graphc_mlp(models.mlp_weights(), opt)
            arrays = [rng.normal(size=(128, 784)).astype(np.float32), rng.integers(0, 10, 128)]
        elif name.startswith("lenet"):
            m = models.graphc_lenet(gc.train.MomentumOptimizer(0.01, 0.9))
            n = 64 if name == "lenet" else 128
            arrays = [rng.normal(size=(n, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, n)]
        else:
            m = models.graphc_lstm(gc.train.AdamOptimizer(1e-3))
            arrays = [rng.normal(size=(32, 32, 32)).astype(np.float32), rng.integers(0, 10, 32)]
        sess = gc.Session(m["graph"], target="cpu")
        if name.endswith("infer"):
            _profile(sess, [m["logits"]], [m["x"]], arrays[:1])
        else:
            _profile(sess, [m["loss"], m["train"]], [m["x"], m["y"]], arrays)


if __name__ == "__main__":
    main(sys.argv[1:] or ["mlp_sgd", "mlp_adam", "lenet", "lstm", "lenet_infer"])
