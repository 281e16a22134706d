"""``scan`` on the cuda target (backends/numba_cuda/scan_kernels.py): the loop on the host,
each step's kernels on the device, against the reference: forward and reverse, scalar
slices, gradients through the loop, an RNN trained a few steps, and the cases handed to
the host fallback (no steps, a carry changing shape). Simulator run (tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ops.control import scan

cudamod = pytest.importorskip("graphc.backends.numba_cuda")
from graphc.backends.numba_cuda.device import simulated  # noqa: E402
from graphc.backends.numba_cuda.scan_kernels import device_body  # noqa: E402

pytestmark = pytest.mark.skipif(not simulated(), reason="the simulator run (tests/conftest.py)")
RNG = np.random.default_rng(3)


def _executables(sess: gc.Session) -> list:
    return [exe for _, exe in sess._compiled.values()]


def _scan_nodes(sess: gc.Session) -> list:
    return [(exe, s.node) for exe in _executables(sess) for s in exe.plan.steps
            if s.node.op == "scan"]


def _how_scans_ran(sess: gc.Session) -> set:
    return {exe.ran[node.name] for exe, node in _scan_nodes(sess)}


def _both(graph: gc.Graph, fetches, feeds: dict) -> tuple:
    ref = gc.Session(graph, target="reference").run(fetches, feeds)
    sess = gc.Session(graph, target="cuda")
    return ref, sess.run(fetches, feeds), sess


def test_forward_reverse_and_scalar_slices_match_the_reference() -> None:
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder(gc.float32, (4, 3))
        b = gc.placeholder(gc.float32, (4,))  # 1-D: each step reads a 0-d slice
        init = (gc.zeros((3,), gc.float32), gc.constant(1.0, gc.float32))
        s, p = scan(lambda acc, e: (acc[0] * 0.5 + e[0], acc[1] * e[1]), (a, b),
                    initializer=init, reverse=True)
        fwd = scan(lambda acc, x: gc.tanh(acc + x), a)
    feeds = {a: RNG.normal(size=(4, 3)).astype(np.float32),
             b: RNG.uniform(0.5, 2, 4).astype(np.float32)}
    ref, got, sess = _both(g, [s, p, fwd], feeds)
    for r, v in zip(ref, got):
        np.testing.assert_allclose(v, r, rtol=1e-5, atol=1e-6)
    assert _how_scans_ran(sess) == {"kernel"}


def _rnn(steps: int, w0: np.ndarray, u0: np.ndarray):
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (steps, 2, 3), name="xs")
        w = gc.Variable(w0, name="w")
        u = gc.Variable(u0, name="u")
        h0 = gc.zeros((2, 4), gc.float32)
        hs = scan(lambda h, x: gc.tanh(x @ w + h @ u), xs, initializer=h0)
        loss = gc.reduce_mean(gc.square(hs[-1] - 0.5))
        train = gc.train.GradientDescentOptimizer(0.5).minimize(loss)
    return g, xs, loss, train


def test_training_through_the_loop_matches_the_reference_and_runs_on_the_device() -> None:
    data = RNG.normal(size=(3, 2, 3)).astype(np.float32)
    w0, u0 = (RNG.normal(size=s).astype(np.float32) * 0.5 for s in ((3, 4), (4, 4)))
    results = {}
    for target in ("reference", "cuda"):
        g, xs, loss, train = _rnn(3, w0, u0)
        sess = gc.Session(g, target=target)
        losses = [sess.run([loss, train], {xs: data})[0] for _ in range(3)]
        results[target] = losses, {k: np.asarray(v) for k, v in sess.state.items()}
        if target == "cuda":
            assert _how_scans_ran(sess) == {"kernel"}  # the forward and the gradient scan
            bodies = [node.attrs["body"] for _, node in _scan_nodes(sess)]
            assert len(bodies) >= 2
            for body in bodies:  # every step kernel of both loops ran on the device
                on_host = sorted(n for n, how in device_body(body).ran.items()
                                 if how == "fallback")
                assert not on_host, on_host
    (ref_losses, ref_state), (losses, state) = results["reference"], results["cuda"]
    assert ref_losses[-1] < ref_losses[0]
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5, atol=1e-6)
    for name in ref_state:
        np.testing.assert_allclose(state[name], ref_state[name], rtol=1e-4, atol=1e-6)


def test_no_steps_and_a_carry_changing_shape_take_the_reference_path() -> None:
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (None, 2))
        total = scan(lambda acc, x: acc + x, xs, initializer=gc.zeros((2,), gc.float32))
    ref, got, sess = _both(g, total, {xs: np.zeros((0, 2), np.float32)})
    assert got.shape == ref.shape == (0, 2)
    assert _how_scans_ran(sess) == {"fallback"}

    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (3, None))
        # The carry takes the slice's run-time width: fine at width 1, an error at 2.
        grown = scan(lambda acc, x: acc + x, xs, initializer=gc.zeros((1,), gc.float32))
    sess = gc.Session(g, target="cuda")
    ones = np.ones((3, 1), np.float32)
    np.testing.assert_allclose(sess.run(grown, {xs: ones}), np.cumsum(ones, axis=0))
    with pytest.raises(gc.ShapeError, match="changed the shape of carry 0"):
        sess.run(grown, {xs: np.ones((3, 2), np.float32)})
