"""The device: is there one, how to launch on it, and moving arrays to and from it.

``numba.cuda`` imports without a GPU (its functions only fail when used), so the cuda
target always imports and compiles (lowering, generated sources); :func:`require_gpu` is
called when a program first *runs* and raises a :class:`~graphc.errors.TargetError` saying
no GPU is available, instead of a driver traceback.

Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, read when numba is first imported)
runs kernels in Python threads, one per CUDA thread: correct but slow, so launches there use
small blocks and few of them. Every kernel uses grid-stride loops, so the launch shape never
changes results.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import config, cuda

from graphc.errors import TargetError

__all__ = ["cuda", "simulated", "require_gpu", "launch", "threads_per_block", "to_device",
           "to_host", "is_device", "device_copy", "flat_offset", "broadcast_strides"]


def simulated() -> bool:
    """True under Numba's CUDA simulator."""
    return bool(config.ENABLE_CUDASIM)


_checked: list[bool] = []


def require_gpu() -> None:
    """Raise TargetError unless a CUDA GPU (or the simulator) is usable."""
    if _checked:
        return
    from graphc.bundle_run import gpu_available

    if not gpu_available():
        raise TargetError("the cuda target cannot run: no GPU available (Numba finds no CUDA "
                          "driver or device here); use target='cpu', or set "
                          "NUMBA_ENABLE_CUDASIM=1 to run the kernels in Numba's CUDA simulator")
    _checked.append(True)


def threads_per_block() -> int:
    """Threads per block of the 1-D kernels (a simulated thread is a Python thread)."""
    return 8 if simulated() else 256


def launch(n: int) -> tuple[int, int]:
    """(blocks, threads) covering ``n`` elements with a grid-stride loop."""
    threads = threads_per_block()
    cap = 2 if simulated() else 65535
    return max(1, min(-(-n // threads), cap)), threads


def is_device(value: Any) -> bool:
    """True for a device array (real or simulated)."""
    # The simulator has no cuda.is_cuda_array; both kinds of device array have copy_to_host
    # (the Saver relies on the same attribute).
    return hasattr(value, "copy_to_host") and not isinstance(value, np.ndarray)


def to_device(value: Any) -> Any:
    """``value`` on the device (a contiguous copy of a host array; device arrays as is)."""
    if is_device(value):
        return value
    array = np.asarray(value)
    # Not np.ascontiguousarray: it turns a 0-d array into a 1-d one.
    return cuda.to_device(array if array.flags.c_contiguous else array.copy(order="C"))


def to_host(value: Any) -> np.ndarray:
    """A host array of ``value`` (copied from the device when it lives there)."""
    if is_device(value):
        return value.copy_to_host()
    return np.asarray(value)


def device_copy(value: Any) -> Any:
    """A new device array equal to the device array ``value``."""
    out = cuda.device_array(value.shape, value.dtype)
    if value.size:
        out.copy_to_device(value)
    return out


@cuda.jit(device=True)
def flat_offset(idx, shape, strides):  # noqa: ANN001, ANN201 - a device function
    """The offset ``sum(coord[d] * strides[d])`` of flat C-order index ``idx`` over ``shape``
    (tuples; a length-1 tuple for rank 0, since Numba cannot index an empty one)."""
    off = 0
    for d in range(len(shape) - 1, -1, -1):
        off += (idx % shape[d]) * strides[d]
        idx //= shape[d]
    return off


def broadcast_strides(shape: tuple, out_shape: tuple) -> tuple:
    """Element strides of a contiguous ``shape`` over ``out_shape``: 0 on broadcast dims."""
    lead = len(out_shape) - len(shape)
    strides, acc = [0] * len(out_shape), 1
    for d in range(len(shape) - 1, -1, -1):
        if shape[d] != 1:
            strides[lead + d] = acc
        acc *= shape[d]
    return tuple(strides)
