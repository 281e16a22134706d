"""The cpu target's kernel table, and the documented list of ops that run their NumPy ref.

``@lower("op")`` registers a *library kernel factory*: given the IR node it returns
``run(args, alloc) -> array``, where ``alloc(shape, dtype)`` hands out the step's output
buffer (persistent across runs unless the value is returned to the user). Elementwise and
broadcast ops with a scalar formula need no entry: ``codegen`` generates their loops.

:data:`FALLBACK` lists, with the reason, every op that runs through its own NumPy ``ref``
(NumPy already calls optimized C for most of them; each is a candidate for a kernel when a
benchmark says so). ``tests/test_numba_cpu_coverage.py`` fails when a registered op has
neither a formula, an entry here, nor a place on that list, so a new op runs at once (the
runtime falls back for anything) but is visible.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

__all__ = ["LIBRARY", "FALLBACK", "RUNTIME", "Scratch", "by_shapes", "lower", "numba_float",
           "ref_kernel", "ref_of"]

Alloc = Callable[[tuple, Any], np.ndarray]
Factory = Callable[[Any], Callable[[list, Alloc], np.ndarray]]
LIBRARY: dict[str, Factory] = {}

# Provided by the runtime itself, not computed.
RUNTIME = {"placeholder": "fed", "variable": "read from the session's state",
           "constant": "the literal array", "assign": "alias of its value; written at the end",
           "group": "nothing to compute"}

FALLBACK: dict[str, str] = {
    # reductions (sum/mean/max/min and sum_to_like: reduce_kernels.py; the ones below are
    # rare in training graphs, and the kernels fall back here for non-float dtypes)
    "reduce_prod": "np.prod", "argmax": "np.argmax",
    "argmin": "np.argmin", "prod_others": "rare (reduce_prod's gradient)",
    "tile_grad": "reshape + np.sum",
    # broadcasts without a formula (broadcast_like and fill_like: reduce_kernels.py)
    "broadcast_to": "np.broadcast_to + copy", "fill": "np.full",
    # layout: NumPy copies with memcpy-speed loops
    # (reshape, reshape_like, expand_dims, squeeze: views, view_kernels.py)
    "transpose": "np.transpose", "concat": "np.concatenate",
    "split": "np.split", "split_like": "np.split", "strided_slice": "basic indexing",
    "strided_slice_grad": "indexed assignment", "pad": "np.pad", "pad_grad": "np.add.at",
    "tile": "np.tile", "range": "np.arange", "shape": "array of the shape",
    "size": "product of dims",
    # gathers and scatters
    "gather": "np.take", "scatter_add_like": "np.add.at", "one_hot": "comparison with arange",
    # pooling (conv2d and its gradients: conv_kernels.py; max pooling: pool_kernels.py;
    # average pooling: avg_pool_kernels.py)
    "max_pool2d_grad_grad": "argmax gather",
    # N-d pooling with dilations (graphc/ops/pool_nd.py): strided window views
    "max_pool": "strided window view + max", "max_pool_grad": "argmax + window scatter",
    "max_pool_grad_grad": "argmax gather", "max_pool_argmax": "argmax + flat index",
    "avg_pool": "strided window view + mean", "avg_pool_grad": "window scatter",
    # N-d convolution (graphc/ops/conv_nd.py; 3-D volumes): im2col views + np.tensordot
    "conv": "im2col + np.tensordot (BLAS)", "conv_backprop_input": "np.tensordot + col2im",
    "conv_backprop_filter": "im2col + np.tensordot (BLAS)",
    # random draws: must equal the reference's Philox words bit for bit
    "random_normal": "graphc.random_bits (the same counter-based words as the reference)",
    "random_uniform": "graphc.random_bits (the same counter-based words as the reference)",
}


def lower(op: str) -> Callable[[Factory], Factory]:
    """Register a library kernel factory for ``op``."""
    def register(factory: Factory) -> Factory:
        LIBRARY[op] = factory
        return factory
    return register


_MISSING = object()


def by_shapes(compute: Callable[[list], Any]) -> Callable[[list], Any]:
    """``compute(args)`` (the run-time checks and the geometry), memoized by the
    arguments' shapes (a node's dtypes are fixed: feeds and variables are converted to
    them): at batch 1 such Python work cost more than the kernels themselves
    (convolution, pooling). A None result ("not for these shapes") is memoized too. The
    cuda target's window kernels use it as well (host or device arrays alike)."""
    memo: dict[tuple, Any] = {}

    def get(args: list) -> Any:
        key = tuple([a.shape for a in args])
        hit = memo.get(key, _MISSING)
        if hit is _MISSING:
            if len(memo) > 64:  # many distinct batch sizes: keep the memo small
                memo.clear()
            hit = memo[key] = compute(args)
        return hit
    return get


def ref_of(node: Any) -> Callable[..., np.ndarray]:
    """The node's NumPy reference with its attributes bound: ``ref_of(node)(*arrays)``,
    what a kernel runs for the inputs it does not take."""
    from graphc.op import get_op

    ref, attrs = get_op(node.op).ref, dict(node.attrs)
    return lambda *args: np.asarray(ref(*args, **attrs))


def ref_kernel(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    """A kernel (``run(args, alloc)``) that runs the node's reference."""
    ref = ref_of(node)
    return lambda args, alloc: ref(*args)


def numba_float(node: Any) -> bool:
    """The node's result is float32 or float64: the floats Numba computes with on the cpu
    (float16 and the other dtypes run the reference)."""
    return node.specs[0].dtype.name in ("float32", "float64")


class Scratch:
    """Work buffers of one kernel that persist across runs while their shape holds (the
    plan runs steps one at a time, so a kernel's scratch is never in use twice)."""

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def get(self, key: str, shape: tuple, dtype: Any, zeros: bool = False) -> np.ndarray:
        """A C-contiguous buffer of ``shape`` and ``dtype`` (contents undefined, or zeros
        when it is new and ``zeros`` is set)."""
        buf = self._bufs.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._bufs[key] = (np.zeros if zeros else np.empty)(shape, dtype)
        return buf

    def padded(self, x: np.ndarray, pads: tuple) -> np.ndarray:
        """``x`` (N, C, H, W) zero-padded by ``((top, bottom), (left, right))``: a buffer
        whose border is zeroed once, when it is made, and never written after."""
        (pt, pb), (pl, pr) = pads
        if not (pt or pb or pl or pr):
            return np.ascontiguousarray(x)
        n, c, h, w = x.shape
        xp = self.get("xp", (n, c, h + pt + pb, w + pl + pr), x.dtype, zeros=True)
        xp[:, :, pt:pt + h, pl:pl + w] = x
        return xp


@lower("matmul")
def _matmul(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    """GEMM through BLAS (np.matmul with ``out=``: no allocation in the steady state).
    Transposes are strided views, which NumPy passes to BLAS as transpose flags."""
    ta, tb = node.attrs["transpose_a"], node.attrs["transpose_b"]
    dtype = node.specs[0].dtype.np

    def run(args: list, alloc: Alloc) -> np.ndarray:
        a, b = args
        if ta:
            a = np.swapaxes(a, -1, -2)
        if tb:
            b = np.swapaxes(b, -1, -2)
        if a.ndim == 2 and b.ndim == 2:  # the common case, without broadcast_shapes' cost
            shape = (a.shape[0], b.shape[1])
        else:
            shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2],
                                                                        b.shape[-1])
        out = alloc(shape, dtype)
        if b.ndim == 2 and a.ndim > 2 and a.flags.c_contiguous and out.flags.c_contiguous \
                and a.shape[-1] and shape[-1]:  # (a 0 there: reshape(-1, 0) is ambiguous)
            # (..., M, K) @ (K, N) as one (-1, K) @ (K, N) GEMM: NumPy would make one small
            # GEMM per batch entry (LSTM input projection at 2 threads: 333 -> 230 us)
            np.matmul(a.reshape(-1, a.shape[-1]), b, out=out.reshape(-1, shape[-1]))
            return out
        np.matmul(a, b, out=out)
        return out
    return run


class _CompiledBody:
    """A scan body whose ``run`` is the body program compiled for the cpu target; the rest
    (carries, outputs) is the original body's, so the Python loop is the op's own ref.
    ``loop``: the whole loop as one Numba function (:mod:`.scan_loop`), or None when the
    body holds an op it has no code for."""

    def __init__(self, body: Any) -> None:
        from graphc.backends.numba_cpu import compile as compile_cpu
        from graphc.program import build_program

        from .scan_loop import compiled_loop

        self._body = body
        self._exe = compile_cpu(build_program(body.graph, list(body.outputs), list(body.inputs)))
        self.loop = compiled_loop(self._exe.plan, body)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._body, name)

    def run(self, arrays: Any) -> list:
        return self._exe(list(arrays), {}, 0)


@lower("scan")
def _scan(node: Any) -> Callable[[list, Alloc], tuple]:
    """The whole loop as one compiled function when the body allows it, else the loop of
    the reference (``_scan_ref``) with the body compiled by this backend once per body
    (fused kernels, BLAS), not interpreted at every step."""
    from graphc.op import get_op

    body, reverse = node.attrs["body"], node.attrs["reverse"]
    compiled = body.cache.get("cpu")
    if compiled is None:
        compiled = body.cache["cpu"] = _CompiledBody(body)
    ref = get_op("scan").ref
    loop = compiled.loop

    def run(args: list, alloc: Alloc) -> tuple:
        if loop is not None:
            result = loop(args, reverse)
            if result is not None:
                return result
        return ref(*args, body=compiled, reverse=reverse)
    return run
