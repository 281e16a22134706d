"""The cpu target's compiled programs (backends/numba_cpu/program_runtime.py): an inference
plan runs as one Numba function, matches the reference, hands out fresh arrays, sees the
session's current variables, and leaves everything outside its scope (train ops, ops
without an emitter, shapes it does not handle, Numba failures) to the step-by-step path."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from graphc.backends.numba_cpu import program_runtime
from numba.core.errors import NumbaError

import graphc as gc

RNG = np.random.default_rng(7)


def _rand(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape).astype(np.float32)


def _mlp(optimizer=None) -> dict:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 6), name="x")
        y = gc.placeholder(gc.int64, (None,), name="y")
        W1, b1 = gc.Variable(_rand(6, 8), name="W1"), gc.Variable(_rand(8), name="b1")
        W2, b2 = gc.Variable(_rand(8, 3), name="W2"), gc.Variable(_rand(3), name="b2")
        logits = gc.nn.relu(x @ W1 + b1) @ W2 + b2
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y,
                                                                              logits=logits))
        train = optimizer.minimize(loss) if optimizer is not None else None
    return {"graph": g, "x": x, "y": y, "logits": logits, "W1": W1, "train": train}


def _compiled(run: gc.Executable):
    """The cpu Executable behind a session's callable."""
    return run._entry[1]


def test_an_mlp_runs_as_one_program_at_every_batch_size() -> None:
    m = _mlp()
    sess, ref = gc.Session(m["graph"], target="cpu"), gc.Session(m["graph"], target="reference")
    run = sess.make_callable(m["logits"], [m["x"]])
    program = _compiled(run).program
    assert program is not None
    before = program_runtime.COUNTERS["runs"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for batch in (1, 0, 5, 1, 33):
            x = _rand(batch, 6)
            got = run(x)
            want = ref.run(m["logits"], {m["x"]: x})
            assert got.shape == want.shape == (batch, 3) and got.dtype == np.float32
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    assert program_runtime.COUNTERS["runs"] - before == 5
    # Specialized on dtypes and ranks only: the batch sizes shared one compilation.
    assert len(program.module.program.signatures) == 1


def test_results_are_fresh_arrays_also_for_a_fetched_variable_or_feed() -> None:
    m = _mlp()
    sess = gc.Session(m["graph"], target="cpu")
    run = sess.make_callable([m["logits"], m["W1"], m["x"]], [m["x"]])
    assert _compiled(run).program is not None
    x = _rand(2, 6)
    logits, w1, fed = run(x)
    again, w1_again, _ = run(_rand(2, 6))
    assert not np.shares_memory(logits, again)  # never a workspace a later run overwrites
    assert not np.shares_memory(w1, sess.state["W1"]) and not np.shares_memory(w1, w1_again)
    assert not np.shares_memory(fed, x)
    np.testing.assert_array_equal(w1, sess.state["W1"])
    np.testing.assert_array_equal(fed, x)
    w1[:] = 0  # the user's copy: the session's value is untouched
    assert np.any(sess.state["W1"] != 0)


def test_a_changed_variable_is_seen_by_the_next_run() -> None:
    m = _mlp()
    sess, ref = gc.Session(m["graph"], target="cpu"), gc.Session(m["graph"], target="reference")
    run = sess.make_callable(m["logits"], [m["x"]])
    x = _rand(4, 6)
    run(x)
    before = program_runtime.COUNTERS["runs"]
    new = RNG.normal(size=(6, 8))  # float64: converted to the plan's float32
    for value in (new, new * 2):
        sess.state["W1"] = value
        ref.state["W1"] = value.astype(np.float32)  # the reference converts nothing
        np.testing.assert_allclose(run(x), ref.run(m["logits"], {m["x"]: x}),
                                   rtol=2e-5, atol=2e-5)
    sess.state["W1"] = new.astype(np.float32)
    sess.state["W1"][:] = 1.0  # changed in place
    ref.state["W1"] = sess.state["W1"]
    np.testing.assert_allclose(run(x), ref.run(m["logits"], {m["x"]: x}), rtol=2e-5,
                               atol=2e-5)
    assert program_runtime.COUNTERS["runs"] - before == 3


def test_training_and_unsupported_ops_keep_the_step_by_step_path() -> None:
    m = _mlp(gc.train.GradientDescentOptimizer(0.1))
    sess = gc.Session(m["graph"], target="cpu")
    step = sess.make_callable([m["train"]], [m["x"], m["y"]])
    assert _compiled(step).program is None
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        y = gc.transpose(gc.tanh(x)) * 2.0  # transpose has no emitter
    run = gc.Session(g, target="cpu").make_callable(y, [x])
    assert _compiled(run).program is None
    xv = _rand(4, 3)
    np.testing.assert_allclose(run(xv), np.tanh(xv).T * 2.0, rtol=1e-6)


def test_reshapes_and_scalars_run_in_the_program() -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 2, 3), name="x")
        s = gc.placeholder(gc.float32, (), name="s")
        flat = gc.reshape(x, (-1, 6)) * s
        y = gc.reshape(gc.exp(flat), (-1, 3))
    sess, ref = gc.Session(g, target="cpu"), gc.Session(g, target="reference")
    run = sess.make_callable([y, flat], [x, s])
    assert _compiled(run).program is not None
    before = program_runtime.COUNTERS["runs"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for batch in (0, 1, 4):
            feeds = {x: _rand(batch, 2, 3), s: np.float32(0.5)}
            for got, want in zip(run(feeds[x], feeds[s]), ref.run([y, flat], feeds)):
                assert got.shape == want.shape
                np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)
    assert program_runtime.COUNTERS["runs"] - before == 3


def test_a_shape_the_program_does_not_handle_runs_step_by_step() -> None:
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder(gc.float32, (None, 4), name="a")
        b = gc.placeholder(gc.float32, (None, 4), name="b")
        y = gc.tanh(a + b)
    run = gc.Session(g, target="cpu").make_callable(y, [a, b])
    assert _compiled(run).program is not None
    av, bv = _rand(3, 4), _rand(1, 4)  # a run-time broadcast: shapes() refuses it
    before = program_runtime.COUNTERS["runs"]
    np.testing.assert_allclose(run(av, bv), np.tanh(av + bv), rtol=1e-6)
    assert program_runtime.COUNTERS["runs"] == before
    np.testing.assert_allclose(run(av, av), np.tanh(av + av), rtol=1e-6)
    assert program_runtime.COUNTERS["runs"] == before + 1


def test_a_numba_failure_warns_once_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self) -> None:
        raise NumbaError("cannot compile this")

    monkeypatch.setattr(program_runtime.CompiledProgram, "_compile", broken)
    m = _mlp()
    sess, ref = gc.Session(m["graph"], target="cpu"), gc.Session(m["graph"], target="reference")
    run = sess.make_callable(m["logits"], [m["x"]])
    x = _rand(3, 6)
    with pytest.warns(RuntimeWarning, match="compiled program failed"):
        got = run(x)
    np.testing.assert_allclose(got, ref.run(m["logits"], {m["x"]: x}), rtol=2e-5, atol=2e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # once only
        np.testing.assert_allclose(run(x), got)
    assert _compiled(run).program.broken is not None


def test_debug_nodes_keeps_the_step_by_step_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHC_DEBUG", "nodes")
    m = _mlp()
    run = gc.Session(m["graph"], target="cpu").make_callable(m["logits"], [m["x"]])
    assert _compiled(run).program is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reductions_and_softmax_run_in_the_program(dtype) -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(dtype, (None, 3, 4), name="x")
        fetches = [gc.nn.softmax(x),                            # max and sum, trailing axis
                   gc.reduce_mean(x, axis=[0, 2], keepdims=True),  # leading and trailing
                   gc.reduce_sum(x, axis=0), gc.reduce_min(x, axis=[1, 2]),
                   gc.reduce_max(x), gc.reduce_mean(x, axis=-1)]
    sess, ref = gc.Session(g, target="cpu"), gc.Session(g, target="reference")
    run = sess.make_callable(fetches, [x])
    assert _compiled(run).program is not None
    before = program_runtime.COUNTERS["runs"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for batch in (1, 5):
            xv = RNG.normal(size=(batch, 3, 4)).astype(dtype)
            xv[0, 1, 2] = np.nan if batch == 5 else xv[0, 1, 2]  # propagates as NumPy's
            for got, want in zip(run(xv), ref.run(fetches, {x: xv})):
                assert got.shape == want.shape and got.dtype == want.dtype
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert program_runtime.COUNTERS["runs"] - before == 2
    # no rows: the mean is NaN (as NumPy, which warns), the max raises as the reference does
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = gc.Session(g, target="cpu").make_callable(fetches[1], [x])
        assert np.isnan(mean(np.zeros((0, 3, 4), dtype))).all()
    with pytest.raises(ValueError, match="zero-size"):
        run(np.zeros((0, 3, 4), dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_argmax_and_argmin_run_in_the_program(dtype) -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.as_dtype(dtype), (None, 3, 4), name="x")
        fetches = [gc.argmax(x, 0), gc.argmax(x, 1), gc.argmax(x, -1),
                   gc.argmin(x, 1, output_type=gc.int32), gc.argmin(x, 2)]
    sess, ref = gc.Session(g, target="cpu"), gc.Session(g, target="reference")
    run = sess.make_callable(fetches, [x])
    assert _compiled(run).program is not None
    before = program_runtime.COUNTERS["runs"]
    for batch in (1, 6):
        xv = RNG.integers(-2, 3, size=(batch, 3, 4)).astype(dtype)  # ties everywhere
        if dtype == np.float32 and batch == 6:
            xv[2, 1, 3] = xv[4, 2, 0] = xv[4, 0, 0] = np.nan  # the first NaN wins
        for got, want in zip(run(xv), ref.run(fetches, {x: xv})):
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
    assert program_runtime.COUNTERS["runs"] - before == 2
    with pytest.raises(ValueError, match="empty sequence"):  # no rows: NumPy's error
        run(np.zeros((0, 3, 4), dtype))


def test_a_classifiers_loss_and_accuracy_run_in_the_program() -> None:
    """Keras's evaluate: the mean softmax cross-entropy and the accuracy, one call."""
    m = _mlp()
    g, x, y, logits = m["graph"], m["x"], m["y"], m["logits"]
    with g.as_default():
        hits = gc.equal(gc.argmax(logits, 1), y)
        fetches = [gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits),
                   gc.reduce_mean(gc.cast(hits, gc.float32))]
    sess, ref = gc.Session(g, target="cpu"), gc.Session(g, target="reference")
    run = sess.make_callable(fetches, [x, y])
    assert _compiled(run).program is not None
    before = program_runtime.COUNTERS["runs"]
    for batch in (1, 7):
        xv, yv = _rand(batch, 6), RNG.integers(0, 3, batch)
        for got, want in zip(run(xv, yv), ref.run(fetches, {x: xv, y: yv})):
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert program_runtime.COUNTERS["runs"] - before == 2
    with pytest.raises(gc.FeedError, match="label 3 is outside"):  # the reference's error
        run(_rand(4, 6), np.array([0, 1, 3, 2]))
    with pytest.raises(gc.FeedError, match="label -1 is outside"):
        run(_rand(2, 6), np.array([-1, 0]))
    assert program_runtime.COUNTERS["runs"] - before == 2
    with pytest.raises(gc.ShapeError, match=r"labels \[3\] must have the shape of logits "
                       r"\[4, 3\]"):  # another batch: the step by step path names both
        run(_rand(4, 6), np.array([0, 1, 2]))


def test_plans_differing_only_in_dtypes_get_their_own_programs() -> None:
    """An argmax or a max reads the same for every dtype: the source carries the signature,
    so the second plan does not get the first one's dispatcher (closed to other types)."""
    runs = []
    for dtype in (gc.float32, gc.float64, gc.int32):
        g = gc.Graph()
        with g.as_default():
            x = gc.placeholder(dtype, (None, 4), name="x")
            fetches = [gc.argmax(x, 1)] + ([gc.reduce_max(x, 1)] if dtype.is_floating else [])
        runs.append((gc.Session(g, target="cpu").make_callable(fetches, [x]), dtype.np))
    before = program_runtime.COUNTERS["runs"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for run, dtype in runs:
            xv = np.array([[1, 5, 2, 5], [7, 0, 0, 3]], dtype)
            got = run(xv)
            np.testing.assert_array_equal(got[0], [1, 0])
            assert got[-1].dtype == (dtype if len(got) == 2 else np.int64)
    assert program_runtime.COUNTERS["runs"] - before == 3


def test_a_reduction_over_axes_around_a_kept_one_runs_step_by_step() -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3, 4), name="x")
        y = gc.reduce_sum(gc.exp(x), axis=[0, 2])  # kept axis 1 is one run: in the program
        z = gc.reduce_sum(gc.exp(x), axis=1)        # kept axes 0 and 2: not one run
    sess = gc.Session(g, target="cpu")
    assert _compiled(sess.make_callable(y, [x])).program is not None
    run = sess.make_callable(z, [x])
    assert _compiled(run).program is None
    xv = _rand(2, 3, 4)
    np.testing.assert_allclose(run(xv), np.exp(xv).sum(axis=1), rtol=1e-6)


@pytest.mark.parametrize("padding", ["VALID", "SAME", ((1, 0), (2, 1))])
def test_average_pooling_runs_in_the_program(padding) -> None:
    from graphc.ops.pool import avg_pool2d

    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 2, 7, None), name="x")
        y = gc.nn.relu(avg_pool2d(x, (2, 3), strides=(2, 1), padding=padding))
    sess, ref = gc.Session(g, target="cpu"), gc.Session(g, target="reference")
    run = sess.make_callable(y, [x])
    assert _compiled(run).program is not None
    before = program_runtime.COUNTERS["runs"]
    for shape in ((1, 2, 7, 5), (3, 2, 7, 8)):
        xv = _rand(*shape)
        np.testing.assert_allclose(run(xv), ref.run(y, {x: xv}), rtol=1e-6, atol=1e-7)
    assert program_runtime.COUNTERS["runs"] - before == 2
