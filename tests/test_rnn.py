"""gc.nn.lstm / gru / simple_rnn against NumPy loops and ONNX's reference implementation, the
ONNX weight converters, sequence lengths, layouts and errors (graphc/ops/rnn.py).
Gradients are checked by the case table (op_cases.py); PyTorch parity in
test_torch_parity_rnn.py."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ops import rnn

RNG = np.random.default_rng(11)
T, N, I, H = 4, 3, 3, 2


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def np_lstm(x, W, R, b, h, c, lengths):
    outs = []
    for t in range(len(x)):
        i, f, g, o = np.split(x[t] @ W + b + h @ R, 4, axis=-1)
        c2 = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h2 = sigmoid(o) * np.tanh(c2)
        m = (t < lengths)[:, None]
        h, c = np.where(m, h2, h), np.where(m, c2, c)
        outs.append(np.where(m, h2, 0.0))
    return np.array(outs), h, c


def np_gru(x, W, R, b, rb, h, lengths, linear_before_reset):
    outs = []
    Rz, Rr, Rh = np.split(R, 3, axis=1)
    rbz, rbr, rbh = np.split(rb, 3)
    for t in range(len(x)):
        xz, xr, xh = np.split(x[t] @ W + b, 3, axis=-1)
        z = sigmoid(xz + h @ Rz + rbz)
        r = sigmoid(xr + h @ Rr + rbr)
        n = np.tanh(xh + r * (h @ Rh + rbh)) if linear_before_reset else \
            np.tanh(xh + (r * h) @ Rh + rbh)
        h2 = (1 - z) * n + z * h
        m = (t < lengths)[:, None]
        h = np.where(m, h2, h)
        outs.append(np.where(m, h2, 0.0))
    return np.array(outs), h


def np_rnn(x, W, R, b, h, lengths, act):
    outs = []
    for t in range(len(x)):
        h2 = act(x[t] @ W + b + h @ R)
        m = (t < lengths)[:, None]
        h = np.where(m, h2, h)
        outs.append(np.where(m, h2, 0.0))
    return np.array(outs), h


def _weights(gates: int) -> tuple:
    return (RNG.normal(size=(I, gates * H)) * 0.5, RNG.normal(size=(H, gates * H)) * 0.5,
            RNG.normal(size=gates * H) * 0.1, RNG.normal(size=gates * H) * 0.1)


def _run(build, x: np.ndarray):
    g = gc.Graph()
    with g.as_default():
        xp = gc.placeholder(gc.float64, (None,) * x.ndim)
        out = build(xp)
    return gc.Session(g, target="reference").run(out, {xp: x})


@pytest.mark.parametrize("time_major", [True, False])
@pytest.mark.parametrize("lengths", [None, [4, 1, 3]])
def test_lstm_matches_numpy(time_major: bool, lengths) -> None:
    W, R, b, _ = _weights(4)
    x = RNG.normal(size=(T, N, I))
    h0, c0 = RNG.normal(size=(N, H)), RNG.normal(size=(N, H))
    feed = x if time_major else x.transpose(1, 0, 2)
    out, (h, c) = _run(lambda xp: rnn.lstm(xp, W, R, b, initial_state=(h0, c0),
                                           sequence_lengths=None if lengths is None
                                           else np.array(lengths), time_major=time_major), feed)
    want = np_lstm(x, W, R, b, h0, c0, np.array(lengths or [T] * N))
    np.testing.assert_allclose(out if time_major else out.transpose(1, 0, 2), want[0], atol=1e-12)
    np.testing.assert_allclose(h, want[1], atol=1e-12)
    np.testing.assert_allclose(c, want[2], atol=1e-12)


@pytest.mark.parametrize("linear_before_reset", [True, False])
def test_gru_matches_numpy(linear_before_reset: bool) -> None:
    W, R, b, rb = _weights(3)
    x = RNG.normal(size=(T, N, I))
    lengths = np.array([2, 4, 0])
    out, h = _run(lambda xp: rnn.gru(xp, W, R, b, rb, sequence_lengths=lengths,
                                     linear_before_reset=linear_before_reset), x)
    want = np_gru(x, W, R, b, rb, np.zeros((N, H)), lengths, linear_before_reset)
    np.testing.assert_allclose(out, want[0], atol=1e-12)
    np.testing.assert_allclose(h, want[1], atol=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "relu", np.sin])
def test_simple_rnn_matches_numpy(activation) -> None:
    W, R, b, _ = _weights(1)
    x = RNG.normal(size=(T, N, I))
    h0 = RNG.normal(size=(N, H))
    act = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0)}.get(activation, np.sin)
    out, h = _run(lambda xp: rnn.simple_rnn(xp, W, R, b, initial_state=h0, activation=(
        gc.sin if activation is np.sin else activation)), x)
    want = np_rnn(x, W, R, b, h0, np.array([T] * N), act)
    np.testing.assert_allclose(out, want[0], atol=1e-12)
    np.testing.assert_allclose(h, want[1], atol=1e-12)


@pytest.mark.parametrize("target", ["reference", "cpu"])
@pytest.mark.parametrize("layer", ["lstm", "gru", "simple_rnn"])
def test_a_sequence_of_no_steps_keeps_the_initial_state(layer: str, target: str) -> None:
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[layer]
    W, R, b, _ = _weights(gates)
    states = [RNG.normal(size=(N, H)) for _ in range(2 if layer == "lstm" else 1)]
    with gc.Graph().as_default():
        xp = gc.placeholder(gc.float64, (None, N, I))
        init = [gc.placeholder(gc.float64, (N, H)) for _ in states]
        out, final = getattr(rnn, layer)(xp, W, R, b, initial_state=tuple(init)
                                         if layer == "lstm" else init[0])
        finals = list(final) if layer == "lstm" else [final]
        loss = sum(gc.reduce_sum(f * (k + 2.0)) for k, f in enumerate(finals))
        grads = gc.gradients(loss, init)
        feeds = {xp: np.zeros((0, N, I)), **dict(zip(init, states))}
        got_out, got_finals, got_grads = gc.Session(target=target).run(
            [out, finals, grads], feeds)
    assert got_out.shape == (0, N, H)
    for k, (f, s, g) in enumerate(zip(got_finals, states, got_grads)):
        np.testing.assert_array_equal(f, s)
        np.testing.assert_array_equal(g, np.full((N, H), k + 2.0))


def test_graph_size_does_not_grow_with_sequence_length() -> None:
    sizes = []
    for steps in (2, 50):
        g = gc.Graph()
        with g.as_default():
            x = gc.placeholder(gc.float32, (steps, 2, I))
            W = gc.Variable(np.ones((I, 4 * H), np.float32))
            R = gc.Variable(np.ones((H, 4 * H), np.float32))
            out, _ = rnn.lstm(x, W, R, sequence_lengths=gc.placeholder(gc.int32, (2,)))
            gc.gradients(gc.reduce_sum(out), [W, R, x])
        sizes.append(len(g.nodes))
    assert sizes[0] == sizes[1]


def test_bad_shapes_are_caught_when_building() -> None:
    W, R, b, _ = _weights(4)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 2, I))
        with pytest.raises(gc.ShapeError, match=r"(?s)lstm: the gate widths.*test_rnn.py"):
            rnn.lstm(x, W[:, :6], R)
        with pytest.raises(gc.ShapeError, match="x has 3 features but W has 2 rows"):
            rnn.lstm(x, W[:2], R)
        with pytest.raises(gc.ShapeError, match="must have rank 3"):
            rnn.gru(x[0], *_weights(3)[:2])
        with pytest.raises(gc.ShapeError, match="sequence_lengths must be an int vector"):
            rnn.simple_rnn(x, *_weights(1)[:2], sequence_lengths=np.ones(2))
        with pytest.raises(ValueError, match="unknown activation"):
            rnn.simple_rnn(x, *_weights(1)[:2], activation="swish")


# -- ONNX layouts ------------------------------------------------------------------------------

def test_converters_round_trip() -> None:
    W, R, b, rb = _weights(4)
    Wo, Ro, Bo = rnn.lstm_weights_to_onnx(W, R, b)
    assert Wo.shape == (1, 4 * H, I) and Ro.shape == (1, 4 * H, H) and Bo.shape == (1, 8 * H)
    for got, want in zip(rnn.lstm_weights_from_onnx(Wo, Ro, Bo), (W, R, b)):
        np.testing.assert_array_equal(got, want)
    # ONNX gate order i, o, f, c: the forget block of W is ONNX's third
    np.testing.assert_array_equal(Wo[0, 2 * H:3 * H], W[:, H:2 * H].T)
    W, R, b, rb = _weights(3)
    for got, want in zip(rnn.gru_weights_from_onnx(*rnn.gru_weights_to_onnx(W, R, b, rb)),
                         (W, R, b, rb)):
        np.testing.assert_array_equal(got, want)
    W, R, b, _ = _weights(1)
    for got, want in zip(rnn.rnn_weights_from_onnx(*rnn.rnn_weights_to_onnx(W, R, b)), (W, R, b)):
        np.testing.assert_array_equal(got, want)
    # without B, and picking a direction of a bidirectional layout
    both = np.stack([W.T, 2 * W.T]), np.stack([R.T, 2 * R.T])
    w1, r1, b1 = rnn.rnn_weights_from_onnx(*both, direction=1)
    np.testing.assert_array_equal(w1, 2 * W)
    np.testing.assert_array_equal(r1, 2 * R)
    np.testing.assert_array_equal(b1, np.zeros(H))


def _onnx_run(op: str, x: np.ndarray, weights: tuple, **attrs):
    onnx = pytest.importorskip("onnx")
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    names = ["X", "W", "R", "B"]
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, names, outs, hidden_size=H, **attrs)
    dtype = onnx.TensorProto.DOUBLE
    graph = helper.make_graph(
        [node], "rnn", [helper.make_tensor_value_info(n, dtype, None) for n in names],
        [helper.make_tensor_value_info(n, dtype, None) for n in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    return ReferenceEvaluator(model).run(None, dict(zip(names, (x, *weights))))


def test_lstm_matches_onnx_reference() -> None:
    W, R, b, _ = _weights(4)
    x = RNG.normal(size=(T, N, I))
    # an ONNX B with a non-zero Rb: our b is Wb + Rb
    Wo, Ro, Bo = rnn.lstm_weights_to_onnx(W, R, b)
    Bo = Bo + np.concatenate([-np.ones(4 * H), np.ones(4 * H)])[None] * 0.3
    y, y_h, y_c = _onnx_run("LSTM", x, (Wo, Ro, Bo))
    W2, R2, b2 = rnn.lstm_weights_from_onnx(Wo, Ro, Bo)
    out, (h, c) = _run(lambda xp: rnn.lstm(xp, W2, R2, b2), x)
    np.testing.assert_allclose(out, y[:, 0], atol=1e-12)
    np.testing.assert_allclose(h, y_h[0], atol=1e-12)
    np.testing.assert_allclose(c, y_c[0], atol=1e-12)


@pytest.mark.parametrize("linear_before_reset", [1, 0])
def test_gru_matches_onnx_reference(linear_before_reset: int) -> None:
    W, R, b, rb = _weights(3)
    x = RNG.normal(size=(T, N, I))
    y, y_h = _onnx_run("GRU", x, rnn.gru_weights_to_onnx(W, R, b, rb),
                       linear_before_reset=linear_before_reset)
    out, h = _run(lambda xp: rnn.gru(xp, W, R, b, rb,
                                     linear_before_reset=bool(linear_before_reset)), x)
    np.testing.assert_allclose(out, y[:, 0], atol=1e-12)
    np.testing.assert_allclose(h, y_h[0], atol=1e-12)


def test_simple_rnn_matches_onnx_reference() -> None:
    W, R, b, _ = _weights(1)
    x = RNG.normal(size=(T, N, I))
    y, y_h = _onnx_run("RNN", x, rnn.rnn_weights_to_onnx(W, R, b))
    out, h = _run(lambda xp: rnn.simple_rnn(xp, W, R, b), x)
    np.testing.assert_allclose(out, y[:, 0], atol=1e-12)
    np.testing.assert_allclose(h, y_h[0], atol=1e-12)


def test_lstm_trains_with_an_optimizer() -> None:
    """minimize() through the scan: the loss of a tiny sequence-sum task goes down."""
    rng = np.random.default_rng(5)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, None, 1))
        y = gc.placeholder(gc.float32, (None, 1))
        W = gc.Variable(gc.init.glorot_uniform((1, 16), seed=1))
        R = gc.Variable(gc.init.orthogonal((4, 16), seed=2))
        b = gc.Variable(np.zeros(16, np.float32))
        V = gc.Variable(gc.init.glorot_uniform((4, 1), seed=3))
        _, (h, _) = rnn.lstm(x, W, R, b, time_major=False)
        loss = gc.losses.mean_squared_error(y, h @ V)
        train = gc.train.AdamOptimizer(0.05).minimize(loss)
    sess = gc.Session(g, target="reference")
    xs = rng.uniform(-1, 1, size=(16, 5, 1)).astype(np.float32)
    ys = xs.sum(axis=1) * 0.3
    first = sess.run(loss, {x: xs, y: ys})
    for _ in range(40):
        sess.run(train, {x: xs, y: ys})
    assert sess.run(loss, {x: xs, y: ys}) < 0.3 * first
