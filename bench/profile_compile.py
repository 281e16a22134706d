"""Where a warm compile of the MLP training step goes, phase by phase, in fresh processes.

    python bench/profile_compile.py [repeats]

bench_compile.py gives the totals; this script forces each one-time cost in a process of
its own in turn (importing NumPy, graphc, llvmlite, Numba, networkx and the cpu backend;
Numba's target start; NumPy's ``numpy.ma``, which Numba's ``typeof`` of an array imports;
graphc's passes, code generation and kernel modules; Numba's loads of the cached kernels;
the rest of the first step), so each row is what that phase adds. The kernel cache is
filled by one untimed run first; Python's bytecode cache is kept warm as in
bench_compile.py. Medians and ranges over ``repeats`` processes.
"""

from __future__ import annotations

import shutil
import sys
import tempfile

import numpy as np

from bench_compile import run_child

CHILD = r"""
import sys, time, json
t0 = time.perf_counter()
marks = []
def mark(name):
    marks.append((name, time.perf_counter()))
sys.path.insert(0, %(bench)r)
import common
import numpy as np; mark("import numpy")
import graphc as gc; mark("import graphc")
import models
m = models.graphc_mlp(models.mlp_weights(), gc.train.MomentumOptimizer(0.01, 0.9))
xb = np.zeros((128, 784), np.float32); yb = np.zeros(128, np.int64); mark("build the model's graph")
import llvmlite.binding; mark("numba: import llvmlite.binding")
import numba; mark("numba: import numba (the rest)")
import networkx; mark("import networkx (graphc.passes)")
import graphc.backends.numba_cpu; mark("import the cpu backend's modules")
from graphc.backends.numba_cpu.numba_start import start
start(); mark("numba: target start (registries)")
import numpy.ma; mark("numba: numpy.ma (typeof of an array)")
sess = gc.Session(m["graph"], target="cpu")
f = sess.make_callable([m["loss"], m["train"]], [m["x"], m["y"]])
mark("graphc: passes, codegen, kernel modules")
import numba.core.dispatcher as nd
compile_, spent = nd.Dispatcher.compile, [0.0]
def timed(self, sig):
    t = time.perf_counter()
    try:
        return compile_(self, sig)
    finally:
        spent[0] += time.perf_counter() - t
nd.Dispatcher.compile = timed
t = time.perf_counter()
f(xb, yb)
marks.append(("numba: cached kernel loads", t + spent[0]))
mark("first step (the rest)")
out, prev = {}, t0
for name, at in marks:
    out[name] = at - prev
    prev = at
out["total"] = prev - t0
print(json.dumps(out))
"""


def main(repeats: int = 7) -> None:
    """Print the median (and range) of each phase over ``repeats`` fresh processes."""
    pycache = tempfile.mkdtemp(prefix="graphc-bench-pyc-")
    try:
        with tempfile.TemporaryDirectory() as cache:
            run_child(CHILD, cache, pycache)  # untimed: fills the kernel and bytecode caches
            runs = [run_child(CHILD, cache, pycache) for _ in range(repeats)]
    finally:
        shutil.rmtree(pycache, ignore_errors=True)
    print(f"warm compile of the MLP training step, phases (ms, median [min-max], n={repeats})")
    for name in runs[0]:
        ts = np.array([r[name] for r in runs]) * 1000
        print(f"  {np.median(ts):8.1f}  [{ts.min():6.1f}-{ts.max():6.1f}]  {name}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
