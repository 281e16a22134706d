"""The cpu target's parallel kernels run on Numba's workqueue layer, safely from threads.

Each check runs in a fresh interpreter: the threading layer is chosen once per process.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_PROGRAM = r"""
import threading
import numpy as np
import numba
import graphc as gc
from graphc.backends.numba_cpu.runtime import PARALLEL_MIN_ELEMENTS

n = PARALLEL_MIN_ELEMENTS  # large enough for the parallel loop variant
g = gc.Graph()
with g.as_default():
    x = gc.placeholder(gc.float32, (None,))
    y = gc.tanh(x) * 2.0 + 1.0
data = np.linspace(-3, 3, n, dtype=np.float32)
want = np.tanh(data) * 2 + 1
errors = []

def work():
    sess = gc.Session(g, target="cpu")
    run = sess.make_callable(y, [x])
    sess._program(run._elements, run.inputs)[1].program = None  # the step kernels, here
    for _ in range(20):
        if not np.allclose(run(data), want, atol=1e-5):
            errors.append("wrong")

threads = [threading.Thread(target=work) for _ in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(numba.threading_layer(), len(errors))
"""


def _run(env_extra: dict) -> str:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    env.update(env_extra, NUMBA_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", _PROGRAM], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()[-2:]


@pytest.mark.slow
def test_parallel_kernels_use_workqueue_and_run_from_several_threads() -> None:
    assert _run({}) == ["workqueue", "0"]


@pytest.mark.slow
def test_a_users_threading_layer_is_kept() -> None:
    assert _run({"NUMBA_THREADING_LAYER": "omp"}) == ["omp", "0"]
