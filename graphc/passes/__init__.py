"""Graph rewrite passes, one per file, and the ordered :data:`DEFAULT_PIPELINE`.

A pass is a function ``IR -> PassResult``: it rewrites the program's internal IR copy
(:mod:`graphc.passes.ir`; the user's Graph is never touched) and reports what it changed.
:func:`run_pipeline` runs a list of passes, re-infers every node after each one when asked
(:func:`~graphc.passes.ir.verify`; always in tests, ``GRAPHC_DEBUG=verify`` for users) and
prints the reports for ``GRAPHC_DEBUG=passes``.

Order: simplification exposes constants and duplicates, folding and CSE remove them (run
twice, as each enables the other), scans that only differ by extra outputs merge (once CSE
has made their inputs the same nodes; what they leave behind is dead), dead code goes, then
fusion groups what is left and memory planning places the groups' results.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Optional, Sequence

from graphc.passes.eliminate_common import eliminate_common
from graphc.passes.eliminate_dead import eliminate_dead
from graphc.passes.fold_constants import fold_constants
from graphc.passes.fuse_elementwise import fuse_elementwise
from graphc.passes.ir import IR, PassResult, from_program, verify
from graphc.passes.merge_scans import merge_scans
from graphc.passes.plan_memory import plan_memory
from graphc.passes.simplify_algebra import simplify_algebra

__all__ = ["DEFAULT_PIPELINE", "LOWERING_ONLY", "Pass", "run_pipeline", "debug_flags",
           "fold_constants", "eliminate_common", "simplify_algebra", "eliminate_dead",
           "fuse_elementwise", "plan_memory", "merge_scans", "IR", "PassResult", "from_program",
           "verify"]

Pass = Callable[[IR], PassResult]

DEFAULT_PIPELINE: list[Pass] = [
    simplify_algebra,
    fold_constants,
    eliminate_common,
    simplify_algebra,
    fold_constants,
    eliminate_common,
    merge_scans,
    eliminate_dead,
    fuse_elementwise,
    plan_memory,
]

# What a backend still needs with the optimizations off: only dead-code removal (the
# program is already pruned; this drops nothing but keeps the shape of the pipeline).
LOWERING_ONLY: list[Pass] = [eliminate_dead]


def debug_flags() -> set[str]:
    """The comma-separated words of ``GRAPHC_DEBUG`` (passes, nodes, verify)."""
    return {w.strip() for w in os.environ.get("GRAPHC_DEBUG", "").split(",") if w.strip()}


def run_pipeline(ir: IR, passes: Optional[Sequence[Pass]] = None, *, check: Optional[bool] = None,
                 explain: Optional[bool] = None) -> list[PassResult]:
    """Run ``passes`` (default :data:`DEFAULT_PIPELINE`) over ``ir`` in place.

    ``check`` re-infers every node after each pass (default: ``GRAPHC_DEBUG=verify``);
    ``explain`` prints each pass's report to stderr (default: ``GRAPHC_DEBUG=passes``).
    """
    flags = debug_flags()
    check = "verify" in flags if check is None else check
    explain = "passes" in flags if explain is None else explain
    reports = []
    for p in DEFAULT_PIPELINE if passes is None else passes:
        report = p(ir)
        reports.append(report)
        if check:
            verify(ir)
    if explain:
        print(format_reports(reports), file=sys.stderr)
    return reports


def format_reports(reports: Sequence[PassResult]) -> str:
    """The pass reports as text, one block per pass that changed something."""
    lines = []
    for r in reports:
        lines.append(f"[{r.name}] {len(r.changes)} change(s)")
        lines.extend(f"    {c}" for c in r.changes)
    return "\n".join(lines)
