"""The scan gradient reads the forward pass's intermediates (residuals) instead of
recomputing them (graphc/ops/control_grad.py, control_residuals.py): the backward body
holds no copy of the forward GEMM, the gradients stay right (finite differences, an
unrolled graph without scan, second order), integers are recomputed, never saved."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc as gc
from graphc.ops import rnn
from graphc.ops.control import scan
from graphc.ops.control_grad import _grad_body, saving_body

from test_scan import _numeric_grad  # central differences, EPS 1e-6

RNG = np.random.default_rng(5)


def _forward_body(graph: gc.Graph):
    return next(n.attrs["body"] for n in graph.nodes if n.op == "scan")


def _depends_on(graph: gc.Graph, sources: list) -> set[int]:
    """Ids of the nodes of ``graph`` that depend on any of ``sources``."""
    out = {t.node.id for t in sources}
    for node in graph.nodes:
        if any(t.node.id in out for t in node.inputs):
            out.add(node.id)
    return out


def _layer(kind: str, dtype=gc.float64, batch: int | None = 2) -> tuple:
    """A recurrent layer over x (T=None, N=batch (fed 2), I=3) with H=4; loss, x and
    weights."""
    g = gc.Graph()
    gates = {"lstm": 4, "gru": 3, "gru_lbr0": 3, "simple_rnn": 1}[kind]
    with g.as_default():
        x = gc.placeholder(dtype, (None, batch, 3), name="x")
        W = gc.Variable(RNG.normal(size=(3, gates * 4)) * 0.5, dtype=dtype, name="W")
        R = gc.Variable(RNG.normal(size=(4, gates * 4)) * 0.5, dtype=dtype, name="R")
        b = gc.Variable(RNG.normal(size=gates * 4) * 0.1, dtype=dtype, name="b")
        if kind == "lstm":
            out, _ = rnn.lstm(x, W, R, b)
        elif kind == "simple_rnn":
            out, _ = rnn.simple_rnn(x, W, R, b)
        else:
            out, _ = rnn.gru(x, W, R, b, linear_before_reset=kind == "gru")
        loss = gc.reduce_sum(out * RNG.uniform(0.5, 1.5, size=(2, 4)))
    return g, loss, x, [W, R, b]


@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_lbr0", "simple_rnn"])
def test_the_backward_body_holds_no_forward_gemm(kind: str) -> None:
    g, loss, x, weights = _layer(kind)
    with g.as_default():
        gc.gradients(loss, [x, *weights])
    body = _forward_body(g)
    gb = _grad_body(body)
    gbody, nfc, nfk = gb.body, len(gb.fc), len(gb.fk)
    # every GEMM of the backward body reads a gradient (of a carry or of a y): none
    # recomputes the forward's h @ R from the saved carries
    at_gy = nfc + nfk + body.n_xs + body.n_carry
    grads_in = [*gbody.inputs[:nfc], *gbody.inputs[at_gy:at_gy + len(gb.fy)]]
    from_grads = _depends_on(gbody.graph, grads_in)
    gemms = [n for n in gbody.graph.nodes if n.op == "matmul"]
    assert gemms and all(n.id in from_grads for n in gemms)
    # residuals: float values of the forward body, none of its inputs
    inputs = {(t.node.id, t.index) for t in body.inputs}
    assert gb.residuals and all(r.dtype.is_floating and r.graph is body.graph
                                and (r.node.id, r.index) not in inputs for r in gb.residuals)
    if kind == "lstm":  # the gates' activations (the batch is known: no sum_to_like left)
        assert {r.node.op for r in gb.residuals} == {"sigmoid", "tanh"}
    saving = saving_body(body)
    assert saving.graph is body.graph and saving.inputs == body.inputs
    assert saving.outputs[:len(body.outputs)] == body.outputs
    assert saving_body(body) is saving  # built once


def _lstm_unrolled(xv, Wv, Rv, bv, weights) -> tuple:
    """The same LSTM as a plain graph (a Python loop of ops, no scan): the gradient the
    recomputing scan gradient gave."""
    g = gc.Graph()
    with g.as_default():
        W, R, b = (gc.Variable(v, name=n) for v, n in ((Wv, "W"), (Rv, "R"), (bv, "b")))
        x = gc.placeholder(gc.float64, xv.shape)
        h = c = gc.zeros((xv.shape[1], Rv.shape[0]), gc.float64)
        outs = []
        for t in range(xv.shape[0]):
            i, f, gg, o = gc.split(x[t] @ W + b + h @ R, 4, axis=-1)
            c = gc.sigmoid(f) * c + gc.sigmoid(i) * gc.tanh(gg)
            h = gc.sigmoid(o) * gc.tanh(c)
            outs.append(h)
        loss = gc.reduce_sum(gc.stack(outs) * weights)
        grads = gc.gradients(loss, [x, W, R, b])
    return gc.Session(g, target="reference").run([loss, *grads], {x: xv})


@pytest.mark.parametrize("kind", ["lstm", "gru_lbr0", "simple_rnn"])
def test_a_gemm_read_only_for_its_shape_is_not_saved(kind: str) -> None:
    """With the batch unknown, the gradient of ``x_t + h @ R`` needs the shape of h @ R
    (sum_to_like): a broadcast product of one column of h and one row of R stands in for
    it, so the forward saves no (T, N, G*H) stack of it. (PyTorch's GRU variant splits
    h @ R first, and one piece is read for its values: its pieces stay saved.)"""
    g, loss, x, weights = _layer(kind, batch=None)
    with g.as_default():
        gc.gradients(loss, [x, *weights])
    gb = _grad_body(_forward_body(g))
    assert gb.residuals and all(r.node.op != "matmul" for r in gb.residuals)
    if kind == "lstm":  # the gates' activations, as with a known batch
        assert {r.node.op for r in gb.residuals} == {"sigmoid", "tanh"}
    assert any(n.op == "strided_slice" for n in gb.body.graph.nodes)  # the donor


@pytest.mark.parametrize("kind, batch", [("lstm", 2), ("gru", 2), ("gru_lbr0", 2),
                                         ("lstm", None), ("gru_lbr0", None),
                                         ("simple_rnn", None)])
def test_rnn_gradients_match_finite_differences_on_both_targets(kind: str, batch) -> None:
    g, loss, x, weights = _layer(kind, batch=batch)
    with g.as_default():
        grads = gc.gradients(loss, [x, *weights])
    sess = gc.Session(g, target="reference")
    xv = RNG.normal(size=(3, 2, 3))
    analytic = sess.run(grads, {x: xv})
    f = lambda: float(sess.run(loss, {x: xv}))  # noqa: E731
    np.testing.assert_allclose(analytic[0], _numeric_grad(f, xv), rtol=1e-6, atol=1e-8)
    for var, got in zip(weights, analytic[1:]):
        np.testing.assert_allclose(got, _numeric_grad(f, sess.state[var.name]), rtol=1e-6,
                                   atol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # compiled loops, no fallback
        cpu = gc.Session(g, target="cpu")
        cpu.state.update({v.name: sess.state[v.name] for v in weights})
        got = cpu.run(grads, {x: xv})
    for a, b in zip(analytic, got):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)


def test_lstm_gradient_matches_the_unrolled_graph() -> None:
    g, loss, x, weights = _layer("lstm")
    with g.as_default():
        grads = gc.gradients(loss, [x, *weights])
    sess = gc.Session(g, target="reference")
    xv = RNG.normal(size=(4, 2, 3))
    got = sess.run([loss, *grads], {x: xv})
    mul = next(n for n in g.nodes if n.op == "constant" and n.specs[0].shape == (2, 4))
    values = [sess.state[v.name] for v in weights]
    want = _lstm_unrolled(xv, *values, mul.attrs["value"].array)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_integer_values_are_recomputed_never_saved() -> None:
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float64, (None, 3))
        R = gc.Variable(RNG.normal(size=(3, 3)), name="R")

        def step(c, x):
            s = gc.matmul(c[None], R)[0]
            pick = gc.argmax(s, axis=0)  # an int computed from the GEMM
            return gc.tanh(s) + x * gc.gather(s, pick)
        out = scan(step, xs, gc.ones((3,), gc.float64))
        loss = gc.reduce_sum(out * out)
        grads = gc.gradients(loss, [xs, R])
    gb = _grad_body(_forward_body(g))
    assert all(r.dtype.is_floating for r in gb.residuals)
    assert "argmax" in [n.op for n in gb.body.graph.nodes]  # recomputed from a saved GEMM
    sess = gc.Session(g, target="reference")
    xv = RNG.normal(size=(4, 3))
    analytic = sess.run(grads, {xs: xv})
    f = lambda: float(sess.run(loss, {xs: xv}))  # noqa: E731
    np.testing.assert_allclose(analytic[0], _numeric_grad(f, xv), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(analytic[1], _numeric_grad(f, sess.state["R"]), rtol=1e-6,
                               atol=1e-8)


def test_second_order_through_the_lstm() -> None:
    g, loss, x, (W, R, b) = _layer("lstm")
    with g.as_default():
        (gR,) = gc.gradients(loss, [R])
        inner = gc.reduce_sum(gR * gR)
        ggR, ggx = gc.gradients(inner, [R, x])
    sess = gc.Session(g, target="reference")
    xv = RNG.normal(size=(3, 2, 3))
    analytic = sess.run([ggR, ggx], {x: xv})
    f = lambda: float(sess.run(inner, {x: xv}))  # noqa: E731
    np.testing.assert_allclose(analytic[0], _numeric_grad(f, sess.state["R"]), rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_allclose(analytic[1], _numeric_grad(f, xv), rtol=1e-5, atol=1e-7)
    cpu = gc.Session(g, target="cpu")
    cpu.state.update({v.name: sess.state[v.name] for v in (W, R, b)})
    for a, c in zip(analytic, cpu.run([ggR, ggx], {x: xv})):
        np.testing.assert_allclose(c, a, rtol=1e-8, atol=1e-10)


def test_repeated_gradients_share_the_saving_and_backward_scans() -> None:
    g, loss, x, weights = _layer("gru")
    with g.as_default():
        first = gc.gradients(loss, [x, *weights])
        n = len(g.nodes)
        second = gc.gradients(loss, [x, *weights])
    assert all(a is b for a, b in zip(first, second)) and len(g.nodes) == n
    assert sum(node.name.startswith("scan_saved") for node in g.nodes) == 1
