"""The cuda target on a real GPU (``pytest -m cuda``; skipped where there is none): the
simulator checks of test_numba_cuda*.py on bigger shapes, the whole op table, and no
recompilation across batch sizes. tests/conftest.py leaves the simulator off for this run.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc import random_bits
from graphc.bundle_run import gpu_available

numba_cuda = pytest.importorskip("graphc.backends.numba_cuda")
from graphc.backends.numba_cuda.device import cuda, is_device, simulated  # noqa: E402
from graphc.backends.numba_cuda.matmul_kernels import gemm, tiled_gemm  # noqa: E402
from graphc.backends.numba_cuda.random_kernels import draw  # noqa: E402
from graphc.backends.numba_cuda.reduce_kernels import MAX, SUM, reduce_axes  # noqa: E402
from op_cases import CASES  # noqa: E402
from test_ops import GRAD_CASES, _build, _inputs, _run, gradients_on  # noqa: E402

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(simulated() or not gpu_available(),
                                 reason="needs a real CUDA GPU (run: pytest -m cuda)")]
RNG = np.random.default_rng(3)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_op_case_agrees_with_the_reference_on_the_gpu(case) -> None:
    arrays = _inputs(case, "float32")
    graph, phs, outs = _build(case, arrays)
    for e, g in zip(_run(graph, phs, outs, arrays), _run(graph, phs, outs, arrays, "cuda")):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)



@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.name for c in GRAD_CASES])
def test_every_op_case_gradient_agrees_with_the_reference_on_the_gpu(case) -> None:
    for e, g in zip(*gradients_on(case, "cuda")):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(e).max(
            initial=0.0)))

def test_fused_broadcast_kernel_on_big_shapes() -> None:
    a = RNG.uniform(0.5, 2, (1000, 513)).astype(np.float32)
    b = RNG.uniform(0.5, 2, (513,)).astype(np.float32)
    g = gc.Graph()
    with g.as_default():
        x, y = gc.placeholder(gc.float32, a.shape), gc.placeholder(gc.float32, b.shape)
        out = gc.tanh(x * y + gc.exp(-y)) / (x + 1.0)
    got = gc.Session(g, target="cuda").run(out, {x: a, y: b})
    np.testing.assert_allclose(got, np.tanh(a * b + np.exp(-b)) / (a + 1.0), rtol=2e-6)


@pytest.mark.parametrize("which", ["tiled", "chosen"])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, True)])
def test_gemm_kernel_on_big_ragged_shapes(ta, tb, which) -> None:
    """The tiled kernel, and whichever GEMM the chooser picks (cuBLAS when CuPy is in)."""
    m, k, n = 300, 257, 150
    a = RNG.normal(size=(3, k, m) if ta else (3, m, k)).astype(np.float32)
    b = RNG.normal(size=(3, n, k) if tb else (3, k, n)).astype(np.float32)
    out = cuda.device_array((3, m, n), np.float32)
    (tiled_gemm if which == "tiled" else gemm)(cuda.to_device(a), cuda.to_device(b), out,
                                               ta, tb)
    want = (a.transpose(0, 2, 1) if ta else a) @ (b.transpose(0, 2, 1) if tb else b)
    np.testing.assert_allclose(out.copy_to_host(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind,fn", [(SUM, np.sum), (MAX, np.max)])
def test_tree_reductions_on_big_shapes(kind, fn) -> None:
    x = RNG.normal(size=(64, 1000, 3))
    for axes in ((1,), (0, 2), (0, 1, 2)):
        want = fn(x, axis=axes)
        out = cuda.device_array(want.shape, x.dtype)
        reduce_axes(cuda.to_device(x), axes, out, kind)
        np.testing.assert_allclose(out.copy_to_host(), want, rtol=1e-10)


def test_uniform_draws_are_bit_identical_on_the_gpu() -> None:
    out = cuda.device_array((1000, 1001), np.float32)
    draw("uniform", out, seed=12345, stream=2, step=9)
    np.testing.assert_array_equal(out.copy_to_host(),
                                  random_bits.uniform((1000, 1001), 12345, 2, 9, np.float32))


def test_mlp_training_and_dropout_match_the_reference_on_the_gpu() -> None:
    from test_numba_cuda import _data, _mlp

    results = {}
    for target in ("reference", "cuda"):
        g, x, y, loss, train = _mlp(gc.train.AdamOptimizer(1e-2))
        sess = gc.Session(g, target=target)
        losses = [sess.run([loss, train], dict(zip((x, y), _data(256, s))))[0]
                  for s in range(5)]
        results[target] = losses, {k: np.asarray(v) for k, v in sess.state.items()}
        if target == "cuda":
            assert all(is_device(v) for v in sess.state.values())
    np.testing.assert_allclose(results["cuda"][0], results["reference"][0], rtol=1e-4)
    for name, value in results["reference"][1].items():
        np.testing.assert_allclose(results["cuda"][1][name], value, rtol=1e-3, atol=1e-5)


def test_a_new_batch_size_compiles_no_new_kernel() -> None:
    from test_numba_cuda import _data, _mlp

    g, x, y, loss, train = _mlp(gc.train.GradientDescentOptimizer(0.1))
    sess = gc.Session(g, target="cuda")
    sess.run([loss, train], dict(zip((x, y), _data(16, 0))))
    exe = next(e for _, e in sess._compiled.values() if e.plan.program.writes)
    counts = [(len(k.module.flat.overloads), len(k.module.nd.overloads)) for k in exe.kernels]
    for n in (3, 100, 1000):
        sess.run([loss, train], dict(zip((x, y), _data(n, n))))
    assert [(len(k.module.flat.overloads), len(k.module.nd.overloads))
            for k in exe.kernels] == counts
