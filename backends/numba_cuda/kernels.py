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

_LAYOUT = "host fallback: layout copy (a device gather kernel is future work)"
_GATHER = "host fallback: gather/scatter (future work: device kernel)"
_CNN = "host fallback: convolution/pooling (issue 8: im2col + the GEMM kernel, future work)"
FALLBACK: dict[str, str] = {
    # reductions without a device kernel (reduce_sum/mean/max/min and sum_to_like have one)
    "reduce_prod": "host fallback: rare", "argmax": "host fallback: index reduction",
    "argmin": "host fallback: index reduction", "prod_others": "host fallback: rare",
    "tile_grad": "host fallback: reshape + sum",
    # (broadcast_like, broadcast_to, fill, fill_like, transpose, shape, size: layout_kernels.py)
    # layout (reshape, expand_dims, squeeze, reshape_like are device views: see below)
    "concat": _LAYOUT, "split": _LAYOUT, "split_like": _LAYOUT,
    "strided_slice": _LAYOUT, "strided_slice_grad": _LAYOUT, "pad": _LAYOUT,
    "pad_grad": _LAYOUT, "tile": _LAYOUT, "range": "host fallback: np.arange",
    # gathers and scatters
    "gather": _GATHER, "scatter_add_like": _GATHER,
    # (one_hot and sparse_softmax_cross_entropy_with_logits: loss_kernels.py)
    # convolution and pooling
    "conv": _CNN, "conv_backprop_input": _CNN, "conv_backprop_filter": _CNN,
    "conv2d": _CNN, "conv2d_backprop_input": _CNN, "conv2d_backprop_filter": _CNN,
    "max_pool2d": _CNN, "max_pool2d_grad": _CNN, "max_pool2d_grad_grad": _CNN,
    "avg_pool2d": _CNN, "avg_pool2d_grad": _CNN, "max_pool": _CNN, "max_pool_grad": _CNN,
    "max_pool_grad_grad": _CNN, "max_pool_argmax": _CNN, "avg_pool": _CNN,
    "avg_pool_grad": _CNN,
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
