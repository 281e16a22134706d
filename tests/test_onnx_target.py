"""The ``onnx`` target: inference and training steps run by onnxruntime agree with the
reference target; random draws are graphc's own; providers are chosen quietly."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.backends import onnx_runtime

pytest.importorskip("onnxruntime")


def _mlp(optimizer):
    g = gc.Graph()
    with g.as_default():
        gc.set_random_seed(3)
        x = gc.placeholder(gc.float32, (None, 5), name="x")
        y = gc.placeholder(gc.int64, (None,), name="y")
        w1 = gc.Variable(gc.init.he_normal((5, 16), seed=0), name="W1")
        b1 = gc.Variable(np.zeros(16, np.float32), name="b1")
        w2 = gc.Variable(gc.init.glorot_uniform((16, 3), seed=1), name="W2")
        h = gc.nn.relu(x @ w1 + b1)
        logits = h @ w2
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        train = optimizer().minimize(loss)
    return g, x, y, logits, loss, train


@pytest.mark.parametrize("optimizer", [
    lambda: gc.train.AdamOptimizer(0.01),
    lambda: gc.train.MomentumOptimizer(0.05, 0.9, use_nesterov=True),
    lambda: gc.train.RMSPropOptimizer(0.01, momentum=0.5, clipnorm=1.0),
], ids=["adam", "nesterov", "rmsprop_clipnorm"])
def test_training_on_onnx_matches_reference(optimizer) -> None:
    g, x, y, logits, loss, train = _mlp(optimizer)
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(n, 5)).astype(np.float32), rng.integers(0, 3, size=n))
               for n in (8, 8, 5, 8, 3)]  # varying batch sizes: no recompilation
    results = {}
    for target in ("reference", "onnx"):
        sess = gc.Session(g, target=target)
        losses = [sess.run([loss, train], {x: xb, y: yb})[0] for xb, yb in batches]
        results[target] = (losses, {k: v.copy() for k, v in sess.state.items()},
                           len(sess._compiled))
    ref, got = results["reference"], results["onnx"]
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-4, atol=1e-6)
    assert set(got[1]) == set(ref[1])  # weights and every optimizer slot
    for name in ref[1]:
        assert got[1][name].shape == ref[1][name].shape and \
            got[1][name].dtype == ref[1][name].dtype, name
        np.testing.assert_allclose(got[1][name], ref[1][name], rtol=1e-4, atol=1e-5,
                                   err_msg=name)
    assert got[2] == ref[2]  # one program per signature, whatever the batch size


def test_random_draws_are_the_reference_numbers() -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 6), name="x")
        h = gc.tanh(x) * 2.0
        dropped = gc.nn.dropout(h, 0.5, seed=7) if hasattr(gc.nn, "dropout") else \
            gc.where(gc.random_uniform(h, seed=7) >= 0.5, h * 2.0, 0.0)
        noise = gc.random_normal((3,), seed=1)
        out = gc.reduce_sum(dropped, axis=1)
    xv = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    ref, onx = gc.Session(g, target="reference"), gc.Session(g, target="onnx")
    for _ in range(3):  # the step advances the stream identically
        a = ref.run([dropped, noise, out], {x: xv})
        b = onx.run([dropped, noise, out], {x: xv})
        for e, o in zip(a, b):
            np.testing.assert_allclose(o, e, rtol=1e-6, atol=1e-6)


def test_variables_are_fetched_and_assigned() -> None:
    g = gc.Graph()
    with g.as_default():
        v = gc.Variable(np.array([1.0, 2.0], np.float32), name="v")
        inc = gc.assign_add(v, [1.0, 1.0])
        init, nothing = gc.global_variables_initializer(), gc.no_op()
    sess = gc.Session(g, target="onnx")
    np.testing.assert_array_equal(sess.run(inc), [2.0, 3.0])
    np.testing.assert_array_equal(sess.run(v), [2.0, 3.0])
    sess.run(init)
    np.testing.assert_array_equal(sess.run(v), [1.0, 2.0])
    assert sess.run(nothing, {}) is None


def test_providers_are_chosen_quietly(capfd) -> None:
    onnx_runtime.providers.cache_clear()
    chosen = onnx_runtime.providers()
    assert chosen[-1] == "CPUExecutionProvider"
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None,), name="x")
        y = gc.exp(x)
    gc.Session(g, target="onnx").run(y, {x: np.zeros(3, np.float32)})
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_provider_override(monkeypatch) -> None:
    monkeypatch.setenv("GRAPHC_ONNX_PROVIDERS", "CPUExecutionProvider")
    onnx_runtime.providers.cache_clear()
    try:
        assert onnx_runtime.providers() == ("CPUExecutionProvider",)
    finally:
        onnx_runtime.providers.cache_clear()


def test_unexportable_op_fails_at_compile_with_its_name() -> None:
    from graphc.backends.onnx_export import UNSUPPORTED, unexportable

    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (3,), name="x")
        gc.exp(x)
    assert not unexportable(g)
    assert "random_uniform" in UNSUPPORTED  # refused for files, fed by the target


def test_cnn_training_on_onnx_matches_reference() -> None:
    conv = pytest.importorskip("graphc.ops.conv")
    pool = pytest.importorskip("graphc.ops.pool")
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 2, 9, 9), name="x")
        y = gc.placeholder(gc.int64, (None,), name="y")
        k1 = gc.Variable(gc.init.he_normal((4, 2, 3, 3), seed=0), name="k1")
        k2 = gc.Variable(gc.init.he_normal((4, 2, 3, 3), seed=1), name="k2")
        w = gc.Variable(gc.init.glorot_uniform((8, 3), seed=2), name="w")
        h = gc.nn.relu(conv.conv2d(x, k1, strides=1, padding="SAME"))
        h = pool.max_pool2d(h, 2, strides=2, padding="SAME")                 # 5x5
        h = conv.conv2d(h, k2, padding=((1, 0), (0, 1)), groups=2, dilations=(1, 2))  # 4x2
        h = pool.avg_pool2d(gc.tanh(h), 3, strides=2, padding="SAME")       # 2x1
        logits = gc.reshape(h, (-1, 8)) @ w
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        train = gc.train.AdamOptimizer(0.01).minimize(loss)
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(n, 2, 9, 9)).astype(np.float32), rng.integers(0, 3, size=n))
               for n in (4, 2, 4)]
    results = {}
    for target in ("reference", "onnx"):
        sess = gc.Session(g, target=target)
        losses = [sess.run([loss, train], {x: xb, y: yb})[0] for xb, yb in batches]
        results[target] = (losses, dict(sess.state))
    np.testing.assert_allclose(results["onnx"][0], results["reference"][0], rtol=1e-4)
    for name, value in results["reference"][1].items():
        np.testing.assert_allclose(results["onnx"][1][name], value, rtol=1e-3, atol=1e-5,
                                   err_msg=name)


def test_lstm_training_on_onnx_matches_reference() -> None:
    rnn = pytest.importorskip("graphc.ops.rnn")
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, None, 3), name="x")   # (T, N, I)
        y = gc.placeholder(gc.float32, (None, 2), name="y")
        W = gc.Variable(gc.init.glorot_uniform((3, 16), seed=0), name="W")
        R = gc.Variable(gc.init.orthogonal((4, 16), seed=1), name="R")
        b = gc.Variable(np.zeros(16, np.float32), name="b")
        V = gc.Variable(gc.init.glorot_uniform((4, 2), seed=2), name="V")
        _, (h, _) = rnn.lstm(x, W, R, b)
        loss = gc.losses.mean_squared_error(y, h @ V)
        train = gc.train.AdamOptimizer(0.02).minimize(loss)
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(t, n, 3)).astype(np.float32),
                rng.normal(size=(n, 2)).astype(np.float32)) for t, n in ((5, 4), (3, 2), (5, 4))]
    results = {}
    for target in ("reference", "onnx"):
        sess = gc.Session(g, target=target)
        losses = [sess.run([loss, train], {x: xb, y: yb})[0] for xb, yb in batches]
        results[target] = (losses, dict(sess.state))
    np.testing.assert_allclose(results["onnx"][0], results["reference"][0], rtol=1e-4)
    for name, value in results["reference"][1].items():
        np.testing.assert_allclose(results["onnx"][1][name], value, rtol=1e-3, atol=1e-5,
                                   err_msg=name)
