"""Parity with PyTorch (a test-only dependency; skipped when absent): conv2d,
conv2d_transpose, max/avg pooling, batch_norm (with running-statistics updates) and
layer_norm — forward values and gradients in float32 on random inputs.

Each comparison prints ``PARITY name: max abs ..., max rel ...`` (rel: max |diff| / max
|torch|) — run with ``-s`` to see them — and asserts ``|diff| <= 1e-5 + 1e-5 * |torch|``
elementwise. Gradients are of ``sum(y * r)`` for a fixed random ``r``, on both sides.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ops.conv import conv2d, conv2d_transpose
from graphc.ops.normalization import batch_norm, layer_norm
from graphc.ops.pool import avg_pool2d, max_pool2d

torch = pytest.importorskip("torch")
F = torch.nn.functional
TOL = 1e-5


def _check(name: str, got: np.ndarray, want: np.ndarray) -> None:
    want = np.asarray(want)
    assert got.shape == want.shape, f"{name}: shape {got.shape} vs torch {want.shape}"
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    rel = err / max(float(np.max(np.abs(want))), 1e-30)
    print(f"PARITY {name}: max abs {err:.2e}, max rel {rel:.2e}")
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL, err_msg=name)


def _graphc(build, arrays: list[np.ndarray], r_seed: int = 0):
    """Forward value and gradients of sum(y * r) with respect to every input."""
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(gc.float32, a.shape) for a in arrays]
        y = build(*phs)
        r = np.random.default_rng(r_seed).normal(size=y.shape).astype(np.float32)
        grads = gc.gradients(gc.reduce_sum(y * r), phs)
    sess = gc.Session(g, target="reference")
    out = sess.run([y] + grads, dict(zip(phs, arrays)))
    return out[0], out[1:], r


def _torch(fn, arrays: list[np.ndarray], r: np.ndarray):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*ts)
    (y * torch.tensor(r)).sum().backward()
    return y.detach().numpy(), [t.grad.numpy() for t in ts]


def _compare(name: str, build, fn, arrays: list[np.ndarray]) -> None:
    arrays = [a.astype(np.float32) for a in arrays]
    y, grads, r = _graphc(build, arrays)
    ty, tgrads = _torch(fn, arrays, r)
    _check(f"{name} forward", y, ty)
    for i, (gv, tv) in enumerate(zip(grads, tgrads)):
        _check(f"{name} grad[{i}]", gv, tv)


RNG = np.random.default_rng(2024)


def _r(*shape):
    return RNG.normal(size=shape)


def _pad_tb_lr(t, pads):
    (top, bottom), (left, right) = pads
    return F.pad(t, (left, right, top, bottom))


CONV = [
    ("conv2d valid", {}, {}, (2, 3, 9, 8), (4, 3, 3, 3)),
    ("conv2d stride2 pad1", dict(strides=2, padding=1), dict(stride=2, padding=1),
     (2, 3, 9, 8), (4, 3, 3, 3)),
    ("conv2d dilation2 groups2", dict(dilations=2, groups=2, padding=(2, 1)),
     dict(dilation=2, groups=2, padding=(2, 1)), (2, 4, 8, 7), (6, 2, 3, 2)),
    ("conv2d depthwise stride(1,2)", dict(groups=4, strides=(1, 2)),
     dict(groups=4, stride=(1, 2)), (2, 4, 7, 9), (8, 1, 3, 3)),
]


@pytest.mark.parametrize("name,ours,theirs,xs,ws", CONV, ids=[c[0] for c in CONV])
def test_conv2d(name, ours, theirs, xs, ws) -> None:
    _compare(name, lambda x, w: conv2d(x, w, **ours), lambda x, w: F.conv2d(x, w, **theirs),
             [_r(*xs), _r(*ws)])


def test_conv2d_same_and_asymmetric_padding() -> None:
    # TF's SAME for in=9, k=4, s=2: total = (5-1)*2 + 4 - 9 = 3 -> (1, 2): torch pads by hand.
    _compare("conv2d SAME stride2", lambda x, w: conv2d(x, w, strides=2, padding="SAME"),
             lambda x, w: F.conv2d(_pad_tb_lr(x, ((1, 2), (1, 2))), w, stride=2),
             [_r(2, 3, 9, 9), _r(2, 3, 4, 4)])
    pads = ((2, 0), (1, 3))
    _compare("conv2d explicit pairs", lambda x, w: conv2d(x, w, padding=pads),
             lambda x, w: F.conv2d(_pad_tb_lr(x, pads), w), [_r(1, 2, 6, 5), _r(3, 2, 3, 3)])


TRANSPOSE = [
    ("conv2d_transpose stride2 pad1", dict(strides=2, padding=1), dict(stride=2, padding=1),
     (2, 4, 4, 5), (4, 3, 3, 3)),
    ("conv2d_transpose output_shape", dict(strides=2, padding=1, output_shape=(None, 3, 8, 10)),
     dict(stride=2, padding=1, output_padding=1), (2, 4, 4, 5), (4, 3, 3, 3)),
    ("conv2d_transpose groups2 dilation2", dict(strides=(2, 1), dilations=2, groups=2),
     dict(stride=(2, 1), dilation=2, groups=2), (1, 4, 3, 4), (4, 3, 2, 3)),
]


@pytest.mark.parametrize("name,ours,theirs,xs,ws", TRANSPOSE, ids=[c[0] for c in TRANSPOSE])
def test_conv2d_transpose(name, ours, theirs, xs, ws) -> None:
    _compare(name, lambda x, w: conv2d_transpose(x, w, **ours),
             lambda x, w: F.conv_transpose2d(x, w, **theirs), [_r(*xs), _r(*ws)])


POOLS = [
    ("max_pool2d k2", lambda x: max_pool2d(x, 2), lambda x: F.max_pool2d(x, 2)),
    ("max_pool2d k3 s2 p1", lambda x: max_pool2d(x, 3, 2, 1), lambda x: F.max_pool2d(x, 3, 2, 1)),
    ("max_pool2d k(2,3) s(1,2)", lambda x: max_pool2d(x, (2, 3), (1, 2)),
     lambda x: F.max_pool2d(x, (2, 3), (1, 2))),
    ("avg_pool2d k(2,3)", lambda x: avg_pool2d(x, (2, 3)), lambda x: F.avg_pool2d(x, (2, 3))),
    ("avg_pool2d k3 s2 p1", lambda x: avg_pool2d(x, 3, 2, 1),
     lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
]


@pytest.mark.parametrize("name,ours,theirs", POOLS, ids=[p[0] for p in POOLS])
def test_pooling(name, ours, theirs) -> None:
    _compare(name, ours, theirs, [_r(2, 3, 7, 9)])


def _bn_graph(x, gamma, beta, mm, mv, training, momentum, eps):
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(gc.float32, a.shape) for a in (x, gamma, beta)]
        mmv = gc.Variable(mm, name="mm", trainable=False)
        mvv = gc.Variable(mv, name="mv", trainable=False)
        y = batch_norm(*phs, mmv, mvv, training, momentum=momentum, eps=eps)
        r = np.random.default_rng(5).normal(size=y.shape).astype(np.float32)
        grads = gc.gradients(gc.reduce_sum(y * r), phs)
        updates = g.get_collection("update_ops")
    sess = gc.Session(g, target="reference")
    out = sess.run([y, grads, updates], dict(zip(phs, (x, gamma, beta))))
    return out[0], out[1], sess.state["mm"], sess.state["mv"], r


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(training: bool) -> None:
    x = (_r(4, 3, 5, 5) * 2 + 0.5).astype(np.float32)
    gamma, beta = RNG.uniform(0.5, 1.5, 3).astype(np.float32), _r(3).astype(np.float32)
    mm, mv = _r(3).astype(np.float32), RNG.uniform(0.5, 2, 3).astype(np.float32)
    momentum, eps = 0.9, 1e-5
    y, grads, new_mm, new_mv, r = _bn_graph(x, gamma, beta, mm, mv, training, momentum, eps)
    rm, rv = torch.tensor(mm), torch.tensor(mv)
    # torch's momentum weighs the new statistic: ours 0.9 is theirs 0.1.
    ty, tgrads = _torch(lambda a, gm, bt: F.batch_norm(a, rm, rv, gm, bt, training=training,
                                                       momentum=1 - momentum, eps=eps),
                        [x, gamma, beta], r)
    name = f"batch_norm {'training' if training else 'inference'}"
    _check(f"{name} forward", y, ty)
    for what, gv, tv in zip(("x", "gamma", "beta"), grads, tgrads):
        _check(f"{name} grad {what}", gv, tv)
    if not training:
        return
    _check(f"{name} moving_mean", new_mm, rm.numpy())
    # torch's running_var takes the unbiased batch variance, ours (Keras) the biased one.
    n = x.size // x.shape[1]
    unbiased = (rv.numpy().astype(np.float64) - momentum * mv) / (1 - momentum)
    _check(f"{name} moving_var", new_mv,
           (momentum * mv + (1 - momentum) * unbiased * (n - 1) / n).astype(np.float32))


@pytest.mark.parametrize("axis,shape", [(-1, (4,)), ((1, 2), (3, 4))])
def test_layer_norm(axis, shape) -> None:
    x = (_r(2, 3, 4) * 3 + 1).astype(np.float32)
    gamma, beta = RNG.uniform(0.5, 1.5, shape), _r(*shape)
    _compare(f"layer_norm {shape}", lambda a, gm, bt: layer_norm(a, gm, bt, axis=axis),
             lambda a, gm, bt: F.layer_norm(a, shape, gm, bt, eps=1e-5), [x, gamma, beta])
