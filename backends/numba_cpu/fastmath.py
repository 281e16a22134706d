"""Vectorizable float32 exp, log, log1p, expm1, tanh, sigmoid and softplus for cpu kernels.

The llvmlite Numba ships has no SVML, so a loop calling ``math.exp`` on float32 stays
scalar: one libm call per element (~13 ns), where a vectorized loop needs ~1 ns. The
functions here are written in plain float32 arithmetic that LLVM inlines and vectorizes
(with AVX2, 8 lanes per ``ymm`` register): Cephes-style range reduction, a minimax polynomial, and
``2**n`` built from its IEEE bit pattern. Every special case is a conditional expression
on scalars (an LLVM ``select``), never a branch the loop vectorizer would give up on. The
reductions and polynomials multiply-add through :func:`_fma` (LLVM's ``fmuladd``, one FMA
instruction on CPUs that have one): 15-25% faster than a multiply and an add, and as
accurate (each step rounds once instead of twice).

Accuracy (tests/test_cpu_fastmath.py, against float64 NumPy rounded to float32, over dense
samples of the whole float32 range): at most 1 ulp for exp, log, log1p and tanh, 2 ulp for
expm1, sigmoid and softplus; NumPy's special values (inf, NaN, signed zeros, denormal inputs
and results) exactly.

Numba types ``int32 op int32`` as int64, so the integer steps compute in int64; the
bitcast intrinsics truncate to int32 and LLVM narrows (most of) the chain back to 32-bit
vector lanes.
Every float constant is a module-level ``np.float32`` (frozen by Numba as a float32
constant): a bare Python float would be float64 and silently widen the whole computation.

The generated kernels (backends/numba_cpu/codegen.py) import these functions for float32
nodes and carry a hash of this file's text, so editing it re-keys the kernel cache (Numba's
own cache does not notice a changed callee in another module).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["fm_exp", "fm_expm1", "fm_log", "fm_log1p", "fm_sigmoid", "fm_softplus",
           "fm_tanh"]

# cache: compiled signatures are kept beside this file. error_model="numpy": x / 0 gives
# inf/NaN instead of raising, so no branch. inline="always" on the public functions: Numba
# inlines them into the kernel's IR, as LLVM's own inliner did not always do (tanh, log,
# softplus stayed calls and kept their loops scalar). The small helpers (_HELP) are left
# to LLVM, which inlines them; inlining them in Numba's IR too cost ~30% more compile time
# for the same machine code. No fastmath flags: after inlining, the kernel's flags apply
# (none: no NaN/inf assumptions, no contraction but the explicit _fma), and the accuracy
# is measured so.
_JIT = {"cache": True, "error_model": "numpy", "nogil": True, "inline": "always"}
_HELP = {"cache": True, "error_model": "numpy", "nogil": True}

_F = np.float32
_INF = _F(np.inf)
_NAN = _F(np.nan)
_ONE = _F(1.0)
_TWO = _F(2.0)
_HALF = _F(0.5)
_ZERO = _F(0.0)


@intrinsic
def _as_f32(typingctx, bits):
    """The float32 whose IEEE bit pattern is the low 32 bits of the integer ``bits``."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        value = args[0]
        if bits.bitwidth > 32:
            value = builder.trunc(value, ir.IntType(32))
        elif bits.bitwidth < 32:
            value = builder.sext(value, ir.IntType(32))
        return builder.bitcast(value, ir.FloatType())
    return types.float32(bits), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` as LLVM's ``fmuladd``: one FMA instruction where the CPU has one (a
    single rounding), a multiply and an add where it does not."""
    if not (a == b == c == types.float32):
        return None

    def codegen(context, builder, sig, args):
        f32 = ir.FloatType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f32, [f32] * 3),
                                            "llvm.fmuladd.f32")
        return builder.call(fn, args)
    return types.float32(a, b, c), codegen


@intrinsic
def _as_i32(typingctx, x):
    """The int32 holding the IEEE bit pattern of the float32 ``x``."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(x), codegen


# -- exp -------------------------------------------------------------------------------
# Cody-Waite split of ln 2 (Cephes expf): _LN2_HI has 9 significant bits, so n * _LN2_HI
# is exact for |n| <= 150 and x - n ln2 loses nothing.
_LOG2E = _F(1.44269504088896341)
_LN2_HI = _F(0.693359375)
_LN2_LO = _F(-2.12194440e-4)
# Adding 1.5 * 2**23 rounds a float32 of magnitude < 2**22 to an integer held in the low
# mantissa bits: the float minus the constant is round(x), its bits minus the constant's
# bits are the same integer as an int.
_ROUND = _F(12582912.0)
_ROUND_BITS = 0x4B400000
# Beyond these, exp overflows (88.7228) or rounds to zero (-103.972); clamping here keeps
# n in [-150, 128], where the two-factor scale below is exact.
_EXP_HI = _F(88.8)
_EXP_LO = _F(-104.0)
# Cephes expf minimax coefficients for e**r = 1 + r + r**2 P(r) on |r| <= ln2/2
# (relative error ~1 ulp, Moshier 1989).
_E5 = _F(1.9875691500e-4)
_E4 = _F(1.3981999507e-3)
_E3 = _F(8.3334519073e-3)
_E2 = _F(4.1665795894e-2)
_E1 = _F(1.6666665459e-1)
_E0 = _F(5.0000001201e-1)


@numba.njit(**_HELP)
def _exp_reduce(x):
    """``(n, r)`` with ``x = n ln2 + r``, |r| <= ln2/2 (x clamped to [-104, 88.8])."""
    # Conditional expressions, not min/max: a NaN becomes _EXP_HI here (callers restore
    # it), and each is one select.
    xc = x if x < _EXP_HI else _EXP_HI  # noqa: FURB136
    xc = xc if xc > _EXP_LO else _EXP_LO  # noqa: FURB136
    t = _fma(xc, _LOG2E, _ROUND)
    n = _as_i32(t) - _ROUND_BITS
    fn = t - _ROUND
    r = _fma(fn, -_LN2_LO, _fma(fn, -_LN2_HI, xc))
    return n, r


@numba.njit(**_HELP)
def _expm1_poly(r):
    """``e**r - 1`` for |r| <= ln2/2, without the cancellation of ``exp(r) - 1``."""
    p = _fma(_fma(_fma(_fma(_fma(_E5, r, _E4), r, _E3), r, _E2), r, _E1), r, _E0)
    return _fma(p, r * r, r)


@numba.njit(**_HELP)
def _scale(p, n):
    """``p * 2**n`` for n in [-150, 128], rounded once (denormal results included).

    2**n is split into two factors 2**h * 2**(n-h), each a normal float built from its
    exponent bits; the first product is exact, so only the last one rounds."""
    h = n >> 1
    s1 = _as_f32((h + 127) << 23)
    s2 = _as_f32((n - h + 127) << 23)
    return (p * s1) * s2


@numba.njit(**_JIT)
def fm_exp(x):
    """float32 ``e**x`` (within 1 ulp; inf, 0 and NaN as NumPy; denormal results)."""
    n, r = _exp_reduce(x)
    y = _scale(_expm1_poly(r) + _ONE, n)
    return y if x == x else x  # noqa: PLR0124 (x is NaN)


@numba.njit(**_JIT)
def fm_expm1(x):
    """float32 ``e**x - 1``, accurate near 0 (keeps -0.0); -1 and inf at the far ends.

    With x = n ln2 + r: ``e**x - 1 = 2**n (e**r - 1) + (2**n - 1)``, where ``2**n - 1`` is
    exact for small n and n = 0 is the polynomial alone (no cancellation). For n > 20 the
    -1 no longer matters and ``2**n`` alone could overflow, so scale ``e**r`` instead."""
    n, r = _exp_reduce(x)
    q = _expm1_poly(r)
    y = _scale(q, n) + (_scale(_ONE, n) - _ONE)
    y = (_scale(q + _ONE, n) - _ONE) if n > 20 else y
    y = y if x != _ZERO else x  # -0.0 + (+0.0) would lose the sign
    return y if x == x else x  # noqa: PLR0124 (x is NaN)


# -- log -------------------------------------------------------------------------------
# Reduction (as musl's logf): x = 2**k * m with m in [sqrt(1/2), sqrt(2)), read off the bits
# after subtracting those of sqrt(1/2), so f = m - 1 lies in [-0.293, 0.414].
_SQRTH_BITS = 0x3F3504F3
_EXP_MASK = -0x800000  # 0xff800000 as a signed int: sign and exponent bits
_FLT_MIN = _F(1.17549435e-38)
_TWO23 = _F(8388608.0)
_TWO23_EXP = _F(23.0)
# k + 256 fits the 9 low mantissa bits of 2**23: reading k back as a float needs no
# int-to-float conversion (int64 -> float has no AVX2 instruction).
_K_BITS = 0x4B000000 + 256
_K_BIAS = _F(8388608.0 + 256.0)
# Cephes logf minimax coefficients for log(1+f) = f - f**2/2 + f**3 P(f) on that range.
_L8 = _F(7.0376836292e-2)
_L7 = _F(-1.1514610310e-1)
_L6 = _F(1.1676998740e-1)
_L5 = _F(-1.2420140846e-1)
_L4 = _F(1.4249322787e-1)
_L3 = _F(-1.6668057665e-1)
_L2 = _F(2.0000714765e-1)
_L1 = _F(-2.4999993993e-1)
_L0 = _F(3.3333331174e-1)
_NINF = _F(-np.inf)


@numba.njit(**_HELP)
def _log_finite(x):
    """``log(x)`` for finite x > 0 (denormals included); garbage elsewhere."""
    tiny = x < _FLT_MIN
    ix = _as_i32(x * _TWO23 if tiny else x)  # a denormal scaled to a normal, k fixed below
    tmp = ix - _SQRTH_BITS
    f = _as_f32(ix - (tmp & _EXP_MASK)) - _ONE
    # k as a float; the denormal correction is applied as a float too, so that the integer
    # chain ends in the truncating bitcasts and LLVM keeps it in 32-bit lanes.
    fk = _as_f32((tmp >> 23) + _K_BITS) - (_K_BIAS + _TWO23_EXP if tiny else _K_BIAS)
    z = f * f
    p = _L8
    for c in (_L7, _L6, _L5, _L4, _L3, _L2, _L1, _L0):
        p = _fma(p, f, c)
    # Sum the small terms first (Cephes' order): k ln2 = k _LN2_HI + k _LN2_LO exactly.
    y = p * f * z + fk * _LN2_LO - _HALF * z
    return (f + y) + fk * _LN2_HI


@numba.njit(**_JIT)
def fm_log(x):
    """float32 natural log (within 1 ulp; log(0) = -inf, log(x<0) = NaN, log(inf) = inf)."""
    y = _log_finite(x)
    y = y if x > _ZERO else (_NINF if x == _ZERO else _NAN)
    return y if x < _INF else x


@numba.njit(**_JIT)
def fm_log1p(x):
    """float32 ``log(1 + x)``, accurate for small x (keeps -0.0).

    ``w = 1 + x`` rounds; ``log(w) + (x - (w - 1)) / w`` adds back the first-order effect
    of that rounding, which is all that is left of it."""
    w = x + _ONE
    c = (x - (w - _ONE)) / w
    # c is NaN only where w is 0 or inf, where log(w) alone is right
    c = c if c == c else _ZERO  # noqa: PLR0124
    y = fm_log(w) + c
    return x if w == _ONE else y  # |x| < 2**-24: log1p(x) rounds to x (keeps -0.0)


# -- tanh, sigmoid, softplus -----------------------------------------------------------
# Cephes tanhf: for |x| < 0.625 an odd minimax polynomial x + x**3 P(x**2) (no cancellation
# near 0), above it 1 - 2 / (e**2|x| + 1), where the subtraction loses under 1 ulp.
_TANH_SPLIT = _F(0.625)
_T4 = _F(-5.70498872745e-3)
_T3 = _F(2.06390887954e-2)
_T2 = _F(-5.37397155531e-2)
_T1 = _F(1.33314422036e-1)
_T0 = _F(-3.33332819422e-1)


@numba.njit(**_JIT)
def fm_tanh(x):
    """float32 hyperbolic tangent (within 2 ulp; +-1 at +-inf, keeps -0.0 and NaN)."""
    a = abs(x)
    big = _ONE - _TWO / (fm_exp(a + a) + _ONE)
    big = big if x >= _ZERO else -big
    s = x * x
    small = _fma(x, s * _fma(_fma(_fma(_fma(_T4, s, _T3), s, _T2), s, _T1), s, _T0), x)
    y = big if a >= _TANH_SPLIT else small
    return y if x != _ZERO else x  # -0.0 + (+0.0) would lose the sign


@numba.njit(**_JIT)
def fm_sigmoid(x):
    """float32 ``1 / (1 + e**-x)``; exp only sees -|x|, so neither side overflows and
    large negative x gives e**x (denormals included), as the reference's two-sided form."""
    e = fm_exp(-abs(x))
    num = _ONE if x >= _ZERO else e
    return num / (_ONE + e)


@numba.njit(**_JIT)
def fm_softplus(x):
    """float32 ``log(1 + e**x)`` as ``max(x, 0) + log1p(e**-|x|)`` (never overflows)."""
    m = x if x > _ZERO else _ZERO  # noqa: FURB136 (NaN: log1p below gives it)
    return m + fm_log1p(fm_exp(-abs(x)))
