"""Sessions, executables, variables and run semantics on the reference target."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import graphc as gc


@pytest.fixture(autouse=True)
def fresh_graph():
    with gc.Graph().as_default() as g:
        yield g


def test_fetch_structures_are_preserved() -> None:
    a = gc.constant(1.0, name="a")
    b = gc.constant([2.0, 3.0], name="b")
    Pair = collections.namedtuple("Pair", "first second")
    sess = gc.Session(target="reference")
    out = sess.run({"a": a, "nested": [b, (a, "b")], "pair": Pair(a, b)})
    assert out["a"] == 1.0 and out["nested"][1][0] == 1.0
    np.testing.assert_array_equal(out["nested"][1][1], [2.0, 3.0])
    assert isinstance(out["nested"][1], tuple) and isinstance(out["pair"], Pair)
    assert sess.run(gc.no_op()) is None


def test_variables_initialize_on_first_use_and_persist() -> None:
    v = gc.Variable(np.array([1.0, 2.0], np.float32), name="v")
    inc = gc.assign_add(v, [1.0, 1.0])
    sess = gc.Session(target="reference")
    np.testing.assert_array_equal(sess.run(inc), [2.0, 3.0])
    np.testing.assert_array_equal(sess.run(v), [2.0, 3.0])
    sess.run(gc.global_variables_initializer())
    np.testing.assert_array_equal(sess.run(v), [1.0, 2.0])


def test_reads_see_the_value_from_the_start_of_the_run() -> None:
    v = gc.Variable(1.0, name="v")
    old, new = gc.Session(target="reference").run([v, gc.assign(v, 5.0)])
    assert (old, new) == (1.0, 5.0)


def test_fetched_values_do_not_alias_state() -> None:
    v = gc.Variable(np.zeros(3), name="v")
    sess = gc.Session(target="reference")
    out = sess.run(v)
    out[:] = 7
    np.testing.assert_array_equal(sess.run(v), np.zeros(3))


def test_one_compilation_per_signature() -> None:
    x = gc.placeholder(gc.float32, (None, 2), name="x")
    y = gc.reduce_sum(x * 2.0)
    sess = gc.Session(target="reference")
    for batch in (1, 5, 17):
        assert sess.run(y, {x: np.ones((batch, 2))}) == 4.0 * batch
    assert len(sess._compiled) == 1
    sess.run([y], {x: np.ones((1, 2))})
    assert len(sess._compiled) == 1  # [y] and y are the same signature


def test_feeding_by_name_and_feeding_an_intermediate() -> None:
    x = gc.placeholder(gc.float32, (2,), name="x")
    h = gc.multiply(x, 3.0, name="h")
    y = h + 1.0
    sess = gc.Session(target="reference")
    np.testing.assert_array_equal(sess.run("add", {"x": [1.0, 2.0]}), [4.0, 7.0])
    # Feeding h cuts x out of the computation: no feed for x is needed.
    np.testing.assert_array_equal(sess.run(y, {h: [10.0, 20.0]}), [11.0, 21.0])


def test_compile_gives_a_callable() -> None:
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    w = gc.Variable(np.ones((3, 1), np.float32), name="w")
    y = x @ w
    exe = gc.compile(y, [x], target="reference")
    np.testing.assert_array_equal(exe(np.ones((2, 3))), [[3.0], [3.0]])
    np.testing.assert_array_equal(exe(x=np.ones((1, 3))), [[3.0]])
    with pytest.raises(gc.FeedError, match="missing input x"):
        exe()
    with pytest.raises(gc.FeedError, match="missing input x"):
        exe(None)
    with pytest.raises(gc.FeedError, match=r"expected shape \[None, 3\].*got \(2, 4\)"):
        exe(np.ones((2, 4), np.float32))
    with pytest.raises(gc.FeedError, match="got a complex128 array"):
        exe(np.ones((2, 3), complex))
    np.testing.assert_array_equal(exe([[1, 2, 3]]), [[6.0]])  # a list, ints: converted
    with pytest.raises(gc.FeedError, match="unknown input 'z'"):
        exe(z=1)
    assert "x: float32[None, 3]" in repr(exe)


def test_default_target_is_the_first_built() -> None:
    assert gc.Session().target in ("cpu", "reference")
    assert "reference" in gc.available_targets()


def test_hash_consing_merges_equal_pure_nodes_only() -> None:
    x = gc.placeholder(gc.float32, (3,), name="x")
    assert (x + 1.0) is (x + 1.0)
    assert gc.placeholder(gc.float32, (3,)) is not gc.placeholder(gc.float32, (3,))
    assert gc.random_normal((2,), seed=1) is not gc.random_normal((2,), seed=1)


def test_names_scopes_and_lookup(fresh_graph) -> None:
    with gc.name_scope("layer1"):
        w = gc.Variable(np.zeros(2), name="W")
        out = gc.identity(w, name="out")
    assert w.name == "layer1/W" and out.name == "layer1/out"
    assert fresh_graph.get_tensor_by_name("layer1/out") is out
    assert fresh_graph.get_tensor_by_name("layer1/out:0") is out
    assert gc.Variable(np.zeros(2), name="W").name == "W"
    assert gc.Variable(np.zeros(2), name="W").name == "W_1"


def test_python_scalars_are_weakly_typed() -> None:
    x = gc.placeholder(gc.float16, (2,), name="x")
    assert (x * 2.0).dtype == gc.float16 and (2 * x).dtype == gc.float16
    n = gc.placeholder(gc.int32, (2,), name="n")
    assert (n + 1).dtype == gc.int32 and (n * 1.5).dtype == gc.float32
    assert (n / 2).dtype == gc.float32
    assert (gc.cast(n, gc.float64) + x).dtype == gc.float64
    assert (n + x).dtype == gc.float16  # an int with a float gives that float


def test_numpy_arrays_on_the_left() -> None:
    x = gc.placeholder(gc.float32, (2,), name="x")
    y = np.array([1.0, 2.0], np.float32) * x
    assert isinstance(y, gc.Tensor)
    np.testing.assert_array_equal(gc.Session(target="reference").run(y, {x: [3, 4]}), [3, 8])


def test_variable_from_a_seeded_random_tensor_is_reproducible() -> None:
    v = gc.Variable(gc.random_normal((3, 3), seed=7), name="v")
    first = gc.Session(target="reference").run(v)
    second = gc.Session(target="reference").run(v)
    np.testing.assert_array_equal(first, second)
    assert v.shape == (3, 3) and v.trainable
    assert gc.trainable_variables() == [v] and gc.global_variables() == [v]
