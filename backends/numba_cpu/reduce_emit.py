"""``reduce_sum``, ``reduce_mean``, ``reduce_max``, ``reduce_min``, ``argmax`` and ``argmin``
in a compiled program (:mod:`.program_codegen`): the loops of :mod:`.reduce_kernels`
(:func:`~.reduce_kernels.sum3`, :func:`~.reduce_kernels.extreme3`,
:func:`~.reduce_kernels.arg_extreme3`), called from the generated ``@njit`` code.

A softmax (``x - reduce_max(x)``, ``exp``, ``reduce_sum``) and a global average pooling
are reductions; without them the predict of a classifier ending in softmax ran step by
step. As in the kernels, the input is viewed as ``(A, B, C)`` and reduced over A and C, so
the kept axes must be one contiguous run of positions (decided here from the rank alone,
the sizes being symbolic; other patterns raise :class:`~.loop_shapes.Unsupported`); sums
and means accumulate in float64 in a workspace buffer. A max or min over no elements makes
the shape function return None, so the step-by-step path raises NumPy's error. Dtypes other
than float32/float64 and scalar inputs raise Unsupported.

``argmax``/``argmin`` (a classifier's accuracy: Keras's evaluate) reduce one axis, viewed
the same way as ``(A, B, C)`` with B the axis, for any dtype of the program; an empty axis
makes the shape function return None (NumPy raises).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .conv_emit import call, contiguous
from .loop_shapes import Unsupported
from .loop_values import Gen, Val
from .reduce_kernels import reduced_axes

__all__ = ["ARG_IMPORTS", "IMPORTS", "emit_arg_extreme", "emit_reduce"]

#: The compiled helpers the generated code calls: module (in this package) -> names.
IMPORTS = {"reduce_kernels": ("extreme3", "sum3")}
ARG_IMPORTS = {"reduce_kernels": ("arg_extreme3",)}


def emit_reduce(gen: Gen, node: Any) -> list[Val]:
    """``y = reduce_*(x, axes, keepdims)`` for the four reductions of the module docstring."""
    x = gen.val(node.inputs[0])
    rank, axes = len(x.dims), node.attrs["axes"]
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        raise Unsupported(f"{node.op} other than float32/float64")
    if rank == 0:
        raise Unsupported(f"{node.op} of a scalar")
    reduced = reduced_axes(axes, rank)
    kept = [p for p in range(rank) if p not in reduced]
    lo, hi = (kept[0], kept[-1] + 1) if kept else (rank, rank)
    if kept != list(range(lo, hi)):
        raise Unsupported(f"{node.op} over axes between kept ones")
    dims = gen.dims
    a, b, c = (dims.product(x.dims[:lo]), dims.product(x.dims[lo:hi]),
               dims.product(x.dims[hi:]))
    shape = [1 if p in reduced else x.dims[p] for p in range(rank)] \
        if node.attrs["keepdims"] else [x.dims[p] for p in kept]
    out = gen.output(node, tuple(shape), x.dtype)
    x3 = f"{contiguous(x)}.reshape(({a}, {b}, {c}))"
    if node.op in ("reduce_sum", "reduce_mean"):
        acc = gen.buffer(np.dtype(np.float64), tuple(x.dims[lo:hi]))
        count = f"({a}) * ({c})"
        scale = f"(1.0 / ({count}) if {count} else np.nan)" \
            if node.op == "reduce_mean" else "1.0"
        gen.emit(f"sum3({x3}, {out.name}.reshape(-1), {acc.name}.reshape(-1), "
                 f"np.float64({scale}))")
    else:
        dims.require(f"({a}) * ({c}) > 0 or ({b}) == 0")  # NumPy raises for an empty max
        gen.emit(call("extreme3", x3, f"{out.name}.reshape(-1)", node.op == "reduce_max"))
    return [out]


def emit_arg_extreme(gen: Gen, node: Any) -> list[Val]:
    """``y = argmax(x, axis)`` or ``argmin``, of ``output_type``."""
    x = gen.val(node.inputs[0])
    if not x.dims:
        raise Unsupported(f"{node.op} of a scalar")
    axis, dims = node.attrs["axis"], gen.dims
    a, b, c = (dims.product(x.dims[:axis]), dims.expr(x.dims[axis]),
               dims.product(x.dims[axis + 1:]))
    dims.require(f"({b}) > 0")  # NumPy raises for an empty axis
    out = gen.output(node, x.dims[:axis] + x.dims[axis + 1:])
    gen.emit(call("arg_extreme3", f"{contiguous(x)}.reshape(({a}, {b}, {c}))",
                  f"{out.name}.reshape(-1)", node.op == "argmax"))
    return [out]
