"""The thread pool behind graphc's parallel kernels, chosen so it never fights BLAS.

On a machine with few cores, two busy-waiting thread pools in one process take turns at
the cores instead of working: NumPy's OpenBLAS keeps its workers spinning for a while after
each GEMM, and Numba's default OpenMP layer (GNU libgomp, actively waiting by default) does
the same after each parallel loop. On the 2-core benchmark machine that made a training
step 3-6x slower than the same step on one thread. Numba's ``workqueue`` layer parks its
workers on a condition variable, so it yields the cores to BLAS as soon as a loop ends and
it does not share (or reconfigure) the OpenMP pool that PyTorch or other libraries in the
same process use.

``workqueue`` must not be entered by two threads at once (Numba aborts the process), so
every parallel launch of graphc goes through :data:`PARALLEL_LOCK`. A user who sets
``NUMBA_THREADING_LAYER`` keeps their choice; so does a process whose Numba pool already
started before graphc ran a parallel kernel.
"""

from __future__ import annotations

import os
import threading

import numba
from numba.np.ufunc import parallel as _numba_parallel

__all__ = ["PARALLEL_LOCK", "choose_threading_layer"]

#: Held around every parallel kernel launch (see the module docstring).
PARALLEL_LOCK = threading.Lock()


def choose_threading_layer() -> None:
    """Select the ``workqueue`` layer unless the user chose one or the pool is running."""
    if os.environ.get("NUMBA_THREADING_LAYER") or _numba_parallel._is_initialized:
        return
    numba.config.THREADING_LAYER = "workqueue"
