"""The ``cuda`` target: graph passes, then generated Numba CUDA kernels, device-resident.

``compile(program)`` lowers the program exactly as the cpu target does
(:func:`graphc.lower.lower`: the same pass pipeline and fusion groups) and returns an
:class:`~graphc.backends.numba_cuda.runtime.Executable`:

* fused elementwise groups become one generated CUDA kernel each, from the ops' scalar
  formulas (:mod:`.codegen`, sharing :mod:`graphc.kernel_source` with the cpu target);
* ``matmul`` is a tiled shared-memory GEMM (:mod:`.matmul_kernels`); reduce_sum/mean/max/
  min and sum_to_like are block tree reductions (:mod:`.reduce_kernels`); random ops run
  the counter-based Philox generator as device functions (:mod:`.random_kernels`);
  broadcasts and fills are one broadcast-copy kernel (:mod:`.layout_kernels`); sparse
  softmax cross-entropy and one_hot have kernels (:mod:`.loss_kernels`);
  reshape-like ops are device views; ``scan`` runs its loop on the host and each step's
  kernels on the device (:mod:`.scan_kernels`);
* convolutions are im2col + the GEMM kernel, their input gradient a col2im gather
  (:mod:`.conv_kernels`); max/average pooling and their gradients are window kernels, the
  gradients gathers (:mod:`.pool_kernels`); both 2-D, or N-d with two spatial axes;
* layout copies (concat, split, split_like, strided_slice and its gradient, tile and its
  gradient) are one strided region-copy kernel (:mod:`.copy_kernels`), pad and pad_grad a
  mirror/constant kernel and a per-axis fold (:mod:`.pad_kernels`); gather, the
  deterministic scatter_add_like and argmax/argmin have kernels (:mod:`.index_kernels`);
* every other op runs its NumPy reference on the host (copy in, ref, copy back), listed
  with reasons in :data:`.kernels.FALLBACK`.

Variables stay on the device between runs (see :mod:`.runtime`). Compiling needs no GPU
(kernels are compiled by Numba on first launch); running without one raises
``TargetError: ... no GPU available``. Tests run the kernels under Numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``). ``GRAPHC_PASSES=0`` turns the optimization passes off;
``GRAPHC_DEBUG=nodes`` runs every node on its own and names the first that produces a
NaN/Inf (copying each result to the host: slow, for debugging only).
"""

from __future__ import annotations

import os
from typing import Optional

from graphc.lower import lower
from graphc.passes import debug_flags
from graphc.program import Program

from . import (conv_kernels, copy_kernels, index_kernels,  # noqa: F401  (register kernels)
               layout_kernels, loss_kernels, matmul_kernels, pad_kernels, pool_kernels,
               random_kernels, reduce_kernels, scan_kernels)
from .codegen import generate
from .kernels import FALLBACK, LIBRARY, RUNTIME
from .runtime import Executable

__all__ = ["compile", "export_sources", "Executable", "FALLBACK", "LIBRARY", "RUNTIME"]


def compile(program: Program, *, optimize: Optional[bool] = None,  # noqa: A001
            explain: Optional[bool] = None) -> Executable:
    """Compile ``program`` for the GPU. ``optimize=False`` (or ``GRAPHC_PASSES=0``) skips
    the optimization passes: every node runs on its own."""
    nodes = "nodes" in debug_flags()
    if optimize is None:
        optimize = os.environ.get("GRAPHC_PASSES", "1") != "0"
    plan = lower(program, LIBRARY, fuse=optimize and not nodes, explain=explain)
    return Executable(plan, check_nodes=nodes)


def export_sources(program: Program) -> dict[str, str]:
    """File name -> generated source of every fused kernel ``compile(program)`` uses
    (the bundle hook: deterministic for a given program and graphc)."""
    plan = lower(program, LIBRARY)
    return {f"cuda_k{k}.py": generate(step).source
            for k, step in enumerate(s for s in plan.steps if s.kind == "fused")}
