"""Tests of graphc.init: shapes, dtypes, seeds, fans in graphc's layouts, statistics, errors."""

import math

import numpy as np
import pytest

from graphc import dtypes
from graphc import init

RANDOM = ["random_normal", "random_uniform", "truncated_normal", "glorot_uniform",
          "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
          "orthogonal"]
ALL = ["zeros", "ones", "constant"] + RANDOM
TRUNC = 0.87962566103423978


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [dtypes.float32, np.float64, "float16"])
def test_shape_dtype_and_fresh_array(name, dtype):
    f = getattr(init, name)
    a, b = f((5, 3), dtype, seed=1), f((5, 3), dtype, seed=1)
    assert isinstance(a, np.ndarray) and a.shape == (5, 3)
    assert a.dtype == dtypes.as_numpy_dtype(dtype)
    assert a is not b and not np.shares_memory(a, b)
    np.testing.assert_array_equal(a, b)
    if name != "orthogonal":
        assert f(4, dtype, seed=1).shape == (4,)
        assert f((), dtype, seed=1).shape == ()
        assert f((0, 3), dtype).shape == (0, 3)


@pytest.mark.parametrize("name", RANDOM)
def test_seeds(name):
    f = getattr(init, name)
    assert not np.array_equal(f((6, 4), seed=1), f((6, 4), seed=2))
    assert not np.array_equal(f((6, 4)), f((6, 4)))  # seed=None: fresh entropy
    assert f((6, 4), seed=np.int64(3)).dtype == np.float32


def test_constant_initializers():
    np.testing.assert_array_equal(init.zeros((2, 2), dtypes.int32), np.zeros((2, 2), np.int32))
    np.testing.assert_array_equal(init.ones(3), np.ones(3, np.float32))
    np.testing.assert_array_equal(init.constant((2,), value=1.5), [1.5, 1.5])
    assert init.constant((2,), np.int64, value=7).tolist() == [7, 7]


@pytest.mark.parametrize("shape, fans", [
    ((), (1, 1)), ((7,), (7, 7)), ((400, 300), (400, 300)),          # dense: (in, out)
    ((64, 32, 3, 3), (32 * 9, 64 * 9)), ((8, 4, 5), (20, 40)),      # conv: (O, I, *kernel)
    ((2, 3, 2, 2, 2), (24, 16)),
])
def test_fans_follow_graphc_layouts(shape, fans):
    assert init._fans(shape) == fans


def test_variance_scaling_statistics():
    w = init.glorot_uniform((400, 300), seed=0).astype(np.float64)
    limit = math.sqrt(6 / 700)
    assert np.abs(w).max() <= limit
    assert w.var() == pytest.approx(2 / 700, rel=0.03)
    cases = [(init.he_normal, (400, 300), 2 / 400), (init.glorot_normal, (64, 32, 3, 3), 2 / 864),
             (init.lecun_normal, (300, 400), 1 / 300), (init.he_uniform, (64, 32, 3, 3), 2 / 288),
             (init.lecun_uniform, (400, 300), 1 / 400)]
    for f, shape, variance in cases:
        w = f(shape, np.float64, seed=1)
        assert w.var() == pytest.approx(variance, rel=0.03), f.__name__
        assert abs(w.mean()) < 5 * math.sqrt(variance / w.size)
    # the truncated normals are cut at 2 of their (pre-correction) stddevs
    w = init.he_normal((400, 300), np.float64, seed=2)
    assert np.abs(w).max() <= 2 * math.sqrt(2 / 400) / TRUNC


def test_random_normal_uniform_truncated_statistics():
    z = init.random_normal((400, 300), np.float64, seed=0, mean=1.0, stddev=2.0)
    assert z.mean() == pytest.approx(1.0, abs=5 * 2 / math.sqrt(z.size))
    assert z.std() == pytest.approx(2.0, rel=0.02)
    u = init.random_uniform((400, 300), np.float64, seed=0, minval=-1.0, maxval=3.0)
    assert u.min() >= -1.0 and u.max() < 3.0
    assert u.var() == pytest.approx(16 / 12, rel=0.02)
    t = init.truncated_normal((400, 300), np.float64, seed=0, mean=0.5, stddev=0.1)
    assert np.abs(t - 0.5).max() <= 0.2 + 1e-12
    assert np.abs(t - 0.5).max() > 0.19  # really reaches out to the cut
    assert t.std() == pytest.approx(0.1 * TRUNC, rel=0.02)
    assert (init.truncated_normal(1000, seed=0) <= np.float32(0.1)).all()  # float32 default


@pytest.mark.parametrize("shape, rows", [
    ((400, 300), None), ((300, 400), None), ((50, 50), None),
    ((16, 3, 3, 3), 16), ((64, 3, 3, 3), 64),  # conv OIHW: flattened to (O, I*kh*kw)
])
def test_orthogonal(shape, rows):
    w = init.orthogonal(shape, np.float64, seed=3, gain=2.0) / 2.0
    m = w.reshape(shape[0], -1)
    small = min(m.shape)
    g = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(g, np.eye(small), atol=1e-12)
    assert init.orthogonal(shape, seed=3).dtype == np.float32


def test_errors_name_the_initializer_and_argument():
    with pytest.raises(ValueError, match=r"he_normal.*negative"):
        init.he_normal((3, -1))
    with pytest.raises(TypeError, match=r"glorot_uniform.*shape"):
        init.glorot_uniform((None, 3))
    with pytest.raises(TypeError, match=r"random_normal.*dtype.*float"):
        init.random_normal((3,), dtypes.int32)
    with pytest.raises(TypeError, match=r"zeros.*dtype"):
        init.zeros(3, "complex64")
    with pytest.raises(ValueError, match=r"truncated_normal.*stddev"):
        init.truncated_normal((3,), stddev=-1.0)
    with pytest.raises(ValueError, match=r"random_normal.*stddev"):
        init.random_normal((3,), stddev=float("nan"))
    with pytest.raises(ValueError, match=r"random_uniform.*minval"):
        init.random_uniform((3,), minval=1.0, maxval=0.0)
    with pytest.raises(ValueError, match=r"orthogonal.*rank"):
        init.orthogonal((5,))
    with pytest.raises(ValueError, match=r"he_uniform.*seed"):
        init.he_uniform((3, 3), seed=-1)
    with pytest.raises(TypeError, match=r"he_uniform.*seed"):
        init.he_uniform((3, 3), seed=1.5)
    with pytest.raises(ValueError, match=r"constant.*value"):
        init.constant((2,), value=[1, 2])


def test_get():
    assert init.get("he_normal") is init.he_normal
    assert init.get(init.zeros) is init.zeros
    with pytest.raises(ValueError, match="unknown initializer"):
        init.get("nope")
