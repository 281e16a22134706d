"""Argument checks shared by the op builders of :mod:`graphc.ops.shape` and
:mod:`graphc.ops.indexing`: static ints, axes, dtypes and builder-side errors."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from graphc import dtypes
from graphc.errors import DTypeError, GraphcError, ShapeError
from graphc.graph import Tensor, TensorSpec, user_location
from graphc.ops.state import constant
from graphc.shapes import normalize_axis

INDEX_DTYPES = (dtypes.int32, dtypes.int64)  # what indices and shapes may be

__all__ = ["INDEX_DTYPES", "is_int", "static_ints", "fail", "axis_attr", "check_axis", "same_dtype", "tensor_list"]

def is_int(v: Any) -> bool:
    """True for Python and NumPy ints (not bools)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def static_ints(value: Any, what: str) -> tuple[int, ...]:
    """A sequence (or one) of Python/NumPy ints as a tuple; tensors are refused clearly."""
    if isinstance(value, Tensor):
        raise TypeError(f"{what} must be static Python ints, not the tensor {value.name}: "
                        "graphc needs it when the graph is built")
    seq = (value,) if is_int(value) else tuple(np.asarray(value).ravel().tolist()) \
        if isinstance(value, np.ndarray) else tuple(value)
    if not all(is_int(v) for v in seq):
        raise TypeError(f"{what} must be ints, got {value!r}")
    return tuple(int(v) for v in seq)


def fail(err: GraphcError, op: str, *tensors: Tensor) -> GraphcError:
    """A builder's error, with the op, its inputs and the user's line (as apply adds)."""
    labels = ["x"] if len(tensors) == 1 else [f"in{i}" for i in range(len(tensors))]
    return err.with_context(op, list(zip(labels, tensors)), user_location())


def axis_attr(axis: Any, rank: Optional[int]) -> Any:
    """``axis`` normalized when the rank is known and it is valid; else as given, for
    ``infer`` to check (and report with the op's context)."""
    if rank is not None and is_int(axis) and -rank <= axis < rank:
        return int(axis) % rank
    return axis


def check_axis(axis: Any, rank: Optional[int]) -> Optional[int]:
    """The normalized axis (None when the rank is unknown), or ShapeError."""
    if rank is None:
        if not is_int(axis):
            raise ShapeError(f"axis must be an int, got {axis!r}")
        return None
    return normalize_axis(axis, rank)


def same_dtype(specs: Sequence[TensorSpec]) -> dtypes.DType:
    """The one dtype of ``specs``, or DTypeError."""
    first = specs[0].dtype
    if any(s.dtype != first for s in specs):
        raise DTypeError("inputs have different dtypes: " + ", ".join(str(s.dtype) for s in specs)
                         + "; use gc.cast")
    return first


def tensor_list(values: Any) -> list[Tensor]:
    """Tensors from a list of tensors and Python values (these take the tensors' dtype)."""
    if isinstance(values, Tensor):
        values = [values]
    values = list(values)
    if not values:
        raise ShapeError("needs at least one tensor")
    first = next((v for v in values if isinstance(v, Tensor)), None)
    if first is None:
        return [constant(v) for v in values]
    return [v if isinstance(v, Tensor) else constant(v, first.dtype, graph=first.graph)
            for v in values]


# -- reshape ------------------------------------------------------------------------------
