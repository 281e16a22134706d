"""Counter-based random numbers that every graphc target reproduces exactly.

graphc's random ops (random_uniform, random_normal, dropout) must give the same numbers on
the NumPy reference interpreter, the Numba CPU kernels and the Numba CUDA kernels. A
stateful generator cannot do that (each target would advance it in its own order), so every
element is a pure function of its coordinates, computed with **Philox4x32-10** (Salmon et al.,
"Parallel random numbers: as easy as 1, 2, 3", SC 2011; the generator of Random123 and
cuRAND). Its known-answer vectors are Random123's ``tests/kat_vectors``.

Coordinates of a draw
    ``seed``   64-bit unsigned: the graph/op seed;
    ``stream`` 32-bit unsigned: which random op of the graph;
    ``step``   64-bit unsigned: how many times the program has run;
    ``i``      the element's flat (C-order) index in the op's output.

Mapping to Philox (every input bit is used exactly once, so distinct coordinates never alias)
    key     = (seed & 0xffffffff, seed >> 32)
    counter = (block, stream, step & 0xffffffff, step >> 32)
An op's draw is the stream of 32-bit *words* ``word(j)`` = output word ``j % 4`` of the Philox
call with ``block = j // 4``. A key of (seed_lo, seed_hi XOR stream) was not used because it
aliases ``(seed, stream)`` with ``(seed ^ d << 32, stream ^ d)``; the price here is a 32-bit
block, i.e. at most 2**34 words per op and step (16 Gi float32 elements), which the vectorized
functions check.

Words to floats (``nbits`` = significand width of the dtype: 11 float16, 24 float32,
53 float64; see :func:`significand_bits`)
    uniform, nbits <= 32: element i uses ``w = word(i)``; value = ``(w >> (32 - nbits)) / 2**nbits``
        (exact in the dtype, in [0, 1); float16 gets 11 bits so rounding can never reach 1).
    uniform, float64: element i uses ``a, b = word(2i), word(2i+1)``;
        value = ``((a >> 5) * 2**26 + (b >> 6)) / 2**53`` (MT19937's genrand_res53).
    normal, float16/32: ``a, b = word(2i), word(2i+1)``; ``u1 = (a + 1) / 2**32`` in (0, 1] so
        the log never sees 0, ``u2 = b / 2**32``.
    normal, float64: ``a, b, c, d = word(4i .. 4i+3)`` (one whole Philox block);
        ``u1 = (53-bit(a, b) + 1) / 2**53``, ``u2 = 53-bit(c, d) / 2**53``.
    normal value = ``sqrt(-2 log u1) * cos(2 pi u2)`` in float64, then rounded to the dtype.
        Only the cosine half of Box-Muller is used, so element i depends on nothing but
        (seed, stream, step, i): a GPU thread computes it alone with one Philox call.

Exactness: words and uniforms are integer arithmetic and exact float scalings, hence
bit-identical everywhere. Normals go through float64 ``log``/``cos``, which NumPy (SIMD paths
on AVX-512), glibc (Numba CPU) and libdevice (CUDA) may round differently by an ulp; float32
normals are rounded from float64, so they agree unless an ulp straddles a float32 rounding
boundary (probability ~2**-28 per element); float64 normals agree to a few ulp.

Numba: the scalar functions (:func:`philox4x32`, :func:`bits_at`, :func:`uniform_at`,
:func:`normal_at`) use only uint64 arithmetic on ``np.uint64`` values (32x32->64-bit products
split with shifts and masks; mixing int64 and uint64 would make Numba fall back to float64).
``numba.njit(philox4x32)`` works as is; the others call private helpers, which Numba can only
call once they are compiled too, so use ``compile_scalars(numba.njit)`` or
``compile_scalars(numba.cuda.jit(device=True))`` to get all of them compiled together.
Numba cannot type a Python int >= 2**63: pass such seeds/steps as ``np.uint64``. CUDA ports
should keep ``fastmath=False``. The vectorized functions run the *same* :func:`philox4x32` on
uint64 arrays, so they cannot drift from the scalar definition.
"""

from __future__ import annotations

import math
import types
from typing import Any, Callable

import numpy as np

from graphc.dtypes import as_numpy_dtype

__all__ = ["philox4x32", "bits_at", "uniform_at", "normal_at", "significand_bits",
           "compile_scalars", "random_bits", "uniform", "normal"]

# Philox4x32 multipliers and Weyl key increments (Random123's PHILOX_M4x32_*, PHILOX_W32_*).
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_U2, _U3, _U5, _U6, _U26, _U32 = (np.uint64(k) for k in (2, 3, 5, 6, 26, 32))
_ONE = np.uint64(1)
_TWO32 = 4294967296.0
_TWO53 = 9007199254740992.0
_TWO_PI = 2.0 * math.pi
_MAX_WORDS = 1 << 34  # the block counter word is 32 bits, 4 words per block


def philox4x32(c0: Any, c1: Any, c2: Any, c3: Any, k0: Any, k1: Any) -> tuple[Any, Any, Any, Any]:
    """Philox4x32-10 of counter (c0..c3) under key (k0, k1); 32-bit words held as uint64.

    Works on ints, ``np.uint64`` scalars or uint64 arrays (elementwise, broadcasting), and
    under ``numba.njit``. Inputs must lie in [0, 2**32); outputs do.
    """
    c0, c1, c2, c3 = np.uint64(c0), np.uint64(c1), np.uint64(c2), np.uint64(c3)
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for _ in range(10):
        # 32x32 -> 64-bit products never overflow uint64; hi/lo halves by shift and mask.
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = ((p1 >> _U32) ^ c1 ^ k0, p1 & _MASK32,
                          (p0 >> _U32) ^ c3 ^ k1, p0 & _MASK32)
        # Bumping after the last round too is harmless: the key is not used again.
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return c0, c1, c2, c3


def _block(b: Any, seed: Any, stream: Any, step: Any) -> tuple[Any, Any, Any, Any]:
    # The module docstring's mapping of (seed, stream, step, block) to Philox's inputs.
    return philox4x32(b & _MASK32, stream, step & _MASK32, step >> _U32,
                      seed & _MASK32, seed >> _U32)


def _pair(i: Any, seed: Any, stream: Any, step: Any) -> tuple[Any, Any]:
    # words 2i and 2i+1: half of block i // 2
    r0, r1, r2, r3 = _block(i >> _ONE, seed, stream, step)
    if i & _ONE:
        return r2, r3
    return r0, r1


def _bits53(a: Any, b: Any) -> Any:
    # 27 high bits of a over 26 high bits of b: a 53-bit integer (scalar or array).
    return (a >> _U5) * (_ONE << _U26) + (b >> _U6)


def bits_at(i: int, seed: int, stream: int, step: int) -> Any:
    """The 32 random bits ``word(i)`` of draw (seed, stream, step), as an ``np.uint64``."""
    i, seed, stream, step = np.uint64(i), np.uint64(seed), np.uint64(stream), np.uint64(step)
    r0, r1, r2, r3 = _block(i >> _U2, seed, stream, step)
    k = i & _U3
    if k == 0:
        return r0
    if k == 1:
        return r1
    if k == 2:
        return r2
    return r3


def uniform_at(i: int, seed: int, stream: int, step: int, nbits: int = 24) -> float:
    """Element i of :func:`uniform` for a dtype with ``nbits`` significand bits, as a float64.

    The value is exactly representable in that dtype, so casting it changes nothing.
    """
    if nbits > 32:
        i, seed, stream, step = np.uint64(i), np.uint64(seed), np.uint64(stream), np.uint64(step)
        a, b = _pair(i, seed, stream, step)
        return float(_bits53(a, b)) / _TWO53
    w = bits_at(i, seed, stream, step)
    return float(w >> np.uint64(32 - nbits)) / float(_ONE << np.uint64(nbits))


def normal_at(i: int, seed: int, stream: int, step: int, nbits: int = 24) -> float:
    """Element i of :func:`normal` for a dtype with ``nbits`` significand bits, as a float64.

    Round the result to the dtype (a plain cast) to get the element.
    """
    i, seed, stream, step = np.uint64(i), np.uint64(seed), np.uint64(stream), np.uint64(step)
    if nbits > 32:
        a, b, c, d = _block(i, seed, stream, step)
        u1 = (float(_bits53(a, b)) + 1.0) / _TWO53
        u2 = float(_bits53(c, d)) / _TWO53
    else:
        a, b = _pair(i, seed, stream, step)
        u1 = (float(a) + 1.0) / _TWO32
        u2 = float(b) / _TWO32
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)


_SCALARS = ("philox4x32", "_block", "_pair", "_bits53", "bits_at", "uniform_at", "normal_at")


def compile_scalars(jit: Callable[[Callable], Any]) -> types.SimpleNamespace:
    """The scalar functions compiled with ``jit`` (e.g. ``numba.njit``), calling each other.

    Each is a copy of the function whose globals name the compiled helpers, not the Python
    ones; returns a namespace with ``philox4x32``, ``bits_at``, ``uniform_at``, ``normal_at``.
    """
    env = dict(globals())
    for name in _SCALARS:  # Numba resolves globals at compile time, after all are bound
        f = globals()[name]
        env[name] = jit(types.FunctionType(f.__code__, env, name, f.__defaults__))
    return types.SimpleNamespace(**{n: env[n] for n in _SCALARS if not n.startswith("_")})


def significand_bits(dtype: Any) -> int:
    """The ``nbits`` argument of :func:`uniform_at`/:func:`normal_at` for a float dtype."""
    dt = as_numpy_dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"random numbers need a float dtype, got {dt.name}")
    return int(np.finfo(dt).nmant) + 1


def _check(shape: Any, seed: int, stream: int, step: int,
           width: int) -> tuple[tuple[int, ...], int]:
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"random_bits: negative dimension in shape {shape}")
    for name, value, bits in (("seed", seed, 64), ("stream", stream, 32), ("step", step, 64)):
        if not 0 <= int(value) < 1 << bits:
            raise ValueError(f"random_bits: {name} must be in [0, 2**{bits}), got {value}")
    n = math.prod(shape)
    if n * width > _MAX_WORDS:
        raise ValueError(f"random_bits: {n} elements exceed the generator's 2**34-word range")
    return shape, n


def _words(n_words: int, seed: int, stream: int, step: int, width: int = 4) -> np.ndarray:
    # The first n_words words as a (n_words // width, width) uint64 array (rows = elements).
    nblocks = -(-n_words // 4)
    blocks = np.arange(nblocks, dtype=np.uint64)
    seed, step = np.uint64(seed), np.uint64(step)
    out = np.empty((nblocks, 4), dtype=np.uint64)
    out[:, 0], out[:, 1], out[:, 2], out[:, 3] = _block(blocks, seed, np.uint64(stream), step)
    return out.reshape(-1)[:n_words].reshape(-1, width)


def random_bits(shape: Any, seed: int, stream: int, step: int) -> np.ndarray:
    """A uint32 array of ``shape`` whose element i is ``word(i)`` (see the module doc)."""
    shape, n = _check(shape, seed, stream, step, 1)
    return _words(n, seed, stream, step, 1).astype(np.uint32).reshape(shape)


def uniform(shape: Any, seed: int, stream: int, step: int, dtype: Any = np.float32) -> np.ndarray:
    """Floats in [0, 1) of ``shape`` and ``dtype``, equal to :func:`uniform_at` per element."""
    nbits = significand_bits(dtype)
    width = 2 if nbits > 32 else 1
    shape, n = _check(shape, seed, stream, step, width)
    w = _words(n * width, seed, stream, step, width)
    if width == 2:
        x = _bits53(w[:, 0], w[:, 1]).astype(np.float64) / _TWO53
    else:
        x = (w[:, 0] >> np.uint64(32 - nbits)).astype(np.float64) / float(1 << nbits)
    return x.astype(as_numpy_dtype(dtype)).reshape(shape)


def normal(shape: Any, seed: int, stream: int, step: int, dtype: Any = np.float32) -> np.ndarray:
    """Standard normal floats of ``shape`` and ``dtype``, equal to :func:`normal_at` per element."""
    nbits = significand_bits(dtype)
    width = 4 if nbits > 32 else 2
    shape, n = _check(shape, seed, stream, step, width)
    w = _words(n * width, seed, stream, step, width)
    if width == 4:
        u1 = (_bits53(w[:, 0], w[:, 1]).astype(np.float64) + 1.0) / _TWO53
        u2 = _bits53(w[:, 2], w[:, 3]).astype(np.float64) / _TWO53
    else:
        u1 = (w[:, 0].astype(np.float64) + 1.0) / _TWO32
        u2 = w[:, 1].astype(np.float64) / _TWO32
    z = np.sqrt(-2.0 * np.log(u1)) * np.cos(_TWO_PI * u2)
    return z.astype(as_numpy_dtype(dtype)).reshape(shape)
