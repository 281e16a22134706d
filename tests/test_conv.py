"""conv2d, conv2d_transpose and pooling beyond the case table: padding rules, unknown
sizes, adjointness, tie routing, count_include_pad=False, and build-time errors."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ops.conv import conv2d, conv2d_transpose
from graphc.ops.pool import avg_pool2d, global_avg_pool2d, max_pool2d

RNG = np.random.default_rng(7)


def _run(fetches, feeds):
    return gc.Session(target="reference").run(fetches, feeds)


def _conv_np(x, w, stride, pads):
    """A direct-loop convolution (stride, explicit pads, no dilation/groups) for checks."""
    xp = np.pad(x, ((0, 0), (0, 0)) + pads)
    n, _, hp, wp = xp.shape
    o, _, kh, kw = w.shape
    ho, wo = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    out = np.zeros((n, o, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out


def test_same_padding_follows_tensorflows_rule_with_the_odd_cell_at_the_end() -> None:
    # in=5, k=4, s=2: out = ceil(5/2) = 3; total = (3-1)*2 + 4 - 5 = 3 -> (1, 2).
    x, w = RNG.normal(size=(1, 2, 5, 5)), RNG.normal(size=(3, 2, 4, 4))
    with gc.Graph().as_default():
        y = conv2d(gc.constant(x), gc.constant(w), strides=2, padding="SAME")
        assert y.shape == (1, 3, 3, 3)
        got = _run(y, {})
    np.testing.assert_allclose(got, _conv_np(x, w, 2, ((1, 2), (1, 2))), atol=1e-12)


def test_explicit_padding_forms_agree_with_a_direct_loop() -> None:
    x, w = RNG.normal(size=(2, 3, 6, 5)), RNG.normal(size=(2, 3, 3, 2))
    with gc.Graph().as_default():
        a = conv2d(gc.constant(x), gc.constant(w), padding=((2, 0), (1, 3)))
        b = conv2d(gc.constant(x), gc.constant(w), padding=(1, 2), strides=2)
        got_a, got_b = _run([a, b], {})
    np.testing.assert_allclose(got_a, _conv_np(x, w, 1, ((2, 0), (1, 3))), atol=1e-12)
    np.testing.assert_allclose(got_b, _conv_np(x, w, 2, ((1, 1), (2, 2))), atol=1e-12)


def test_same_padding_is_resolved_at_run_time_for_unknown_sizes() -> None:
    w = RNG.normal(size=(2, 2, 3, 3))
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float64, (None, 2, None, None))
        y = conv2d(x, gc.constant(w), strides=2, padding="SAME")
        assert y.shape == (None, 2, None, None)
        sess = gc.Session(target="reference")
        for h, wd in ((5, 6), (8, 3)):
            xv = RNG.normal(size=(1, 2, h, wd))
            total = [max((-(-n // 2) - 1) * 2 + 3 - n, 0) for n in (h, wd)]
            pads = tuple((t // 2, t - t // 2) for t in total)
            np.testing.assert_allclose(sess.run(y, {x: xv}), _conv_np(xv, w, 2, pads),
                                       atol=1e-12)


@pytest.mark.parametrize("kwargs", [dict(strides=2, padding=1),
                                    dict(strides=(2, 1), padding="SAME", dilations=(1, 2)),
                                    dict(strides=3, groups=2, output_shape=(9, 11))])
def test_conv2d_transpose_is_the_adjoint_of_conv2d(kwargs) -> None:
    # <conv(x, w), y> == <conv_transpose(y, w), x> for every x, y: the defining property.
    out_shape = kwargs.pop("output_shape", None)
    groups = kwargs.get("groups", 1)
    w = RNG.normal(size=(4, 4 // groups, 3, 3))
    with gc.Graph().as_default():
        y_ph = gc.placeholder(gc.float64, (2, 4, 3, 3))
        xt = conv2d_transpose(y_ph, gc.constant(w), output_shape=out_shape, **kwargs)
        x = RNG.normal(size=xt.shape)
        conv = conv2d(gc.constant(x), gc.constant(w), **kwargs)
        assert conv.shape == (2, 4, 3, 3)
        y = RNG.normal(size=(2, 4, 3, 3))
        got_t, got_c = _run([xt, conv], {y_ph: y})
    np.testing.assert_allclose(np.sum(got_c * y), np.sum(got_t * x), rtol=1e-10)


def test_conv2d_transpose_sizes() -> None:
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, 3, 4, 5))
        w = gc.placeholder(gc.float32, (3, 2, 3, 3))
        assert conv2d_transpose(x, w, strides=2).shape == (None, 2, 9, 11)
        assert conv2d_transpose(x, w, strides=2, padding=1).shape == (None, 2, 7, 9)
        assert conv2d_transpose(x, w, strides=2, padding="SAME").shape == (None, 2, 8, 10)
        assert conv2d_transpose(x, w, output_shape=(None, 2, 8, 10), strides=2,
                                padding=1).shape == (None, 2, 8, 10)
        # Unknown input sizes: the natural size is computed when the graph runs.
        xu = gc.placeholder(gc.float32, (None, 3, None, None))
        yu = conv2d_transpose(xu, w, strides=2, padding=1)
        assert yu.shape == (None, 2, None, None)
        out = gc.Session(target="reference").run(
            yu, {xu: np.zeros((1, 3, 4, 5), np.float32), w: np.zeros((3, 2, 3, 3), np.float32)})
        assert out.shape == (1, 2, 7, 9)


def test_conv_errors_name_the_op_the_shapes_and_the_line() -> None:
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, 3, 8, 8), name="images")
        w = gc.placeholder(gc.float32, (4, 2, 3, 3), name="kernel")
        with pytest.raises(gc.ShapeError) as err:
            conv2d(x, w)
        text = str(err.value)
        assert "conv2d" in text and "3 channels" in text and "images" in text
        assert "[None, 3, 8, 8]" in text and "test_conv.py" in text
        with pytest.raises(gc.ShapeError, match="larger than the padded input"):
            conv2d(x, gc.placeholder(gc.float32, (4, 3, 9, 3)))
        with pytest.raises(gc.ShapeError, match="cannot be split into 3 groups"):
            conv2d(gc.placeholder(gc.float32, (1, 6, 5, 5)),
                   gc.placeholder(gc.float32, (4, 2, 3, 3)), groups=3)
        with pytest.raises(gc.ShapeError, match="rank 4"):
            conv2d(gc.placeholder(gc.float32, (3, 8, 8)), w)
        with pytest.raises(gc.ShapeError, match="positive"):
            conv2d(x, gc.placeholder(gc.float32, (4, 3, 3, 3)), strides=0)
        with pytest.raises(ValueError, match="padding"):
            conv2d(x, w, padding="FULL")
        with pytest.raises(ValueError, match="NCHW"):
            conv2d(x, w, data_format="NHWC")
        with pytest.raises(gc.DTypeError):
            conv2d(gc.placeholder(gc.int32, (1, 3, 8, 8)), gc.placeholder(gc.int32, (4, 3, 3, 3)))
        with pytest.raises(gc.ShapeError, match="output_shape has 5 channels") as err:
            conv2d_transpose(gc.placeholder(gc.float32, (1, 4, 3, 3)), w,
                             output_shape=(1, 5, 5, 5))
        assert "conv2d_transpose" in str(err.value) and "test_conv.py" in str(err.value)
        with pytest.raises(gc.ShapeError, match="does not match"):
            conv2d_transpose(gc.placeholder(gc.float32, (1, 4, 3, 3)), w, output_shape=(12, 12),
                             strides=2)


def test_run_time_shape_errors_for_unknown_dims() -> None:
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, None, None, None))
        y = conv2d(x, gc.constant(np.zeros((2, 3, 5, 5), np.float32)))
        sess = gc.Session(target="reference")
        with pytest.raises(gc.ShapeError, match="larger than the padded input"):
            sess.run(y, {x: np.zeros((1, 3, 4, 4), np.float32)})
        with pytest.raises(gc.ShapeError, match="channels"):
            sess.run(y, {x: np.zeros((1, 2, 6, 6), np.float32)})


# -- pooling ------------------------------------------------------------------------------

def test_max_pool_gradient_goes_to_the_first_maximum_on_ties() -> None:
    x = np.array([[[[1.0, 1.0, 0.0, 2.0], [1.0, 0.5, 2.0, 2.0]]]])
    with gc.Graph().as_default():
        xp = gc.placeholder(gc.float64, x.shape)
        y = max_pool2d(xp, 2)
        (g,) = gc.gradients(gc.reduce_sum(y), [xp])
        yv, gv = _run([y, g], {xp: x})
    np.testing.assert_array_equal(yv, [[[[1.0, 2.0]]]])
    np.testing.assert_array_equal(gv, [[[[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]]]])


@pytest.mark.parametrize("target", ["reference", "cpu"])
@pytest.mark.parametrize("pool", [max_pool2d, avg_pool2d])
def test_pool_and_its_gradient_take_an_empty_batch(target, pool) -> None:
    with gc.Graph().as_default():
        xp = gc.placeholder(gc.float32, (None, 3, 8, 8))
        y = pool(xp, 2, strides=2)
        (g,) = gc.gradients(gc.reduce_sum(y), [xp])
        yv, gv = gc.Session(target=target).run([y, g], {xp: np.zeros((0, 3, 8, 8), np.float32)})
    assert yv.shape == (0, 3, 4, 4) and gv.shape == (0, 3, 8, 8)


def test_avg_pool_does_not_count_padding() -> None:
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    with gc.Graph().as_default():
        y = _run(avg_pool2d(gc.constant(x), 3, strides=1, padding="SAME"), {})
    # The top-left window holds the 2x2 real cells 0, 1, 4, 5.
    assert y[0, 0, 0, 0] == pytest.approx((0 + 1 + 4 + 5) / 4)
    assert y[0, 0, 1, 1] == pytest.approx(x[0, 0, :3, :3].mean())


def test_max_pool_same_padding_never_picks_the_padding() -> None:
    x = -np.ones((1, 1, 3, 3)) - np.arange(9).reshape(1, 1, 3, 3)
    with gc.Graph().as_default():
        y = _run(max_pool2d(gc.constant(x), 2, padding="SAME"), {})
    assert y.shape == (1, 1, 2, 2) and np.all(y < 0)


def test_pool_shapes_and_errors() -> None:
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, 3, 7, 6), name="fmap")
        assert max_pool2d(x, 2).shape == (None, 3, 3, 3)
        assert avg_pool2d(x, (3, 2), strides=(2, 1), padding="SAME").shape == (None, 3, 4, 6)
        assert global_avg_pool2d(x).shape == (None, 3)
        with pytest.raises(gc.ShapeError, match="smaller than the window") as err:
            max_pool2d(x, 2, padding=2)
        assert "fmap" in str(err.value) and "max_pool2d" in str(err.value)
        with pytest.raises(gc.ShapeError, match="rank 4"):
            avg_pool2d(gc.placeholder(gc.float32, (3, 7, 6)), 2)
        with pytest.raises(gc.ShapeError, match="rank 4"):
            global_avg_pool2d(gc.placeholder(gc.float32, (3, 7)))
        with pytest.raises(TypeError, match="pool_size"):
            max_pool2d(x, (2, 2, 2))
        with pytest.raises(gc.ShapeError, match="larger than the padded input"):
            max_pool2d(x, 8)
