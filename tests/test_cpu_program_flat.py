"""Elementwise maps in a compiled program run over flattened trailing dims where every
operand reads them densely or broadcasts along all of them (backends/numba_cpu/
loop_flat.py): the results are the reference's for every broadcast pattern, including the
ones that keep (some of) the row loops."""

from __future__ import annotations

import numpy as np
import pytest
from graphc.backends.numba_cpu import loop_flat, program_runtime

import graphc as gc

RNG = np.random.default_rng(5)

# (shape of x (None: the batch), shapes of the other operands, whether some dims flatten)
PATTERNS = {
    "bias_c11": ((None, 3, 4, 5), [(3, 1, 1)], True),
    "plane_hw": ((None, 3, 4, 5), [(4, 5)], True),
    "scalar_and_same": ((None, 3, 4, 5), [(), (2, 3, 4, 5)], True),
    "per_sample": ((None, 3, 4), [(2, 1, 1)], True),
    "last_dim_only": ((None, 3, 4, 5), [(5,)], False),
    "middle_broadcast": ((None, 3, 4, 5), [(3, 1, 5)], False),
    "rank2_bias": ((None, 6), [(6,)], False),
}


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_broadcast_patterns_agree_with_the_reference(name: str) -> None:
    xs, others, flattens = PATTERNS[name]
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, xs, name="x")
        consts = [gc.constant(RNG.normal(size=s).astype(np.float32)) for s in others]
        y = gc.nn.relu(x)
        for k, c in enumerate(consts):
            y = y * c if k % 2 else gc.tanh(y + c)
    run = gc.Session(g, target="cpu").make_callable(y, [x])
    ref = gc.Session(g, target="reference")
    program = run._entry[1].program
    assert program is not None
    assert ("range(1 * " in program.source.source.split("def program")[1]) == flattens
    before = program_runtime.COUNTERS["runs"]
    for batch in (2, 1):  # (batch 2 first: the (2, ...) operands fix it)
        if batch == 1 and any(len(s) == len(xs) and s[0] == 2 for s in others):
            continue
        xv = RNG.normal(size=(batch, *xs[1:])).astype(np.float32)
        np.testing.assert_allclose(run(xv), ref.run(y, {x: xv}), rtol=1e-6, atol=1e-6)
    assert program_runtime.COUNTERS["runs"] > before


def test_a_strided_operand_keeps_the_row_loops() -> None:
    # a split's piece along the last axis is not C-ordered: the row loops read it
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3, 8), name="x")
        a, b = gc.split(x, 2, axis=2)
        y = a * b + 1.0
    run = gc.Session(g, target="cpu").make_callable(y, [x])
    assert run._entry[1].program is not None
    xv = RNG.normal(size=(2, 3, 8)).astype(np.float32)
    np.testing.assert_allclose(run(xv), xv[..., :4] * xv[..., 4:] + 1.0, rtol=1e-6)


def test_flat_split_is_none_for_rows_and_the_first_flat_dim_otherwise() -> None:
    from graphc.backends.numba_cpu.loop_values import Gen

    gen = Gen()
    out = gen.buffer(np.float32, ("n", 3, 4, 5))
    dense = gen.buffer(np.float32, ("n", 3, 4, 5))
    bias = gen.buffer(np.float32, (3, 1, 1))
    row = gen.buffer(np.float32, (5,))
    assert loop_flat.flat_split(gen, [dense, bias], out) == 2
    assert loop_flat.flat_split(gen, [dense], out) == 0
    assert loop_flat.flat_split(gen, [dense, row], out) is None
