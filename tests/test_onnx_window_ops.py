"""The N-d window ops that ONNX import needs (graphc/ops/pool_nd.py, conv_nd.py) and LSTM
peepholes: checked against PyTorch (an independent implementation) where it has the op,
against graphc's 2-D ops where the semantics must coincide, and their build-time errors.
Values and gradients of every op are also in tests/op_cases.py (reference, finite
differences, cpu, onnxruntime); the ONNX node tests are in test_onnx_conformance.py."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ops import conv as conv2
from graphc.ops import conv_nd, pool, pool_nd
from graphc.ops import rnn

RNG = np.random.default_rng(7)


def _run(fetches, feeds=None, target="reference"):
    return gc.Session(target=target).run(fetches, feeds or {})


@pytest.mark.parametrize("target", ["reference", "cpu"])
def test_2d_cases_of_the_nd_ops_equal_the_2d_ops(target: str) -> None:
    x = RNG.standard_normal((2, 3, 7, 6)).astype(np.float32)
    w = RNG.standard_normal((4, 3, 3, 2)).astype(np.float32)
    with gc.Graph().as_default():
        c = gc.constant(x)
        pairs = [
            (pool_nd.max_pool(c, 3, strides=2, padding="SAME"),
             pool.max_pool2d(c, 3, strides=2, padding="SAME")),
            (pool_nd.avg_pool(c, (2, 3), strides=1, padding=((1, 0), (0, 2))),
             pool.avg_pool2d(c, (2, 3), strides=1, padding=((1, 0), (0, 2)))),
            (conv_nd.conv(c, w, strides=(2, 1), padding="SAME", dilations=(1, 2)),
             conv2.conv2d(c, w, strides=(2, 1), padding="SAME", dilations=(1, 2))),
        ]
        got = _run([p[0] for p in pairs], target=target)
        want = _run([p[1] for p in pairs], target=target)
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


def test_3d_dilated_pooling_agrees_with_torch() -> None:
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = RNG.standard_normal((2, 2, 7, 6, 8))
    with gc.Graph().as_default():
        c = gc.constant(x)
        mx = pool_nd.max_pool(c, (3, 2, 3), strides=(2, 1, 2), dilations=(2, 1, 2),
                              padding=(1, 1, 1))
        idx = pool_nd.max_pool_argmax(c, (3, 2, 3), strides=(2, 1, 2), dilations=(2, 1, 2),
                                      padding=(1, 1, 1))
        av = pool_nd.avg_pool(c, (3, 2, 3), strides=(2, 1, 2), padding=(1, 1, 1))
        got_max, got_idx, got_avg = _run([mx, idx, av])
    t = torch.from_numpy(x)
    want_max, want_idx = F.max_pool3d(t, (3, 2, 3), (2, 1, 2), (1, 1, 1), (2, 1, 2),
                                      return_indices=True)
    want_avg = F.avg_pool3d(t, (3, 2, 3), (2, 1, 2), (1, 1, 1), count_include_pad=False)
    np.testing.assert_allclose(got_max, want_max.numpy())
    np.testing.assert_allclose(got_avg, want_avg.numpy(), rtol=1e-12)
    # torch's indices are per (n, c) volume; ONNX's (and graphc's) count n and c too
    plane = 7 * 6 * 8
    assert got_idx.dtype == np.int64
    np.testing.assert_array_equal(got_idx % plane, want_idx.numpy())
    np.testing.assert_array_equal(got_idx // plane,
                                  np.arange(4).reshape(2, 2, 1, 1, 1) + 0 * got_idx)


def test_3d_conv_and_transpose_agree_with_torch() -> None:
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = RNG.standard_normal((2, 4, 5, 6, 4))
    w = RNG.standard_normal((6, 2, 2, 3, 2))
    wt = RNG.standard_normal((4, 3, 3, 2, 2))
    with gc.Graph().as_default():
        y = conv_nd.conv(x, w, strides=(2, 1, 1), padding=(1, 0, 1), dilations=(1, 2, 1),
                         groups=2)
        z = conv_nd.conv_transpose(x, wt, strides=(2, 1, 3), padding=(1, 0, 1), groups=2)
        got_y, got_z = _run([y, z])
    t = torch.from_numpy(x)
    want_y = F.conv3d(t, torch.from_numpy(w), None, (2, 1, 1), (1, 0, 1), (1, 2, 1), 2)
    want_z = F.conv_transpose3d(t, torch.from_numpy(wt), None, (2, 1, 3), (1, 0, 1), 0, 2)
    np.testing.assert_allclose(got_y, want_y.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_z, want_z.numpy(), rtol=1e-10, atol=1e-12)


def test_window_op_errors_name_the_problem() -> None:
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, 2, 5, 5, 5), name="vol")
        assert pool_nd.max_pool(x, 2, dilations=2).shape == (None, 2, 2, 2, 2)
        with pytest.raises(gc.ShapeError, match="smaller than the window") as err:
            pool_nd.avg_pool(x, 2, padding=2)
        assert "vol" in str(err.value) and "avg_pool" in str(err.value)
        with pytest.raises(TypeError, match="3 ints"):
            pool_nd.max_pool(x, (2, 2))
        with pytest.raises(gc.ShapeError, match="rank >= 3"):
            pool_nd.max_pool(gc.placeholder(gc.float32, (4, 5)), 2)
        with pytest.raises(gc.ShapeError, match="larger than the padded input"):
            pool_nd.max_pool(x, 3, dilations=3)
        with pytest.raises(gc.ShapeError, match="channels"):
            conv_nd.conv(x, gc.placeholder(gc.float32, (4, 3, 2, 2, 2)))
        with pytest.raises(gc.ShapeError, match="rank 5"):
            conv_nd.conv(x, gc.placeholder(gc.float32, (4, 2, 2, 2)))
        with pytest.raises(gc.ShapeError, match="does not match"):
            conv_nd.conv_transpose(x, gc.placeholder(gc.float32, (2, 3, 2, 2, 2)),
                                   output_shape=(20, 10, 10), strides=2)


def test_lstm_peepholes_follow_the_onnx_equations() -> None:
    T, N, I, H = 4, 2, 3, 2
    x, W, R = RNG.standard_normal((T, N, I)), RNG.standard_normal((I, 4 * H)), \
        RNG.standard_normal((H, 4 * H))
    b, p = RNG.standard_normal(4 * H), RNG.standard_normal(3 * H)
    with gc.Graph().as_default():
        ys, (h_t, c_t) = rnn.lstm(x, W, R, b, peepholes=p)
        got = _run([ys, h_t, c_t])
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h, c, outs = np.zeros((N, H)), np.zeros((N, H)), []
    for t in range(T):
        i, f, g, o = np.split(x[t] @ W + b + h @ R, 4, axis=-1)
        i, f = sig(i + p[:H] * c), sig(f + p[H:2 * H] * c)
        c = f * c + i * np.tanh(g)
        h = sig(o + p[2 * H:] * c) * np.tanh(c)
        outs.append(h)
    for g_, e in zip(got, [np.stack(outs), h, c]):
        np.testing.assert_allclose(g_, e, rtol=1e-10)
    with gc.Graph().as_default(), pytest.raises(gc.ShapeError, match=r"\(6,\) = \(3\*H,\)"):
        rnn.lstm(x, W, R, b, peepholes=np.zeros(4 * H))
