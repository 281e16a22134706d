"""A two-block residual CNN (conv -> batch norm (training) -> relu -> conv -> add, twice):
gradients end to end against central finite differences in float64, and a training step
through ``minimize`` that also updates the batch-norm statistics."""

from __future__ import annotations

import numpy as np

import graphc as gc
from graphc.ops.conv import conv2d
from graphc.ops.normalization import batch_norm
from graphc.ops.pool import global_avg_pool2d

C = 2
SHAPES = {"x": (2, C, 5, 5)}
for _b in range(2):
    SHAPES.update({f"w{_b}a": (C, C, 3, 3), f"w{_b}b": (C, C, 3, 3), f"gamma{_b}": (C,),
                   f"beta{_b}": (C,)})


def _model(params: dict) -> gc.Tensor:
    h = params["x"]
    for b in range(2):
        mm = gc.Variable(np.zeros(C), name=f"mm{b}", trainable=False)
        mv = gc.Variable(np.ones(C), name=f"mv{b}", trainable=False)
        z = conv2d(h, params[f"w{b}a"], padding="SAME")
        z = gc.nn.relu(batch_norm(z, params[f"gamma{b}"], params[f"beta{b}"], mm, mv, True,
                                  momentum=0.9))
        h = h + conv2d(z, params[f"w{b}b"], padding=1)
    return h


def test_residual_cnn_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(11)
    values = {k: rng.normal(size=s) * (0.5 if k.startswith("w") else 1.0) for k, s in SHAPES.items()}
    values.update({f"gamma{b}": rng.uniform(0.5, 1.5, C) for b in range(2)})
    g = gc.Graph()
    with g.as_default():
        phs = {k: gc.placeholder(gc.float64, s, name=k) for k, s in SHAPES.items()}
        out = _model(phs)
        weights = rng.uniform(0.5, 1.5, size=SHAPES["x"])
        loss = gc.reduce_sum(out * out * weights)
        grads = gc.gradients(loss, list(phs.values()))
    assert all(gr is not None for gr in grads)
    sess = gc.Session(g, target="reference")
    feed = {phs[k]: v for k, v in values.items()}
    analytic = sess.run(grads, feed)
    eps = 1e-6
    for (name, ph), got in zip(phs.items(), analytic):
        arr = values[name]
        numeric = np.zeros_like(arr)
        for j in np.ndindex(arr.shape):
            saved = arr[j]
            arr[j] = saved + eps
            up = sess.run(loss, feed)
            arr[j] = saved - eps
            down = sess.run(loss, feed)
            arr[j] = saved
            numeric[j] = (up - down) / (2 * eps)
        np.testing.assert_allclose(got, numeric, rtol=1e-4, atol=1e-6, err_msg=name)


def test_residual_cnn_trains_and_updates_the_statistics() -> None:
    rng = np.random.default_rng(12)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, C, 5, 5), name="x")
        y = gc.placeholder(gc.int64, (None,), name="y")
        params = {"x": x}
        for k, s in SHAPES.items():
            if k != "x":
                init = rng.normal(size=s) * 0.3 if k.startswith("w") else \
                    np.ones(s) if k.startswith("gamma") else np.zeros(s)
                params[k] = gc.Variable(init.astype(np.float32), name=k)
        logits = global_avg_pool2d(_model(params))
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y,
                                                                              logits=logits))
        train_op = gc.train.AdamOptimizer(0.05).minimize(loss)
    sess = gc.Session(g, target="reference")
    xv = rng.normal(size=(8, C, 5, 5)).astype(np.float32)
    yv = (xv[:, 0].mean(axis=(1, 2)) > xv[:, 1].mean(axis=(1, 2))).astype(np.int64)
    first = sess.run(loss, {x: xv, y: yv})
    for _ in range(30):
        sess.run(train_op, {x: xv, y: yv})
    assert sess.run(loss, {x: xv, y: yv}) < first
    for b in range(2):  # 30 updates with momentum 0.9 moved the statistics off their start
        assert not np.allclose(sess.state[f"mm{b}"], 0.0)
        assert not np.allclose(sess.state[f"mv{b}"], 1.0)
