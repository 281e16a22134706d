"""The cuda target's kernel table, and the documented list of ops that run on the host.

``@lower("op")`` registers a *library kernel factory*: given the IR node it returns
``run(args, alloc, step) -> device array | tuple | None`` where ``args`` are the inputs as
device arrays, ``alloc(shape, dtype)`` hands out the output buffer (a device array) and
``step`` is the run counter (random ops). ``None`` means "not for these arguments" (an
unsupported dtype, a batch broadcast the GEMM kernel does not do): the runtime then runs
the op's host fallback, so the choice stays explicit and the results the same.

Elementwise and broadcast ops with a scalar formula need no entry: :mod:`.codegen`
generates their kernels. :data:`FALLBACK` lists, with the reason, every op that runs as
*copy to host, NumPy reference, copy back* (``tests/test_numba_cuda_coverage.py`` fails
when a registered op has neither a formula, a kernel here, nor a place on that list).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

__all__ = ["LIBRARY", "FALLBACK", "RUNTIME", "lower"]

Alloc = Callable[[tuple, Any], Any]
Run = Callable[[list, Alloc, int], Any]
LIBRARY: dict[str, Callable[[Any], Run]] = {}

# Provided by the runtime itself, not computed.
RUNTIME = {"placeholder": "fed (copied to the device)", "variable": "the device-resident value",
           "constant": "copied to the device once", "assign": "alias of its value; written at "
           "the end", "group": "nothing to compute"}

FALLBACK: dict[str, str] = {
    # (reduce_sum/mean/max/min/prod and sum_to_like: reduce_kernels.py)
    "prod_others": "host fallback: the gradient of reduce_prod, exact with zeros by "
                   "cumulative products (rare)",
    # (argmax, argmin, gather, scatter_add_like: index_kernels.py)
    # (broadcast_like, broadcast_to, fill, fill_like, transpose, shape, size: layout_kernels.py)
    # layout (reshape, expand_dims, squeeze, reshape_like are device views: see below)
    # (concat, split, split_like, strided_slice(_grad), tile(_grad): copy_kernels.py;
    # pad, pad_grad: pad_kernels.py)
    "range": "host fallback: np.arange",
    # (one_hot and sparse_softmax_cross_entropy_with_logits: loss_kernels.py)
    # (convolution and pooling, 2-D and N-d with two spatial axes: conv_kernels.py and
    # pool_kernels.py; 1-D/3-D windows and grouped convolutions run the reference there)
}


def lower(op: str) -> Callable[[Callable[[Any], Run]], Callable[[Any], Run]]:
    """Register a library kernel factory for ``op``."""
    def register(factory: Callable[[Any], Run]) -> Callable[[Any], Run]:
        LIBRARY[op] = factory
        return factory
    return register


def _view_shape(node: Any, args: list) -> tuple:
    """The output shape of a layout-only op, from its ref run on zero-stride host stand-ins
    of the inputs (no data is touched or copied: every reshape of them is a view)."""
    from graphc.op import get_op

    dummies = [np.lib.stride_tricks.as_strided(np.zeros(1, a.dtype), tuple(a.shape), (0,) * a.ndim)
               for a in args]
    return tuple(get_op(node.op).ref(*dummies, **node.attrs).shape)


def _view(node: Any) -> Run:
    """reshape-like ops: a reshaped view of the contiguous device array, no copy."""
    def run(args: list, alloc: Alloc, step: int) -> Any:
        shape = _view_shape(node, args)
        x = args[0]
        return x if shape == tuple(x.shape) else x.reshape(shape)
    return run


for _op in ("reshape", "reshape_like", "expand_dims", "squeeze"):
    lower(_op)(_view)
