"""Device arrays a kernel factory keeps from run to run: its extra outputs and scratch.

The runtime's ``alloc`` hands out the buffer of a node's *first* output only. A kernel
that needs more device memory (the other outputs of ``split``, the intermediate folds of
``pad_grad``, an error flag, uploaded index tables) keeps it in a :class:`Scratch` owned by
its ``run`` closure, so a steady-state run allocates nothing, as with the runtime's own
buffers. Sharing one array between runs is safe for the same reason as theirs: a session
runs one step at a time, and a value handed out of a run (fetched, written to a variable)
is copied by the runtime when it is not an array of its own.
"""

from __future__ import annotations

from typing import Any, Hashable

import numpy as np

from .device import cuda

__all__ = ["Scratch"]


class Scratch:
    """``get(key, shape, dtype)``: the device array kept under ``key``, reallocated only when
    the shape or dtype asked for changes (contents undefined)."""

    def __init__(self) -> None:
        self.arrays: dict[Hashable, Any] = {}

    def get(self, key: Hashable, shape: tuple, dtype: Any) -> Any:
        """A device array of ``shape`` and ``dtype`` for ``key``."""
        array = self.arrays.get(key)
        if array is None or tuple(array.shape) != tuple(shape) or array.dtype != dtype:
            array = self.arrays[key] = cuda.device_array(tuple(shape), np.dtype(dtype))
        return array

    def upload(self, key: Hashable, host: np.ndarray) -> Any:
        """``host`` copied into the device array kept under ``key`` (same shape and dtype)."""
        array = self.get(key, host.shape, host.dtype)
        if host.size:
            array.copy_to_device(host if host.flags.c_contiguous else host.copy())
        return array
