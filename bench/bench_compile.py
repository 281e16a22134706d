"""Compile time of the MLP training step, in fresh processes: with an empty kernel cache
(cold) and with the cache the cold run filled (warm).

    python bench/bench_compile.py [repeats]

The time is from building the session's executable to the end of the first step
(passes, code generation, Numba compilation or cache loading, first run); the import of
graphc/Numba is reported apart, as it does not depend on the model.

Python's own bytecode cache is kept warm in every run (in a temporary
``PYTHONPYCACHEPREFIX``, filled by one untimed run first), as it is for an installed
package: with ``PYTHONDONTWRITEBYTECODE`` set and no ``__pycache__`` in a source checkout,
every process compiled graphc's ~130 modules from source, ~0.1 s of "import graphc" and
~0.05 s of the compile that users do not pay. ``GRAPHC_BENCH_THREADS=1`` keeps OpenBLAS
from spinning two threads on a busy machine (a first step's GEMMs took 48 ms each
instead of 1 ms with the second core taken).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

CHILD = r"""
import sys, time, json
t0 = time.perf_counter()
sys.path.insert(0, %(bench)r)
import common, numpy as np, graphc as gc, models
t1 = time.perf_counter()
m = models.graphc_mlp(models.mlp_weights(), gc.train.MomentumOptimizer(0.01, 0.9))
xb = np.zeros((128, 784), np.float32); yb = np.zeros(128, np.int64)
t2 = time.perf_counter()
sess = gc.Session(m["graph"], target="cpu")
f = sess.make_callable([m["loss"], m["train"]], [m["x"], m["y"]])
f(xb, yb)
t3 = time.perf_counter()
from graphc.backends import numba_cpu
print(json.dumps({"import": t1 - t0, "compile": t3 - t2, "counters": numba_cpu.COUNTERS}))
"""


def run_child(code: str, cache: str, pycache: str) -> dict:
    """Run ``code`` (a template filled with ``bench``, this folder) in a fresh process with
    the kernel caches in ``cache`` and the bytecode cache in ``pycache``; its last line of
    output, parsed as JSON."""
    # Numba's own cache (the library kernels' machine code) goes there too, so "cold" is a
    # first run on a fresh machine, not only an empty graphc kernel folder.
    env = dict(os.environ, GRAPHC_CACHE_DIR=cache, NUMBA_CACHE_DIR=os.path.join(cache, "numba"),
               PYTHONPYCACHEPREFIX=pycache)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    code = code % {"bench": os.path.dirname(os.path.abspath(__file__))}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(repeats: int = 3) -> None:
    cold, warm, imports = [], [], []
    pycache = tempfile.mkdtemp(prefix="graphc-bench-pyc-")
    with tempfile.TemporaryDirectory() as cache:
        run_child(CHILD, cache, pycache)  # untimed: fills the bytecode caches
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            c = run_child(CHILD, cache, pycache)
            w = run_child(CHILD, cache, pycache)
            assert w["counters"]["compiles"] == 0, w
            cold.append(c["compile"])
            warm.append(w["compile"])
            imports.append(w["import"])
    for name, ts in (("cold cache", cold), ("warm cache", warm), ("import graphc", imports)):
        q1, med, q3 = np.percentile(ts, [25, 50, 75])
        print(f"MLP train step compile, {name:14s} {med:7.3f} s (IQR {q1:.3f}-{q3:.3f}, "
              f"n={len(ts)})")
    print("counters cold:", c["counters"], " warm:", w["counters"])
    shutil.rmtree(pycache, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
