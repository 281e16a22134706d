"""Equal fused groups of different ranks share one cached flat kernel (codegen.py writes the
rank-independent flat loops and the rank's rows/nd loops as two modules), checked by the
kernel cache's counters in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import graphc as gc
    from graphc.backends import numba_cpu
    g = gc.Graph()
    with g.as_default():
        # one update formula on a vector and on a matrix (an optimizer's bias and weight),
        # written into the variables: two kernels, one flat loop
        y1 = gc.placeholder(gc.float32, (5,), name="y1")
        y2 = gc.placeholder(gc.float32, (3, 4), name="y2")
        v1 = gc.Variable(np.linspace(-1, 1, 5, dtype=np.float32), name="v1")
        v2 = gc.Variable(np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4), name="v2")
        step = gc.group(gc.assign(v1, gc.tanh(v1 * 0.375 + y1)),
                        gc.assign(v2, gc.tanh(v2 * 0.375 + y2)))
    feeds = {y1: np.ones(5, np.float32), y2: np.full((3, 4), 0.5, np.float32)}
    got, want = [], []
    for target, out in (("cpu", got), ("reference", want)):
        sess = gc.Session(g, target=target)
        sess.run(step, feeds)
        out.extend(sess.run([v1, v2]))
    for u, v in zip(got, want):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-6)
    print(json.dumps(numba_cpu.COUNTERS))
""")


def _run(cache: str) -> dict:
    env = dict(os.environ, GRAPHC_CACHE_DIR=cache)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_equal_groups_of_different_ranks_compile_one_flat_kernel(tmp_path) -> None:
    first = _run(str(tmp_path))
    # one module written (the shared flat loops; no rows/nd module was needed), compiled once
    assert (first["misses"], first["compiles"]) == (1, 1), first
    second = _run(str(tmp_path))
    assert (second["hits"], second["misses"], second["loads"], second["compiles"]) == \
        (1, 0, 1, 0), second
