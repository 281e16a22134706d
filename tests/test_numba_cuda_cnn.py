"""Convolution and pooling on the cuda target (backends/numba_cuda/conv_kernels.py and
pool_kernels.py) against the reference: each op forward and its gradients, across strides,
VALID/SAME/explicit padding and dilations, max pooling's ties, NaNs and infinities, and a
small CNN's training steps; every test also checks that the device kernels ran, not the
host fallback. Tiny shapes: in CI this runs in Numba's CUDA simulator (tests/conftest.py).
The real-GPU versions, on bigger shapes, are at the end (``pytest -m cuda``)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.bundle_run import gpu_available
from graphc.ops import conv_nd, pool_nd

numba_cuda = pytest.importorskip("graphc.backends.numba_cuda")
from graphc.backends.numba_cuda.device import is_device, simulated  # noqa: E402

needs_sim = pytest.mark.skipif(not simulated(), reason="the simulator run (tests/conftest.py)")
needs_gpu = pytest.mark.skipif(simulated() or not gpu_available(),
                               reason="needs a real CUDA GPU (run: pytest -m cuda)")

CONV = {"conv2d", "conv2d_backprop_input", "conv2d_backprop_filter"}
MAX = {"max_pool2d", "max_pool2d_grad"}


def _both(build, arrays: list, grads: bool = True, weights=None) -> tuple:
    """(reference values, cuda values, {window op: how its steps ran on cuda}) of
    ``build(*placeholders)`` and, with ``grads``, the gradients of ``sum(y * weights)``
    (random weights unless given) in the inputs it depends on."""
    values = {}
    for target in ("reference", "cuda"):
        g = gc.Graph()
        with g.as_default():
            phs = [gc.placeholder(a.dtype, a.shape) for a in arrays]
            y = build(*phs)
            fetch = [y]
            if grads:
                v = weights if weights is not None else np.random.default_rng(1).normal(
                    size=y.shape)
                loss = gc.reduce_sum(y * gc.constant(np.asarray(v, arrays[0].dtype)))
                fetch += [d for d in gc.gradients(loss, phs) if d is not None]
        sess = gc.Session(g, target=target)
        values[target] = sess.run(fetch, dict(zip(phs, arrays)))
    return values["reference"], values["cuda"], _how_ran(sess)


def _how_ran(sess) -> dict:
    how: dict = {}
    for _, exe in sess._compiled.values():
        for step in exe.plan.steps:
            if "conv" in step.node.op or "pool" in step.node.op:
                how.setdefault(step.node.op, set()).add(exe.ran.get(step.node.name))
    return how


def _check(build, arrays: list, ops: set, rtol: float = 1e-5, **kw) -> None:
    """``build`` and its gradients agree on cuda and the reference, and ``ops`` (exactly
    the window ops of the graph) ran as device kernels."""
    ref, got, how = _both(build, arrays, **kw)
    for e, g in zip(ref, got):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol * max(1.0, np.abs(e).max()))
    assert how == {op: {"kernel"} for op in ops}, how


def _pooled_shape(pool, shape: tuple, **kw) -> tuple:
    with gc.Graph().as_default():
        return pool(gc.placeholder(gc.float32, shape), **kw).shape


def _rand(*shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def _distinct(*shape, seed=0):
    """No ties: a permutation of 0..n-1, scaled."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n).reshape(shape) / n).astype(np.float32)


# -- convolution ----------------------------------------------------------------------------

CONV_CASES = {
    "valid": ((2, 2, 5, 5), (2, 2, 3, 3), {}),
    "strided_same": ((2, 2, 5, 6), (2, 2, 3, 3), dict(strides=2, padding="SAME")),
    "explicit_dilated": ((2, 2, 6, 7), (2, 2, 2, 3), dict(padding=((1, 0), (2, 1)),
                                                          dilations=2)),
    "mixed_strides_dilations": ((1, 2, 5, 5), (3, 2, 3, 2), dict(strides=(2, 1), padding=1,
                                                                 dilations=(1, 2))),
}


@needs_sim
@pytest.mark.parametrize("name", CONV_CASES)
def test_conv2d_and_its_gradients_run_on_the_device(name) -> None:
    xs, ws, kw = CONV_CASES[name]
    _check(lambda x, w: gc.nn.conv2d(x, w, **kw), [_rand(*xs), _rand(*ws, seed=1)], CONV)


@needs_sim
def test_conv2d_in_float64() -> None:
    x, w = _rand(2, 1, 4, 5, dtype=np.float64), _rand(2, 1, 3, 3, dtype=np.float64, seed=1)
    _check(lambda a, b: gc.nn.conv2d(a, b, strides=2, padding="SAME"), [x, w], CONV,
           rtol=1e-12)


@needs_sim
@pytest.mark.parametrize("kw", [dict(strides=2, padding=1),
                                dict(output_shape=(None, 2, 6, 5), strides=2, padding="SAME")],
                         ids=["natural_size", "output_shape"])
def test_the_transposed_convolution_takes_its_size_as_the_reference_does(kw) -> None:
    g, w = _rand(2, 2, 3, 3), _rand(2, 2, 3, 3, seed=1)
    _check(lambda a, b: gc.nn.conv2d_transpose(a, b, **kw), [g, w], CONV)


@needs_sim
def test_the_nd_convolution_with_two_spatial_axes_runs_the_same_kernels() -> None:
    x, w = _rand(2, 2, 5, 4), _rand(2, 2, 2, 3, seed=1)
    _check(lambda a, b: conv_nd.conv(a, b, strides=(1, 2), padding=1, dilations=(2, 1)),
           [x, w], {"conv", "conv_backprop_input", "conv_backprop_filter"})


@needs_sim
@pytest.mark.parametrize("build,shapes", [
    (lambda x, w: gc.nn.conv2d(x, w, groups=2), ((1, 2, 4, 4), (2, 1, 2, 2))),
    (lambda x, w: conv_nd.conv(x, w, padding=1), ((1, 2, 5), (2, 2, 3))),
], ids=["groups", "1d"])
def test_grouped_and_1d_convolutions_take_the_host_fallback(build, shapes) -> None:
    ref, got, how = _both(build, [_rand(*shapes[0]), _rand(*shapes[1], seed=1)])
    for e, g in zip(ref, got):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    assert how and all(h == {"fallback"} for h in how.values()), how


# -- pooling ------------------------------------------------------------------------------------

POOL_CASES = {
    "2x2": ((2, 2, 4, 5), dict(pool_size=2)),
    "same_strided": ((1, 2, 5, 6), dict(pool_size=3, strides=2, padding="SAME")),
    "explicit": ((1, 2, 4, 5), dict(pool_size=(2, 3), strides=(1, 2),
                                    padding=((1, 0), (0, 2)))),
    "overlapping": ((2, 1, 5, 4), dict(pool_size=(3, 2), strides=1, padding=((1, 1), (1, 0)))),
}


@needs_sim
@pytest.mark.parametrize("name", POOL_CASES)
def test_max_pool2d_its_gradient_and_second_order_run_on_the_device(name) -> None:
    shape, kw = POOL_CASES[name]
    x = _distinct(*shape)
    _check(lambda a: gc.nn.max_pool2d(a, **kw), [x], MAX)
    # The gradient as an output: its gradient in the weights is max_pool2d_grad_grad.
    y_shape = _pooled_shape(gc.nn.max_pool2d, shape, **kw)
    _check(lambda a, v: gc.gradients(gc.reduce_sum(gc.nn.max_pool2d(a, **kw) * v), a)[0],
           [x, _rand(*y_shape, seed=2)], MAX | {"max_pool2d_grad_grad"})


@needs_sim
@pytest.mark.parametrize("name", POOL_CASES)
def test_avg_pool2d_and_its_gradient_run_on_the_device(name) -> None:
    shape, kw = POOL_CASES[name]
    _check(lambda a: gc.nn.avg_pool2d(a, **kw), [_rand(*shape)],
           {"avg_pool2d", "avg_pool2d_grad"})
    # Second order: avg_pool2d_grad's gradient in g is avg_pool2d.
    y_shape = _pooled_shape(gc.nn.avg_pool2d, shape, **kw)
    _check(lambda a, v: gc.gradients(gc.reduce_sum(gc.nn.avg_pool2d(a, **kw) * v), a)[0],
           [_rand(*shape), _rand(*y_shape, seed=2)], {"avg_pool2d", "avg_pool2d_grad"})


@needs_sim
def test_max_pool_ties_go_to_the_first_maximum() -> None:
    x = np.ones((1, 2, 4, 4), np.float32)
    x[0, 1, 1:3, 1:3] = 2.0  # ties inside overlapping windows
    weights = _rand(1, 2, 4, 4, seed=3)
    ref, got, how = _both(lambda a: gc.nn.max_pool2d(a, 2, strides=1, padding="SAME"), [x],
                          weights=weights)
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-6)
    # All ones (the padding is at the bottom/right): window (i, j)'s first cell is (i, j).
    np.testing.assert_array_equal(got[1][0, 0], weights[0, 0])
    assert how == {op: {"kernel"} for op in MAX}


@needs_sim
def test_max_pool_nans_win_and_the_first_nan_takes_the_gradient() -> None:
    x = _distinct(1, 2, 4, 5)
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = np.nan  # two NaNs in one window: the first wins
    x[0, 1, 2, 3] = np.nan
    ref, got, how = _both(lambda a: gc.nn.max_pool2d(a, 2, strides=1), [x])
    for e, g in zip(ref, got):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(e))
        np.testing.assert_allclose(g, e, rtol=1e-6)
    assert np.isnan(ref[0]).any()
    assert how == {op: {"kernel"} for op in MAX}


@needs_sim
def test_max_pool_padded_cells_win_windows_of_minus_infinity() -> None:
    x = _distinct(1, 1, 4, 4)
    x[0, 0, :2, :2] = -np.inf  # a corner window holds padding and -inf cells only
    ref, got, how = _both(lambda a: gc.nn.max_pool2d(a, 2, strides=1, padding=((1, 0), (1, 0))),
                          [x])
    np.testing.assert_array_equal(got[0], ref[0])
    assert np.isneginf(ref[0]).any()
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-6)
    assert how == {op: {"kernel"} for op in MAX}


@needs_sim
@pytest.mark.filterwarnings("ignore:invalid value encountered")  # inf * 0, on purpose
def test_max_pool_gradient_spreads_nan_over_windows_with_an_infinite_gradient() -> None:
    x = _distinct(1, 1, 4, 4)
    weights = np.ones((1, 1, 3, 3), np.float32)
    weights[0, 0, 1, 1] = np.inf  # g * one_hot: inf * 0 is NaN on the window's other cells
    ref, got, how = _both(lambda a: gc.nn.max_pool2d(a, 2, strides=1), [x], weights=weights)
    assert np.isnan(ref[1]).any()
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-6)
    assert how == {op: {"kernel"} for op in MAX}


@needs_sim
def test_nd_pooling_with_two_spatial_axes_and_dilations_runs_on_the_device() -> None:
    x = _distinct(1, 2, 5, 6)
    kw = dict(pool_size=2, strides=(1, 2), dilations=(2, 1), padding="SAME")
    _check(lambda a: pool_nd.max_pool(a, **kw), [x], {"max_pool", "max_pool_grad"})
    _check(lambda a: pool_nd.avg_pool(a, **kw), [x], {"avg_pool", "avg_pool_grad"})
    x[0, 0, :3, :3] = -np.inf  # window (0, 0) holds -inf and padding only: index -1
    ref, got, how = _both(lambda a: pool_nd.max_pool_argmax(a, 3, strides=2, dilations=2,
                                                            padding=2), [x], grads=False)
    np.testing.assert_array_equal(got[0], ref[0])
    assert (ref[0] == -1).any() and how == {"max_pool_argmax": {"kernel"}}


# -- a small CNN, end to end ---------------------------------------------------------------------

def _cnn(optimizer, n_filters: int = 2, image: int = 6, classes: int = 3):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 1, image, image), name="x")
        y = gc.placeholder(gc.int64, (None,), name="y")
        k = gc.Variable(gc.init.glorot_uniform((n_filters, 1, 3, 3), seed=0), name="k")
        half = image // 2
        w = gc.Variable(gc.init.glorot_uniform((n_filters * half * half, classes), seed=1),
                        name="w")
        b = gc.Variable(np.zeros(classes, np.float32), name="b")
        h = gc.nn.max_pool2d(gc.nn.relu(gc.nn.conv2d(x, k, padding="SAME")), 2)
        logits = gc.reshape(h, (-1, n_filters * half * half)) @ w + b
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(
            labels=y, logits=logits))
        train = optimizer.minimize(loss)
    return g, x, y, loss, train


def _images(n: int, seed: int, image: int = 6, classes: int = 3) -> tuple:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 1, image, image)).astype(np.float32),
            rng.integers(0, classes, n))


def _train(target: str, steps: int, n: int, **sizes) -> tuple:
    g, x, y, loss, train = _cnn(gc.train.AdamOptimizer(1e-2), **sizes)
    sess = gc.Session(g, target=target)
    data = {k: sizes[k] for k in ("image", "classes") if k in sizes}
    losses = [sess.run([loss, train], dict(zip((x, y), _images(n, s, **data))))[0]
              for s in range(steps)]
    return sess, losses, {k: np.asarray(v) for k, v in sess.state.items()}


@needs_sim
def test_cnn_training_on_cuda_equals_the_reference_and_stays_on_the_device() -> None:
    _, ref_losses, ref_state = _train("reference", 2, 2)
    sess, losses, state = _train("cuda", 2, 2)
    assert sess.state and all(is_device(v) for v in sess.state.values())
    exe = next(e for _, e in sess._compiled.values() if e.plan.program.writes)
    on_host = sorted(n for n, how in exe.ran.items() if how == "fallback")
    assert not on_host, on_host  # the whole training step runs as kernels
    assert {"conv2d", "conv2d_backprop_filter", "max_pool2d", "max_pool2d_grad"} <= {
        s.node.op for s in exe.plan.steps}
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5, atol=1e-6)
    for name in ref_state:
        np.testing.assert_allclose(state[name], ref_state[name], rtol=1e-4, atol=1e-6,
                                   err_msg=name)


# -- the same on a real GPU, bigger ---------------------------------------------------------------

GPU_CONV = [((8, 16, 32, 32), (32, 16, 3, 3), {}),
            ((8, 16, 33, 31), (24, 16, 3, 3), dict(strides=2, padding="SAME")),
            ((4, 8, 30, 29), (16, 8, 5, 3), dict(padding=((2, 1), (0, 3)), dilations=2))]


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("xs,ws,kw", GPU_CONV, ids=["valid", "strided_same", "dilated"])
def test_conv2d_on_the_gpu(xs, ws, kw) -> None:
    _check(lambda x, w: gc.nn.conv2d(x, w, **kw), [_rand(*xs), _rand(*ws, seed=1)], CONV,
           rtol=1e-4)


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("kw", [dict(pool_size=2), dict(pool_size=3, strides=2, padding="SAME"),
                                dict(pool_size=(3, 2), strides=1, padding=((1, 1), (1, 0)))],
                         ids=["2x2", "same_strided", "overlapping"])
def test_pooling_on_the_gpu(kw) -> None:
    x = _distinct(8, 16, 31, 30)
    _check(lambda a: gc.nn.max_pool2d(a, **kw), [x], MAX, rtol=1e-5)
    _check(lambda a: gc.nn.avg_pool2d(a, **kw), [x], {"avg_pool2d", "avg_pool2d_grad"},
           rtol=1e-5)


@pytest.mark.cuda
@needs_gpu
def test_cnn_training_on_the_gpu() -> None:
    sizes = dict(n_filters=16, image=16, classes=10)
    _, ref_losses, ref_state = _train("reference", 5, 64, **sizes)
    sess, losses, state = _train("cuda", 5, 64, **sizes)
    exe = next(e for _, e in sess._compiled.values() if e.plan.program.writes)
    assert not sorted(n for n, how in exe.ran.items() if how == "fallback")
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-4)
    for name in ref_state:
        np.testing.assert_allclose(state[name], ref_state[name], rtol=1e-3, atol=1e-5,
                                   err_msg=name)

