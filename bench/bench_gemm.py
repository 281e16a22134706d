"""The BLAS floor of the MLP benchmark: its 8 GEMMs alone, NumPy's BLAS (what graphc's cpu
target calls) vs PyTorch's, each in its own process.

    python bench/bench_gemm.py

One call runs the forward GEMMs (x@W1, h1@W2, h2@W3) and the backward ones (three weight
gradients, two input gradients; none for the fed x) of the 784-512-512-10 MLP at batch
128. A training step cannot be faster than this call, whatever surrounds it.
"""

from __future__ import annotations

import sys

import common
import numpy as np

SIZES = (128, 784, 512, 512, 10)


def _shapes() -> list[tuple[tuple, tuple, bool, bool]]:
    """(a shape, b shape, transpose a, transpose b) of each GEMM."""
    n, dims = SIZES[0], SIZES[1:]
    out = []
    for i, o in zip(dims[:-1], dims[1:]):
        out.append(((n, i), (i, o), False, False))      # forward
        out.append(((n, i), (n, o), True, False))       # weight gradient x^T @ g
        if i != dims[0]:
            out.append(((n, o), (i, o), False, True))   # input gradient g @ W^T
    return out


def _numpy_call():
    rng = np.random.default_rng(0)
    ops = []
    for sa, sb, ta, tb in _shapes():
        a, b = rng.random(sa, np.float32), rng.random(sb, np.float32)
        a, b = (a.T if ta else a), (b.T if tb else b)
        ops.append((a, b, np.empty((a.shape[0], b.shape[1]), np.float32)))

    def call():
        for a, b, out in ops:
            np.matmul(a, b, out=out)
    return call


def _torch_call():
    import torch

    common.torch_threads()
    ops = []
    for sa, sb, ta, tb in _shapes():
        a, b = torch.rand(sa), torch.rand(sb)
        a, b = (a.t() if ta else a), (b.t() if tb else b)
        ops.append((a, b, torch.empty((a.shape[0], b.shape[1]))))

    def call():
        for a, b, out in ops:
            torch.matmul(a, b, out=out)
    return call


CASES = {"mlp_gemms": lambda: common.Case("MLP's 8 GEMMs (b128)", "torch", _numpy_call,
                                           _torch_call, number=20)}

if __name__ == "__main__":
    common.run_cases(CASES, sys.argv[1:])
