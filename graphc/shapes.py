"""Static shapes with unknown dimensions.

A shape is a tuple of ``int | None`` (``None``: a dimension known only when the graph runs,
typically the batch), or ``None`` for a tensor whose rank is unknown too. Shape inference
works on these; NumPy checks the real sizes at run time.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence, Tuple, Union

import numpy as np

from graphc.errors import ShapeError

Dim = Optional[int]
Shape = Optional[Tuple[Dim, ...]]

__all__ = ["Dim", "Shape", "as_shape", "broadcast_shapes", "format_shape", "is_fully_known",
           "num_elements", "normalize_axis", "normalize_axes", "merge_shapes"]


def as_shape(value: Union[None, int, Iterable[Union[int, None]]]) -> Shape:
    """Normalize a user shape: ``None`` (unknown rank), an int, or a sequence with
    ``None`` or ``-1`` for unknown dims."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        value = (value,)
    dims = []
    for d in value:
        if d is None or (isinstance(d, (int, np.integer)) and d == -1):
            dims.append(None)
        elif isinstance(d, (int, np.integer)) and d >= 0:
            dims.append(int(d))
        else:
            raise ShapeError(f"bad dimension {d!r} in shape {tuple(value)!r}: "
                             "use a non-negative int, or None for unknown")
    return tuple(dims)


def format_shape(shape: Shape) -> str:
    """``[None, 784]``, or ``[?]`` for unknown rank."""
    if shape is None:
        return "[?]"
    return "[" + ", ".join("None" if d is None else str(d) for d in shape) + "]"


def is_fully_known(shape: Shape) -> bool:
    """True when the rank and every dimension are known."""
    return shape is not None and all(d is not None for d in shape)


def num_elements(shape: Shape) -> Optional[int]:
    """The element count, or None when not statically known."""
    return int(np.prod(shape, dtype=np.int64)) if is_fully_known(shape) else None


def broadcast_shapes(*shapes: Shape) -> Shape:
    """NumPy broadcasting over static shapes. An unknown dim against ``k > 1`` gives ``k``
    (the run checks it); against 1 or unknown, stays unknown."""
    if any(s is None for s in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ShapeError("shapes cannot be broadcast together: "
                             + " vs ".join(format_shape(s) for s in shapes))
        if known:
            out.append(known.pop())
        elif any(d is None for d in dims):
            out.append(None)
        else:
            out.append(1)
    return tuple(out)


def merge_shapes(a: Shape, b: Shape) -> Shape:
    """The most specific shape compatible with both, or ShapeError."""
    if a is None:
        return b
    if b is None:
        return a
    if len(a) != len(b):
        raise ShapeError(f"ranks differ: {format_shape(a)} vs {format_shape(b)}")
    out = []
    for x, y in zip(a, b):
        if x is not None and y is not None and x != y:
            raise ShapeError(f"shapes differ: {format_shape(a)} vs {format_shape(b)}")
        out.append(x if x is not None else y)
    return tuple(out)


def normalize_axis(axis: int, rank: int) -> int:
    """A possibly negative axis as an index in ``range(rank)``, or ShapeError."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise ShapeError(f"axis must be an int, got {axis!r}")
    if not -rank <= axis < rank:
        raise ShapeError(f"axis {axis} is out of range for rank {rank}")
    return int(axis) % rank if rank else 0


def normalize_axes(axis: Union[None, int, Sequence[int]], rank: int) -> Tuple[int, ...]:
    """``None`` (all axes), an int or a sequence as a sorted tuple of distinct axes."""
    if axis is None:
        return tuple(range(rank))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    axes = sorted(normalize_axis(a, rank) for a in axis)
    if len(set(axes)) != len(axes):
        raise ShapeError(f"repeated axis in {tuple(axis)!r}")
    return tuple(axes)
