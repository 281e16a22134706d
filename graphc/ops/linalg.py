"""Matrix multiplication: batched, broadcasting over leading dims, with transpose flags.

The primitive takes operands of rank >= 2 and the flags ``transpose_a``/``transpose_b``
(which swap the last two axes), because that is what BLAS takes: gradients are matmuls
with other flags, never explicit transposes. Vectors are handled by the builder, as NumPy
does (a 1-D operand gains a unit axis that is removed from the result).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from graphc.errors import DTypeError, ShapeError
from graphc.graph import Tensor, TensorSpec
from graphc.op import Kind, apply1, defop
from graphc.ops.elementwise import promote
from graphc.ops.reduce import sum_to_like
from graphc.shapes import broadcast_shapes

__all__ = ["matmul"]


def _infer_matmul(a: TensorSpec, b: TensorSpec, *, transpose_a: bool,
                  transpose_b: bool) -> TensorSpec:
    if a.dtype != b.dtype:
        raise DTypeError(f"operands have different dtypes: {a.dtype}, {b.dtype}")
    if a.dtype.is_bool:
        raise DTypeError("expects numeric operands, got bool")
    if a.shape is None or b.shape is None:
        return TensorSpec(None, a.dtype)
    if len(a.shape) < 2 or len(b.shape) < 2:
        raise ShapeError("operands must have rank >= 2")
    m, k1 = a.shape[-2:][::-1] if transpose_a else a.shape[-2:]
    k2, n = b.shape[-2:][::-1] if transpose_b else b.shape[-2:]
    if k1 is not None and k2 is not None and k1 != k2:
        raise ShapeError(f"inner dimensions differ, {k1} vs {k2}")
    try:
        batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ShapeError:
        raise ShapeError("batch dimensions cannot be broadcast together") from None
    return TensorSpec(batch + (m, n), a.dtype)


def _matmul_ref(a: np.ndarray, b: np.ndarray, *, transpose_a: bool,
                transpose_b: bool) -> np.ndarray:
    if transpose_a:
        a = np.swapaxes(a, -1, -2)
    if transpose_b:
        b = np.swapaxes(b, -1, -2)
    return np.matmul(a, b)


def _vjp_matmul(node: Any, g: Tensor) -> list:
    a, b = node.inputs
    ta, tb = node.attrs["transpose_a"], node.attrs["transpose_b"]
    if not ta and not tb:
        ga, gb = _mm(g, b, False, True), _mm(a, g, True, False)
    elif ta and not tb:
        ga, gb = _mm(b, g, False, True), _mm(a, g, False, False)
    elif not ta and tb:
        ga, gb = _mm(g, b, False, False), _mm(g, a, True, False)
    else:
        ga, gb = _mm(b, g, True, True), _mm(g, a, True, True)
    rows = _weight_grad_as_one_gemm(a, b, g, ta, tb)
    return [sum_to_like(ga, a), sum_to_like(gb, b) if rows is None else rows]


def _weight_grad_as_one_gemm(a: Tensor, b: Tensor, g: Tensor, ta: bool, tb: bool) -> Optional[Tensor]:
    """The gradient of a 2-D ``b`` under a batched ``a`` (``(..., M, K) @ (K, N)``, as a
    layer applied to every time step) as one GEMM over all rows, ``a2^T @ g2`` with
    ``a2 = (-1, K)`` and ``g2 = (-1, N)``, instead of one product per batch entry followed
    by their sum (twice the memory traffic, and small GEMMs). None when it does not apply."""
    from graphc.ops.shape import reshape

    if ta or a.shape is None or b.shape is None or g.shape is None or len(b.shape) != 2 \
            or len(a.shape) <= 2:
        return None
    k, n = a.shape[-1], g.shape[-1]
    if not k or not n:  # unknown (or 0: -1 would be ambiguous)
        return None
    a2, g2 = reshape(a, [-1, k]), reshape(g, [-1, n])
    return _mm(g2, a2, True, False) if tb else _mm(a2, g2, True, False)


def _mm(a: Tensor, b: Tensor, ta: bool, tb: bool, name: Optional[str] = None) -> Tensor:
    return apply1("matmul", [a, b], {"transpose_a": bool(ta), "transpose_b": bool(tb)}, name=name)


defop("matmul", kind=Kind.OPAQUE, infer=_infer_matmul, ref=_matmul_ref, vjp=_vjp_matmul,
      doc="a @ b over the last two axes, broadcasting the others")


def matmul(a: Any, b: Any, transpose_a: bool = False, transpose_b: bool = False,
           name: Optional[str] = None) -> Tensor:
    """``a @ b``: batched over leading dims (broadcast), optionally transposing the last two
    axes of either operand first. 1-D operands act as a row (a) or column (b) vector."""
    a, b = promote(a, b)
    squeeze_axes: list[int] = []
    if a.ndim == 1 or b.ndim == 1:
        from graphc.ops.shape import expand_dims, squeeze
    if a.ndim == 1:
        a, transpose_a = expand_dims(a, 0), False
        squeeze_axes.append(-2)
    if b.ndim == 1:
        b, transpose_b = expand_dims(b, -1), False
        squeeze_axes.append(-1)
    out = _mm(a, b, transpose_a, transpose_b, None if squeeze_axes else name)
    return squeeze(out, squeeze_axes, name=name) if squeeze_axes else out

