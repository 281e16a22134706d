"""Numba's one-time start, without the SciPy import it does not need yet.

Numba's first compile or cache load in a process "refreshes" its CPU target: it imports
and installs its typing and lowering registries (~0.17 s on the 2-core machine). One of
them, ``numba.np.arraymath``, checks at import time that SciPy's BLAS is there by
*importing* ``scipy.linalg.cython_blas``, which imports all of ``scipy.linalg`` (its
docstring parser, ``numpy.f2py``, ``numpy.testing``...): another ~0.12 s, a quarter of a
warm compile of the MLP step, which never calls SciPy (its GEMMs are NumPy's
``np.matmul``).

:func:`start` runs that refresh once with a placeholder module standing in for
``scipy.linalg.cython_blas`` (only when the real extension module's file is there), and
removes the placeholder right after: arraymath's check passes as it would have, without
the import. Nothing else changes: the BLAS-backed ``np.dot`` implementations are
registered as before, in the same order (the registries load as Numba orders them);
typing ``np.dot`` in a kernel calls Numba's ``ensure_blas`` again, which then imports
SciPy for real; a cached kernel that calls BLAS binds ``cython_blas`` on its first call
(Numba's helper library imports it, holding the GIL). Numba's LP64/ILP64 guard still runs
(it reads ``scipy.__config__``: the top-level ``scipy`` package, ~12 ms).

Any surprise (SciPy absent, ``scipy.linalg`` or Numba's registries already loaded) falls
back to Numba's ordinary start.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import threading
import types

__all__ = ["start"]

_LOCK = threading.Lock()
_started = False


def _cython_blas_present() -> bool:
    """Whether ``scipy.linalg.cython_blas`` is installed, without importing scipy.linalg."""
    spec = importlib.util.find_spec("scipy")
    if spec is None or not spec.submodule_search_locations:
        return False
    for root in spec.submodule_search_locations:
        folder = os.path.join(root, "linalg")
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            if os.path.isfile(os.path.join(folder, "cython_blas" + suffix)):
                return True
    return False


def start() -> None:
    """Initialize Numba's CPU target now (once per process), skipping the eager import of
    ``scipy.linalg`` (see the module docstring). Safe to call from any thread."""
    global _started
    if _started:
        return
    with _LOCK:
        if _started:
            return
        _refresh()
        _started = True


def _refresh() -> None:
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.registry import cpu_target

    name = "scipy.linalg.cython_blas"
    # Numba's compiler lock: no compile or cache load of another thread (whose typing of
    # np.dot would import the name) runs while the stand-in is there.
    with global_compiler_lock:
        stand_in = None
        if (name not in sys.modules and "scipy.linalg" not in sys.modules
                and "numba.np.arraymath" not in sys.modules and _cython_blas_present()):
            # Held only while the registries load: nothing keeps a reference to it (the
            # check only imports the name); the real module is imported when needed.
            stand_in = sys.modules[name] = types.ModuleType(name)
        try:
            cpu_target.target_context.refresh()
        finally:
            if stand_in is not None and sys.modules.get(name) is stand_in:
                del sys.modules[name]
