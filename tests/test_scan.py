"""gc.scan: TF1 semantics, gradients through 1, 5 and an unknown number of steps, captured
tensors, graph size, saving, and the errors a misuse gets (graphc/ops/control.py)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ops.control import Body, scan

RNG = np.random.default_rng(7)
EPS = 1e-6


def _run(graph, fetches, feeds):
    return gc.Session(graph, target="reference").run(fetches, feeds)


def _numeric_grad(f, x: np.ndarray) -> np.ndarray:
    """Central differences of the scalar f() with respect to the array x (changed in place)."""
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + EPS
        up = f()
        x[i] = saved - EPS
        down = f()
        x[i] = saved
        out[i] = (up - down) / (2 * EPS)
    return out


# -- forward semantics ---------------------------------------------------------------------

def test_cumsum_without_initializer_is_tf1() -> None:
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float64, (None, 2))
        out = scan(lambda a, x: a + x, xs)
    x = RNG.normal(size=(4, 2))
    np.testing.assert_allclose(_run(g, out, {xs: x}), np.cumsum(x, axis=0))
    assert out.shape == (None, 2)


def test_initializer_reverse_and_structures() -> None:
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder(gc.float64, (5, 3))
        b = gc.placeholder(gc.float64, (5,))
        init = (gc.zeros((3,), gc.float64), gc.constant(1.0, gc.float64))
        # accumulator (sum, product); elements (vector, scalar); scanned from the end
        s, p = scan(lambda acc, e: (acc[0] + e[0], acc[1] * e[1]),
                    (a, b), initializer=init, reverse=True)
        rev = scan(lambda acc, x: acc + x, a, reverse=True)
    x, y = RNG.normal(size=(5, 3)), RNG.uniform(0.5, 2, size=5)
    got_s, got_p, got_rev = _run(g, [s, p, rev], {a: x, b: y})
    np.testing.assert_allclose(got_s, np.cumsum(x[::-1], axis=0)[::-1])
    np.testing.assert_allclose(got_p, np.cumprod(y[::-1])[::-1])
    np.testing.assert_allclose(got_rev, np.cumsum(x[::-1], axis=0)[::-1])
    assert s.shape == (5, 3) and p.shape == (5,)


def test_namedtuple_and_int_accumulator() -> None:
    from collections import namedtuple

    State = namedtuple("State", "count total")
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float64, (None,))
        out = scan(lambda st, x: State(st.count + 1, st.total + x * gc.cast(st.count, gc.float64)),
                   xs, initializer=State(gc.constant(0), gc.constant(0.0, gc.float64)))
        assert isinstance(out, State)
        grad, = gc.gradients(gc.reduce_sum(out.total), [xs])
    x = RNG.normal(size=4)
    count, total, gx = _run(g, [out.count, out.total, grad], {xs: x})
    np.testing.assert_array_equal(count, [1, 2, 3, 4])
    np.testing.assert_allclose(total, np.cumsum(x * np.arange(4)))
    # loss = sum_t sum_{s<=t} s x_s, so d loss / d x_s = s (T - s)
    np.testing.assert_allclose(gx, np.arange(4) * (4 - np.arange(4)))


def test_zero_steps_with_initializer() -> None:
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (None, 2))
        out = scan(lambda a, x: a + x, xs, initializer=gc.zeros((2,)))
    got = _run(g, out, {xs: np.zeros((0, 2), np.float32)})
    assert got.shape == (0, 2) and got.dtype == np.float32


def test_body_uses_outer_computation_and_returns_outer_tensor() -> None:
    g = gc.Graph()
    with g.as_default():
        w = gc.placeholder(gc.float64, (2,))
        xs = gc.placeholder(gc.float64, (3, 2))
        # w * 2 is built from outer tensors only: it is computed once, outside the loop
        out = scan(lambda a, x: a * (w * 2.0) + x, xs, initializer=w)
        const = scan(lambda a, x: w, xs, initializer=w)
    wv, x = RNG.normal(size=2), RNG.normal(size=(3, 2))
    expected, a = [], wv
    for t in range(3):
        a = a * wv * 2 + x[t]
        expected.append(a)
    got, got_const = _run(g, [out, const], {w: wv, xs: x})
    np.testing.assert_allclose(got, expected)
    np.testing.assert_allclose(got_const, np.tile(wv, (3, 1)))


def test_nested_scan_with_gradient() -> None:
    g = gc.Graph()
    with g.as_default():
        w = gc.placeholder(gc.float64, (2,))
        xs = gc.placeholder(gc.float64, (3, 4, 2))

        def outer(acc, x):  # the inner scan captures w through the outer body
            inner = scan(lambda a, v: gc.tanh(a * w + v), x, initializer=acc)
            return inner[-1]
        out = scan(outer, xs, initializer=gc.zeros((2,), gc.float64))
        loss = gc.reduce_sum(out * out)
        gw, gx = gc.gradients(loss, [w, xs])
    wv, x = RNG.normal(size=2), RNG.normal(size=(3, 4, 2))

    def f() -> float:
        a = np.zeros(2)
        total = 0.0
        for t in range(3):
            for s in range(4):
                a = np.tanh(a * wv + x[t, s])
            total += (a * a).sum()
        return total
    got = _run(g, [loss, gw, gx], {w: wv, xs: x})
    assert got[0] == pytest.approx(f())
    np.testing.assert_allclose(got[1], _numeric_grad(f, wv), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(got[2], _numeric_grad(f, x), rtol=1e-6, atol=1e-8)


# -- gradients -------------------------------------------------------------------------------

@pytest.mark.parametrize("steps,static", [(1, True), (5, True), (5, False), (1, False)])
def test_gradients_match_finite_differences(steps: int, static: bool) -> None:
    """Gradients of elems, the initializer and a captured variable through 1 and 5 steps,
    with the step count known and unknown (None) when the graph is built."""
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float64, (steps if static else None, 3))
        a0 = gc.placeholder(gc.float64, (3,))
        W = gc.Variable(RNG.normal(size=(3, 3)) * 0.5, name="W")
        b = gc.Variable(RNG.normal(size=3) * 0.1, name="b")
        out = scan(lambda a, x: gc.tanh(gc.matmul(a[None], W)[0] + x * b), xs, a0)
        weights = RNG.uniform(0.5, 1.5, size=(steps, 3))
        loss = gc.reduce_sum(out * weights)
        grads = gc.gradients(loss, [xs, a0, W, b])
    sess = gc.Session(g, target="reference")
    x, init = RNG.normal(size=(steps, 3)), RNG.normal(size=3)
    feeds = {xs: x, a0: init}
    analytic = sess.run(grads, feeds)
    f = lambda: float(sess.run(loss, feeds))  # noqa: E731 - reads the arrays fed by reference
    np.testing.assert_allclose(analytic[0], _numeric_grad(f, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(analytic[1], _numeric_grad(f, init), rtol=1e-6, atol=1e-8)
    for var, got in zip((W, b), analytic[2:]):
        value = sess.state[var.name]  # the session's own array: changed in place
        np.testing.assert_allclose(got, _numeric_grad(f, value), rtol=1e-6, atol=1e-8)


def test_gradient_of_scan_whose_outputs_are_not_its_carries() -> None:
    """A scan node built with the primitive directly, whose ys differ from its carries: the
    vjp recomputes the carry history with a second forward scan."""
    from graphc.ops.control import scan_op

    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float64, (None, 2))
        c0 = gc.placeholder(gc.float64, (2,))
        body_graph = gc.Graph()
        with body_graph.as_default():
            c = gc.placeholder(gc.float64, (2,))
            x = gc.placeholder(gc.float64, (2,))
            new = gc.sin(c) + x
            y = new * c
        body = Body(body_graph, [c, x], [new, y], 1, 1)
        (final,), (ys,) = scan_op(body, [c0], [xs], [])
        loss = gc.reduce_sum(ys) + gc.reduce_sum(final * final)
        gx, gc0 = gc.gradients(loss, [xs, c0])
    assert any(n.name.startswith("scan_saved") for n in g.nodes)
    sess = gc.Session(g, target="reference")
    x, init = RNG.normal(size=(4, 2)), RNG.normal(size=2)
    f = lambda: float(sess.run(loss, {xs: x, c0: init}))  # noqa: E731
    got_x, got_c = sess.run([gx, gc0], {xs: x, c0: init})
    np.testing.assert_allclose(got_x, _numeric_grad(f, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(got_c, _numeric_grad(f, init), rtol=1e-6, atol=1e-8)


def test_second_order_through_unknown_steps() -> None:
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float64, (None, 2))
        w = gc.placeholder(gc.float64, (2,))
        out = scan(lambda a, x: gc.tanh(a * w) + x, xs, gc.zeros((2,), gc.float64))
        loss = gc.reduce_sum(out * out)
        gw, = gc.gradients(loss, [w])
        inner = gc.reduce_sum(gw * np.array([0.7, -1.3]))
        hw, = gc.gradients(inner, [w])
    sess = gc.Session(g, target="reference")
    x, wv = RNG.normal(size=(4, 2)), RNG.normal(size=2)
    f = lambda: float(sess.run(inner, {xs: x, w: wv}))  # noqa: E731
    np.testing.assert_allclose(sess.run(hw, {xs: x, w: wv}), _numeric_grad(f, wv),
                               rtol=1e-5, atol=1e-7)


def test_repeated_gradients_share_the_backward_scan() -> None:
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float64, (None, 2))
        out = scan(lambda a, x: a * x, xs)
        loss = gc.reduce_sum(out)
        first, = gc.gradients(loss, [xs])
        n = len(g.nodes)
        second, = gc.gradients(loss, [xs])
    assert first is second and len(g.nodes) == n


# -- graph size and saving -----------------------------------------------------------------

def _graph_sizes(steps: int) -> tuple[int, int]:
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (steps, 4))
        W = gc.Variable(np.ones((4, 4), np.float32))
        out = scan(lambda a, x: gc.tanh(gc.matmul(a[None], W)[0] + x), xs, gc.zeros((4,)))
        gc.gradients(gc.reduce_sum(out), [xs, W])
    bodies = [n.attrs["body"] for n in g.nodes if n.op == "scan"]
    return len(g.nodes), sum(len(b.graph.nodes) for b in bodies)


def test_graph_size_does_not_grow_with_sequence_length() -> None:
    assert _graph_sizes(2) == _graph_sizes(3) == _graph_sizes(200)


def test_save_and_load_graph_with_scan(tmp_path) -> None:
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float64, (None, 3), name="xs")
        W = gc.Variable(RNG.normal(size=(3, 3)), name="W")
        bias = gc.constant(RNG.normal(size=3))  # an array stored beside the body's nodes
        out = scan(lambda a, x: gc.tanh(gc.matmul(a[None], W)[0] + x + bias), xs,
                   gc.zeros((3,), gc.float64))
        loss = gc.reduce_sum(out * out)
        gw, = gc.gradients(loss, [W])
    path = tmp_path / "scan.graph"
    gc.save_graph(path, g)
    loaded = gc.load_graph(path)
    x = RNG.normal(size=(4, 3))
    names = [loss.name, gw.name]
    before = gc.Session(g, target="reference").run(names, {"xs": x})
    after = gc.Session(loaded, target="reference").run(names, {"xs": x})
    for e, a in zip(before, after):
        np.testing.assert_array_equal(e, a)
    again = tmp_path / "again.graph"
    gc.save_graph(again, loaded)
    assert again.read_bytes() == path.read_bytes()


# -- errors ----------------------------------------------------------------------------------

def _build_error(fn, initializer=None, exc=gc.GraphcError):
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (None, 2))
        with pytest.raises(exc) as info:
            scan(fn, xs, initializer if initializer is not None else gc.zeros((2,)))
    return str(info.value)


def test_stateful_and_random_ops_in_the_body_are_refused() -> None:
    g = gc.Graph()
    with g.as_default():
        v = gc.Variable(np.zeros(2, np.float32))
        xs = gc.placeholder(gc.float32, (None, 2))
        with pytest.raises(gc.GraphError, match="(?s)cannot hold state.*test_scan.py"):
            scan(lambda a, x: a + gc.assign(v, x), xs, gc.zeros((2,)))
        with pytest.raises(gc.GraphError, match="random op"):
            scan(lambda a, x: a + gc.random_uniform((2,), seed=1), xs, gc.zeros((2,)))
        with pytest.raises(gc.GraphError, match="random op"):  # hoisted out of the body
            scan(lambda a, x: a + gc.random_normal(v), xs, gc.zeros((2,)))
        with pytest.raises(gc.GraphError, match="cannot hold state"):
            scan(lambda a, x: a + gc.Variable(np.ones(2, np.float32)), xs, gc.zeros((2,)))


def test_bad_fn_results_name_scan_and_the_line() -> None:
    msg = _build_error(lambda a, x: (a, a))
    assert "scan: fn returned 2 tensors for an accumulator of 1" in msg and "test_scan.py" in msg
    msg = _build_error(lambda a, x: gc.cast(a, gc.float64))
    assert "float64 for accumulator 0, which is float32" in msg
    msg = _build_error(lambda a, x: gc.concat([a, x], 0), exc=gc.ShapeError)
    assert "shape [4] for accumulator 0 of shape [2]" in msg
    g = gc.Graph()
    with g.as_default():
        with pytest.raises(gc.ShapeError, match="known rank >= 1"):
            scan(lambda a, x: a + x, gc.constant(1.0))
        with pytest.raises(gc.ShapeError, match="(?s)scan: scanned inputs differ in length: "
                                                "3 vs 4.*test_scan.py"):
            scan(lambda a, e: a + e[0] * e[1], (gc.zeros((3,)), gc.zeros((4,))), gc.zeros(()))


def test_run_time_errors() -> None:
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (None, None))
        ys = gc.placeholder(gc.float32, (None,))
        grow = scan(lambda a, x: gc.concat([a, x[:1]], 0), xs, gc.zeros((1,)))
        pair = scan(lambda a, e: a + e[0][0] * e[1], (xs, ys), gc.zeros(()))
    sess = gc.Session(g, target="reference")
    with pytest.raises(gc.ShapeError, match="changed the shape of carry 0 from"):
        sess.run(grow, {xs: np.ones((2, 2), np.float32)})
    with pytest.raises(gc.ShapeError, match="differ in length at run time"):
        sess.run(pair, {xs: np.ones((2, 2), np.float32), ys: np.ones(3, np.float32)})
