"""CUDA kernel source for fused elementwise groups, from the ops' scalar formulas.

One group becomes one module with two kernels over the same scalar body
(:func:`graphc.kernel_source.scalar_body`, shared with the cpu target):

* ``flat(out, a0, a1, ...)``: every operand contiguous and of the output's shape, one
  grid-stride loop over the flat index;
* ``nd(out, a0, ..., shape, st0, st1, ...)``: broadcasting by index arithmetic: the flat
  output index is split into coordinates over ``shape`` (a tuple of the output's dims) and
  input ``k`` is read at ``sum(coord[d] * stk[d])``, with stride 0 on its broadcast dims.

All arrays are passed flat (1-D); dims and strides are tuples, so Numba specializes a
kernel on dtypes and rank (tuple length), never on sizes. The source names nothing of the
user's graph, so equal groups share one cached module.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphc.kernel_source import scalar_body
from graphc.lower import Step

__all__ = ["KernelSource", "generate"]

_PRELUDE = '''import math
import numpy as np
from numba import config, cuda

# Numba caches kernels of real files on disk; the simulator compiles nothing.
_OPTS = {} if config.ENABLE_CUDASIM else dict(cache=True)


# Formulas call the two-argument builtins (relu is max(x, 0.0)), which Numba's CUDA target
# fails to compile since 0.66 (numba/numba#10753): these shadow them, with Python's
# semantics (the first argument unless the second compares greater/less, so NaN stays).
@cuda.jit(device=True)
def max(a, b):
    return b if b > a else a


@cuda.jit(device=True)
def min(a, b):
    return b if b < a else a


@cuda.jit(device=True)
def rint(x):
    """np.rint (round half to even), which has no CUDA version."""
    f = math.floor(x)
    d = x - f
    if d > 0.5 or (d == 0.5 and f % 2 != 0):
        f += 1.0
    return f
'''


#: NumPy calls of formulas without a CUDA version -> the prelude's device function.
DEVICE_CALLS = {"np.rint(": "rint("}


def _on_device(lines: list[str], result: str) -> tuple[list[str], str]:
    """The scalar body with :data:`DEVICE_CALLS` substituted."""
    def sub(text: str) -> str:
        for numpy_call, device_call in DEVICE_CALLS.items():
            text = text.replace(numpy_call, device_call)
        return text
    return [sub(ln) for ln in lines], sub(result)


@dataclass(frozen=True)
class KernelSource:
    """A group's generated module source, its output rank and input count."""

    source: str
    rank: int
    n_inputs: int


def generate(step: Step) -> KernelSource:
    """The module source of a ``fused`` step."""
    rank = len(step.nodes[-1].specs[0].shape)
    n = len(step.inputs)
    arrays = ", ".join(["out"] + [f"a{k}" for k in range(n)])
    src = [_PRELUDE]

    lines, result = _on_device(*scalar_body(step, [f"a{k}[i]" for k in range(n)]))
    src.append(f"@cuda.jit(**_OPTS)\ndef flat({arrays}):")
    src.append("    i = cuda.grid(1)")
    src.append("    stride = cuda.gridsize(1)")
    src.append("    while i < out.shape[0]:")
    src.extend("        " + ln for ln in lines)
    src.append(f"        out[i] = {result}")
    src.append("        i += stride")
    src.append("")

    strides = "".join(f", st{k}" for k in range(n))
    lines, result = _on_device(*scalar_body(step, [f"a{k}[o{k}]" for k in range(n)]))
    src.append(f"@cuda.jit(**_OPTS)\ndef nd({arrays}, shape{strides}):")
    src.append("    i = cuda.grid(1)")
    src.append("    stride = cuda.gridsize(1)")
    src.append("    while i < out.shape[0]:")
    body = ["rem = i"] + [f"o{k} = 0" for k in range(n)]
    for d in reversed(range(rank)):  # unrolled: the rank is part of the kernel
        body.append(f"c = rem % shape[{d}]")
        body.append(f"rem = rem // shape[{d}]")
        body.extend(f"o{k} += c * st{k}[{d}]" for k in range(n))
    src.extend("        " + ln for ln in body + lines)
    src.append(f"        out[i] = {result}")
    src.append("        i += stride")
    return KernelSource("\n".join(src) + "\n", rank, n)
