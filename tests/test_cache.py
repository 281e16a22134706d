"""The cpu target's on-disk kernel cache, checked by its own counters in fresh processes."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import graphc as gc
    from graphc.backends import numba_cpu
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        y = gc.tanh(x * 2.0 + 1.0) if sys.argv[1] == "a" else gc.sigmoid(x * 3.0) - 1.0
    out = gc.Session(g, target="cpu").run(y, {x: np.ones((2, 3), np.float32)})
    want = np.tanh(3.0) if sys.argv[1] == "a" else 1 / (1 + np.exp(-3.0)) - 1.0
    assert np.allclose(out, want), out
    print(json.dumps(numba_cpu.COUNTERS))
""")


def _run(cache_dir: str, variant: str) -> dict:
    env = dict(os.environ, GRAPHC_CACHE_DIR=cache_dir)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, variant], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def cache_dir(tmp_path) -> str:
    return str(tmp_path / "cache")


def test_a_second_process_loads_instead_of_compiling(cache_dir: str) -> None:
    first = _run(cache_dir, "a")
    assert first["misses"] >= 1 and first["compiles"] >= 1 and first["hits"] == 0
    second = _run(cache_dir, "a")
    assert second["misses"] == 0 and second["compiles"] == 0
    assert second["hits"] == first["misses"] and second["loads"] == first["compiles"]


def test_a_changed_graph_misses(cache_dir: str) -> None:
    _run(cache_dir, "a")
    other = _run(cache_dir, "b")
    assert other["misses"] >= 1 and other["compiles"] >= 1


def test_a_corrupted_entry_is_detected_and_rebuilt(cache_dir: str) -> None:
    first = _run(cache_dir, "a")
    files = glob.glob(os.path.join(cache_dir, "kernels", "k_*.py"))
    assert len(files) == first["misses"]
    for path in files:
        with open(path, "r+", encoding="utf-8") as f:
            text = f.read()
            f.seek(0)
            f.write(text[: len(text) // 2] + "\n)(garbage")  # truncated and not Python
            f.truncate()
    again = _run(cache_dir, "a")
    assert again["rebuilt"] == len(files) and again["hits"] == 0
    assert _run(cache_dir, "a")["rebuilt"] == 0  # and the rebuilt entry is good
