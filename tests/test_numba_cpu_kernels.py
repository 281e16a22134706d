"""Kernel-level checks of the cpu target's library kernels against the reference on the
configurations most likely to break index arithmetic: strides 2, dilation 2, groups,
"SAME" with odd sizes (resolved at run time when the spatial size is unknown), asymmetric
explicit pads, batch 1 (the paths without the (N, O) reorder)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ops.conv import conv2d, conv2d_transpose

CONFIGS = [  # (x shape, w shape, strides, padding, dilations, groups)
    ((2, 3, 9, 7), (4, 3, 3, 3), 2, "SAME", 1, 1),
    ((1, 4, 11, 10), (6, 2, 3, 2), (2, 1), "SAME", 2, 2),
    ((3, 2, 8, 8), (2, 2, 5, 5), 1, 2, 1, 1),
    ((2, 4, 7, 9), (4, 1, 3, 3), (1, 2), ((1, 0), (2, 1)), (2, 1), 4),
    ((1, 1, 5, 5), (1, 1, 5, 5), 1, "VALID", 1, 1),
    ((2, 3, 6, 5), (3, 3, 2, 2), 3, "SAME", 1, 1),
]


def _run_both(build, feeds):
    out = {}
    for target in ("reference", "cpu"):
        g = gc.Graph()
        with g.as_default():
            fetches, placeholders = build()
        sess = gc.Session(g, target=target)
        out[target] = sess.run(fetches, dict(zip(placeholders, feeds)))
    return out["reference"], out["cpu"]


@pytest.mark.parametrize("unknown", [False, True], ids=["static", "runtime-shapes"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
def test_conv_and_its_gradients_match_the_reference(cfg, unknown) -> None:
    xs, ws, strides, padding, dil, groups = cfg
    rng = np.random.default_rng(0)
    xv = rng.normal(size=xs)
    wv = rng.normal(size=ws)

    def build():
        shape = (None, xs[1], None, None) if unknown else xs
        x = gc.placeholder(gc.float64, shape, name="x")
        w = gc.placeholder(gc.float64, ws, name="w")
        y = conv2d(x, w, strides=strides, padding=padding, dilations=dil, groups=groups)
        loss = gc.reduce_sum(y * y)
        dx, dw = gc.gradients(loss, [x, w])
        return [y, dx, dw], [x, w]

    ref, got = _run_both(build, [xv, wv])
    for r, c, what in zip(ref, got, ("y", "dx", "dw")):
        assert r.shape == c.shape, what
        np.testing.assert_allclose(c, r, rtol=1e-10, atol=1e-10, err_msg=what)


@pytest.mark.parametrize("dtype", [gc.float32, gc.float64])
def test_transposed_convolution_matches_the_reference(dtype) -> None:
    rng = np.random.default_rng(1)
    xv = rng.normal(size=(2, 4, 5, 6)).astype(dtype.np)
    wv = rng.normal(size=(4, 3, 3, 3)).astype(dtype.np)

    def build():
        x = gc.placeholder(dtype, (None, 4, 5, 6), name="x")
        w = gc.placeholder(dtype, (4, 3, 3, 3), name="w")
        y = conv2d_transpose(x, w, strides=2, padding=((1, 1), (0, 1)))
        return [y], [x, w]

    (ref,), (got,) = _run_both(build, [xv, wv])
    tol = 1e-5 if dtype == gc.float32 else 1e-12
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


def test_conv_run_time_shape_error_reaches_the_user_as_graphc_error() -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 1, None, None), name="x")
        w = gc.Variable(np.ones((1, 1, 5, 5), np.float32), name="w")
        y = conv2d(x, w)
    sess = gc.Session(g, target="cpu")
    with pytest.raises(gc.errors.ShapeError):
        sess.run(y, {x: np.ones((1, 1, 3, 3), np.float32)})


REDUCTIONS = [  # (shape, axes, keepdims)
    ((4, 5, 6), None, False), ((4, 5, 6), (0,), False), ((4, 5, 6), (2,), True),
    ((4, 5, 6), (0, 2), False), ((4, 5, 6), (1,), False),  # kept axes not contiguous: ref
    ((3, 1, 4, 2), (0, 2, 3), True), ((7,), (-1,), False), ((), None, False),
]


@pytest.mark.parametrize("op", ["reduce_sum", "reduce_mean", "reduce_max", "reduce_min"])
@pytest.mark.parametrize("case", REDUCTIONS, ids=[str(i) for i in range(len(REDUCTIONS))])
def test_reductions_match_the_reference(op, case) -> None:
    shape, axes, keepdims = case
    xv = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    if xv.size > 3:
        xv.flat[3] = np.nan  # max/min propagate NaN; sums too

    def build():
        x = gc.placeholder(gc.float32, shape, name="x")
        return [getattr(gc, op)(x, axes, keepdims=keepdims)], [x]

    (ref,), (got,) = _run_both(build, [xv])
    assert ref.shape == got.shape and ref.dtype == got.dtype
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("like_shape", [(6, 1, 1), (1, 6, 1, 1), (5,), (1, 3, 1)])
def test_sum_to_like_and_broadcast_like_match_the_reference(like_shape) -> None:
    from graphc.ops.reduce import sum_to_like

    rng = np.random.default_rng(3)
    gshape = (4, 6, 3, 5) if 6 in like_shape else (4, 3, 5)
    gv = rng.normal(size=gshape)
    lv = rng.normal(size=like_shape)

    def build():
        g = gc.placeholder(gc.float64, (None,) + gshape[1:], name="g")
        like = gc.placeholder(gc.float64, like_shape, name="like")
        s = sum_to_like(g, like)
        back = gc.gradients(gc.reduce_sum(s * like), [g])[0]  # broadcast_like's path
        return [s, back], [g, like]

    ref, got = _run_both(build, [gv, lv])
    for r, c in zip(ref, got):
        np.testing.assert_allclose(c, r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [gc.float32, gc.float64])
def test_softmax_cross_entropy_matches_the_reference(dtype) -> None:
    rng = np.random.default_rng(4)
    logits = (rng.normal(size=(3, 5, 7)) * 30).astype(dtype.np)  # large: needs the shift
    labels = rng.integers(0, 7, (3, 5))

    def build():
        z = gc.placeholder(dtype, (None, 5, 7), name="z")
        y = gc.placeholder(gc.int64, (None, 5), name="y")
        loss = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z)
        return [loss, gc.gradients(gc.reduce_mean(loss), [z])[0]], [y, z]

    ref, got = _run_both(build, [labels, logits])
    tol = 1e-5 if dtype == gc.float32 else 1e-12
    for r, c in zip(ref, got):
        assert r.dtype == c.dtype
        np.testing.assert_allclose(c, r, rtol=tol, atol=tol)


def test_softmax_cross_entropy_bad_label_is_the_reference_error() -> None:
    g = gc.Graph()
    with g.as_default():
        z = gc.placeholder(gc.float32, (None, 4), name="z")
        y = gc.placeholder(gc.int64, (None,), name="y")
        loss = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z)
    sess = gc.Session(g, target="cpu")
    with pytest.raises(gc.errors.FeedError, match="outside"):
        sess.run(loss, {z: np.zeros((2, 4), np.float32), y: np.array([1, 4])})


@pytest.mark.parametrize("a_shape, b_shape, strided", [
    ((2, 3, 5), (5, 4), False), ((2, 3, 5), (5, 4), True),    # one folded GEMM; a strided a
    ((2, 2, 3, 5), (5, 4), False), ((0, 3, 5), (5, 4), False),  # 4-D; no rows
    ((2, 3, 0), (0, 4), False), ((2, 3, 5), (5, 0), False),   # empty K or N: not folded
])
def test_batched_matmul_by_a_matrix_matches_numpy(a_shape, b_shape, strided) -> None:
    rng = np.random.default_rng(1)
    a = rng.random(a_shape[:-1] + (a_shape[-1] * (2 if strided else 1),), dtype=np.float32)
    a = a[..., ::2] if strided else a
    b = rng.random(b_shape, dtype=np.float32)
    with gc.Graph().as_default():
        ap = gc.placeholder(gc.float32, (None,) * len(a_shape))
        bp = gc.placeholder(gc.float32, (None, None))
        got = gc.Session(target="cpu").run(gc.matmul(ap, bp), {ap: a, bp: b})
    np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-5, atol=1e-6)
