"""batch_normalization, batch_norm (moving statistics, update ops, the training switch,
minimize integration) and layer_norm, against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ops.normalization import batch_norm, batch_normalization, layer_norm

RNG = np.random.default_rng(3)


def _np_bn(x, mean, var, beta, gamma, eps, axis=1):
    shape = [1] * x.ndim
    shape[axis] = -1
    r = lambda a: np.reshape(a, shape)  # noqa: E731
    return (x - r(mean)) / np.sqrt(r(var) + eps) * r(gamma) + r(beta)


def _setup(c=3, dtype=np.float64, training=True, momentum=0.9):
    x = gc.placeholder(dtype, (None, c, None, None), name="x")
    gamma = gc.Variable(RNG.uniform(0.5, 1.5, c).astype(dtype), name="gamma")
    beta = gc.Variable(RNG.normal(size=c).astype(dtype), name="beta")
    mm = gc.Variable(RNG.normal(size=c).astype(dtype), name="moving_mean", trainable=False)
    mv = gc.Variable(RNG.uniform(0.5, 2, c).astype(dtype), name="moving_var", trainable=False)
    y = batch_norm(x, gamma, beta, mm, mv, training, momentum=momentum, eps=1e-3)
    return x, y, (gamma, beta, mm, mv)


def test_batch_normalization_is_tf1s_formula() -> None:
    x, m, v = RNG.normal(size=(4, 5)), RNG.normal(size=5), RNG.uniform(0.5, 2, 5)
    b, s = RNG.normal(size=5), RNG.normal(size=5)
    with gc.Graph().as_default():
        y = batch_normalization(x, m, v, b, s, 1e-3)
        got = gc.Session(target="reference").run(y)
    np.testing.assert_allclose(got, (x - m) / np.sqrt(v + 1e-3) * s + b, rtol=1e-5)


def test_training_uses_batch_statistics_and_updates_the_moving_ones() -> None:
    with gc.Graph().as_default() as g:
        x, y, (gamma, beta, mm, mv) = _setup()
        updates = g.get_collection("update_ops")
        assert len(updates) == 2
        sess = gc.Session(g, target="reference")
        old = sess.run([gamma, beta, mm, mv])
        xv = RNG.normal(size=(4, 3, 2, 5)) * 2 + 1
        yv, _ = sess.run([y, updates], {x: xv})
        new_mm, new_mv = sess.run([mm, mv])
    mean, var = xv.mean(axis=(0, 2, 3)), xv.var(axis=(0, 2, 3))  # biased, as Keras
    np.testing.assert_allclose(yv, _np_bn(xv, mean, var, old[1], old[0], 1e-3), rtol=1e-9)
    np.testing.assert_allclose(new_mm, 0.9 * old[2] + 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(new_mv, 0.9 * old[3] + 0.1 * var, rtol=1e-12)


def test_inference_uses_the_moving_statistics_and_builds_no_updates() -> None:
    with gc.Graph().as_default() as g:
        x, y, (gamma, beta, mm, mv) = _setup(training=False)
        assert g.get_collection("update_ops") == []
        sess = gc.Session(g, target="reference")
        xv = RNG.normal(size=(2, 3, 4, 4))
        yv, gv, bv, mmv, mvv = sess.run([y, gamma, beta, mm, mv], {x: xv})
    np.testing.assert_allclose(yv, _np_bn(xv, mmv, mvv, bv, gv, 1e-3), rtol=1e-9)


def test_training_placeholder_chooses_the_path_and_the_update() -> None:
    with gc.Graph().as_default() as g:
        training = gc.placeholder(gc.bool, (), name="training")
        x, y, (gamma, beta, mm, mv) = _setup(training=training)
        updates = g.get_collection("update_ops")
        sess = gc.Session(g, target="reference")
        gv, bv, mm0, mv0 = sess.run([gamma, beta, mm, mv])
        xv = RNG.normal(size=(3, 3, 2, 2))
        y_off, _ = sess.run([y, updates], {x: xv, training: False})
        np.testing.assert_allclose(y_off, _np_bn(xv, mm0, mv0, bv, gv, 1e-3), rtol=1e-9)
        np.testing.assert_array_equal(sess.run(mm), mm0)  # the update wrote the old value
        np.testing.assert_array_equal(sess.run(mv), mv0)
        y_on, _ = sess.run([y, updates], {x: xv, training: True})
        mean, var = xv.mean(axis=(0, 2, 3)), xv.var(axis=(0, 2, 3))
        np.testing.assert_allclose(y_on, _np_bn(xv, mean, var, bv, gv, 1e-3), rtol=1e-9)
        np.testing.assert_allclose(sess.run(mm), 0.9 * mm0 + 0.1 * mean, rtol=1e-12)


def test_minimize_runs_the_update_ops_the_loss_depends_on() -> None:
    with gc.Graph().as_default() as g:
        x, y, (gamma, beta, mm, mv) = _setup(momentum=0.5)
        # A second batch norm whose output the loss ignores: its updates must not run.
        other_mm = gc.Variable(np.zeros(3), name="other_mm", trainable=False)
        other_mv = gc.Variable(np.ones(3), name="other_mv", trainable=False)
        batch_norm(x, None, None, other_mm, other_mv, True)
        assert len(g.get_collection("update_ops")) == 4
        loss = gc.reduce_mean(gc.square(y - 1.0))
        train_op = gc.train.GradientDescentOptimizer(0.1).minimize(loss)
        sess = gc.Session(g, target="reference")
        g0, b0, mm0, mv0 = sess.run([gamma, beta, mm, mv])
        xv = RNG.normal(size=(4, 3, 3, 3))
        sess.run(train_op, {x: xv})
        g1, b1, mm1, mv1 = sess.run([gamma, beta, mm, mv])
        np.testing.assert_array_equal(sess.run(other_mm), np.zeros(3))
        np.testing.assert_array_equal(sess.run(other_mv), np.ones(3))
    np.testing.assert_allclose(mm1, 0.5 * mm0 + 0.5 * xv.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(mv1, 0.5 * mv0 + 0.5 * xv.var(axis=(0, 2, 3)), rtol=1e-12)
    assert not np.allclose(g1, g0) and not np.allclose(b1, b0)  # the train step ran too


def test_minimize_skips_updates_removed_from_the_collection() -> None:
    with gc.Graph().as_default() as g:
        x, y, (_, _, mm, _) = _setup()
        g.collections["update_ops"] = []
        train_op = gc.train.GradientDescentOptimizer(0.1).minimize(gc.reduce_sum(y * y))
        sess = gc.Session(g, target="reference")
        mm0 = sess.run(mm)
        sess.run(train_op, {x: RNG.normal(size=(2, 3, 2, 2))})
        np.testing.assert_array_equal(sess.run(mm), mm0)


def test_batch_norm_argument_errors() -> None:
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, 3, 4, 4), name="feat")
        mm = gc.Variable(np.zeros(3, np.float32), trainable=False)
        mv = gc.Variable(np.ones(3, np.float32), trainable=False)
        with pytest.raises(gc.GraphError, match="moving_mean must be a gc.Variable"):
            batch_norm(x, None, None, gc.constant(np.zeros(3, np.float32)), mv, True)
        with pytest.raises(gc.ShapeError, match=r"gamma must have shape \(3,\)") as err:
            batch_norm(x, np.ones(4, np.float32), None, mm, mv, True)
        assert "feat" in str(err.value) and "test_normalization.py" in str(err.value)
        with pytest.raises(TypeError, match="training"):
            batch_norm(x, None, None, mm, mv, "yes")
        with pytest.raises(gc.GraphError, match="bool scalar"):
            batch_norm(x, None, None, mm, mv, gc.placeholder(gc.float32, ()))
        with pytest.raises(ValueError, match="momentum"):
            batch_norm(x, None, None, mm, mv, True, momentum=1.5)
        with pytest.raises(gc.ShapeError, match="axis"):
            batch_norm(x, None, None, mm, mv, True, axis=4)


def test_layer_norm_matches_numpy() -> None:
    x = RNG.normal(size=(2, 3, 4)) * 3 + 1
    g2, b2 = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    with gc.Graph().as_default():
        y1 = layer_norm(x, g2[0], b2[0])
        y2 = layer_norm(x, g2, b2, axis=(1, 2))
        y3 = layer_norm(x, g2[:, 0], None, axis=1)
        v1, v2, v3 = gc.Session(target="reference").run([y1, y2, y3])
    def ln(a, axes):
        m, v = a.mean(axis=axes, keepdims=True), a.var(axis=axes, keepdims=True)
        return (a - m) / np.sqrt(v + 1e-5)
    np.testing.assert_allclose(v1, ln(x, -1) * g2[0] + b2[0], rtol=1e-9)
    np.testing.assert_allclose(v2, ln(x, (1, 2)) * g2 + b2, rtol=1e-9)
    np.testing.assert_allclose(v3, ln(x, 1) * g2[:, 0, None], rtol=1e-9)
    with gc.Graph().as_default():
        with pytest.raises(gc.ShapeError, match=r"gamma must have shape \[4\]"):
            layer_norm(gc.constant(x), g2, None)
