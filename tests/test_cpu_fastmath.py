"""The cpu target's vectorizable float32 transcendentals (backends/numba_cpu/fastmath.py):
accuracy in ulp against float64 NumPy rounded to float32, NumPy's special values, and the
generated kernels using them for float32 nodes only (float64 keeps ``math.*``)."""

from __future__ import annotations

import hashlib
import os

import numba
import numpy as np
import pytest

import graphc as gc
from graphc.backends.numba_cpu import codegen, fastmath

MAX_ULP = 2


def _sigmoid64(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# name -> (float64 reference, range sampled densely on top of the whole-range sample)
FUNCTIONS = {
    "fm_exp": (np.exp, (-110.0, 95.0)),
    "fm_expm1": (np.expm1, (-20.0, 95.0)),
    "fm_log": (np.log, (0.0, 4.0)),
    "fm_log1p": (np.log1p, (-1.0, 4.0)),
    "fm_tanh": (np.tanh, (-12.0, 12.0)),
    "fm_sigmoid": (_sigmoid64, (-110.0, 110.0)),
    "fm_softplus": (lambda x: np.logaddexp(0.0, x), (-110.0, 110.0)),
}
SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-40, -1e-40,
                     1.1754944e-38, 3.4028235e38, -3.4028235e38, 1.0, -1.0, 2.0, -2.0,
                     0.625, -0.625, 88.72, 88.7228, 88.73, 89.0, 100.0, -87.0, -103.0,
                     -103.97, -104.0, -120.0, 1e-8, -1e-8, 0.34657, -0.34657], np.float32)


def _samples(lo: float, hi: float) -> np.ndarray:
    """Every 4093rd float32 bit pattern (all signs, magnitudes, NaNs, denormals), a dense
    grid over [lo, hi] and the special values."""
    bits = np.arange(0, 1 << 32, 4093, dtype=np.uint64).astype(np.uint32)
    grid = np.linspace(lo, hi, 1 << 20, dtype=np.float32)
    return np.concatenate([bits.view(np.float32), grid, SPECIALS])


def _ordered(a: np.ndarray) -> np.ndarray:
    """float32 bits as integers ordered like the floats (so ulp distance is a difference)."""
    i = a.view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF), i)


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    d = np.abs(_ordered(got) - _ordered(want))
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    d[nan_got & nan_want] = 0
    d[nan_got != nan_want] = 1 << 40
    return d


def _apply(name: str, x: np.ndarray) -> np.ndarray:
    """``name`` over ``x`` inside an njit loop, as a generated kernel calls it."""
    f = getattr(fastmath, name)

    @numba.njit(error_model="numpy")
    def loop(out, a):
        for i in range(a.shape[0]):
            out[i] = f(a[i])
    out = np.empty_like(x)
    loop(out, x)
    return out


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_within_two_ulp_of_float64_numpy_over_the_float32_range(name: str) -> None:
    ref, (lo, hi) = FUNCTIONS[name]
    x = _samples(lo, hi)
    got = _apply(name, x)
    with np.errstate(all="ignore"):
        want = ref(x.astype(np.float64)).astype(np.float32)
    d = _ulps(got, want)
    k = int(np.argmax(d))
    assert d[k] <= MAX_ULP, f"{name}({x[k]!r}) = {got[k]!r}, want {want[k]!r}: {d[k]} ulp"
    # Where NumPy gives inf or a zero (with its sign), or x is zero, ours is identical.
    # (A NaN's sign bit means nothing: NumPy's are often negative, ours positive.)
    exact = np.isinf(want) | (want == 0) | (x == 0)
    np.testing.assert_array_equal(got[exact], want[exact], err_msg=name)
    np.testing.assert_array_equal(np.signbit(got[exact]), np.signbit(want[exact]),
                                  err_msg=f"{name}: sign of zero/inf")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{name}: NaNs")


@pytest.mark.parametrize("name, x, want", [
    ("fm_exp", np.inf, np.inf), ("fm_exp", -np.inf, 0.0), ("fm_exp", np.nan, np.nan),
    ("fm_exp", 88.8, np.inf), ("fm_exp", -104.0, 0.0), ("fm_exp", -0.0, 1.0),
    ("fm_exp", -100.0, np.float32(np.exp(-100.0))),  # a denormal result
    ("fm_log", 0.0, -np.inf), ("fm_log", -0.0, -np.inf), ("fm_log", -1.0, np.nan),
    ("fm_log", np.inf, np.inf), ("fm_log", -np.inf, np.nan), ("fm_log", 1.0, 0.0),
    ("fm_log", 1e-45, np.float32(np.log(np.float64(np.float32(1e-45))))),
    ("fm_log1p", -0.0, -0.0), ("fm_log1p", -1.0, -np.inf), ("fm_log1p", -2.0, np.nan),
    ("fm_log1p", np.inf, np.inf), ("fm_log1p", 1e-30, 1e-30),
    ("fm_expm1", -0.0, -0.0), ("fm_expm1", -np.inf, -1.0), ("fm_expm1", np.inf, np.inf),
    ("fm_tanh", np.inf, 1.0), ("fm_tanh", -np.inf, -1.0), ("fm_tanh", -0.0, -0.0),
    ("fm_tanh", np.nan, np.nan), ("fm_tanh", -1e-30, -1e-30),
    ("fm_sigmoid", np.inf, 1.0), ("fm_sigmoid", -np.inf, 0.0), ("fm_sigmoid", np.nan, np.nan),
    ("fm_softplus", np.inf, np.inf), ("fm_softplus", -np.inf, 0.0),
])
def test_special_values_as_numpy(name: str, x: float, want: float) -> None:
    got = _apply(name, np.array([x], np.float32))[0]
    want = np.float32(want)
    assert (np.isnan(got) and np.isnan(want)) or \
        (got == want and np.signbit(got) == np.signbit(want)), f"{name}({x}) = {got!r}"


def _generated_sources(monkeypatch) -> list[str]:
    """The kernel sources the cpu target generates from now on."""
    seen: list[str] = []
    real = codegen.generate

    def spy(step, *args, **kwargs):
        src = real(step, *args, **kwargs)
        seen.append(src.source)
        return src
    monkeypatch.setattr(codegen, "generate", spy)
    return seen


def _bodies(sources: list[str]) -> str:
    """The generated kernels' code after the prelude (which imports every fm_ function)."""
    assert sources, "no kernel was generated"
    return "\n".join(s.split("_OPTS = ", 1)[1] for s in sources)


def _activations(x):
    return [gc.exp(x), gc.tanh(x), gc.sigmoid(x), gc.log(x), gc.nn.softplus(x),
            gc.log1p(x), gc.nn.elu(x, alpha=0.7391), gc.sigmoid(x) * gc.tanh(gc.exp(-x * x))]


def _run_both(dtype: str) -> tuple[list, list]:
    x_val = np.concatenate([np.linspace(-120, 120, 2001), [0.0, -0.0, 1e-30, -1e-30, 1e-40],
                            np.random.default_rng(0).normal(size=500) * 4]).astype(dtype)
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(dtype, (None,), name="x")
        outs = _activations(x)
    got = gc.Session(graph, target="cpu").run(outs, {x: x_val})
    want = gc.Session(graph, target="reference").run(outs, {x: x_val})
    return got, want


def test_float32_graph_on_cpu_matches_reference_and_uses_fastmath(monkeypatch) -> None:
    sources = _generated_sources(monkeypatch)
    with np.errstate(all="ignore"):
        got, want = _run_both("float32")
    for g, w in zip(got, want):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(np.signbit(g[w == 0]), np.signbit(w[w == 0]))
    body = _bodies(sources)
    for fn in ("fm_exp(", "fm_tanh(", "fm_sigmoid(", "fm_log(", "fm_softplus(", "fm_log1p(",
               "fm_expm1("):
        assert fn in body, fn
    assert "math." not in body


def test_float64_graph_keeps_math(monkeypatch) -> None:
    sources = _generated_sources(monkeypatch)
    with np.errstate(all="ignore"):
        got, want = _run_both("float64")
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
    body = _bodies(sources)
    assert "math.tanh(" in body and "math.expm1(" in body
    assert "fm_" not in body


def test_kernel_source_carries_a_hash_of_fastmath_py() -> None:
    # Numba's disk cache would keep a kernel compiled against an older fastmath.py: the
    # hash in the source changes the kernel cache key whenever that file changes.
    with open(os.path.join(os.path.dirname(fastmath.__file__), "fastmath.py"), "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()[:16]
    assert f"# fastmath {sha}\n" in codegen.PRELUDE
