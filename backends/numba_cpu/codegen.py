"""Source generation for fused elementwise groups, from the ops' scalar formulas.

One group becomes two modules over the same loop body. The first holds ``flat``
(all operands contiguous and of the output's size: one 1-D loop; ``flat_io`` when the
output may be an input's buffer), the second ``rows`` (contiguous operands that broadcast
along whole trailing runs, see :mod:`.row_split`) and ``nd`` (any broadcast or strides:
nested loops over the output's rank, inputs pre-broadcast with zero strides); each with a
``prange`` twin for outputs large enough to pay for threads. The flat module does not
depend on the rank, so equal groups of different ranks (an optimizer's updates of a bias
and of a weight matrix) share one cached flat kernel (the MLP step compiles 6 kernels, not
8, with an empty cache); the rank's module is loaded only when a step needs it. Scalar
operands (every static dim 1) are read once before the loop. Each function is compiled
lazily, for the one signature it will ever see, so a kernel is specialized on dtypes and
rank and never on sizes. float32 exp/log/tanh/sigmoid (and their kin) are rendered with
:mod:`.fastmath`'s versions, which LLVM can vectorize (libm calls it cannot).

Every intermediate value is rounded to its node's dtype (``np.float32(...)``), as the
reference rounds each op's result, so fusion changes results only by float
reassociation inside ``math`` functions, not by extra precision. The source names nothing
of the user's graph (only op formulas, dtypes, rank and attribute values), so equal groups
in different graphs share one cached kernel.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Optional

from graphc.kernel_source import scalar_body
from graphc.lower import Step

from .row_split import RowSplit, plan_rows

__all__ = ["KernelSource", "generate"]


def _fastmath_sha() -> str:
    """A hash of fastmath.py's text: Numba's disk cache does not notice a changed callee in
    another module, so the generated source carries it and the kernel cache key follows."""
    with open(os.path.join(os.path.dirname(__file__), "fastmath.py"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


PRELUDE = f'''import math
import numpy as np
import numba
from numba import prange
from graphc.backends.numba_cpu.fastmath import (fm_exp, fm_expm1, fm_log, fm_log1p,
                                                fm_sigmoid, fm_softplus, fm_tanh)
# fastmath {_fastmath_sha()}

_OPTS = dict(cache=True, error_model="numpy", nogil=True)
'''

# Formulas for float32 nodes: libm's scalar math.exp/log/tanh calls keep LLVM from
# vectorizing a loop (no SVML in this llvmlite), fastmath.py's float32 versions do not.
# Each replaces the op's whole formula (same placeholders); float64 nodes keep math.*, and
# the cuda backend renders the ops' own formulas untouched.
_F32_FORMULAS = {
    "exp": "fm_exp({0})",
    "log": "fm_log({0})",
    "log1p": "fm_log1p({0})",
    "tanh": "fm_tanh({0})",
    "sigmoid": "fm_sigmoid({0})",
    "softplus": "fm_softplus({0})",
    "elu": "({0} if {0} > 0 else {alpha} * fm_expm1({0}))",
}


def _fast_f32(step: Step, lines: list[str]) -> list[str]:
    """``scalar_body``'s lines with each float32 node of an op in ``_F32_FORMULAS``
    re-rendered from that formula, naming operands as scalar_body does (input k is
    ``v{k}``, node j is ``t{j}`` on line ``len(step.inputs) + j``)."""
    names = {(src.uid, i): f"v{k}" for k, (src, i) in enumerate(step.inputs)}
    out = list(lines)
    for j, node in enumerate(step.nodes):
        names[(node.uid, 0)] = f"t{j}"
        fast = _F32_FORMULAS.get(node.op)
        if fast is None or node.specs[0].dtype.np.name != "float32":
            continue
        row = len(step.inputs) + j
        if not out[row].startswith(f"t{j} = np.float32("):
            raise RuntimeError(f"unexpected scalar_body line for {node.op}: {out[row]!r}")
        args = [names[(s.uid, i)] for s, i in node.inputs]
        attrs = {k: repr(v) for k, v in node.attrs.items()}
        out[row] = f"t{j} = np.float32({fast.format(*args, **attrs)})"
    return out


@dataclass(frozen=True)
class KernelSource:
    """A group's generated module sources (``flat_source``: the flat variants, whatever
    the rank; ``shaped_source``: rows and nd), its rank, its input count and which inputs
    are scalars (every static dim 1: learning rates, constants), passed as 1-element arrays
    and read once before the loop."""

    flat_source: str
    shaped_source: str
    rank: int
    n_inputs: int
    scalars: tuple[bool, ...] = ()
    rows: Optional[RowSplit] = None
    inplace: Optional[int] = None

    @property
    def source(self) -> str:
        """All the generated code, for reading and tests: both modules, the prelude once."""
        return self.flat_source + self.shaped_source.removeprefix(PRELUDE)


def _numba_type(dtype) -> str:
    return "boolean" if dtype.is_bool else dtype.np.name


def _is_scalar(spec) -> bool:
    return spec.shape is not None and all(d == 1 for d in spec.shape)


def _body(step: Step, loads: list[str], store: str) -> list[str]:
    """Loop-body lines computing the root from ``loads`` (one expression per input) into
    ``store``."""
    lines, result = scalar_body(step, loads)
    lines = _fast_f32(step, lines)
    return lines + [f"{store} = {result}"]


def _indexed(scalars: tuple[bool, ...], index: str) -> list[str]:
    return [f"s{k}" if sc else f"a{k}[{index}]" for k, sc in enumerate(scalars)]


def _array_type(dtype, rank: str, layout: str, readonly: bool = True) -> str:
    ro = ", readonly=True" if readonly else ""
    return f"numba.types.Array(numba.{_numba_type(dtype)}, {rank}, '{layout}'{ro})"


def _signature(step: Step, scalars: tuple[bool, ...], rank: int, layout: str) -> str:
    # Why 'C' for the flat and row loops' operands: with a known unit stride LLVM
    # vectorizes the loop; 'A' (any stride) kept every such kernel scalar.
    types = [_array_type(step.nodes[-1].specs[0].dtype, str(rank), "C", readonly=False)]
    types += [_array_type(s.specs[i].dtype, "1" if sc else str(rank), "C" if sc else layout)
              for (s, i), sc in zip(step.inputs, scalars)]
    return f"numba.void({', '.join(types)})"


def _row_loops(step: Step, split: RowSplit, scalars: tuple[bool, ...], rank: int,
               loop: str) -> list[str]:
    """The body of the ``rows`` variant (see :mod:`.row_split`): outer loops over dims
    ``[0, split.outer)``, an offset per operand and row, one contiguous inner loop."""
    p = split.outer
    lines = ["    o = out.reshape(out.size)"]
    lines += [f"    f{k} = a{k}.reshape(a{k}.size)" for k, sc in enumerate(scalars) if not sc]
    inner = " * ".join(f"out.shape[{d}]" for d in range(p, rank)) or "1"
    lines.append(f"    n_in = {inner}")
    for d in range(p):
        lines.append("    " * (d + 1) + f"for i{d} in {loop if d == 0 else 'range'}"
                     f"(out.shape[{d}]):")
    pad = "    " * (p + 1)

    def offset(arr: str, broadcasts: bool) -> str:
        expr = "0"
        for d in range(p):
            # min(): index 0 along a dim of size 1 (a broadcast), without a branch (a
            # conditional expression here failed Numba's parfor typing); np.int64(): a
            # prange index is unsigned, and min(uint64, int64) is a float64
            idx = f"min(np.int64(i{d}), {arr}.shape[{d}] - 1)" if broadcasts else f"i{d}"
            expr = idx if d == 0 else f"({expr}) * {arr}.shape[{d}] + {idx}"
        return expr
    # Rows as slices: indexing the flat arrays at ``offset + j`` instead kept LLVM from
    # vectorizing (Numba's negative-index check on a sum of unknown sign): 3x slower.
    lines.append(f"{pad}oo = ({offset('out', False)}) * n_in")
    lines.append(f"{pad}orow = o[oo:oo + n_in]")
    loads = []
    for k, sc in enumerate(scalars):
        if sc:
            loads.append(f"s{k}")
        elif split.full[k]:
            lines.append(f"{pad}o{k} = ({offset(f'a{k}', True)}) * n_in")
            lines.append(f"{pad}r{k} = f{k}[o{k}:o{k} + n_in]")
            loads.append(f"r{k}[j]")
        else:
            lines.append(f"{pad}b{k} = f{k}[{offset(f'a{k}', True)}]")
            loads.append(f"b{k}")
    lines.append(f"{pad}for j in range(n_in):")
    lines.extend(pad + "    " + ln for ln in _body(step, loads, "orow[j]"))
    return lines


def _inplace_flat(step: Step, scalars: tuple[bool, ...], k: int, args: str,
                  hoisted: list[str], par: bool) -> list[str]:
    """``flat_io``: the flat loop when input ``k`` is the output's own buffer (an optimizer
    update written into its variable). It reads ``out[i]`` for that input: with two
    pointers to one array LLVM's overlap check failed at run time and every in-place update
    ran its scalar loop (Adam's weight update: 2.8 ns an element instead of 0.9)."""
    suffix = "_par" if par else ""
    loads = _indexed(scalars, "i")
    loads[k] = "out[i]"
    return [f"SIG_flat_io{suffix} = SIG_flat{suffix}",
            f"@numba.njit({'parallel=True, **_OPTS' if par else '**_OPTS'})\n"
            f"def flat_io{suffix}({args}):", *hoisted,
            f"    for i in {'prange' if par else 'range'}(out.shape[0]):",
            *["        " + ln for ln in _body(step, loads, "out[i]")]]


def generate(step: Step, inplace: Optional[int] = None) -> KernelSource:
    """The module source of a ``fused`` step; ``inplace``: the input that may be the
    output's own buffer at run time (it gets ``flat_io`` variants)."""
    root = step.nodes[-1]
    rank = len(root.specs[0].shape)
    scalars = tuple(_is_scalar(s.specs[i]) for s, i in step.inputs)
    split = plan_rows(root.specs[0].shape, [s.specs[i].shape for s, i in step.inputs],
                      scalars)
    args = ", ".join(["out"] + [f"a{k}" for k in range(len(step.inputs))])
    hoisted = [f"    s{k} = a{k}[0]" for k, sc in enumerate(scalars) if sc]
    flat, src = [PRELUDE], [PRELUDE]
    for par in (False, True):
        loop = "prange" if par else "range"
        suffix = "_par" if par else ""
        opts = "parallel=True, **_OPTS" if par else "**_OPTS"
        # flat: every operand contiguous and of the output's size (or a scalar)
        flat.append(f"SIG_flat{suffix} = {_signature(step, scalars, 1, 'C')}")
        flat.append(f"@numba.njit({opts})\ndef flat{suffix}({args}):")
        flat.extend(hoisted)
        flat.append(f"    for i in {loop}(out.shape[0]):")
        flat.extend("        " + ln for ln in _body(step, _indexed(scalars, "i"), "out[i]"))
        if inplace is not None:
            flat.extend(_inplace_flat(step, scalars, inplace, args, hoisted, par))
        # rows: contiguous operands of the output's rank, broadcasting as ``split`` says
        if split is not None:
            src.append(f"SIG_rows{suffix} = {_signature(step, scalars, rank, 'C')}")
            src.append(f"@numba.njit({opts})\ndef rows{suffix}({args}):")
            src.extend(hoisted)
            src.extend(_row_loops(step, split, scalars, rank, loop))
        # nd: operands pre-broadcast to the output's shape (zero strides)
        r = max(rank, 1)
        src.append(f"SIG_nd{suffix} = {_signature(step, scalars, r, 'A')}")
        src.append(f"@numba.njit({opts})\ndef nd{suffix}({args}):")
        src.extend(hoisted)
        idx = ", ".join(f"i{d}" for d in range(r))
        for d in range(r):
            src.append("    " * (d + 1) + f"for i{d} in {loop if d == 0 else 'range'}"
                       f"(out.shape[{d}]):")
        src.extend("    " * (r + 1) + ln for ln in _body(step, _indexed(scalars, idx),
                                                        f"out[{idx}]"))
        src.append("")
    return KernelSource("\n".join(flat) + "\n", "\n".join(src) + "\n", rank,
                        len(step.inputs), scalars, split, inplace)
