"""graphc's element types and the rules that combine them.

A :class:`DType` wraps a NumPy dtype. Everywhere graphc takes a dtype it also takes a NumPy
dtype, a NumPy scalar type or a string (``"float32"``) and normalizes it with :func:`as_dtype`.

Promotion (:func:`result_type`) follows NumPy with two changes that keep models in their
chosen precision, as JAX and PyTorch do:

* an integer or bool combined with a float gives that float (NumPy would widen
  ``int32 + float32`` to ``float64``);
* a Python scalar is *weak*: ``x * 2.0`` keeps ``x``'s dtype; a Python float with an integer
  tensor gives ``float32`` (the default float).
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

__all__ = [
    "DType", "as_dtype", "as_numpy_dtype", "result_type", "weak_scalar_dtype",
    "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool",
    "DEFAULT_FLOAT", "DEFAULT_INT",
]


class DType:
    """An element type: a thin, hashable wrapper around a NumPy dtype."""

    __slots__ = ("np",)

    def __init__(self, np_dtype: np.dtype) -> None:
        self.np = np.dtype(np_dtype)

    @property
    def name(self) -> str:
        """The canonical name, e.g. ``"float32"``."""
        return self.np.name

    @property
    def is_floating(self) -> bool:
        """True for float16/32/64: the dtypes that carry gradients."""
        return self.np.kind == "f"

    @property
    def is_integer(self) -> bool:
        """True for signed and unsigned integers (not bool)."""
        return self.np.kind in "iu"

    @property
    def is_bool(self) -> bool:
        """True for bool."""
        return self.np.kind == "b"

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return self.np.itemsize

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DType):
            return self.np == other.np
        try:
            return self.np == as_dtype(other).np
        except TypeError:
            return False

    def __hash__(self) -> int:
        return hash(self.np)

    def __repr__(self) -> str:
        return f"gc.{self.name}"

    def __str__(self) -> str:
        return self.name


float16 = DType(np.float16)
float32 = DType(np.float32)
float64 = DType(np.float64)
int8 = DType(np.int8)
int16 = DType(np.int16)
int32 = DType(np.int32)
int64 = DType(np.int64)
uint8 = DType(np.uint8)
bool = DType(np.bool_)  # noqa: A001 - the public name is gc.bool, as in TF

_ALL = {d.name: d for d in (float16, float32, float64, int8, int16, int32, int64, uint8, bool)}
DEFAULT_FLOAT = float32
DEFAULT_INT = int64


def as_dtype(value: Any) -> DType:
    """Normalize a DType, NumPy dtype, scalar type or name to a supported :class:`DType`."""
    if isinstance(value, DType):
        return value
    if value is float:
        return DEFAULT_FLOAT
    if value is int:
        return DEFAULT_INT
    try:
        name = np.dtype(value).name
    except TypeError:
        raise TypeError(f"not a dtype: {value!r}; use one of {', '.join(_ALL)}") from None
    if name not in _ALL:
        raise TypeError(f"graphc does not support dtype {name}; use one of {', '.join(_ALL)}")
    return _ALL[name]


def as_numpy_dtype(value: Any) -> np.dtype:
    """The NumPy dtype of anything :func:`as_dtype` accepts."""
    return as_dtype(value).np


def result_type(*dtypes: DType) -> DType:
    """The dtype of an elementwise op over tensors of these dtypes (see the module doc)."""
    result = dtypes[0]
    for d in dtypes[1:]:
        if result.is_floating and not d.is_floating:
            continue
        if d.is_floating and not result.is_floating:
            result = d
            continue
        result = as_dtype(np.promote_types(result.np, d.np))
    return result


def weak_scalar_dtype(value: Any, partner: DType | None) -> DType:
    """The dtype a Python scalar takes when combined with a tensor of dtype ``partner``."""
    if isinstance(value, (np.generic, np.ndarray)):
        return as_dtype(value.dtype)
    if isinstance(value, (builtins.bool, np.bool_)):
        return partner if partner is not None else bool
    if isinstance(value, int):
        if partner is not None and not partner.is_bool:
            return partner
        return DEFAULT_INT
    if isinstance(value, float):
        if partner is not None and partner.is_floating:
            return partner
        return DEFAULT_FLOAT
    raise TypeError(f"not a scalar: {value!r}")

