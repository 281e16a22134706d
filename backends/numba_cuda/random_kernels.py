"""Random draws on the device, with the reference's exact numbers.

The kernels call :mod:`graphc.random_bits`'s scalar functions compiled as CUDA device
functions (``compile_scalars(cuda.jit(device=True))``): element ``i`` of a draw is a pure
function of (seed, stream, step, i), so each thread computes its elements alone and the
uniforms are bit-identical to the reference's (normals to the ulp of float64 log/cos, see
the random_bits docstring). float16 draws take the host fallback.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from graphc import random_bits

from .device import cuda, launch
from .kernels import Alloc, lower

__all__ = ["draw"]

_SCALARS = random_bits.compile_scalars(cuda.jit(device=True))
_uniform_at = _SCALARS.uniform_at
_normal_at = _SCALARS.normal_at


@cuda.jit
def _uniform_kernel(out, seed, stream, step, nbits):
    i = cuda.grid(1)
    while i < out.shape[0]:
        out[i] = _uniform_at(np.uint64(i), seed, stream, step, nbits)
        i += cuda.gridsize(1)


@cuda.jit
def _normal_kernel(out, seed, stream, step, nbits):
    i = cuda.grid(1)
    while i < out.shape[0]:
        out[i] = _normal_at(np.uint64(i), seed, stream, step, nbits)
        i += cuda.gridsize(1)


def draw(kind: str, out: Any, seed: int, stream: int, step: int) -> None:
    """Fill the device array ``out`` with draw (seed, stream, step) of ``kind``."""
    n = out.size
    if n == 0:
        return
    random_bits._check(out.shape, seed, stream, step, 1)  # the generator's range limits
    kernel = _uniform_kernel if kind == "uniform" else _normal_kernel
    blocks, threads = launch(n)
    kernel[blocks, threads](out.reshape(n), np.uint64(seed), np.uint64(stream),
                            np.uint64(step), np.int64(random_bits.significand_bits(out.dtype)))


def _random(kind: str) -> Callable[[Any], Callable]:
    def factory(node: Any) -> Callable[[list, Alloc, int], Any]:
        dtype = node.specs[0].dtype.np
        seed, stream, shape = node.attrs["seed"], node.attrs["stream"], node.attrs["shape"]

        def run(args: list, alloc: Alloc, step: int) -> Any:
            if dtype not in (np.float32, np.float64):
                return None
            out = alloc(tuple(args[0].shape) if args else tuple(shape), dtype)
            draw(kind, out, seed, stream, step)
            return out
        return run
    return factory


lower("random_uniform")(_random("uniform"))
lower("random_normal")(_random("normal"))
