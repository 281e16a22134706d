"""Property-based: random graphs of elementwise, broadcast, reduction, matmul and reshape
ops give the same numbers on ``reference``, on ``cpu`` with the full pass pipeline and on
``cpu`` with the passes off (float32 tolerance), and their gradients agree too.

Examples are derandomized so a rerun hits the kernel cache instead of compiling new
kernels; ``pytest -m slow`` runs a larger, randomized sample.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc as gc

UNARY = [gc.tanh, gc.sigmoid, gc.nn.relu, gc.abs, gc.sin, gc.negative,
         lambda t: gc.exp(gc.tanh(t)), lambda t: gc.sqrt(gc.abs(t) + 1.0),
         lambda t: t * 1.0 + 0.0, lambda t: gc.log(gc.exp(gc.tanh(t)))]
BINARY = [gc.add, gc.subtract, gc.multiply, gc.maximum, gc.minimum,
          lambda a, b: gc.where(gc.greater(a, b), a, b * 0.5),
          lambda a, b: a / (gc.abs(b) + 1.0)]


def _apply(t, op, arg, pool, rng):
    """One random op on ``t`` (rank 2, shape (B, 4) or (4, 4)...)."""
    kind = op % 7
    if kind in (0, 1):
        return UNARY[arg % len(UNARY)](t)
    if kind in (2, 3):
        other = pool[arg % len(pool)]
        return BINARY[arg % len(BINARY)](t, other)
    if kind == 4:  # reduction, broadcast back
        red = [gc.reduce_sum, gc.reduce_mean, gc.reduce_max][arg % 3]
        return t - red(t, axis=1, keepdims=True) * 0.5
    if kind == 5:  # GEMM with a weight, bias and activation epilogue
        w = gc.constant(rng.normal(size=(4, 4)).astype(np.float32) * 0.5)
        return gc.tanh(gc.matmul(t, w) + gc.constant(rng.normal(size=4).astype(np.float32)))
    # reshape round trips and transposes
    if arg % 2:
        return gc.reshape(gc.reshape(t, (-1,)), (-1, 4))
    return gc.transpose(gc.transpose(t) * 1.5)


@st.composite
def programs(draw):
    n_ops = draw(st.integers(1, 6))
    return [(draw(st.integers(0, 6)), draw(st.integers(0, 50))) for _ in range(n_ops)], \
        draw(st.integers(1, 5))


def _build(ops, seed):
    rng = np.random.default_rng(seed)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 4), name="x")
        row = gc.placeholder(gc.float32, (4,), name="row")
        pool = [x, row, gc.constant(np.float32(0.25))]
        t = x
        outs = []
        for op, arg in ops:
            t = _apply(t, op, arg, pool, rng)
            pool.append(t)
            outs.append(t)
        loss = gc.reduce_sum(t * t)
        grads = [gr for gr in gc.gradients(loss, [x, row]) if gr is not None]
    return g, x, row, [outs[-1], outs[len(outs) // 2], loss, *grads]


def _check(ops, batch):
    g, x, row, fetches = _build(ops, len(ops))
    rng = np.random.default_rng(batch)
    feeds = {x: rng.normal(size=(batch, 4)).astype(np.float32),
             row: rng.normal(size=4).astype(np.float32)}
    expected = gc.Session(g, target="reference").run(fetches, feeds)
    for options in (None, {"optimize": False}):
        got = gc.Session(g, target="cpu", compile_options=options).run(fetches, feeds)
        for e, r, t in zip(expected, got, fetches):
            np.testing.assert_allclose(r, e, rtol=2e-4, atol=2e-5,
                                       err_msg=f"{t.name} options={options} ops={ops}")


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_random_graphs_agree_across_targets_and_pass_settings(case) -> None:
    _check(*case)


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_random_graphs_agree_many(case) -> None:
    _check(*case)
