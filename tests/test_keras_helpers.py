"""Shared by the gc.keras tests (no tests here): the target to use and a finite-difference
gradient check of a layer through a model."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

import graphc as gc
from graphc.frontends import keras
from graphc.frontends.keras import backend

# The Keras tests run on cpu when it is built (the fastest target), else on reference;
# the gradient checks always run on reference (the float64 oracle).
TARGET = "cpu" if "cpu" in gc.available_targets() else "reference"


def layer_model(layer: Any, input_shape: Sequence[int], dtype: Any = gc.float64,
                training: Optional[bool] = None) -> tuple[keras.Model, gc.Tensor]:
    """A one-layer functional model in a fresh graph; returns (model, input placeholder)."""
    graph = gc.Graph()
    with graph.as_default():
        x = keras.Input(tuple(input_shape), dtype=dtype)
        out = layer(x, training=training)
    return keras.Model(x, out), x


def check_gradients(model: keras.Model, x_value: np.ndarray, feeds: Optional[dict] = None,
                    wrt_input: bool = True, eps: float = 1e-6, tol: float = 1e-6) -> None:
    """d sum(out * R) / d (weights, input) by graphc equals central finite differences."""
    graph = model.graph
    out = model.outputs[0]
    rng = np.random.default_rng(1)
    x = model.inputs[0]
    feeds = dict(feeds or {})
    flag = backend.has_learning_phase(graph)
    if flag is not None and flag not in feeds:
        feeds[flag] = False
    with graph.as_default():
        probe_value = rng.normal(size=[d if d is not None else len(x_value) for d in out.shape])
        probe = gc.constant(probe_value.astype(out.dtype.np))
        loss = gc.reduce_sum(out * probe)
        targets = list(model.trainable_weights) + ([x] if wrt_input else [])
        grads = gc.gradients(loss, targets)
    sess = gc.Session(graph, target="reference")
    run_feeds = {x: x_value, **feeds}
    analytic = sess.run(grads, run_feeds)
    for var, g in zip(targets, analytic):
        assert g is not None, f"no gradient for {var.name}"
        if var is x:
            base = x_value
        else:
            sess._initialize([var.node.name])
            base = sess.state[var.node.name]
        numeric = np.zeros_like(base, dtype=np.float64)
        for idx in np.ndindex(*base.shape):
            vals = []
            for sign in (1.0, -1.0):
                moved = base.copy()
                moved[idx] += sign * eps
                if var is x:
                    vals.append(float(sess.run(loss, {**run_feeds, x: moved})))
                else:
                    sess.state[var.node.name] = moved
                    vals.append(float(sess.run(loss, run_feeds)))
            numeric[idx] = (vals[0] - vals[1]) / (2 * eps)
        if var is not x:
            sess.state[var.node.name] = base
        np.testing.assert_allclose(g, numeric, rtol=tol, atol=tol,
                                   err_msg=f"gradient of {var.name}")
