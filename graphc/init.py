"""Initializers (``gc.init``): host-side NumPy arrays computed when the graph is built.

Every initializer is ``name(shape, dtype=gc.float32, seed=None, **extra) -> np.ndarray`` and
returns a fresh array of exactly ``shape`` and ``dtype``. An int ``seed`` makes the result
reproducible (``np.random.default_rng(seed)``); ``seed=None`` draws fresh entropy. Random
values are drawn in float64 and rounded to ``dtype`` once.

Fans follow graphc's layouts, which differ from Keras's HWIO conv kernels:

* rank 0: fan_in = fan_out = 1;
* rank 1: fan_in = fan_out = shape[0];
* rank 2, dense weights ``(in, out)`` as in TF: fan_in = shape[0], fan_out = shape[1];
* rank >= 3, conv weights ``(out_channels, in_channels, *kernel)`` (OIHW, as ONNX/PyTorch):
  receptive = prod(shape[2:]), fan_in = shape[1] * receptive, fan_out = shape[0] * receptive.

Variance scaling (glorot/he/lecun) matches Keras: ``*_normal`` draw a normal truncated at two
standard deviations with stddev ``sqrt(scale / fan) / 0.87962566103423978`` (the stddev of a
unit normal truncated to [-2, 2], so the result has variance scale / fan); ``*_uniform`` draw
from [-limit, limit] with ``limit = sqrt(3 * scale / fan)``.

:func:`orthogonal` needs rank >= 2. It orthogonalizes the matrix whose rows are output units:
``(in, out)`` as is for rank 2, and ``(O, I * prod(kernel))`` for rank >= 3. (Keras flattens all
but the last dim because its kernels are HWIO; for OIHW that would mix kernel positions, so
graphc flattens all but the *first* dim, which makes the same vectors orthonormal as Keras does
for the equivalent HWIO kernel.)
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable

import numpy as np

from graphc import dtypes

__all__ = ["zeros", "ones", "constant", "random_normal", "random_uniform", "truncated_normal",
           "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
           "lecun_normal", "orthogonal", "get"]

# stddev of a standard normal truncated to [-2, 2] (Keras's correction constant)
_TRUNC_STDDEV = 0.87962566103423978


def _shape(name: str, shape: Any) -> tuple[int, ...]:
    dims = (shape,) if isinstance(shape, numbers.Integral) else shape
    try:
        dims = tuple(dims)
    except TypeError:
        raise TypeError(f"gc.init.{name}: shape must be an int or a sequence of ints, "
                        f"got {shape!r}") from None
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise TypeError(f"gc.init.{name}: shape must be fully known ints, got {shape!r}")
        if d < 0:
            raise ValueError(f"gc.init.{name}: shape has a negative dimension: {shape!r}")
    return tuple(int(d) for d in dims)


def _dtype(name: str, dtype: Any, floating: bool) -> np.dtype:
    try:
        dt = dtypes.as_numpy_dtype(dtype)
    except TypeError as e:
        raise TypeError(f"gc.init.{name}: dtype: {e}") from None
    if floating and dt.kind != "f":
        raise TypeError(f"gc.init.{name}: dtype must be a float type for random values, "
                        f"got {dt.name}")
    return dt


def _rng(name: str, seed: Any) -> np.random.Generator:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"gc.init.{name}: seed must be an int or None, got {seed!r}")
    if seed is not None and seed < 0:
        raise ValueError(f"gc.init.{name}: seed must be >= 0, got {seed}")
    return np.random.default_rng(None if seed is None else int(seed))


def _stddev(name: str, stddev: float) -> float:
    if not stddev >= 0:  # also rejects NaN
        raise ValueError(f"gc.init.{name}: stddev must be >= 0, got {stddev}")
    return float(stddev)


def _fans(shape: tuple[int, ...]) -> tuple[float, float]:
    # See the module docstring: (in, out) dense, (O, I, *kernel) conv.
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = math.prod(shape[2:])
    return float(shape[1] * receptive), float(shape[0] * receptive)


def _truncated(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    # Unit normal with every |z| > 2 redrawn (TF/Keras); only the rejects are redrawn.
    z = rng.standard_normal(shape)
    bad = np.flatnonzero(np.abs(z) > 2.0)
    while bad.size:
        z.flat[bad] = rng.standard_normal(bad.size)
        bad = bad[np.abs(z.flat[bad]) > 2.0]
    return z


def _variance_scaling(name: str, shape: Any, dtype: Any, seed: Any, scale: float, mode: str,
                      uniform: bool) -> np.ndarray:
    shape, dt, rng = _shape(name, shape), _dtype(name, dtype, True), _rng(name, seed)
    fan_in, fan_out = _fans(shape)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    variance = scale / max(1.0, fan)  # max(1, fan) as Keras: zero-size dims don't divide by 0
    if uniform:
        limit = math.sqrt(3.0 * variance)
        return rng.uniform(-limit, limit, shape).astype(dt)
    return (_truncated(rng, shape) * (math.sqrt(variance) / _TRUNC_STDDEV)).astype(dt)


def zeros(shape: Any, dtype: Any = dtypes.float32, seed: int | None = None) -> np.ndarray:
    """All zeros (``seed`` is accepted for a uniform signature and ignored)."""
    return np.zeros(_shape("zeros", shape), _dtype("zeros", dtype, False))


def ones(shape: Any, dtype: Any = dtypes.float32, seed: int | None = None) -> np.ndarray:
    """All ones (``seed`` is ignored)."""
    return np.ones(_shape("ones", shape), _dtype("ones", dtype, False))


def constant(shape: Any, dtype: Any = dtypes.float32, seed: int | None = None,
             value: Any = 0.0) -> np.ndarray:
    """Every element equal to the scalar ``value`` (``seed`` is ignored)."""
    if np.ndim(value) != 0:
        raise ValueError(f"gc.init.constant: value must be a scalar, got shape {np.shape(value)}")
    return np.full(_shape("constant", shape), value, _dtype("constant", dtype, False))


def random_normal(shape: Any, dtype: Any = dtypes.float32, seed: int | None = None,
                  mean: float = 0.0, stddev: float = 0.05) -> np.ndarray:
    """Normal with ``mean`` and ``stddev`` (Keras defaults 0.0, 0.05)."""
    name = "random_normal"
    shape, dt, sd = _shape(name, shape), _dtype(name, dtype, True), _stddev(name, stddev)
    return _rng(name, seed).normal(mean, sd, shape).astype(dt)


def random_uniform(shape: Any, dtype: Any = dtypes.float32, seed: int | None = None,
                   minval: float = -0.05, maxval: float = 0.05) -> np.ndarray:
    """Uniform on [minval, maxval) (Keras defaults -0.05, 0.05), before rounding to dtype."""
    name = "random_uniform"
    shape, dt = _shape(name, shape), _dtype(name, dtype, True)
    if not minval <= maxval:
        raise ValueError(f"gc.init.{name}: minval must be <= maxval, got {minval} > {maxval}")
    return _rng(name, seed).uniform(minval, maxval, shape).astype(dt)


def truncated_normal(shape: Any, dtype: Any = dtypes.float32, seed: int | None = None,
                     mean: float = 0.0, stddev: float = 0.05) -> np.ndarray:
    """Normal(mean, stddev) with values beyond 2 stddev from the mean redrawn (TF/Keras)."""
    name = "truncated_normal"
    shape, dt, sd = _shape(name, shape), _dtype(name, dtype, True), _stddev(name, stddev)
    return (mean + sd * _truncated(_rng(name, seed), shape)).astype(dt)


def glorot_uniform(shape: Any, dtype: Any = dtypes.float32, seed: int | None = None) -> np.ndarray:
    """Glorot/Xavier uniform: limit sqrt(6 / (fan_in + fan_out))."""
    return _variance_scaling("glorot_uniform", shape, dtype, seed, 1.0, "fan_avg", True)


def glorot_normal(shape: Any, dtype: Any = dtypes.float32, seed: int | None = None) -> np.ndarray:
    """Glorot/Xavier normal: truncated, variance 2 / (fan_in + fan_out)."""
    return _variance_scaling("glorot_normal", shape, dtype, seed, 1.0, "fan_avg", False)


def he_uniform(shape: Any, dtype: Any = dtypes.float32, seed: int | None = None) -> np.ndarray:
    """He/Kaiming uniform: limit sqrt(6 / fan_in)."""
    return _variance_scaling("he_uniform", shape, dtype, seed, 2.0, "fan_in", True)


def he_normal(shape: Any, dtype: Any = dtypes.float32, seed: int | None = None) -> np.ndarray:
    """He/Kaiming normal: truncated, variance 2 / fan_in."""
    return _variance_scaling("he_normal", shape, dtype, seed, 2.0, "fan_in", False)


def lecun_uniform(shape: Any, dtype: Any = dtypes.float32, seed: int | None = None) -> np.ndarray:
    """LeCun uniform: limit sqrt(3 / fan_in)."""
    return _variance_scaling("lecun_uniform", shape, dtype, seed, 1.0, "fan_in", True)


def lecun_normal(shape: Any, dtype: Any = dtypes.float32, seed: int | None = None) -> np.ndarray:
    """LeCun normal: truncated, variance 1 / fan_in (for SELU networks)."""
    return _variance_scaling("lecun_normal", shape, dtype, seed, 1.0, "fan_in", False)


def orthogonal(shape: Any, dtype: Any = dtypes.float32, seed: int | None = None,
               gain: float = 1.0) -> np.ndarray:
    """``gain`` times a random orthogonal matrix (see the module doc for rank >= 3)."""
    name = "orthogonal"
    shape, dt, rng = _shape(name, shape), _dtype(name, dtype, True), _rng(name, seed)
    if len(shape) < 2:
        raise ValueError(f"gc.init.{name}: shape must have rank >= 2, got {shape}")
    rows, cols = shape[0], math.prod(shape[1:])
    # QR of a tall normal matrix; scaling the columns of Q by sign(diag(R)) makes the result
    # uniformly (Haar) distributed rather than biased by the QR convention (Keras does this).
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(dt)


def get(identifier: str | Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """The initializer named ``identifier`` (e.g. ``"he_normal"``); a callable is returned as is."""
    if callable(identifier):
        return identifier
    if identifier not in __all__ or identifier == "get":
        raise ValueError(f"gc.init.get: unknown initializer {identifier!r}; "
                         f"use one of {', '.join(n for n in __all__ if n != 'get')}")
    return globals()[identifier]
