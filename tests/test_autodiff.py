"""gc.gradients: what the generic finite-difference table cannot express."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc


@pytest.fixture(autouse=True)
def fresh_graph():
    with gc.Graph().as_default() as g:
        yield g


def run(fetches, feeds=None):
    return gc.Session(target="reference").run(fetches, feeds)


def test_stop_gradient_blocks_the_path() -> None:
    x = gc.placeholder(gc.float64, (3,), name="x")
    (g,) = gc.gradients(gc.reduce_sum(gc.stop_gradient(x) * x), [x])
    value = np.array([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(run(g, {x: value}), value)  # d/dx [c*x] with c = x held fixed


def test_unconnected_and_integer_inputs_get_none() -> None:
    x = gc.placeholder(gc.float32, (3,), name="x")
    unrelated = gc.placeholder(gc.float32, (3,), name="unrelated")
    n = gc.placeholder(gc.int64, (3,), name="n")
    y = gc.reduce_sum(x * gc.cast(n, gc.float32))
    gx, gu, gn = gc.gradients(y, [x, unrelated, n])
    assert gu is None and gn is None
    np.testing.assert_array_equal(run(gx, {x: np.ones(3), n: [1, 2, 3]}), [1, 2, 3])


def test_argmax_path_carries_no_gradient() -> None:
    x = gc.placeholder(gc.float32, (2, 3), name="x")
    y = gc.reduce_sum(x) + gc.cast(gc.reduce_sum(gc.argmax(x, axis=1)), gc.float32)
    (g,) = gc.gradients(y, [x])
    np.testing.assert_array_equal(run(g, {x: np.zeros((2, 3))}), np.ones((2, 3)))


def test_second_derivative_of_tanh() -> None:
    x = gc.placeholder(gc.float64, (5,), name="x")
    (dy,) = gc.gradients(gc.reduce_sum(gc.tanh(x)), [x])
    (d2y,) = gc.gradients(gc.reduce_sum(dy), [x])
    value = np.linspace(-2, 2, 5)
    t = np.tanh(value)
    np.testing.assert_allclose(run(d2y, {x: value}), -2 * t * (1 - t ** 2), rtol=1e-12)


def test_third_derivative_of_a_polynomial() -> None:
    x = gc.placeholder(gc.float64, (), name="x")
    y = x ** 4.0
    d = y
    for _ in range(3):
        (d,) = gc.gradients(d, [x])
    assert run(d, {x: 2.0}) == pytest.approx(24 * 2.0)


def test_grad_ys_weights_and_several_ys() -> None:
    x = gc.placeholder(gc.float64, (2,), name="x")
    y1, y2 = x * 2.0, gc.square(x)
    g = gc.gradients([y1, y2], [x], grad_ys=[np.array([1.0, 10.0]), None])[0]
    np.testing.assert_allclose(run(g, {x: [3.0, 4.0]}), [2 + 6, 20 + 8])


def test_gradient_with_respect_to_an_intermediate() -> None:
    x = gc.placeholder(gc.float64, (2,), name="x")
    h = x * 3.0
    y = gc.reduce_sum(gc.square(h))
    gh, gx = gc.gradients(y, [h, x])
    values = run([gh, gx], {x: [1.0, 2.0]})
    np.testing.assert_allclose(values[0], [6.0, 12.0])
    np.testing.assert_allclose(values[1], [18.0, 36.0])


def test_cast_passes_the_gradient_back_in_the_input_dtype() -> None:
    x = gc.placeholder(gc.float32, (3,), name="x")
    (g,) = gc.gradients(gc.reduce_sum(gc.cast(x, gc.float64) * 3.0), [x])
    assert g.dtype == gc.float32
    np.testing.assert_array_equal(run(g, {x: np.ones(3)}), [3, 3, 3])


def test_broadcasting_is_undone_with_unknown_dims() -> None:
    x = gc.placeholder(gc.float64, (None, 3), name="x")
    b = gc.placeholder(gc.float64, (3,), name="b")
    s = gc.placeholder(gc.float64, (), name="s")
    (gb, gs) = gc.gradients(gc.reduce_sum(x * b * s), [b, s])
    assert gb.shape == (3,) and gs.shape == ()
    xv = np.arange(12.0).reshape(4, 3)
    vb, vs = run([gb, gs], {x: xv, b: [1.0, 2.0, 3.0], s: 2.0})
    np.testing.assert_allclose(vb, xv.sum(0) * 2.0)
    assert vs == pytest.approx((xv * [1, 2, 3]).sum())


def test_missing_gradient_rule_is_a_clear_error() -> None:
    x = gc.placeholder(gc.float64, (3,), name="x")
    (g,) = gc.gradients(gc.reduce_prod(x), [x])  # uses prod_others, which has no gradient
    with pytest.raises(gc.GradientError, match="prod_others: has no gradient"):
        gc.gradients(gc.reduce_sum(g), [x])


def test_backward_nodes_point_at_the_forward_line() -> None:
    x = gc.placeholder(gc.float64, (3,), name="x")
    y = gc.reduce_sum(gc.log(x))
    line = y.node.location.line
    (g,) = gc.gradients(y, [x])
    assert g.node.location.line == line or any(
        t.node.location.line == line for t in g.node.inputs)


def test_gradients_of_variables_train_a_step() -> None:
    w = gc.Variable(np.array([1.0, 2.0]), name="w")
    loss = gc.reduce_sum(gc.square(w))
    (g,) = gc.gradients(loss, [w])
    step = gc.assign_sub(w, 0.25 * g)
    sess = gc.Session(target="reference")
    sess.run(step)
    np.testing.assert_allclose(sess.run(w), [0.5, 1.0])
