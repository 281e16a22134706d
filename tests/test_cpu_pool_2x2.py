"""The cpu target's 2x2 / stride-2 max pooling (backends/numba_cpu/pool_2x2.py) against
the reference: odd and non-square sizes, batch 1, ties, NaN and infinities; and the general
kernels it leaves the other cases to (padding, other windows)."""

from __future__ import annotations

import numpy as np
import pytest
from graphc.backends.numba_cpu.pool_2x2 import maxpool2x2_backward, maxpool2x2_forward

import graphc as gc
from graphc.ops.pool import max_pool2d
from graphc.ops.pool_nd import max_grad_ref, max_ref

RNG = np.random.default_rng(5)
TWO = {"ksize": (2, 2), "strides": (2, 2), "dilations": (1, 1), "padding": ((0, 0), (0, 0))}


def _tricky(shape: tuple, dtype: type) -> np.ndarray:
    """Random values with ties, NaNs and infinities in some windows."""
    x = RNG.integers(-3, 3, size=shape).astype(dtype)  # many ties
    flat = x.reshape(-1)
    idx = RNG.choice(flat.size, size=max(1, flat.size // 10), replace=False)
    flat[idx[0::3]] = np.nan
    flat[idx[1::3]] = np.inf
    flat[idx[2::3]] = -np.inf
    return x


@pytest.mark.parametrize("shape", [(1, 1, 4, 4), (2, 3, 5, 7), (1, 2, 6, 3), (3, 1, 2, 9)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_equal_the_reference_bit_for_bit(shape: tuple, dtype: type) -> None:
    x = _tricky(shape, dtype)
    out = np.empty(shape[:2] + (shape[2] // 2, shape[3] // 2), dtype)
    maxpool2x2_forward(x, out)
    np.testing.assert_array_equal(out, max_ref(x, **TWO))
    g = RNG.normal(size=out.shape).astype(dtype)
    g.reshape(-1)[0] = np.inf  # g * 0 is NaN elsewhere in its window, as in the reference
    dx = np.full(shape, 7.0, dtype)  # every cell must be written
    maxpool2x2_backward(x, g, dx)
    with np.errstate(invalid="ignore"):
        want = max_grad_ref(x, g, **TWO)
    np.testing.assert_array_equal(dx, want)


@pytest.mark.parametrize("args", [{"pool_size": 2}, {"pool_size": 2, "padding": "SAME"},
                                  {"pool_size": 2, "padding": 1}, {"pool_size": 3, "strides": 2},
                                  {"pool_size": (2, 3), "strides": (2, 1)}])
@pytest.mark.parametrize("shape", [(1, 2, 6, 8), (2, 3, 7, 5)])
def test_max_pool2d_and_its_gradient_on_cpu_agree_with_the_reference(args: dict,
                                                                        shape: tuple) -> None:
    x = RNG.normal(size=shape)
    x[0, 0, :2, :2] = 1.5  # a tie
    results, v = [], None
    for target in ("reference", "cpu"):
        g = gc.Graph()
        with g.as_default():
            xt = gc.placeholder(gc.float64, shape, name="x")
            y = max_pool2d(xt, **args)
            v = RNG.normal(size=y.shape) if v is None else v
            (dx,) = gc.gradients(gc.reduce_sum(y * gc.constant(v)), [xt])
            results.append(gc.Session(g, target=target).run([y, dx], {xt: x}))
    for a, b in zip(results[1], results[0]):  # overlapping windows add in another order
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("chunks", [1, 2, 3, 7])
def test_parallel_gradient_equals_the_serial_one(chunks: int) -> None:
    from graphc.backends.numba_cpu.pool_2x2 import maxpool2x2_backward_par
    from graphc.backends.numba_cpu.threads import PARALLEL_LOCK, choose_threading_layer

    x = _tricky((2, 3, 5, 6), np.float64)
    g = RNG.normal(size=(2, 3, 2, 3))
    dx, dx1 = np.full(x.shape, 7.0), np.full(x.shape, 7.0)
    maxpool2x2_backward(x, g, dx1)
    choose_threading_layer()
    with PARALLEL_LOCK:
        maxpool2x2_backward_par(x, g, dx, chunks)
    np.testing.assert_array_equal(dx, dx1)


def test_big_inputs_take_the_parallel_path(monkeypatch) -> None:
    from graphc.backends.numba_cpu import pool_kernels

    monkeypatch.setattr(pool_kernels, "PARALLEL_MIN_ELEMENTS", 0)
    test_max_pool2d_and_its_gradient_on_cpu_agree_with_the_reference({"pool_size": 2},
                                                                      (2, 3, 7, 5))
