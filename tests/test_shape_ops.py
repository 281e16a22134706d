"""Shape ops beyond the generic case table: error messages, static shape inference with
unknown dims and ranks, run-time checks, and gradients built while every dim is unknown."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from op_cases import CASES

SHAPE_CASES = [c for c in CASES if c.name.split("/")[0] in {
    "reshape", "expand_dims", "squeeze", "transpose", "concat", "stack", "unstack", "split",
    "slice", "getitem", "gather", "one_hot", "pad", "tile", "broadcast_to", "shape"}]


def _ph(shape, dtype=gc.float32, name="x"):
    return gc.placeholder(dtype, shape, name=name)


def _run(fetches, feeds):
    return gc.Session(target="reference").run(fetches, feeds)


@pytest.fixture(autouse=True)
def _fresh_graph():
    g = gc.Graph()
    with g.as_default():
        yield g


# -- errors name the op, the inputs and the user's line ----------------------------------

def test_reshape_size_mismatch_names_op_shapes_and_line():
    x = _ph((2, 3))
    with pytest.raises(gc.ShapeError) as info:
        gc.reshape(x, (4, 2))  # the line the error points at
    msg = str(info.value)
    assert msg.startswith("reshape: cannot reshape [2, 3] (6 elements) to [4, 2] (8 elements)")
    assert "x  float32[2, 3]" in msg
    assert "test_shape_ops.py" in msg and "gc.reshape(x, (4, 2))" in msg


def test_reshape_errors():
    with pytest.raises(gc.ShapeError, match="at most one -1"):
        gc.reshape(_ph((2, 3)), (-1, -1))
    with pytest.raises(gc.ShapeError, match="not a multiple of 4"):
        gc.reshape(_ph((2, 3)), (-1, 4))
    # an unknown batch cannot make 5-element rows into 6 elements
    with pytest.raises(gc.ShapeError, match="not a multiple of 5"):
        gc.reshape(_ph((None, 5)), (2, 3))
    with pytest.raises(TypeError, match="static Python ints"):
        gc.reshape(_ph((2, 3)), gc.shape(_ph((3, 2), name="y")))


def test_concat_errors():
    with pytest.raises(gc.ShapeError, match="concat: inputs have different ranks") as info:
        gc.concat([_ph((2, 3)), _ph((2, 3, 1), name="y")], 0)
    assert "float32[2, 3, 1]" in str(info.value)
    with pytest.raises(gc.ShapeError, match="dimension 0 differs"):
        gc.concat([_ph((2, 3)), _ph((4, 3), name="y")], 1)
    with pytest.raises(gc.DTypeError, match="different dtypes"):
        gc.concat([_ph((2, 3)), _ph((2, 3), gc.float64, name="y")], 0)
    with pytest.raises(gc.ShapeError, match="out of range"):
        gc.concat([_ph((2, 3)), _ph((2, 3), name="y")], 2)
    with pytest.raises(gc.ShapeError, match="scalars"):
        gc.concat([_ph(()), _ph((), name="y")], 0)


def test_squeeze_of_a_non_unit_dim():
    with pytest.raises(gc.ShapeError, match="squeeze: cannot squeeze axis 1 of size 3"):
        gc.squeeze(_ph((1, 3)), 1)
    assert gc.squeeze(_ph((None, 3)), 0).shape == (3,)  # unknown: checked at run time


def test_getitem_with_a_tensor_or_list_points_to_gather():
    x = _ph((4, 3))
    i = _ph((), gc.int64, name="i")
    for index in (i, [0, 1], np.array([0, 1]), (0, [1])):
        with pytest.raises(TypeError, match=r"gc\.gather"):
            x[index]
    with pytest.raises(TypeError, match="slice bounds"):
        x[:i]


def test_getitem_errors():
    x = _ph((4, 3))
    with pytest.raises(gc.ShapeError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(gc.ShapeError, match="index 4 is out of bounds for axis 0 of size 4"):
        x[4]
    with pytest.raises(gc.ShapeError, match="index -4 is out of bounds for axis 1"):
        x[:, -4]
    with pytest.raises(gc.ShapeError, match="step cannot be zero"):
        x[::0]
    with pytest.raises(gc.ShapeError, match="one ellipsis"):
        x[..., ...]


def test_other_build_errors():
    x = _ph((4, 6))
    with pytest.raises(gc.ShapeError, match="split: dimension 1 of size 6 cannot be split into 4"):
        gc.split(x, 4, axis=1)
    with pytest.raises(gc.ShapeError, match="do not add up"):
        gc.split(x, [2, 3], axis=1)
    with pytest.raises(gc.DTypeError, match="indices must be int32 or int64"):
        gc.gather(x, _ph((2,), name="f"))
    with pytest.raises(gc.ShapeError, match="REFLECT padding"):
        gc.pad(x, [[4, 0], [0, 0]], "REFLECT")
    with pytest.raises(gc.ShapeError, match=r"cannot broadcast \[4, 6\] to \[4, 3\]"):
        gc.broadcast_to(x, (4, 3))
    with pytest.raises(gc.ShapeError, match="not a permutation"):
        gc.transpose(x, [0, 0])
    with pytest.raises(gc.ShapeError, match="pass num="):
        gc.unstack(_ph((None, 3), name="u"))
    with pytest.raises(gc.ShapeError, match="stack: values must have the same shape"):
        gc.stack([x, _ph((4, 5), name="y")])
    with pytest.raises(gc.ShapeError, match="out of bounds for axis 1"):
        gc.slice(x, [0, 2], [2, 5])
    with pytest.raises(gc.ShapeError, match="multiples"):
        gc.tile(x, [2])
    with pytest.raises(gc.DTypeError, match="indices must be integers"):
        gc.one_hot(_ph((3,), name="f"), 4)


# -- static shapes ------------------------------------------------------------------------

def test_static_shapes_with_unknown_dims():
    x = _ph((None, 4, 4))
    assert gc.reshape(x, (-1, 16)).shape == (None, 16)
    assert gc.reshape(_ph((2, 4, 4), name="k"), (-1, 16)).shape == (2, 16)
    assert gc.expand_dims(x, -1).shape == (None, 4, 4, 1)
    assert gc.squeeze(_ph((1, None, 1), name="s")).shape is None  # which dims are 1 is unknown
    assert gc.squeeze(_ph((1, 3, 1), name="t")).shape == (3,)
    assert gc.transpose(x).shape == (4, 4, None)
    assert gc.concat([x, x], -1).shape == (None, 4, 8)
    assert gc.concat([x, _ph((2, None, 4), name="y")], 0).shape == (None, 4, 4)
    assert [t.shape for t in gc.split(x, [1, -1], 2)] == [(None, 4, 1), (None, 4, 3)]
    assert [t.shape for t in gc.split(_ph((None, 6), name="z"), [1, -1], 1)] == \
        [(None, 1), (None, 5)]
    assert x[:, 1:3, ::-1].shape == (None, 2, 4)
    assert x[None, ..., 0].shape == (1, None, 4)
    assert gc.gather(x, [[0, 1], [1, 1]], axis=-1).shape == (None, 4, 2, 2)
    assert gc.tile(x, [0, 2, 1]).shape == (0, 8, 4)
    assert gc.pad(x, [[1, 1], [0, 2], [3, 0]]).shape == (None, 6, 7)
    assert gc.shape(x).shape == (3,) and gc.shape(x).dtype == gc.int32
    assert gc.one_hot([1, 2], 3).dtype == gc.float32


def test_unknown_rank():
    x = _ph(None)
    assert gc.reshape(x, (-1, 3)).shape == (None, 3)
    assert gc.expand_dims(x, -1).shape is None
    assert gc.squeeze(x, [-2, -1]).shape is None
    assert gc.transpose(x, [1, 0]).shape == (None, None)
    assert gc.concat([x, x], -1).shape is None
    assert gc.pad(x, [[1, 1], [0, 0]]).shape == (None, None)
    assert gc.shape(x).shape == (None,)
    assert x[1:, None].shape is None
    v = _ph((3,), name="v")
    out = gc.matmul(v, x)  # expand_dims(v, 0), then squeeze [-2] of an unknown-rank result
    value = _run(out, {v: np.ones(3, np.float32), x: np.ones((2, 3, 4), np.float32)})
    np.testing.assert_allclose(value, np.full((2, 4), 3.0))


def test_names_and_multiple_outputs():
    x = _ph((2, 6))
    assert gc.reshape(x, (3, 4), name="r").name == "r"
    parts = gc.split(x, 3, axis=1, name="parts")
    assert [p.name for p in parts] == ["parts", "parts:1", "parts:2"]
    assert gc.concat([x, x], 0, name="c").name == "c"
    assert x[0].op.type == "strided_slice" and x[0].op is x[0, :].op  # one normalized node


# -- run-time behaviour -------------------------------------------------------------------

def test_values_match_numpy():
    a = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    x = _ph((None, None, None))
    fetches = [x[::-1, 1, None, -2::-2], x[..., 1:], gc.slice(x, [1, 0, 2], [-1, 2, 3]),
               gc.tile(x, [1, 2, 1]), gc.pad(x, [[0, 0], [1, 2], [2, 1]], "SYMMETRIC"),
               gc.pad(x, [[1, 1], [0, 0], [0, 0]], constant_values=7),
               gc.transpose(x), gc.stack(gc.unstack(x, 3), axis=-1)]
    want = [a[::-1, 1, None, -2::-2], a[..., 1:], a[1:, 0:2, 2:5], np.tile(a, (1, 2, 1)),
            np.pad(a, [[0, 0], [1, 2], [2, 1]], "symmetric"),
            np.pad(a, [[1, 1], [0, 0], [0, 0]], constant_values=7), a.T,
            np.stack(list(a), axis=-1)]
    for got, expected in zip(_run(fetches, {x: a}), want):
        np.testing.assert_array_equal(got, expected)


def test_one_hot_out_of_range_rows_are_off():
    i = _ph((4,), gc.int64, "i")
    got = _run(gc.one_hot(i, 3, on_value=2.0, off_value=-1.0), {i: np.array([0, 2, 3, -1])})
    np.testing.assert_array_equal(got, [[2, -1, -1], [-1, -1, 2], [-1, -1, -1], [-1, -1, -1]])


def test_gather_refuses_out_of_range_indices_at_run_time():
    x = _ph((None, 2))
    i = _ph((None,), gc.int32, "i")
    with pytest.raises(IndexError, match=r"index 3 is out of range \[0, 3\)"):
        _run(gc.gather(x, i), {x: np.zeros((3, 2), np.float32), i: np.array([0, 3], np.int32)})


def test_gather_gradient_accumulates_repeats():
    p = _ph((None, 3), gc.float64, "p")
    i = _ph((None,), gc.int64, "i")
    w = np.arange(12.0).reshape(4, 3)
    (g,) = gc.gradients(gc.reduce_sum(gc.gather(p, i) * w), [p])
    got = _run(g, {p: np.zeros((5, 3)), i: np.array([1, 4, 1, 1])})
    want = np.zeros((5, 3))
    np.add.at(want, [1, 4, 1, 1], w)
    np.testing.assert_array_equal(got, want)


# -- gradients when every dim is unknown --------------------------------------------------

def _grads(case, unknown, order):
    """Gradients (first or second order) of sum(tanh(out)**2), built with dims known or not."""
    graph = gc.Graph()
    arrays = [a.copy() for a in case.inputs]
    with graph.as_default():
        phs = [gc.placeholder(a.dtype, (None,) * a.ndim if unknown else a.shape, name=f"in{k}")
               for k, a in enumerate(arrays)]
        out = case.build(*phs)
        outs = out if isinstance(out, (list, tuple)) else [out]
        loss = sum(gc.reduce_sum(gc.square(gc.tanh(t))) for t in outs if t.dtype.is_floating)
        xs = [p for p in phs if p.dtype.is_floating]
        grads = gc.gradients(loss, xs)
        if order == 2:
            inner = sum(gc.reduce_sum(gc.square(g)) for g in grads if g is not None)
            grads = gc.gradients(inner, xs)
        fetch = [g for g in grads if g is not None]
    return gc.Session(graph, target="reference").run(fetch, dict(zip(phs, arrays)))


GRAD_CASES = [c for c in SHAPE_CASES if c.grad and c.unknown_dims]


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.name for c in GRAD_CASES])
def test_gradients_with_unknown_dims_match_known(case, order):
    known, unknown = _grads(case, False, order), _grads(case, True, order)
    assert len(known) == len(unknown)
    for k, u in zip(known, unknown):
        np.testing.assert_allclose(u, k, rtol=1e-12, atol=1e-12)


def test_gradients_with_unknown_rank():
    a = np.random.default_rng(0).uniform(-1, 1, (2, 3, 4))
    results = []
    for shape in (a.shape, None):
        graph = gc.Graph()
        with graph.as_default():
            x = gc.placeholder(gc.float64, shape, name="x")
            parts = [gc.transpose(x), gc.concat([x, x[..., ::-2]], -1), x[1, ..., None, 1:],
                     gc.reshape(x, (-1, 6)), gc.squeeze(gc.expand_dims(x, -1), [-1]),
                     gc.pad(x, [[1, 0], [0, 1], [1, 1]], "REFLECT"), gc.tile(x, [1, 2, 1]),
                     gc.gather(x, [2, 0, 2], axis=-1)]
            # (flattened first: reduce_sum's gradient needs a known rank, see reduce.py)
            loss = sum(gc.reduce_sum(gc.square(gc.tanh(gc.reshape(p, [-1])))) for p in parts)
            (g,) = gc.gradients(loss, [x])
            (gg,) = gc.gradients(gc.reduce_sum(gc.square(gc.reshape(g, [-1]))), [x])
        results.append(gc.Session(graph, target="reference").run([g, gg], {x: a}))
    for k, u in zip(*results):
        np.testing.assert_allclose(u, k, rtol=1e-12, atol=1e-12)
