"""GEMM on the device (``matmul``): a tiled shared-memory kernel, or cuBLAS when faster.

Each block computes a TILE x TILE tile of ``out[b]``; the threads stage TILE x TILE tiles
of ``a`` and ``b`` in shared memory, one element each, and accumulate their output element
in float64 (so float32 results are at least as accurate as BLAS's). Transposes are
compile-time flags of the kernel (the tile loads read the other index order), so a
transposed operand is never copied. Batches run on the grid's z axis; a batch of one
broadcasts against the other operand's batch. Kernels are built per (dtype, ta, tb).

float32/float64 only; other dtypes, and batch shapes that broadcast in other ways, take the
host fallback (``run`` returns None). :func:`gemm`, which the ``matmul`` kernel and the
convolutions call, runs per shape the faster of this kernel and cuBLAS through CuPy when
CuPy is installed (:mod:`.gemm_choice`).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numba
import numpy as np

from .device import cuda, simulated
from .gemm_choice import FastestGemm
from .kernels import Alloc, lower

__all__ = ["tile_size", "matmul_kernel", "tiled_gemm", "gemm", "FASTEST"]

_KERNELS: dict[tuple, Any] = {}


def tile_size() -> int:
    """Tile edge: 16 on a GPU (256 threads); 4 in the simulator (a thread is a Python thread)."""
    return 4 if simulated() else 16


def matmul_kernel(dtype: Any, ta: bool, tb: bool) -> Any:
    """The GEMM kernel for ``dtype`` (float32/float64) and the transpose flags."""
    key = (np.dtype(dtype).name, ta, tb)
    kernel = _KERNELS.get(key)
    if kernel is None:
        kernel = _KERNELS[key] = _build(numba.from_dtype(np.dtype(dtype)), ta, tb, tile_size())
    return kernel


def _build(elem: Any, ta: bool, tb: bool, tile: int) -> Any:
    @cuda.jit
    def gemm_tiles(out, a, b):
        sa = cuda.shared.array((tile, tile), elem)
        sb = cuda.shared.array((tile, tile), elem)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        m, n = out.shape[1], out.shape[2]
        k_dim = a.shape[1] if ta else a.shape[2]
        row = cuda.blockIdx.y * tile + ty
        col = cuda.blockIdx.x * tile + tx
        batch = cuda.blockIdx.z
        while batch < out.shape[0]:
            ba = batch if a.shape[0] > 1 else 0
            bb = batch if b.shape[0] > 1 else 0
            acc = 0.0
            for t in range((k_dim + tile - 1) // tile):
                k = t * tile + tx
                if row < m and k < k_dim:
                    sa[ty, tx] = a[ba, k, row] if ta else a[ba, row, k]
                else:
                    sa[ty, tx] = 0
                k = t * tile + ty
                if col < n and k < k_dim:
                    sb[ty, tx] = b[bb, col, k] if tb else b[bb, k, col]
                else:
                    sb[ty, tx] = 0
                cuda.syncthreads()
                for j in range(tile):
                    acc += sa[ty, j] * sb[j, tx]
                cuda.syncthreads()
            if row < m and col < n:
                out[batch, row, col] = acc
            batch += cuda.gridDim.z
    return gemm_tiles


def tiled_gemm(a: Any, b: Any, out: Any, ta: bool, tb: bool) -> None:
    """``out[i] = op(a[i]) @ op(b[i])`` on 3-D device arrays (batch of 1 broadcasts) by
    the tiled kernel."""
    tile = tile_size()
    m, n = out.shape[1], out.shape[2]
    grid = (max(1, -(-n // tile)), max(1, -(-m // tile)), max(1, min(out.shape[0], 65535)))
    matmul_kernel(out.dtype, ta, tb)[grid, (tile, tile)](out, a, b)


#: The GEMM chooser of this process (its ``choice`` says which GEMM each shape got).
FASTEST = FastestGemm(tiled_gemm)


def gemm(a: Any, b: Any, out: Any, ta: bool, tb: bool) -> None:
    """``out[i] = op(a[i]) @ op(b[i])`` on 3-D device arrays (batch of 1 broadcasts), by
    the faster of the tiled kernel and cuBLAS for these shapes."""
    FASTEST(a, b, out, ta, tb)


def _batch3(x: Any, lead: tuple) -> Any:
    # The leading dims collapsed into one (a view: device arrays are contiguous).
    return x.reshape((math.prod(lead),) + tuple(x.shape)[-2:])


@lower("matmul")
def _matmul(node: Any) -> Callable[[list, Alloc, int], Any]:
    ta, tb = node.attrs["transpose_a"], node.attrs["transpose_b"]
    dtype = node.specs[0].dtype.np

    def run(args: list, alloc: Alloc, step: int) -> Any:
        a, b = args
        sa, sb = tuple(a.shape), tuple(b.shape)  # the simulator's shapes index only from 0
        if dtype not in (np.float32, np.float64) or a.ndim < 2 or b.ndim < 2:
            return None
        la, lb = sa[:-2], sb[:-2]
        lead = np.broadcast_shapes(la, lb)
        if not all(x == lead or math.prod(x) == 1 for x in (la, lb)):
            return None  # mixed batch broadcasting: the host does it
        m = sa[-1] if ta else sa[-2]
        n = sb[-2] if tb else sb[-1]
        out = alloc(lead + (m, n), dtype)
        if out.size:
            gemm(_batch3(a, la), _batch3(b, lb), _batch3(out, lead), ta, tb)
        return out
    return run
