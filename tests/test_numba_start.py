"""The cpu target's Numba start (backends/numba_cpu/numba_start.py), in fresh processes:
it skips importing scipy.linalg, and every BLAS-backed path still works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("scipy")

# An MLP-like step: GEMMs from Python, fused loops and a library reduction in Numba code.
MLP = textwrap.dedent("""
    import json, sys
    import numpy as np
    import graphc as gc
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 4), name="x")
        w = gc.constant(np.arange(12, dtype=np.float32).reshape(4, 3) / 10)
        y = gc.reduce_sum(gc.nn.relu(gc.matmul(x, w) - 1.0), axis=1)
    feed = {x: np.linspace(-1, 2, 8, dtype=np.float32).reshape(2, 4)}
    got = gc.Session(g, target="cpu").run(y, feed)
    want = gc.Session(g, target="reference").run(y, feed)
    assert np.allclose(got, want, rtol=1e-5), (got, want)
    report = {"scipy_linalg_after_step": "scipy.linalg" in sys.modules,
              "stand_in_left": "scipy.linalg.cython_blas" in sys.modules}
    import numba
    from numba.np import arraymath
    report["have_blas"] = arraymath._HAVE_BLAS

    @numba.njit
    def dot(a, b):
        return np.dot(a, b)

    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    assert np.allclose(dot(a, a.T), a @ a.T)  # typing np.dot imports SciPy's BLAS for real
    blas = sys.modules["scipy.linalg.cython_blas"]
    report["real_cython_blas"] = hasattr(blas, "__pyx_capi__")
    print(json.dumps(report))
""")

# A convolution: its GEMMs are np.dot inside @njit (SciPy's BLAS bound by Numba).
CONV = textwrap.dedent("""
    import json, sys
    import numpy as np
    import graphc as gc
    rng = np.random.default_rng(0)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3, 9, 9), name="x")
        k = gc.constant(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
        y = gc.nn.conv2d(x, k, strides=1, padding="SAME")
    feed = {x: rng.standard_normal((2, 3, 9, 9)).astype(np.float32)}
    got = gc.Session(g, target="cpu").run(y, feed)
    want = gc.Session(g, target="reference").run(y, feed)
    assert np.allclose(got, want, rtol=1e-4, atol=1e-4), np.abs(got - want).max()
    print(json.dumps({"ok": True}))
""")


def _run(script: str, cache: str) -> dict:
    env = dict(os.environ, GRAPHC_CACHE_DIR=cache, NUMBA_CACHE_DIR=os.path.join(cache, "numba"))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_step_without_np_dot_kernels_does_not_import_scipy_linalg(tmp_path) -> None:
    for _ in range(2):  # compiling, then loading from the cache
        report = _run(MLP, str(tmp_path))
        assert report == {"scipy_linalg_after_step": False, "stand_in_left": False,
                          "have_blas": True, "real_cython_blas": True}


def test_np_dot_kernels_compile_and_load_from_the_cache(tmp_path) -> None:
    # The second process loads the convolution's np.dot kernels from Numba's cache and binds
    # SciPy's BLAS on their first call.
    assert _run(CONV, str(tmp_path)) == {"ok": True}
    assert _run(CONV, str(tmp_path)) == {"ok": True}


def test_start_is_idempotent_and_leaves_no_stand_in() -> None:
    from graphc.backends.numba_cpu.numba_start import start

    start()
    start()
    mod = sys.modules.get("scipy.linalg.cython_blas")
    assert mod is None or hasattr(mod, "__pyx_capi__")
