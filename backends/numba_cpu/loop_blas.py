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

A product with one row or one column (every GEMM of an inference at batch 1) calls
``cblas_?gemv`` the same way: ``(1, 784) @ (784, 512)`` took 114 us as an sgemm with
M = 1 and 33 us as a GEMV. Operands that are not C-contiguous are copied first, so no
path types Numba's ``np.dot``: typing it imports ``scipy.linalg`` (~0.12 s, see
:mod:`.numba_start`) into every process that compiles or runs a program or a scan loop.

Without such a library (another NumPy build), for other dtypes, and from Python,
:func:`gemm` is ``np.dot``. :data:`BLAS` names the choice; the generated loops carry it
and a hash of this file (:data:`STAMP`), so the kernel cache never mixes the two.
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

__all__ = ["BLAS", "STAMP", "blas_threads", "gemm"]

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
# NumPy's routine name -> the symbol LLVM knows it by
_SYMBOLS = {f"{p}{r}": f"graphc_loop_cblas_{p}{r}" for p in "sd" for r in ("gemm", "gemv")}


def _numpy_openblas() -> Optional[ctypes.CDLL]:
    """Register NumPy's ILP64 ``cblas_?gemm``/``cblas_?gemv``; the library, or None."""
    root = os.path.dirname(os.path.dirname(np.__file__))
    for path in sorted(glob.glob(os.path.join(root, "numpy.libs", "libscipy_openblas64_*"))):
        try:
            lib = ctypes.CDLL(path)
            found = {r: getattr(lib, f"scipy_cblas_{r}64_") for r in _SYMBOLS}
        except (OSError, AttributeError):
            continue
        for r, fn in found.items():
            llvm.add_symbol(_SYMBOLS[r], ctypes.cast(fn, ctypes.c_void_p).value)
        return lib
    return None


_NO_BLAS = "numba-np.dot"
_LIB = _numpy_openblas()
BLAS: str = os.path.basename(_LIB._name) if _LIB is not None else _NO_BLAS


def _thread_setters() -> Optional[tuple]:
    """NumPy's OpenBLAS ``(get_num_threads, set_num_threads)``, or None."""
    try:
        get, put = (_LIB.scipy_openblas_get_num_threads64_,
                    _LIB.scipy_openblas_set_num_threads64_)
    except AttributeError:  # (also: _LIB is None)
        return None
    get.restype, put.argtypes = ctypes.c_int, [ctypes.c_int]
    return get, put


_THREADS = _thread_setters()


def blas_threads(count: Optional[int] = None) -> Optional[int]:
    """The thread count of the GEMMs of :func:`gemm` (NumPy's OpenBLAS), set to ``count``
    first when given: the previous count, or None when it cannot be controlled (another
    BLAS). The count is process-wide (OpenBLAS's pthreads build)."""
    if _THREADS is None:
        return None
    previous = _THREADS[0]()
    if count is not None and count != previous:
        _THREADS[1](count)
    return previous


def _stamp() -> str:
    with open(__file__, "rb") as f:
        return f"{BLAS} {hashlib.sha256(f.read()).hexdigest()[:16]}"


#: What the generated loops write into their source (the kernel cache key follows it).
STAMP = _stamp()


def _gemm_signature(t: types.Type) -> types.Signature:
    i64, i32 = types.int64, types.int32
    return types.void(i32, i32, i32, i64, i64, i64, t, types.voidptr, i64, types.voidptr,
                      i64, t, types.voidptr, i64)


def _gemv_signature(t: types.Type) -> types.Signature:
    i64, i32 = types.int64, types.int32
    return types.void(i32, i32, i64, i64, t, types.voidptr, i64, types.voidptr, i64, t,
                      types.voidptr, i64)


_EXTERNAL = {dt: (types.ExternalFunction(_SYMBOLS[f"{p}gemm"], _gemm_signature(dt)),
                  types.ExternalFunction(_SYMBOLS[f"{p}gemv"], _gemv_signature(dt)))
             for p, dt in (("s", types.float32), ("d", types.float64))}
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


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray, ta: bool, tb: bool) -> None:
    """``out = op(a) @ op(b)`` (``op`` transposes when ``ta``/``tb``) for 2-D float32 or
    float64 arrays of one dtype, ``out`` not overlapping the operands. Callable from
    ``@njit`` code (NumPy's cblas when :data:`BLAS` found it) and from Python."""
    _dot(a, b, out, ta, tb)


@overload(gemm, jit_options=_OPTS)
def _gemm_typed(a, b, out, ta, tb):
    if BLAS == _NO_BLAS or out.dtype not in _EXTERNAL:
        return lambda a, b, out, ta, tb: _dot(a, b, out, ta, tb)
    ext, ext_v = _EXTERNAL[out.dtype]
    one, zero = out.dtype(1.0), out.dtype(0.0)
    # ascontiguousarray returns a C- or A-typed array itself when it is C-ordered at run
    # time, but copies an F-typed one: the result must then go through the temporary.
    out_f = out.layout == "F"

    def cblas(a, b, out, ta, tb):
        m, n = out.shape
        k = a.shape[0] if ta else a.shape[1]
        if m == 0 or n == 0:
            return
        if k == 0:  # BLAS leaves C alone when there is nothing to add (a zero batch)
            out[:] = 0
            return
        ac, bc = np.ascontiguousarray(a), np.ascontiguousarray(b)
        direct = out.flags.c_contiguous and not out_f
        oc = np.ascontiguousarray(out) if direct else np.empty((m, n), out.dtype)
        # Row-major: the leading dimension is the row length (>= 1, else BLAS refuses).
        if m == 1 or n == 1:
            # One row of op(a) (y = op(b)^T v) or one column of op(b) (y = op(a) w): a
            # GEMV of the other operand as stored, (rows, cols) row-major.
            row = m == 1
            mat = bc.ctypes.data if row else ac.ctypes.data
            vec = ac.ctypes.data if row else bc.ctypes.data
            rows, cols = bc.shape if row else ac.shape
            flip = not tb if row else ta
            ext_v(_ROW_MAJOR, _TRANS if flip else _NO_TRANS, rows, cols, one, mat,
                  max(cols, 1), vec, 1, zero, oc.ctypes.data, 1)
        else:
            ext(_ROW_MAJOR, _TRANS if ta else _NO_TRANS, _TRANS if tb else _NO_TRANS, m, n,
                k, one, ac.ctypes.data, max(ac.shape[1], 1), bc.ctypes.data,
                max(bc.shape[1], 1), zero, oc.ctypes.data, n)
        if not direct:
            out[:] = oc
    return cblas
