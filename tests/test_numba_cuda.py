"""The cuda target as a whole: op coverage (which ops run on the host), training against the
reference, device residency of the variables, seeded dropout equal on every target, and the
"no GPU" message. In CI this runs in Numba's CUDA simulator (tests/conftest.py); per-op
agreement is tests/test_ops.py::test_target_agrees_with_reference, for every case on cuda
too. Real-GPU versions: tests/test_numba_cuda_gpu.py (``pytest -m cuda``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import graphc as gc
from graphc.op import REGISTRY, Kind

numba_cuda = pytest.importorskip("graphc.backends.numba_cuda")
from graphc.backends.numba_cuda.device import is_device, simulated  # noqa: E402
from graphc.backends.numba_cuda.kernels import FALLBACK, LIBRARY, RUNTIME  # noqa: E402

needs_sim = pytest.mark.skipif(not simulated(), reason="the simulator run (tests/conftest.py)")


def test_every_op_has_a_kernel_or_is_a_documented_host_fallback() -> None:
    import importlib
    import pkgutil

    import graphc.ops

    for mod in pkgutil.iter_modules(graphc.ops.__path__):  # ops not exported yet count too
        importlib.import_module(f"graphc.ops.{mod.name}")
    kernels = {n for n, op in REGISTRY.items()
               if op.formula and op.kind in (Kind.ELEMENTWISE, Kind.BROADCAST)} | set(LIBRARY)
    missing = sorted(set(REGISTRY) - kernels - set(FALLBACK) - set(RUNTIME))
    assert not missing, ("ops with no cuda lowering: add a kernel in backends/numba_cuda/ or "
                         f"list them in kernels.FALLBACK with a reason: {missing}")
    assert not sorted(set(FALLBACK) - set(REGISTRY)), "FALLBACK names ops that do not exist"
    assert not set(FALLBACK) & kernels, "an op is both a kernel and a host fallback"
    # The device kernels this target promises (the list); the rest is FALLBACK.
    assert {"matmul", "reduce_sum", "reduce_mean", "reduce_max", "sum_to_like",
            "random_uniform", "random_normal"} <= set(LIBRARY)


def test_the_default_target_stays_cpu() -> None:
    assert "cuda" in gc.available_targets()
    assert gc.Session(gc.Graph()).target == "cpu"


def _mlp(optimizer):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 5), name="x")
        y = gc.placeholder(gc.int64, (None,), name="y")
        w1 = gc.Variable(gc.init.glorot_uniform((5, 6), seed=0), name="w1")
        b1 = gc.Variable(np.zeros(6, np.float32), name="b1")
        w2 = gc.Variable(gc.init.glorot_uniform((6, 4), seed=1), name="w2")
        b2 = gc.Variable(np.zeros(4, np.float32), name="b2")
        h = gc.nn.dropout(gc.nn.relu(x @ w1 + b1), 0.25, seed=5)
        logits = h @ w2 + b2
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(
            labels=y, logits=logits))
        train = optimizer.minimize(loss)
    return g, x, y, loss, train


def _data(n, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)).astype(np.float32), rng.integers(0, 4, n)


@needs_sim
def test_mlp_training_on_cuda_equals_the_reference_and_stays_on_the_device(tmp_path) -> None:
    results = {}
    for target in ("reference", "cuda"):
        g, x, y, loss, train = _mlp(gc.train.AdamOptimizer(1e-2))
        sess = gc.Session(g, target=target)
        losses = [sess.run([loss, train], dict(zip((x, y), _data(4, s))))[0] for s in range(2)]
        results[target] = losses, {k: np.asarray(v) for k, v in sess.state.items()}
        if target == "cuda":
            # Variables and Adam's slots are device arrays between runs.
            assert sess.state and all(is_device(v) for v in sess.state.values())
            exe = next(e for _, e in sess._compiled.values() if e.plan.program.writes)
            on_host = sorted(n for n, how in exe.ran.items() if how == "fallback")
            assert not on_host, on_host  # the whole training step runs as kernels
            path = gc.train.Saver().save(sess, str(tmp_path / "ckpt"))
            saved = dict(np.load(path))
            sess.state["w1"] = np.zeros((5, 6), np.float32)  # a host value is uploaded
            gc.train.Saver().restore(sess, path)
            np.testing.assert_array_equal(np.asarray(sess.state["w1"]), saved["w1"])
    (ref_losses, ref_state), (losses, state) = results["reference"], results["cuda"]
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5, atol=1e-6)
    for name in ref_state:
        np.testing.assert_allclose(state[name], ref_state[name], rtol=1e-4, atol=1e-6,
                                   err_msg=name)



@needs_sim
def test_training_steps_reuse_device_arrays_and_never_overwrite_a_held_one() -> None:
    results = {}
    for target in ("reference", "cuda"):
        g, x, y, loss, train = _mlp(gc.train.AdamOptimizer(1e-2))
        sess = gc.Session(g, target=target)
        losses, counts = [], []
        for s in range(6):
            losses.append(sess.run([loss, train], dict(zip((x, y), _data(4, s))))[0])
            if target == "cuda":
                exe = next(e for _, e in sess._compiled.values() if e.plan.program.writes)
                counts.append(exe.recycler.allocated)
                if s == 3:  # a user's references: the array and a view of it
                    held = sess.state["w1"], sess.state["w1"].reshape(30)
                    snapshot = held[0].copy_to_host()
        results[target] = losses, {k: np.asarray(v) for k, v in sess.state.items()}
    # From the third step on nothing is allocated: each variable and slot alternates between
    # two arrays. The array the user holds is not reused: w1 gets one new array instead.
    assert counts[2] == counts[3] and counts[5] == counts[3] + 1, counts
    np.testing.assert_array_equal(held[0].copy_to_host(), snapshot)
    np.testing.assert_allclose(results["cuda"][0], results["reference"][0], rtol=1e-5,
                               atol=1e-6)
    for name, want in results["reference"][1].items():
        np.testing.assert_allclose(results["cuda"][1][name], want, rtol=1e-4, atol=1e-6)


@needs_sim
def test_two_variables_assigned_one_value_get_arrays_of_their_own() -> None:
    g = gc.Graph()
    with g.as_default():
        a = gc.Variable(np.ones(3, np.float32), name="a")
        b = gc.Variable(np.zeros(3, np.float32), name="b")
        new = a * 2.0
        both = gc.group(gc.assign(a, new), gc.assign(b, new))
        bump = gc.assign(b, b + 1.0)
    sess = gc.Session(g, target="cuda")
    sess.run(both)
    assert sess.state["a"] is not sess.state["b"]
    sess.run(bump)
    np.testing.assert_array_equal(np.asarray(sess.state["a"]), [2, 2, 2])
    np.testing.assert_array_equal(np.asarray(sess.state["b"]), [3, 3, 3])


@needs_sim
def test_seeded_dropout_mask_is_identical_on_cuda_cpu_and_reference() -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (5, 7))
        y = gc.nn.dropout(x, 0.4, seed=11)
    ones = np.ones((5, 7), np.float32)
    masks = {}
    for target in ("reference", "cpu", "cuda"):
        sess = gc.Session(g, target=target)
        masks[target] = [sess.run(y, {x: ones}) for _ in range(2)]  # two steps, two masks
    assert not np.array_equal(*masks["reference"])
    for target in ("cpu", "cuda"):
        for got, want in zip(masks[target], masks["reference"]):
            np.testing.assert_array_equal(got, want, err_msg=target)


@needs_sim
def test_a_new_batch_size_builds_no_new_kernel_module() -> None:
    g, x, y, loss, train = _mlp(gc.train.GradientDescentOptimizer(0.1))
    sess = gc.Session(g, target="cuda")
    sess.run([loss, train], dict(zip((x, y), _data(2, 0))))
    exe = next(e for _, e in sess._compiled.values() if e.plan.program.writes)
    modules = [k.module for k in exe.kernels]
    sess.run([loss, train], dict(zip((x, y), _data(3, 1))))
    assert [k.module for k in exe.kernels] == modules


def test_without_a_gpu_compiling_works_and_running_says_no_gpu_available() -> None:
    from graphc.bundle_run import gpu_available

    code = textwrap.dedent("""
        import numpy as np, graphc as gc
        from graphc.backends import numba_cuda
        from graphc.program import build_program
        g = gc.Graph()
        with g.as_default():
            x = gc.placeholder(gc.float32, (None, 3))
            y = gc.tanh(x * 2.0) + 1.0
        assert numba_cuda.export_sources(build_program(g, [y], [x]))  # compiles: no GPU needed
        try:
            gc.Session(g, target="cuda").run(y, {x: np.ones((2, 3), np.float32)})
        except gc.TargetError as err:
            print("MESSAGE:", err)
    """)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300)
    if "MESSAGE:" not in out.stdout and out.returncode == 0:
        pytest.skip("a real GPU is available here")  # (gpu_available() in this process is
    assert out.returncode == 0, out.stderr[-2000:]    # the simulator's answer)
    assert "no GPU available" in out.stdout
    assert "Traceback" not in out.stdout
    del gpu_available


@needs_sim
def test_a_cuda_bundle_compiles_loads_and_runs_like_the_reference(tmp_path) -> None:
    from pathlib import Path

    from graphc.cli import main

    out = str(tmp_path / "affine.graphc")
    model = Path(__file__).parent / "models" / "affine.py"
    assert main(["compile", str(model), "--target", "cuda", "-o", out]) == 0
    bundle = gc.load(out)
    assert bundle.target == "cuda"
    xv = np.arange(6.0).reshape(2, 3)
    w = np.arange(6.0).reshape(3, 2) / 10
    np.testing.assert_allclose(bundle(xv), np.tanh(xv @ w + [0.5, -0.5]), rtol=1e-12)


@needs_sim
def test_debug_nodes_names_the_node_that_made_a_nan(monkeypatch) -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None,), name="x")
        bad = gc.log(x - 1.0)  # this line is named in the error
        y = gc.exp(bad) * 0.0 + 1.0
    monkeypatch.setenv("GRAPHC_DEBUG", "nodes")
    sess = gc.Session(g, target="cuda")
    with pytest.raises(gc.GraphcError, match=r"log.*NaN[\s\S]*test_numba_cuda.py"), \
            warnings.catch_warnings():
        # The simulator runs math.log in Python, which raises on a negative number where a
        # GPU returns NaN: the runtime then warns and runs the node on the host (NaN too).
        warnings.simplefilter("ignore", RuntimeWarning)
        sess.run(y, {x: np.array([0.5, 2.0], np.float32)})


@needs_sim
def test_an_out_of_range_label_is_an_error_on_cuda_too() -> None:
    g = gc.Graph()
    with g.as_default():
        y = gc.placeholder(gc.int64, (None,))
        logits = gc.placeholder(gc.float32, (None, 3))
        loss = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    sess = gc.Session(g, target="cuda")
    with pytest.raises(gc.FeedError, match="label 3 is outside"):
        sess.run(loss, {y: np.array([0, 3]), logits: np.zeros((2, 3), np.float32)})
