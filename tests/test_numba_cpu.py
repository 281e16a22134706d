"""The cpu target: coverage of the op table, pass settings, caching by rank, allocation,
variable semantics and debugging aids. Per-op agreement with the reference is checked by
tests/test_ops.py::test_target_agrees_with_reference for every case."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import graphc as gc
from graphc.backends import numba_cpu
from graphc.backends.numba_cpu.kernels import FALLBACK, LIBRARY, RUNTIME
from graphc.op import REGISTRY, Kind
from graphc.program import build_program


def test_every_op_has_a_lowering_or_is_a_documented_fallback() -> None:
    import importlib
    import pkgutil

    import graphc.ops

    for mod in pkgutil.iter_modules(graphc.ops.__path__):  # ops not exported yet count too
        importlib.import_module(f"graphc.ops.{mod.name}")
    missing = sorted(name for name, op in REGISTRY.items()
                     if not (op.formula and op.kind in (Kind.ELEMENTWISE, Kind.BROADCAST))
                     and name not in LIBRARY and name not in FALLBACK and name not in RUNTIME)
    assert not missing, ("ops with no cpu lowering: add a kernel in backends/numba_cpu/kernels.py"
                         f" or list them in FALLBACK with a reason: {missing}")
    stale = sorted(set(FALLBACK) - set(REGISTRY))
    assert not stale, f"FALLBACK names ops that do not exist: {stale}"


def _mlp(batch_dim=None, optimizer=None):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (batch_dim, 8), name="x")
        y = gc.placeholder(gc.int64, (batch_dim,), name="y")
        w1 = gc.Variable(gc.init.glorot_uniform((8, 16), seed=0), name="w1")
        b1 = gc.Variable(np.zeros(16, np.float32), name="b1")
        w2 = gc.Variable(gc.init.glorot_uniform((16, 4), seed=1), name="w2")
        b2 = gc.Variable(np.zeros(4, np.float32), name="b2")
        h = gc.nn.relu(x @ w1 + b1)
        logits = h @ w2 + b2
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y,
                                                                             logits=logits))
        opt = optimizer or gc.train.AdamOptimizer(1e-2)
        train = opt.minimize(loss)
    return g, x, y, loss, train


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8)).astype(np.float32), rng.integers(0, 4, n)


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_training_matches_reference_with_passes_on_and_off(optimizer) -> None:
    results = {}
    for target, options in (("reference", None), ("cpu", None), ("cpu", {"optimize": False})):
        opt = gc.train.AdamOptimizer(1e-2) if optimizer == "adam" else \
            gc.train.MomentumOptimizer(0.1, 0.9)
        g, x, y, loss, train = _mlp(optimizer=opt)
        sess = gc.Session(g, target=target, compile_options=options)
        losses = [sess.run([loss, train], {x: xb, y: yb})[0]
                  for xb, yb in (_data(16, s) for s in range(5))]
        results[(target, bool(options))] = (losses, {k: v.copy() for k, v in sess.state.items()})
    ref_losses, ref_state = results[("reference", False)]
    for key, (losses, state) in results.items():
        np.testing.assert_allclose(losses, ref_losses, rtol=1e-5, atol=1e-6, err_msg=str(key))
        for name in ref_state:
            np.testing.assert_allclose(state[name], ref_state[name], rtol=1e-4, atol=1e-6,
                                       err_msg=f"{key} {name}")


def test_a_new_batch_size_compiles_nothing_new() -> None:
    g, x, y, loss, train = _mlp()
    sess = gc.Session(g, target="cpu")
    sess.run([loss, train], dict(zip((x, y), _data(16))))
    sess.run([loss, train], dict(zip((x, y), _data(300_000 // 8))))  # parallel loops too
    before = dict(numba_cpu.COUNTERS)
    for n in (3, 17, 64, 300_001 // 8):
        sess.run([loss, train], dict(zip((x, y), _data(n))))
    assert numba_cpu.COUNTERS == before


def test_steady_state_training_allocates_almost_nothing() -> None:
    g, x, y, loss, train = _mlp(optimizer=gc.train.MomentumOptimizer(0.1, 0.9))
    sess = gc.Session(g, target="cpu")
    xb, yb = _data(256)
    run = sess.make_callable([loss, train], [x, y])
    for _ in range(3):
        run(xb, yb)
    tracemalloc.start()
    try:
        run(xb, yb)
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        run(xb, yb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The hidden activations alone are 256*16*4 = 16 KiB each; the fused kernels, GEMM
    # buffers and in-place updates leave only the fallback reductions and the loss.
    activations = 256 * 16 * 4
    assert peak - base < 4 * activations, peak - base


def test_variables_are_updated_in_place_and_fetches_never_alias_them() -> None:
    g = gc.Graph()
    with g.as_default():
        v = gc.Variable(np.ones(4, np.float32), name="v")
        up = gc.assign(v, v * 2.0)
    sess = gc.Session(g, target="cpu")
    before = sess.run(v)
    array = sess.state["v"]
    after = sess.run(up)
    assert sess.state["v"] is array  # written in place
    np.testing.assert_array_equal(before, 1.0)
    np.testing.assert_array_equal(after, 2.0)
    sess.run(up)
    np.testing.assert_array_equal(after, 2.0)  # a fetched value is the user's own copy
    sess.state["v"] = np.full(4, 5.0, np.float32)  # as Saver.restore does
    np.testing.assert_array_equal(sess.run(up), 10.0)


def test_swapping_two_variables_in_one_run() -> None:
    g = gc.Graph()
    with g.as_default():
        a = gc.Variable(np.zeros(3, np.float32), name="a")
        b = gc.Variable(np.ones(3, np.float32), name="b")
        swap = gc.group(gc.assign(a, b), gc.assign(b, a))
    sess = gc.Session(g, target="cpu")
    sess.run(swap)
    np.testing.assert_array_equal(sess.state["a"], 1.0)
    np.testing.assert_array_equal(sess.state["b"], 0.0)


def test_random_ops_give_the_references_numbers() -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 5), name="x")
        y = gc.nn.relu(x + gc.random_normal((5,), seed=7)) * gc.random_uniform((5,), seed=8)
    feeds = {x: np.ones((3, 5), np.float32)}
    ref = gc.Session(g, target="reference")
    cpu = gc.Session(g, target="cpu")
    for _ in range(3):  # the step number keys the draws: every run differs, both agree
        np.testing.assert_array_equal(cpu.run(y, feeds), ref.run(y, feeds))


def test_debug_nodes_names_the_first_non_finite_node(monkeypatch) -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None,), name="x")
        bad = gc.log(x - 1.0)  # this line is named in the error
        y = gc.exp(bad) * 0.0 + 1.0
    monkeypatch.setenv("GRAPHC_DEBUG", "nodes")
    sess = gc.Session(g, target="cpu")
    with pytest.raises(gc.GraphcError, match=r"log.*NaN[\s\S]*test_numba_cpu.py"):
        sess.run(y, {x: np.array([0.5, 2.0], np.float32)})


def test_lowering_kinds_of_a_training_step() -> None:
    from graphc.lower import lower

    g, x, y, loss, train = _mlp()
    plan = lower(build_program(g, [loss, train], [x, y]), LIBRARY, check=True)
    counts = plan.counts()
    gemms = [s for s in plan.steps if s.node.op == "matmul"]
    assert len(gemms) == 5  # 2 forward GEMMs, 3 backward (none for the feed x)
    assert counts["fused"] >= 1 and counts["fused_nodes"] > counts["fused"]
    kinds = {s.node.op: s.kind for s in plan.steps}
    assert kinds["matmul"] == "library"
    # reductions (the loss's mean, the bias gradients) are kernels too
    assert kinds["reduce_mean"] == "library" and kinds["sum_to_like"] == "library"
    assert kinds["sparse_softmax_cross_entropy_with_logits"] == "library"
    # the loss's gradient is one row kernel: no softmax chain, no one-hot temporary
    assert kinds["sparse_softmax_cross_entropy_grad"] == "library"
    assert "one_hot" not in kinds and "exp" not in kinds


def test_fetched_results_are_never_buffers_a_later_run_reuses() -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        w = gc.Variable(np.eye(3, dtype=np.float32), name="w")
        y = gc.nn.relu(x @ w + 1.0)   # the epilogue could run in the GEMM's buffer
        z = gc.exp(x @ w) * 2.0        # not fetched: may reuse it
        s = gc.reduce_sum(z)
    sess = gc.Session(g, target="cpu")
    first, _ = sess.run([y, s], {x: np.ones((2, 3), np.float32)})
    sess.run([y, s], {x: np.full((2, 3), 5.0, np.float32)})
    np.testing.assert_array_equal(first, 2.0)


def test_a_kernel_numba_cannot_compile_falls_back_with_a_warning(monkeypatch, tmp_path) -> None:
    from graphc import kernel_source

    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kernel_source, "dtype_ctor", lambda dtype: "undefined_function")
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        y = gc.tanh(x) * 2.0
    with pytest.warns(RuntimeWarning) as caught:
        out = gc.Session(g, target="cpu").run(y, {x: np.ones((2, 3), np.float32)})
    np.testing.assert_allclose(out, np.tanh(1.0) * 2.0, rtol=1e-6)
    texts = [str(w.message) for w in caught]
    # neither the whole-plan function nor the step's kernel could be built: the steps run,
    # that one with NumPy
    assert any("no compiled program" in t and "running the steps one by one" in t
               for t in texts), texts
    assert any("running it with NumPy" in t for t in texts), texts
