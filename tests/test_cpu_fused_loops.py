"""The cpu target's loop variants for fused groups: flat, rows (broadcast along whole
trailing runs, see backends/numba_cpu/row_split.py) and n-d, each against NumPy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc as gc
from graphc.backends.numba_cpu.row_split import RowSplit, fits, plan_rows


@pytest.mark.parametrize("out, ins, scalars, want", [
    ((None, 6, 28, 28), [(None, 6, 28, 28), (6, 1, 1)], [False, False],
     RowSplit(2, (True, False))),
    ((None, 512), [(None, 512), (512,)], [False, False], RowSplit(1, (True, True))),
    ((None, 512), [(None, 512), (None, 1), ()], [False, False, True],
     RowSplit(1, (True, False, False))),
    ((3, 4), [(3, 1), (1, 4)], [False, False], RowSplit(1, (False, True))),
    ((None, 4), [(None, 4), (None, 4)], [False, False], RowSplit(0, (True, True))),
    ((2, 1, 5), [(2, 1, 5), (1, 1, 1)], [False, True], RowSplit(0, (True, False))),
    ((), [(), ()], [True, True], None),
    ((None, 3), [None, (3,)], [False, False], None),
])
def test_plan_rows(out, ins, scalars, want) -> None:
    assert plan_rows(out, ins, scalars) == want


def test_fits_checks_the_run_time_shapes() -> None:
    split = RowSplit(0, (True, True))  # (None, 4) + (None, 4)
    assert fits(split, (5, 4), [(5, 4), (5, 4)], [False, False])
    assert not fits(split, (5, 4), [(5, 4), (1, 4)], [False, False])  # a run-time broadcast


def _run(build, *arrays):
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(gc.float32, shape) for shape, _ in arrays]
        y = build(*phs)
    sess = gc.Session(g, target="cpu")
    fn = sess.make_callable(y, phs)
    _, exe = sess._program(fn._elements, fn.inputs)
    exe.program = None  # these tests are about the step kernels, not the whole-plan path
    got = fn(*[a for _, a in arrays])
    variants = set().union(*[set(k._ready) for k in exe.kernels])
    return got, variants


def _rand(*shape):
    return np.random.default_rng(len(shape)).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("shapes, values, variant", [
    ([(None, 6, 5, 7), (6, 1, 1)], [_rand(3, 6, 5, 7), _rand(6, 1, 1)], "rows"),
    ([(None, 9), (9,)], [_rand(4, 9), _rand(9)], "rows"),
    ([(None, 9), (None, 1)], [_rand(4, 9), _rand(4, 1)], "rows"),
    ([(3, 1), (1, 4)], [_rand(3, 1), _rand(1, 4)], "rows"),
    ([(None, 9), (9,)], [_rand(0, 9), _rand(9)], "rows"),           # zero rows
    ([(None, 9), (None, 9)], [_rand(4, 9), _rand(1, 9)], "nd"),      # run-time broadcast
    ([(None, 9), (None, 9)], [_rand(4, 9), _rand(4, 9)], "flat"),
    ([(None, 9), (9,)], [_rand(8, 18)[:, ::2], _rand(9)], "nd"),      # a strided feed
])
def test_each_loop_variant_matches_numpy(shapes, values, variant) -> None:
    got, variants = _run(lambda a, b: gc.nn.relu(a + b) * 0.5 - b,
                         *zip(shapes, values))
    a, b = values
    np.testing.assert_allclose(got, np.maximum(a + b, 0) * 0.5 - b, rtol=1e-6, atol=1e-6)
    assert variants == {variant}


@pytest.mark.parametrize("shapes, values", [
    ([(None, 6, 5, 7), (6, 1, 1)], [_rand(3, 6, 5, 7), _rand(6, 1, 1)]),  # a conv bias
    ([(None, 9), (None, 1)], [_rand(4, 9), _rand(4, 1)]),
    ([(3, 1), (1, 4)], [_rand(3, 1), _rand(1, 4)]),
])
def test_each_parallel_loop_variant_compiles_and_matches_numpy(shapes, values,
                                                               monkeypatch) -> None:
    # Small sizes with the threshold at 1: every loop takes its prange twin (a broadcast
    # operand's row index once failed to type there, and the step fell back to NumPy).
    from graphc.backends.numba_cpu import runtime

    monkeypatch.setattr(runtime, "PARALLEL_MIN_ELEMENTS", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got, variants = _run(lambda a, b: gc.nn.relu(a + b) * 0.5 - b, *zip(shapes, values))
    a, b = values
    np.testing.assert_allclose(got, np.maximum(a + b, 0) * 0.5 - b, rtol=1e-6, atol=1e-6)
    assert variants == {"rows_par"}


def test_rows_loop_in_parallel_with_a_scalar_operand() -> None:
    from graphc.backends.numba_cpu.runtime import PARALLEL_MIN_ELEMENTS

    n = PARALLEL_MIN_ELEMENTS // 16 // 64 + 1  # a transcendental group goes parallel 16x sooner
    a, b = _rand(n, 64), _rand(64)
    got, variants = _run(lambda x, y: gc.tanh(x + y) * 2.0, ((None, 64), a), ((64,), b))
    np.testing.assert_allclose(got, np.tanh(a + b) * 2, rtol=1e-5, atol=1e-6)
    assert variants == {"rows_par"}


def test_in_place_updates_use_the_aliasing_loop_and_match_the_reference() -> None:
    def build():
        g = gc.Graph()
        with g.as_default():
            x = gc.placeholder(gc.float32, (None, 6))
            w = gc.Variable(np.linspace(-1, 1, 24, dtype=np.float32).reshape(6, 4), name="w")
            loss = gc.reduce_mean(gc.square(gc.tanh(x @ w)))
            train = gc.train.AdamOptimizer(0.1).minimize(loss)
        return g, x, loss, train

    data = _rand(5, 6)
    results = {}
    for target in ("reference", "cpu"):
        g, x, loss, train = build()
        sess = gc.Session(g, target=target)
        step = sess.make_callable([loss, train], [x])
        for _ in range(3):
            step(data)
        results[target] = sess.state["w"].copy()
        if target == "cpu":
            _, exe = sess._program(step._elements, step.inputs)
            variants = set().union(*[set(k._ready) for k in exe.kernels])
            assert "flat_io" in variants  # the weight and slot updates write in place
    np.testing.assert_allclose(results["cpu"], results["reference"], rtol=1e-5, atol=1e-6)
