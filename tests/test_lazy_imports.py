"""What ``import graphc`` and a cpu training step import, in fresh processes: the heavy
packages a step does not use stay out (they cost compile time in every new process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import graphc as gc
    after_import = sorted(sys.modules)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 4), name="x")
        y = gc.placeholder(gc.int64, (None,), name="y")
        w = gc.Variable(np.full((4, 3), 0.1, np.float32), name="w")
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(
            labels=y, logits=gc.nn.relu(gc.matmul(x, w))))
        train = gc.train.MomentumOptimizer(0.1, 0.9).minimize(loss)
    sess = gc.Session(g, target="cpu")
    sess.run([loss, train], {x: np.ones((2, 4), np.float32), y: np.zeros(2, np.int64)})
    print(json.dumps({"import": after_import, "step": sorted(sys.modules)}))
""")

# Never needed by `import graphc`.
NOT_AT_IMPORT = ["numba", "llvmlite", "networkx", "scipy", "onnx", "onnxruntime", "torch",
                 "graphc.frontends.keras", "graphc.backends.numba_cpu"]
# Never needed by a cpu training step of matmuls and fused loops.
NOT_IN_STEP = ["onnx", "onnxruntime", "torch", "scipy.linalg", "numba.cuda",
               "graphc.frontends.keras"]


def _modules() -> dict:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_and_cpu_step_leave_heavy_packages_out() -> None:
    mods = _modules()
    at_import = [m for m in NOT_AT_IMPORT if m in mods["import"]]
    in_step = [m for m in NOT_IN_STEP if m in mods["step"]]
    assert at_import == [] and in_step == [], (at_import, in_step)
    assert "numba" in mods["step"]  # the script did run on the cpu target


def test_keras_is_still_an_attribute_of_graphc() -> None:
    import graphc as gc
    from graphc.frontends import keras

    assert gc.keras is keras and hasattr(gc.keras, "Model")
    from graphc import keras as again

    assert again is keras
