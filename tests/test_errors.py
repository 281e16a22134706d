"""Errors users see: raised at build time, naming the op, the shapes and the user's line."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import graphc as gc


def _line() -> int:
    """The line number of the caller's previous line (where the failing op was built)."""
    return inspect.currentframe().f_back.f_lineno - 1


@pytest.fixture(autouse=True)
def fresh_graph():
    with gc.Graph().as_default() as g:
        yield g


def test_matmul_shape_error_names_op_shapes_and_line() -> None:
    x = gc.placeholder(gc.float32, (None, 784), name="x")
    W1 = gc.Variable(np.zeros((512, 256), np.float32), name="W1")
    with pytest.raises(gc.ShapeError) as info:
        x @ W1
    line = _line()
    message = str(info.value)
    assert message.startswith("matmul: inner dimensions differ, 784 vs 512")
    assert "a: x  float32[None, 784]" in message and "b: W1  float32[512, 256]" in message
    assert f"test_errors.py:{line}" in message and "x @ W1" in message


def test_broadcast_error() -> None:
    a = gc.placeholder(gc.float32, (3, 4), name="a")
    b = gc.placeholder(gc.float32, (5,), name="b")
    with pytest.raises(gc.ShapeError) as info:
        gc.add(a, b)
    line = _line()
    message = str(info.value)
    assert "add: shapes cannot be broadcast together: [3, 4] vs [5]" in message
    assert f"test_errors.py:{line}" in message


def test_dtype_error_for_float_only_op() -> None:
    n = gc.placeholder(gc.int32, (3,), name="n")
    with pytest.raises(gc.DTypeError) as info:
        gc.exp(n)
    line = _line()
    assert "exp: expects a float tensor, got int32; use gc.cast" in str(info.value)
    assert "x: n  int32[3]" in str(info.value)
    assert f"test_errors.py:{line}" in str(info.value)


def test_logical_op_on_floats() -> None:
    a = gc.placeholder(gc.float32, (3,), name="a")
    with pytest.raises(gc.DTypeError, match="logical_not: expects a bool tensor"):
        gc.logical_not(a)


def test_reduce_axis_out_of_range() -> None:
    a = gc.placeholder(gc.float32, (3, 4), name="a")
    with pytest.raises(gc.ShapeError, match="axis 2 is out of range for rank 2"):
        gc.reduce_sum(a, axis=2)


def test_errors_are_builtin_subclasses_and_named_graphc() -> None:
    assert issubclass(gc.ShapeError, ValueError) and issubclass(gc.DTypeError, TypeError)
    assert gc.ShapeError.__module__ == "graphc"


def test_missing_feed_names_placeholder_and_fetch() -> None:
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    y = gc.reduce_sum(x * 2.0, name="total")
    with pytest.raises(gc.FeedError) as info:
        gc.Session(target="reference").run(y)
    message = str(info.value)
    assert "placeholder x (float32[None, 3]) must be fed" in message and "total" in message
    assert "test_errors.py" in message


def test_wrong_feed_shape_and_dtype() -> None:
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    labels = gc.placeholder(gc.int64, (None,), name="labels")
    y = gc.reduce_sum(x) + gc.cast(gc.reduce_sum(labels), gc.float32)
    sess = gc.Session(target="reference")
    with pytest.raises(gc.FeedError, match=r"feed for x: expected shape \[None, 3\].*got \(2, 4\)"):
        sess.run(y, {x: np.zeros((2, 4)), labels: [1, 2]})
    with pytest.raises(gc.FeedError, match="feed for labels: expected int64\\[None\\], got a float64"):
        sess.run(y, {x: np.zeros((2, 3)), labels: np.array([1.5, 2.0])})
    # Same-kind conversions are made, as TF1 does: float64 data into a float32 placeholder.
    assert sess.run(y, {x: np.ones((2, 3)), labels: np.array([1, 2], np.int32)}) == 9.0


def test_fetch_from_another_graph() -> None:
    other = gc.Graph()
    with other.as_default():
        foreign = gc.constant(1.0, name="foreign")
    with pytest.raises(gc.GraphError, match="foreign belongs to another graph"):
        gc.Session(target="reference").run(foreign)


def test_mixing_graphs_in_one_op() -> None:
    other = gc.Graph()
    with other.as_default():
        foreign = gc.placeholder(gc.float32, (3,), name="foreign")
    mine = gc.placeholder(gc.float32, (3,), name="mine")
    with pytest.raises(gc.GraphError, match="belongs to another graph"):
        mine + foreign


def test_unknown_tensor_name_suggests_close_matches() -> None:
    gc.placeholder(gc.float32, (3,), name="input_x")
    with pytest.raises(gc.GraphError, match="no operation named 'input_y'.*did you mean 'input_x'"):
        gc.Session(target="reference").run("input_y")


def test_unknown_target_lists_available() -> None:
    with pytest.raises(gc.TargetError, match="unknown target 'tpu'; available targets: .*reference"):
        gc.Session(target="tpu")


def test_tensor_truth_value_is_an_error() -> None:
    x = gc.placeholder(gc.float32, (3,), name="x")
    with pytest.raises(TypeError, match="gc.where"):
        if x > 0:
            pass


def test_runtime_shape_mismatch_in_unknown_dims() -> None:
    a = gc.placeholder(gc.float32, (None,), name="a")
    b = gc.placeholder(gc.float32, (None,), name="b")
    with pytest.raises(ValueError):
        gc.Session(target="reference").run(a + b, {a: np.ones(3), b: np.ones(4)})


@pytest.mark.parametrize("target", ["reference", "cpu"])
@pytest.mark.parametrize("fetch_gradient", [False, True])
def test_sparse_xent_label_out_of_range(target: str, fetch_gradient: bool) -> None:
    logits = gc.placeholder(gc.float32, (None, 3), name="logits")
    labels = gc.placeholder(gc.int64, (None,), name="labels")
    loss = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    line = _line()
    # The gradient alone does not run the loss: its own kernel must refuse the label too.
    fetch = gc.gradients(gc.reduce_sum(loss), [logits])[0] if fetch_gradient else loss
    with pytest.raises(gc.FeedError, match=r"label 3 is outside \[0, 3\)") as info:
        gc.Session(target=target).run(fetch, {logits: np.zeros((2, 3)), labels: [0, 3]})
    # found at run time, and still pointing at the user's line (the gradient's is the
    # line of the op it differentiates)
    assert f"test_errors.py:{line}  loss = " in str(info.value)


@pytest.mark.parametrize("target", ["reference", "cpu"])
def test_a_run_time_index_error_names_the_users_line(target: str) -> None:
    x = gc.placeholder(gc.float32, (None, 4), name="x")
    picked = gc.nn.relu(x[5] * 2.0)
    line = _line()
    with pytest.raises(gc.ShapeError, match="index 5 is out of bounds") as info:
        gc.Session(target=target).run(picked, {x: np.ones((2, 4), np.float32)})
    assert str(info.value).count("\n  at ") == 1 and f"test_errors.py:{line}  picked" in str(info.value)


def test_variable_initial_value_cannot_need_feeds() -> None:
    x = gc.placeholder(gc.float32, (3,), name="x")
    with pytest.raises(gc.GraphError, match="depends on placeholder x"):
        gc.Variable(x * 2.0, name="v")


def test_two_assignments_in_one_run() -> None:
    v = gc.Variable(1.0, name="v")
    both = gc.group(gc.assign(v, 2.0), gc.assign_add(v, 1.0))
    with pytest.raises(gc.GraphError, match="variable v is assigned twice in one run"):
        gc.Session(target="reference").run(both)
