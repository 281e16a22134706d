"""The ``cpu`` target: graph passes, then generated Numba kernels, BLAS and NumPy.

``compile(program)`` lowers the program (:mod:`graphc.lower`: the pass pipeline over an IR
copy, then one step per fused group or node) and returns an
:class:`~graphc.backends.numba_cpu.runtime.Executable`. Fused elementwise groups become
generated Numba loops (:mod:`.codegen`, vectorized float32 transcendentals from
:mod:`.fastmath`, cached on disk by :mod:`.cache`); GEMM goes to BLAS (:mod:`.kernels`);
convolution is blocked im2col + BLAS, or direct loops for few input taps
(:mod:`.conv_kernels`); pooling (:mod:`.pool_kernels`, 2x2 windows in :mod:`.pool_2x2`;
:mod:`.avg_pool_kernels`), reductions and broadcast helpers (:mod:`.reduce_kernels`) and
softmax cross-entropy and its gradient (:mod:`.loss_kernels`) are Numba loops; a ``scan``
runs as one generated Numba function per loop (:mod:`.scan_loop`) when its body allows; the
ops listed in :data:`.kernels.FALLBACK` run their NumPy reference. An inference plan runs as
one generated Numba function when every step has an emitter (:mod:`.program_codegen`), and
as blocks of the batch's rows on several threads when its rows are independent and it
has convolution or pooling work (:mod:`.sample_rows`, :mod:`.block_threads`);
:func:`explain_plan` says which. Parallel loops use Numba's workqueue layer (:mod:`.threads`). Numba's target starts at the first compile
(:mod:`.numba_start`: without the import of SciPy's linear algebra that only
``np.dot``-in-``@njit`` kernels use).

Environment: ``GRAPHC_CACHE_DIR`` (kernel cache), ``GRAPHC_DEBUG=passes`` (print the pass
reports), ``verify`` (re-infer after each pass), ``nodes`` (no fusion; check every node's
result for NaN/Inf and name the first that has one), ``GRAPHC_PASSES=0`` (no optimization).
"""

from __future__ import annotations

import os
from typing import Optional

from graphc.lower import Plan, lower
from graphc.passes import debug_flags
from graphc.program import Program

from .cache import COUNTERS, cache_dir, reset_counters
from . import avg_pool_kernels, conv_kernels, loss_kernels, pool_kernels  # noqa: F401
from . import reduce_kernels, view_kernels  # noqa: F401 (kernels)
from .kernels import FALLBACK, LIBRARY
from .numba_start import start as _start_numba
from .runtime import Executable

__all__ = ["compile", "Executable", "COUNTERS", "cache_dir", "reset_counters", "FALLBACK",
           "LIBRARY", "explain_plan"]


def compile(program: Program, *, optimize: Optional[bool] = None,  # noqa: A001
            explain: Optional[bool] = None) -> Executable:
    """Compile ``program`` for the CPU. ``optimize=False`` (or ``GRAPHC_PASSES=0``) skips
    the optimization passes: every node runs on its own."""
    flags = debug_flags()
    nodes = "nodes" in flags
    if optimize is None:
        optimize = os.environ.get("GRAPHC_PASSES", "1") != "0"
    # Numba's target starts once per process, at the first kernel load or compile; started
    # here it skips the SciPy import that only np.dot-in-@njit kernels need (numba_start).
    _start_numba()
    plan = lower(program, LIBRARY, fuse=optimize and not nodes, explain=explain)
    return Executable(plan, check_nodes=nodes)


def explain_plan(plan: Plan) -> list[str]:
    """How this target runs ``plan``, for ``graphc compile --explain``: as one compiled
    function (and in row blocks on several threads), or step by step, and why."""
    from numba import config

    from .program_codegen import Unsupported, generate_program
    from .sample_rows import sample_rows

    try:
        generate_program(plan)
    except Unsupported as why:
        return [f"runs step by step ({why})"]
    rows = sample_rows(plan)
    if rows is None:
        return ["runs as one compiled function"]
    return [f"runs as one compiled function, in blocks of the batch's rows on up to "
            f"{config.NUMBA_NUM_THREADS} threads (rows are independent; {rows.work:,} "
            "multiply-adds of convolution and pooling per row)"]
