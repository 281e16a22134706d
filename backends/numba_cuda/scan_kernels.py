"""``scan`` on the device: the recurrence loop on the host, every step's kernels on the GPU.

The body (a subgraph, see :mod:`graphc.ops.control`) is compiled once for this target, as
its own :class:`~.runtime.Executable`, and cached on the body. Each step runs it with
:meth:`~.runtime.Executable.run_on_device`: the carries and the slices ``x[t]`` (views of
the scanned inputs, which are contiguous along axis 0) go in as device arrays and the new
carries come back as device arrays, so nothing crosses the bus inside the loop. Each
step's ``y`` values are copied into their stacks ``ys[t]`` on the device; the stacks are
kept from run to run (:class:`~.scratch.Scratch`: the runtime copies any it hands out).

What the loop does not handle it hands back to the runtime's host fallback (the op's
reference loop, which raises the reference's errors): scanned inputs of different
lengths, zero steps (the reference builds the empty stacks' shapes), a body that changes a
carry's shape.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from .kernels import Alloc, lower
from .scratch import Scratch

__all__ = ["device_body"]


def device_body(body: Any) -> Any:
    """The body compiled for the cuda target (once per body)."""
    exe = body.cache.get("cuda")
    if exe is None:
        from graphc.program import build_program

        from . import compile as compile_cuda

        exe = body.cache["cuda"] = compile_cuda(
            build_program(body.graph, list(body.outputs), list(body.inputs)))
    return exe


def _slice(x: Any, t: int) -> Any:
    """``x[t]`` as a device array (a view; indexing a 1-D device array would copy the
    element to the host)."""
    return x[t] if x.ndim > 1 else x[t:t + 1].reshape(())


@lower("scan")
def _scan(node: Any) -> Callable[[list, Alloc, int], Any]:
    body, reverse = node.attrs["body"], node.attrs["reverse"]
    nc, nx = body.n_carry, body.n_xs
    y_dtypes = [spec.dtype.np for spec in node.specs[nc:]]
    stacks = Scratch()

    def run(args: list, alloc: Alloc, step: int) -> Optional[tuple]:
        xs, consts = args[nc:nc + nx], args[nc + nx:]
        lengths = {x.shape[0] for x in xs}
        steps = lengths.pop() if len(lengths) == 1 else 0
        if not steps:
            return None
        exe = device_body(body)
        carries = list(args[:nc])
        ys: list = []
        for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
            out = exe.run_on_device([*carries, *(_slice(x, t) for x in xs), *consts], {}, 0)
            if any(tuple(new.shape) != tuple(old.shape) for old, new in zip(carries, out)):
                return None
            carries = out[:nc]
            if not ys:
                ys = [stacks.get(j, (steps, *y.shape), dtype)
                      for j, (y, dtype) in enumerate(zip(out[nc:], y_dtypes))]
            for stack, y in zip(ys, out[nc:]):
                if y.size:
                    _slice(stack, t).copy_to_device(y)
        return tuple(carries + ys)
    return run
