"""The compiled program's arguments (backends/numba_cpu/program_runtime.py): the layout is
found by the feeds' shapes alone, so a variable the user replaced by an array of another
shape, rank, dtype or memory order must still be seen: converted and run in the program
where it can (strided, read-only), else run step by step (another shape or rank), with
the reference's results every time."""

from __future__ import annotations

import numpy as np
from graphc.backends.numba_cpu import program_runtime

import graphc as gc

RNG = np.random.default_rng(3)


def _rand(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape).astype(np.float32)


def _model() -> tuple:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 5), name="x")
        w = gc.Variable(_rand(5, 4), name="w")
        b = gc.Variable(_rand(4), name="b")
        y = gc.tanh(x @ w + b)
    sess = gc.Session(g, target="cpu")
    run = sess.make_callable(y, [x])
    assert run._entry[1].program is not None
    return sess, run, x, y


def _expect(sess: gc.Session, x: np.ndarray) -> np.ndarray:
    w = np.asarray(sess.state["w"], np.float32)
    b = np.asarray(sess.state["b"], np.float32)
    return np.tanh(x @ w + b)


def _ran(run: gc.Executable, xv: np.ndarray, sess: gc.Session) -> bool:
    """Whether ``run(xv)`` went through the program; its result is checked either way."""
    before = program_runtime.COUNTERS["runs"]
    np.testing.assert_allclose(run(xv), _expect(sess, xv), rtol=1e-5, atol=1e-6)
    return program_runtime.COUNTERS["runs"] == before + 1


def test_replaced_variables_are_converted_or_run_step_by_step() -> None:
    sess, run, _, _ = _model()
    xv = _rand(3, 5)
    assert _ran(run, xv, sess)
    w = sess.state["w"].copy()
    sess.state["w"] = np.asfortranarray(w * 2)  # strided: copied to C order, in the program
    assert _ran(run, xv, sess)
    ro = w * 3
    ro.flags.writeable = False  # read-only: the program only reads it
    sess.state["w"] = ro
    assert _ran(run, xv, sess)
    sess.state["w"] = (w * 4).astype(">f4")  # big-endian: converted, in the program
    assert _ran(run, xv, sess)
    sess.state["b"] = _rand(1, 4)  # another rank: the steps broadcast it
    assert not _ran(run, xv, sess)
    sess.state["b"] = _rand(4)
    assert _ran(run, xv, sess)


def test_a_variable_of_another_shape_is_seen_at_the_same_feed_shapes() -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        v = gc.Variable(_rand(3), name="v")
        y = x * v
    sess = gc.Session(g, target="cpu")
    run = sess.make_callable(y, [x])
    assert run._entry[1].program is not None
    xv = _rand(2, 3)
    before = program_runtime.COUNTERS["runs"]
    np.testing.assert_allclose(run(xv), xv * sess.state["v"], rtol=1e-6)
    assert program_runtime.COUNTERS["runs"] == before + 1
    sess.state["v"] = _rand(1)  # same rank, another shape: the steps broadcast it
    np.testing.assert_allclose(run(xv), xv * sess.state["v"], rtol=1e-6)
    assert program_runtime.COUNTERS["runs"] == before + 1
    sess.state["v"] = _rand(3)
    np.testing.assert_allclose(run(xv), xv * sess.state["v"], rtol=1e-6)
    assert program_runtime.COUNTERS["runs"] == before + 2


def test_a_feed_of_another_memory_order_runs_in_the_program() -> None:
    sess, run, _, _ = _model()
    xv = np.asfortranarray(_rand(4, 5))
    assert _ran(run, xv, sess)
    assert _ran(run, _rand(6, 10)[:, ::2], sess)  # a strided view
