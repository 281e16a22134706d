"""Device arrays handed out by an executable, taken back once nothing else holds them.

A value a run hands out (a fetched value, a variable's new value, a scan body's new carry)
must be an array of its own: the next run cannot write into a buffer a variable lives in.
Allocating one per value per run put a ``cuMemAlloc`` (and a deferred free) on every
training step for every variable and optimizer slot. :class:`Recycler` keeps the arrays it
made and hands one out again when its last holder has let go of it: the variable's value
of two steps ago, a fetched value already copied to the host, a carry the loop has moved
past. So a training step at steady state allocates nothing, and a variable alternates
between two arrays, as double buffering would.

"Nothing else holds it" is CPython's reference count: of the array (only the recycler's
list) and of its device memory, which every view or reshape of the array references
(Numba's ``gpu_data``; under the simulator, the host array behind it). A count higher than
expected only means "not free": the failure mode is a fresh allocation, never a reuse of
memory that is still in use.
"""

from __future__ import annotations

import sys
from typing import Any

from .device import cuda

__all__ = ["Recycler"]


def _memory(array: Any) -> Any:
    """The object every view of ``array`` holds: its device allocation."""
    return array.gpu_data if hasattr(array, "gpu_data") else array._ary  # (the simulator)


def _free(array: Any) -> bool:
    """True when only the recycler's list and the caller's loop variable hold ``array``."""
    # 4: the list, the loop variable, this parameter and getrefcount's argument; 2: the
    # array's own reference to its memory and the argument.
    return sys.getrefcount(array) == 4 and sys.getrefcount(_memory(array)) == 2


class Recycler:
    """``take(shape, dtype)``: a device array nobody else holds, or a new one. Past ``limit``
    arrays the oldest free ones are dropped (left to Numba's deallocation), so the arrays of
    an earlier batch size are not kept forever."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.arrays: list[Any] = []
        self.allocated = 0  # how many arrays it had to allocate (tests read it)

    def take(self, shape: tuple, dtype: Any) -> Any:
        """A free array of ``shape`` and ``dtype`` (contents undefined)."""
        for array in self.arrays:
            if tuple(array.shape) == shape and array.dtype == dtype and _free(array):
                return array
        if len(self.arrays) >= self.limit:
            self._drop_free(len(self.arrays) - self.limit // 2)
        array = cuda.device_array(shape, dtype)
        self.arrays.append(array)
        self.allocated += 1
        return array

    def _drop_free(self, count: int) -> None:
        keep = []
        for array in self.arrays:
            if count > 0 and _free(array):
                count -= 1
                continue
            keep.append(array)
        self.arrays = keep
