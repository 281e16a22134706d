"""GEMM for the compiled scan loops, through NumPy's own OpenBLAS when it ships one.

Numba's ``np.dot`` calls the BLAS of SciPy (``scipy.linalg.cython_blas``). With the wheels
this project runs on that is SciPy's OpenBLAS 0.3.30, which took 82 us for the LSTM's
per-step ``(32, 128) @ (128, 512)`` on one thread where NumPy's bundled OpenBLAS 0.3.31
(``libscipy_openblas64_``) took 56 us, called from the same ``@njit`` loop (the large
``(1024, 128) @ (128, 512)`` is the same in both, 1.5 ms). A scan runs one such GEMM per
step, so :func:`gemm` calls NumPy's ``cblas_?gemm`` (ILP64) directly: its address is
registered with LLVM under a fixed symbol name (``llvmlite.binding.add_symbol``), which
keeps the callers cacheable on disk (a ctypes pointer would not be). It also keeps a
single OpenBLAS thread pool busy in the process (graphc's other GEMMs run on NumPy's), not
two that spin against each other.

Without such a library (another NumPy build), for operands that are not C-contiguous, and
from Python, :func:`gemm` is ``np.dot``. :data:`BLAS` names the choice; the generated loops carry it and
a hash of this file (:data:`STAMP`), so the kernel cache never mixes the two.
"""

from __future__ import annotations

import ctypes
import glob
import hashlib
import os
from typing import Optional

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import types
from numba.extending import overload

__all__ = ["BLAS", "STAMP", "gemm"]

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_SYMBOLS = {"s": "graphc_loop_cblas_sgemm", "d": "graphc_loop_cblas_dgemm"}


def _numpy_openblas() -> Optional[str]:
    """Register NumPy's ILP64 ``cblas_sgemm``/``cblas_dgemm``; the library's name, or None."""
    root = os.path.dirname(os.path.dirname(np.__file__))
    for path in sorted(glob.glob(os.path.join(root, "numpy.libs", "libscipy_openblas64_*"))):
        try:
            lib = ctypes.CDLL(path)
            found = {p: getattr(lib, f"scipy_cblas_{p}gemm64_") for p in _SYMBOLS}
        except (OSError, AttributeError):
            continue
        for p, fn in found.items():
            llvm.add_symbol(_SYMBOLS[p], ctypes.cast(fn, ctypes.c_void_p).value)
        return os.path.basename(path)
    return None


_NO_BLAS = "numba-np.dot"
BLAS: str = _numpy_openblas() or _NO_BLAS


def _stamp() -> str:
    with open(__file__, "rb") as f:
        return f"{BLAS} {hashlib.sha256(f.read()).hexdigest()[:16]}"


#: What the generated loops write into their source (the kernel cache key follows it).
STAMP = _stamp()


def _signature(t: types.Type) -> types.Signature:
    i64, i32 = types.int64, types.int32
    return types.void(i32, i32, i32, i64, i64, i64, t, types.voidptr, i64, types.voidptr,
                      i64, t, types.voidptr, i64)


_sgemm = types.ExternalFunction(_SYMBOLS["s"], _signature(types.float32))
_dgemm = types.ExternalFunction(_SYMBOLS["d"], _signature(types.float64))
_OPTS = {"cache": True, "nogil": True, "error_model": "numpy"}


@numba.njit(**_OPTS)
def _dot(a, b, out, ta, tb):
    # One call per case: ``a.T if ta else a`` would unify C and F order into an 'A'
    # array, for which Numba warns (and takes a slower path).
    if ta and tb:
        np.dot(a.T, b.T, out)
    elif ta:
        np.dot(a.T, b, out)
    elif tb:
        np.dot(a, b.T, out)
    else:
        np.dot(a, b, out)


@numba.njit(**_OPTS)
def _gemv(a, b, out, ta, tb):
    # At batch 1 every product is a vector times a matrix: (1, 784) @ (784, 512) took
    # 114 us through cblas_sgemm from @njit code, 33 us as a GEMV (Numba's np.dot of a
    # vector by a matrix). A one-row or one-column C-ordered operand is one contiguous
    # vector whether or not it is transposed, so no copy is needed.
    # (ascontiguousarray only types the operands as C-ordered for reshape: the caller
    # checked at run time that they are, so no copy is made)
    a, b, out = np.ascontiguousarray(a), np.ascontiguousarray(b), np.ascontiguousarray(out)
    m, n = out.shape
    k = a.shape[0] if ta else a.shape[1]
    if m == 1:  # op(a) is one row
        v, o = a.reshape(k), out.reshape(n)
        if tb:
            np.dot(b, v, o)
        else:
            np.dot(v, b, o)
    elif ta:  # op(b) is one column
        np.dot(b.reshape(k), a, out.reshape(m))
    else:
        np.dot(a, b.reshape(k), out.reshape(m))


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray, ta: bool, tb: bool) -> None:
    """``out = op(a) @ op(b)`` (``op`` transposes when ``ta``/``tb``) for 2-D float32 or
    float64 arrays of one dtype, ``out`` not overlapping the operands. Callable from
    ``@njit`` code (NumPy's cblas when :data:`BLAS` found it) and from Python."""
    _dot(a, b, out, ta, tb)


@overload(gemm, jit_options=_OPTS)
def _gemm_typed(a, b, out, ta, tb):
    ext = {types.float32: _sgemm, types.float64: _dgemm}.get(out.dtype)
    if BLAS == _NO_BLAS or ext is None:
        return lambda a, b, out, ta, tb: _dot(a, b, out, ta, tb)
    one, zero = out.dtype(1.0), out.dtype(0.0)
    # _gemv's ascontiguousarray(out) returns ``out`` itself for C or A (run-time
    # contiguous) arrays, but a copy for an F-typed one: its result would be lost
    gemv = out.layout != "F"

    def cblas(a, b, out, ta, tb):
        m, n = out.shape
        k = a.shape[0] if ta else a.shape[1]
        if not (a.flags.c_contiguous and b.flags.c_contiguous and out.flags.c_contiguous):
            _dot(a, b, out, ta, tb)
            return
        if m == 0 or n == 0:
            return
        if k == 0:  # BLAS leaves C alone when there is nothing to add (a zero batch)
            out[:] = 0
            return
        if gemv and (m == 1 or n == 1):  # a vector: GEMV (sgemm with M = 1 was 3x slower)
            _gemv(a, b, out, ta, tb)
            return
        # Row-major: the leading dimension is the row length (>= 1, else BLAS refuses).
        ext(_ROW_MAJOR, _TRANS if ta else _NO_TRANS, _TRANS if tb else _NO_TRANS, m, n, k,
            one, a.ctypes.data, max(a.shape[1], 1), b.ctypes.data, max(b.shape[1], 1),
            zero, out.ctypes.data, n)
    return cblas
