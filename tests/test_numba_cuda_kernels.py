"""The cuda target's kernels, one by one, against NumPy: fused elementwise (flat and
broadcasting), tiled GEMM, tree reductions, Philox draws. Tiny shapes: in CI they run in
Numba's CUDA simulator (tests/conftest.py), where a CUDA thread is a Python thread. The same
checks on bigger shapes run on a real GPU with ``pytest -m cuda``
(tests/test_numba_cuda_gpu.py)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc import random_bits

cudamod = pytest.importorskip("graphc.backends.numba_cuda")
from graphc.backends.numba_cuda.device import cuda, simulated  # noqa: E402
from graphc.backends.numba_cuda.gemm_choice import FastestGemm  # noqa: E402
from graphc.backends.numba_cuda.matmul_kernels import FASTEST, tiled_gemm  # noqa: E402
from graphc.backends.numba_cuda.random_kernels import draw  # noqa: E402
from graphc.backends.numba_cuda.reduce_kernels import (  # noqa: E402
    MAX, MIN, PROD, SUM, reduce_axes)

pytestmark = pytest.mark.skipif(not simulated(), reason="the simulator run (tests/conftest.py);"
                                " the real-GPU versions are in test_numba_cuda_gpu.py")
RNG = np.random.default_rng(7)


def _run(build, *arrays, target="cuda"):
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(a.dtype, a.shape) for a in arrays]
        out = build(*phs)
    sess = gc.Session(g, target=target)
    return sess.run(out, dict(zip(phs, arrays))), sess


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (4, 1)),
                                    ((), (2, 3)), ((5,), ())])
def test_fused_group_with_broadcasting_matches_numpy(shapes) -> None:
    a, b = (RNG.uniform(0.5, 2.0, s).astype(np.float32) for s in shapes)
    build = lambda x, y: gc.tanh(x * y + gc.exp(-y)) / (x + 1.0)  # noqa: E731
    got, _ = _run(build, a, b)
    want = np.tanh(a * b + np.exp(-b)) / (a + 1.0)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got.shape == want.shape


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_kernel_with_transposes_and_ragged_tiles(ta, tb) -> None:
    m, k, n = 5, 7, 3  # not multiples of the tile
    a = RNG.normal(size=(2, k, m) if ta else (2, m, k)).astype(np.float32)
    b = RNG.normal(size=(1, n, k) if tb else (1, k, n)).astype(np.float32)  # batch broadcast
    out = cuda.device_array((2, m, n), np.float32)
    tiled_gemm(cuda.to_device(a), cuda.to_device(b), out, ta, tb)
    want = (a.transpose(0, 2, 1) if ta else a) @ (b.transpose(0, 2, 1) if tb else b)
    np.testing.assert_allclose(out.copy_to_host(), want, rtol=1e-5, atol=1e-6)


def test_the_gemm_chooser_times_each_shape_once_and_keeps_the_faster() -> None:
    calls: list = []
    small, big = np.zeros((1, 2, 2)), np.zeros((1, 4, 4))
    speed = {("tiled", small.shape): 2.0, ("cublas", small.shape): 1.0,
             ("tiled", big.shape): 1.0, ("cublas", big.shape): 3.0}

    def candidate(name):
        return lambda a, b, out, ta, tb: calls.append((name, a.shape))

    def timer(run):  # a fake device clock: the candidate that just ran sets the time
        run()
        return speed[calls[-1]]

    chooser = FastestGemm(candidate("tiled"), lambda: {"cublas": candidate("cublas")}, timer)
    chooser(small, small, small, False, False)
    chooser(small, small, small, False, False)  # known: no timing
    chooser(big, big, big, False, False)  # a new key is timed again
    assert chooser.choice == {((1, 2, 2), (1, 2, 2), "float64", False, False): "cublas",
                              ((1, 4, 4), (1, 4, 4), "float64", False, False): "tiled"}
    assert [n for n, _ in calls] == ["tiled", "cublas", "cublas", "cublas",
                                     "tiled", "cublas", "tiled"]


def test_a_failing_library_gemm_is_dropped_with_a_warning() -> None:
    ran: list = []

    def broken(a, b, out, ta, tb):
        raise RuntimeError("CUBLAS_STATUS_NOT_INITIALIZED")

    chooser = FastestGemm(lambda *args: ran.append("tiled"), lambda: {"cublas": broken},
                          lambda run: run() or 1.0)
    x = np.zeros((1, 2, 2))
    with pytest.warns(RuntimeWarning, match="cublas GEMM failed.*NOT_INITIALIZED"):
        chooser(x, x, x, False, False)
    assert list(chooser.candidates()) == ["tiled"] and ran[-1] == "tiled"


def test_the_simulator_has_only_the_tiled_gemm() -> None:
    assert list(FASTEST.candidates()) == ["tiled"]


def test_matmul_op_runs_the_kernel_and_mixed_batches_fall_back() -> None:
    a, b = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(4, 2))
    got, sess = _run(lambda x, y: x @ y, a, b)
    np.testing.assert_allclose(got, a @ b, rtol=1e-12)
    exe = next(iter(sess._compiled.values()))[1]
    assert "kernel" in exe.ran.values()
    a, b = RNG.normal(size=(2, 1, 3, 4)), RNG.normal(size=(3, 4, 2))  # (2,1) x (3,): host
    got, _ = _run(lambda x, y: x @ y, a, b)
    np.testing.assert_allclose(got, a @ b, rtol=1e-12)


# A simulated block has 8 threads: 37 reduced elements exercise the strided partials.
@pytest.mark.parametrize("shape,axes", [((3, 4, 2), (0,)), ((2, 37, 2), (1,)),
                                        ((3, 4, 2), (0, 2)), ((2, 37, 2), (0, 1, 2))])
@pytest.mark.parametrize("kind,fn", [(SUM, np.sum), (MAX, np.max), (MIN, np.min),
                                     (PROD, np.prod)])
def test_tree_reduction_over_any_axes(shape, axes, kind, fn) -> None:
    x = RNG.normal(size=shape)
    want = fn(x, axis=axes)
    out = cuda.device_array(want.shape, x.dtype)
    reduce_axes(cuda.to_device(x), axes, out, kind)
    np.testing.assert_allclose(out.copy_to_host(), want, rtol=1e-12)


def test_reduction_ops_keepdims_mean_nan_and_sum_to_like() -> None:
    x = RNG.normal(size=(4, 5)).astype(np.float32)
    x[1, 2] = np.nan
    build = lambda t: [gc.reduce_mean(t, 1, keepdims=True), gc.reduce_max(t, 0),  # noqa: E731
                       gc.reduce_sum(t)]
    got, _ = _run(build, x)
    want = [np.mean(x, 1, keepdims=True), np.max(x, 0), np.sum(x)]
    for g_, w in zip(got, want):
        np.testing.assert_allclose(g_, w, rtol=1e-5)
    b = RNG.normal(size=(3, 1)).astype(np.float32)
    y = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    got, _ = _run(lambda bb, yy: gc.gradients(gc.reduce_sum((yy + bb) * yy), [bb])[0], b, y)
    np.testing.assert_allclose(got, y.sum(axis=(0, 2)).reshape(3, 1), rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["uniform", "normal"])
def test_device_philox_draws_equal_the_reference(kind, dtype) -> None:
    out = cuda.device_array((3, 11), dtype)
    draw(kind, out, seed=2**40 + 5, stream=3, step=7)
    want = getattr(random_bits, kind)((3, 11), 2**40 + 5, 3, 7, dtype)
    if kind == "uniform":  # integer arithmetic and exact scalings: bit for bit
        np.testing.assert_array_equal(out.copy_to_host(), want)
    else:  # float64 log/cos may differ by an ulp between libm and NumPy
        np.testing.assert_allclose(out.copy_to_host(), want, rtol=1e-14)


def test_transpose_broadcast_and_fill_kernels() -> None:
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    build = lambda t: [gc.transpose(t, (2, 0, 1)), gc.transpose(t),  # noqa: E731
                       gc.broadcast_to(t[:, :1, :], (2, 3, 4)), gc.ones_like(t) * 2.0]
    got, sess = _run(build, x)
    want = [x.transpose(2, 0, 1), x.T, np.broadcast_to(x[:, :1, :], (2, 3, 4)),
            np.full_like(x, 2.0)]
    for g_, w in zip(got, want):
        np.testing.assert_array_equal(g_, w)
    exe = next(iter(sess._compiled.values()))[1]
    ran = {name.rstrip("_0123456789"): how for name, how in exe.ran.items()}
    assert ran["transpose"] == "kernel", exe.ran
