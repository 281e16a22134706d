"""Where a training step's time goes: each step of the cpu executable timed on its own.

    python bench/profile_steps.py [--each] [mlp_sgd mlp_adam lenet lstm lenet_infer]

Prints, per step kind and op, the total milliseconds per run and the number of steps, so
a person can see what bounds a benchmark (BLAS, a kernel, Python dispatch); ``--each``
also lists every step taking 10 us or more, in plan order, with its output's shape.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict

import common  # noqa: F401  (pins the thread pools first)
import numpy as np

import graphc as gc
import models


def _profile(sess: gc.Session, fetches: list, feeds: list, arrays: list, runs: int = 30,
             each: bool = False) -> None:
    exe = sess.make_callable(fetches, feeds)
    for _ in range(5):
        exe(*arrays)
    elements = exe._elements
    _program, compiled = sess._program(elements, exe.inputs)
    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    per_step = [0.0] * len(compiled.runs)
    steps = compiled.plan.steps
    for step in steps:
        counts[f"{step.kind}:{step.node.op}"] += 1
    original = list(compiled.runs)

    def timed(key: str, no: int, run):  # noqa: ANN001, ANN202
        def wrapper(vals, state, step_no):  # noqa: ANN001, ANN202
            t = time.perf_counter()
            run(vals, state, step_no)
            t = time.perf_counter() - t
            totals[key] += t
            per_step[no] += t
        return wrapper

    compiled.runs[:] = [timed(f"{s.kind}:{s.node.op}", no, r)
                        for no, (s, r) in enumerate(zip(steps, original))]
    start = time.perf_counter()
    for _ in range(runs):
        exe(*arrays)
    whole = (time.perf_counter() - start) / runs
    compiled.runs[:] = original
    print(f"{len(steps)} steps, {whole * 1e3:.3f} ms a run (with timers)")
    for key, t in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {key:45s} {t / runs * 1e3:8.3f} ms  x{counts[key]}")
    if each:
        print("  steps of 10 us or more, in order:")
        for step, t in zip(steps, per_step):
            if t / runs >= 1e-5:
                shapes = [spec.shape for spec in step.node.specs]
                print(f"    {step.kind}:{step.node.op:32s} {t / runs * 1e3:8.3f} ms  {shapes}")


def main(names: list[str], each: bool = False) -> None:
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
            _profile(sess, [m["logits"]], [m["x"]], arrays[:1], each=each)
        else:
            _profile(sess, [m["loss"], m["train"]], [m["x"], m["y"]], arrays, each=each)


if __name__ == "__main__":
    flags = {"--each"} & set(sys.argv[1:])
    main([a for a in sys.argv[1:] if a not in flags]
         or ["mlp_sgd", "mlp_adam", "lenet", "lstm", "lenet_infer"], each=bool(flags))
