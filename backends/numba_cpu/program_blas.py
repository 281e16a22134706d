"""The compiled programs' GEMM: :func:`.loop_blas.gemm`, but GEMV for a single row or column.

At batch 1 every product of an inference is a vector times a matrix. NumPy's ``matmul``
sends those to ``sgemv``; OpenBLAS's ``sgemm`` with ``M = 1`` is much slower: (1, 784) @
(784, 512) took 114 us through :func:`.loop_blas.gemm` from ``@njit`` code against 34 us
for ``np.matmul`` and 33 us for Numba's ``np.dot`` of a vector by the matrix (GEMV), which
is what :func:`gemm` calls when the product has one row or one column. Such an operand is
one contiguous vector whether or not it is transposed, so no copy is needed.

The generated programs carry :data:`STAMP` (a hash of this file and of loop_blas's stamp),
so Numba's disk cache never keeps code compiled against an older version of it.
"""

from __future__ import annotations

import hashlib

import numba
import numpy as np

from . import loop_blas

__all__ = ["STAMP", "gemm"]


def _stamp() -> str:
    with open(__file__, "rb") as f:
        return f"{loop_blas.STAMP} {hashlib.sha256(f.read()).hexdigest()[:16]}"


#: What the generated programs write into their source (the kernel cache key follows it).
STAMP = _stamp()


@numba.njit(cache=True, nogil=True, error_model="numpy")
def gemm(a, b, out, ta, tb):
    """``out = op(a) @ op(b)`` as :func:`.loop_blas.gemm`; GEMV when ``out`` is one row
    (``op(a)`` is then a vector) or one column (``op(b)`` is), for C-ordered operands."""
    m, n = out.shape
    k = a.shape[0] if ta else a.shape[1]
    if k > 0 and a.flags.c_contiguous and b.flags.c_contiguous and out.flags.c_contiguous:
        if m == 1 and n > 1:
            v, o = a.reshape(k), out.reshape(n)
            if tb:
                np.dot(b, v, o)
            else:
                np.dot(v, b, o)
            return
        if n == 1 and m > 1:
            v, o = b.reshape(k), out.reshape(m)
            if ta:
                np.dot(v, a, o)
            else:
                np.dot(a, v, o)
            return
    loop_blas.gemm(a, b, out, ta, tb)
