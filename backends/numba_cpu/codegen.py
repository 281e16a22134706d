"""Source generation for fused elementwise groups, from the ops' scalar formulas.

One group becomes one module with four functions over the same loop body: ``flat`` (all
operands contiguous and of the output's shape: one 1-D loop), ``nd`` (broadcasting: nested
loops over the output's rank, inputs pre-broadcast with zero strides) and their
``prange`` twins ``flat_par``/``nd_par`` for outputs large enough to pay for threads. Each
is compiled lazily, for the one signature it will ever see (inputs as read-only 'A'-layout
arrays), so a kernel is specialized on dtypes and rank and never on sizes.

Every intermediate value is rounded to its node's dtype (``np.float32(...)``), as the
reference rounds each op's result, so fusion changes results only by float
reassociation inside ``math`` functions, not by extra precision. The source names nothing
of the user's graph (only op formulas, dtypes, rank and attribute values), so equal groups
in different graphs share one cached kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphc.kernel_source import scalar_body
from graphc.lower import Step

__all__ = ["KernelSource", "generate"]

_PRELUDE = '''import math
import numpy as np
import numba
from numba import prange

_OPTS = dict(cache=True, error_model="numpy", nogil=True)
'''


@dataclass(frozen=True)
class KernelSource:
    """A group's generated module source, its rank and its numba signature strings."""

    source: str
    rank: int
    n_inputs: int


def _numba_type(dtype) -> str:
    return "boolean" if dtype.is_bool else dtype.np.name


def _body(step: Step, index: str) -> list[str]:
    """Loop-body lines computing the root into ``out[index]``."""
    lines, result = scalar_body(step, [f"a{k}[{index}]" for k in range(len(step.inputs))])
    return lines + [f"out[{index}] = {result}"]


def generate(step: Step) -> KernelSource:
    """The module source of a ``fused`` step."""
    root = step.nodes[-1]
    rank = len(root.specs[0].shape)
    args = ", ".join(["out"] + [f"a{k}" for k in range(len(step.inputs))])
    in_types = [f"numba.types.Array(numba.{_numba_type(s.specs[i].dtype)}, {{r}}, 'A', "
                f"readonly=True)" for s, i in step.inputs]
    out_t = f"numba.types.Array(numba.{_numba_type(root.specs[0].dtype)}, {{r}}, 'C')"
    src = [_PRELUDE]
    for par in (False, True):
        loop = "prange" if par else "range"
        suffix = "_par" if par else ""
        opts = "parallel=True, **_OPTS" if par else "**_OPTS"
        # flat
        src.append(f"SIG_flat{suffix} = numba.void({', '.join([out_t] + in_types).format(r=1)})")
        src.append(f"@numba.njit({opts})\ndef flat{suffix}({args}):")
        src.append(f"    for i in {loop}(out.shape[0]):")
        src.extend("        " + ln for ln in _body(step, "i"))
        # nd
        r = max(rank, 1)
        src.append(f"SIG_nd{suffix} = numba.void({', '.join([out_t] + in_types).format(r=r)})")
        src.append(f"@numba.njit({opts})\ndef nd{suffix}({args}):")
        idx = ", ".join(f"i{d}" for d in range(r))
        for d in range(r):
            src.append("    " * (d + 1) + f"for i{d} in {loop if d == 0 else 'range'}"
                       f"(out.shape[{d}]):")
        src.extend("    " * (r + 1) + ln for ln in _body(step, idx))
        src.append("")
    return KernelSource("\n".join(src) + "\n", rank, len(step.inputs))
