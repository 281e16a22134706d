"""Tests of graphc.random_bits: Philox4x32-10 known answers, the (seed, stream, step, i)
mapping, vectorized == scalar == numba.njit, and the distributions' statistics."""

import math

import numpy as np
import pytest

from graphc import random_bits as rb

# Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter[4], key[2], result[4].
KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff), (0xffffffff, 0xffffffff),
     (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
]
FLOATS = [np.float16, np.float32, np.float64]
BIG = (2**64 - 3, 2**32 - 1, 2**63 + 12345)  # seed, stream, step using their high bits


@pytest.mark.parametrize("ctr, key, expected", KAT)
def test_philox_known_answers(ctr, key, expected):
    assert tuple(int(r) for r in rb.philox4x32(*ctr, *key)) == expected


def test_philox_on_arrays_matches_scalars():
    rng = np.random.default_rng(0)
    words = rng.integers(0, 2**32, size=(6, 50), dtype=np.uint64)
    out = rb.philox4x32(*words)
    for j in range(50):
        assert tuple(int(o[j]) for o in out) == tuple(int(r) for r in rb.philox4x32(*words[:, j]))


def test_documented_mapping_to_philox_inputs():
    seed, stream, step = BIG
    m = 0xFFFFFFFF
    for i in (0, 1, 2, 3, 4, 1001):
        r = rb.philox4x32(i // 4, stream, step & m, step >> 32, seed & m, seed >> 32)
        assert int(rb.bits_at(i, seed, stream, step)) == int(r[i % 4])


@pytest.mark.parametrize("coords", [(0, 0, 0), (42, 3, 7), BIG])
def test_vectorized_equals_scalar(coords):
    n = 37  # odd, so partial Philox blocks and odd pair offsets are covered
    bits = rb.random_bits(n, *coords)
    assert bits.dtype == np.uint32
    assert [int(b) for b in bits] == [int(rb.bits_at(i, *coords)) for i in range(n)]
    for dt in FLOATS:
        nbits = rb.significand_bits(dt)
        u, z = rb.uniform(n, *coords, dtype=dt), rb.normal(n, *coords, dtype=dt)
        assert u.dtype == dt and z.dtype == dt
        np.testing.assert_array_equal(u, [rb.uniform_at(i, *coords, nbits) for i in range(n)])
        np.testing.assert_array_equal(z, np.array([rb.normal_at(i, *coords, nbits)
                                                   for i in range(n)]).astype(dt))


def test_numba_njit_matches_numpy_bit_for_bit():
    numba = pytest.importorskip("numba")
    jitted = rb.compile_scalars(numba.njit)
    ph = numba.njit(rb.philox4x32)  # compiles unchanged on its own
    for ctr, key, expected in KAT:
        assert tuple(int(r) for r in ph(*map(np.uint64, ctr + key))) == expected

    uniform_at, normal_at = jitted.uniform_at, jitted.normal_at

    @numba.njit
    def fill(out, seed, stream, step, nbits, normal):
        for i in range(out.size):
            if normal:
                out[i] = normal_at(i, seed, stream, step, nbits)
            else:
                out[i] = uniform_at(i, seed, stream, step, nbits)

    n = 3001
    for coords in [(7, 1, 2), BIG]:
        seed, stream, step = (np.uint64(c) for c in coords)  # numba types big ints as uint64 only
        for dt in FLOATS:
            nbits = rb.significand_bits(dt)
            for normal, vec, scalar in ((False, rb.uniform, rb.uniform_at),
                                        (True, rb.normal, rb.normal_at)):
                got = np.empty(n)
                fill(got, seed, stream, step, nbits, normal)
                # Same libm as the interpreter: exactly the Python scalar definition.
                np.testing.assert_array_equal(got, [scalar(i, *coords, nbits) for i in range(n)])
                want = vec(n, *coords, dtype=dt)
                if normal and dt == np.float64:
                    # NumPy's own SIMD log/cos may differ from libm by an ulp (module doc).
                    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)
                else:
                    np.testing.assert_array_equal(got.astype(dt), want)
    assert int(jitted.bits_at(5, np.uint64(1), np.uint64(2), np.uint64(3))) == \
        int(rb.bits_at(5, 1, 2, 3))


def test_element_does_not_depend_on_output_size():
    for f in (rb.random_bits, rb.uniform, rb.normal):
        np.testing.assert_array_equal(f(101, 5, 6, 7)[:13], f(13, 5, 6, 7))
    np.testing.assert_array_equal(rb.normal(9, 5, 6, 7, np.float64),
                                  rb.normal((3, 3), 5, 6, 7, np.float64).ravel())


@pytest.mark.parametrize("dt", FLOATS)
def test_uniform_statistics(dt):
    n = 100_000
    u = rb.uniform(n, 123, 4, 5, dt).astype(np.float64)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 5 * math.sqrt((1 / 80 - 1 / 144) / n)


@pytest.mark.parametrize("dt", FLOATS)
def test_normal_statistics(dt):
    n = 100_000
    z = rb.normal(n, 123, 4, 5, dt).astype(np.float64)
    assert np.isfinite(z).all()
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1.0) < 5 * math.sqrt(2 / n)


def test_float16_uniform_never_rounds_up_to_one():
    # 11 significand bits are drawn, so the largest value is 1 - 2**-11, exact in float16.
    assert rb.significand_bits(np.float16) == 11
    assert rb.uniform_at(0, 0, 0, 0, 11) * 2048 == int(rb.bits_at(0, 0, 0, 0)) >> 21


def test_coordinates_select_distinct_streams_and_are_deterministic():
    base = rb.random_bits(256, 1, 2, 3)
    np.testing.assert_array_equal(base, rb.random_bits(256, 1, 2, 3))
    for coords in [(2, 2, 3), (1, 3, 3), (1, 2, 4), (1 + 2**32, 2, 3), (1, 2, 3 + 2**32)]:
        other = rb.random_bits(256, *coords)
        assert np.mean(base == other) < 0.05
    # the XOR-aliasing a key of (seed_lo, seed_hi ^ stream) would have:
    assert np.mean(rb.random_bits(64, 1 << 32, 0, 0) == rb.random_bits(64, 0, 1, 0)) < 0.1


def test_shapes_and_errors():
    assert rb.uniform((2, 3, 4), 0, 0, 0).shape == (2, 3, 4)
    assert rb.normal((), 0, 0, 0).shape == ()
    assert rb.random_bits((0, 5), 0, 0, 0).shape == (0, 5)
    with pytest.raises(ValueError, match="seed"):
        rb.uniform(3, -1, 0, 0)
    with pytest.raises(ValueError, match="stream"):
        rb.uniform(3, 0, 2**32, 0)
    with pytest.raises(ValueError, match="step"):
        rb.normal(3, 0, 0, 2**64)
    with pytest.raises(ValueError, match="negative"):
        rb.random_bits((2, -1), 0, 0, 0)
    with pytest.raises(ValueError, match=r"2\*\*34"):
        rb.normal(2**33 + 1, 0, 0, 0, np.float64)  # 4 words per element
    with pytest.raises(TypeError, match="float"):
        rb.uniform(3, 0, 0, 0, np.int32)
