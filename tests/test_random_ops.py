"""Random ops: reproducible from (seed, stream, step), with the right statistics."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc


@pytest.fixture(autouse=True)
def fresh_graph():
    with gc.Graph().as_default() as g:
        yield g


def test_seeded_draws_repeat_across_sessions_and_change_per_step() -> None:
    u = gc.random_uniform((1000,), seed=3)
    first = gc.Session(target="reference")
    a, b = first.run(u), first.run(u)
    assert not np.array_equal(a, b)  # a new step draws anew
    second = gc.Session(target="reference")
    np.testing.assert_array_equal(second.run(u), a)
    np.testing.assert_array_equal(second.run(u), b)


def test_same_seed_same_numbers_in_another_graph() -> None:
    a = gc.Session(target="reference").run(gc.random_normal((50,), seed=11))
    with gc.Graph().as_default():
        gc.random_uniform((3,))  # another op before it must not matter
        b = gc.Session(target="reference").run(gc.random_normal((50,), seed=11))
    np.testing.assert_array_equal(a, b)


def test_graph_seed_makes_unseeded_ops_reproducible(fresh_graph) -> None:
    gc.set_random_seed(5)
    u1, u2 = gc.random_uniform((20,)), gc.random_uniform((20,))
    v1 = gc.Session(target="reference").run([u1, u2])
    assert not np.array_equal(v1[0], v1[1])  # two ops, two streams
    with gc.Graph().as_default():
        gc.set_random_seed(5)
        w1, w2 = gc.random_uniform((20,)), gc.random_uniform((20,))
        v2 = gc.Session(target="reference").run([w1, w2])
    np.testing.assert_array_equal(v1[0], v2[0])


def test_statistics_and_ranges() -> None:
    n = 100_000
    u = gc.random_uniform((n,), minval=-2.0, maxval=3.0, seed=1, dtype=gc.float64)
    z = gc.random_normal((n,), mean=1.0, stddev=2.0, seed=2)
    uv, zv = gc.Session(target="reference").run([u, z])
    assert uv.min() >= -2.0 and uv.max() < 3.0
    assert abs(uv.mean() - 0.5) < 5 * np.sqrt(25 / 12 / n)
    assert zv.dtype == np.float32
    assert abs(zv.mean() - 1.0) < 5 * 2.0 / np.sqrt(n)
    assert abs(zv.std() - 2.0) < 0.05


def test_shape_from_a_tensor_at_run_time() -> None:
    x = gc.placeholder(gc.float32, (None, 4), name="x")
    mask = gc.random_uniform(x, seed=0) < 0.5
    assert mask.shape == (None, 4)
    assert gc.Session(target="reference").run(mask, {x: np.zeros((3, 4))}).shape == (3, 4)


def test_integer_dtype_is_refused() -> None:
    with pytest.raises(gc.DTypeError, match="draws floats"):
        gc.random_uniform((3,), dtype=gc.int32)
