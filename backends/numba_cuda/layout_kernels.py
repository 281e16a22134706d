"""Broadcasts, fills and shape queries on the device, without a trip to the host.

``broadcast_like`` (the gradient of every reduction), ``broadcast_to``, ``fill`` and
``fill_like`` are one kernel: a grid-stride copy ``out[i] = src[offset(i)]`` where the
offset is index arithmetic over the output's dims with stride 0 on broadcast dims (a fill
is a broadcast of a one-element array, uploaded once). ``transpose`` is the same kernel with
the source's strides permuted (:func:`permute_into`, which the convolutions use too). ``shape`` and ``size`` need only
the input's shape, which the host knows: the result is computed there from the shape
alone (no data copied) and uploaded (a few bytes).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .device import broadcast_strides, cuda, flat_offset, launch, to_device
from .kernels import Alloc, lower

__all__ = ["broadcast_into", "permute_into"]


@cuda.jit
def _strided_copy(out, src, shape, strides):
    i = cuda.grid(1)
    while i < out.shape[0]:
        out[i] = src[flat_offset(i, shape, strides)]
        i += cuda.gridsize(1)


def broadcast_into(out: Any, src: Any, src_shape: tuple) -> None:
    """Fill the contiguous device array ``out`` with ``src`` (contiguous, of ``src_shape``)
    broadcast to ``out``'s shape."""
    n = out.size
    if n == 0:
        return
    shape = tuple(out.shape) or (1,)  # rank 0: one dim of 1 (Numba has no empty index)
    strides = broadcast_strides(tuple(src_shape), tuple(out.shape)) or (0,)
    blocks, threads = launch(n)
    _strided_copy[blocks, threads](out.reshape(n), src.reshape(src.size), shape, strides)


@lower("broadcast_like")
def _broadcast_like(node: Any) -> Callable[[list, Alloc, int], Any]:
    axes, dtype = node.attrs["axes"], node.specs[0].dtype.np

    def run(args: list, alloc: Alloc, step: int) -> Any:
        a, like = args
        shape = list(a.shape)
        for ax in sorted(axes):  # np.expand_dims(a, axes): the reduced axes re-inserted
            shape.insert(ax, 1)
        out = alloc(tuple(like.shape), dtype)
        broadcast_into(out, a, tuple(shape))
        return out
    return run


@lower("broadcast_to")
def _broadcast_to(node: Any) -> Callable[[list, Alloc, int], Any]:
    target, dtype = tuple(node.attrs["shape"]), node.specs[0].dtype.np

    def run(args: list, alloc: Alloc, step: int) -> Any:
        out = alloc(np.broadcast_shapes(tuple(args[0].shape), target), dtype)
        broadcast_into(out, args[0], tuple(args[0].shape))
        return out
    return run


def _fill(like_input: bool) -> Callable[[Any], Callable]:
    def factory(node: Any) -> Callable[[list, Alloc, int], Any]:
        dtype = node.specs[0].dtype.np
        value = np.asarray(node.attrs["value"].array, dtype).reshape(1)
        uploaded: list = []

        def run(args: list, alloc: Alloc, step: int) -> Any:
            if not uploaded:
                uploaded.append(to_device(value))
            shape = tuple(args[0].shape) if like_input else tuple(node.attrs["shape"])
            out = alloc(shape, dtype)
            broadcast_into(out, uploaded[0], (1,))
            return out
        return run
    return factory


def permute_into(out: Any, x: Any, perm: tuple) -> None:
    """Write the contiguous device array ``x`` with its axes permuted by ``perm`` into the
    contiguous ``out`` (of the permuted shape)."""
    xs = tuple(x.shape)
    strides = [math.prod(xs[d + 1:]) for d in range(len(xs))]
    n = out.size
    if n:
        blocks, threads = launch(n)
        _strided_copy[blocks, threads](out.reshape(n), x.reshape(x.size),
                                       tuple(out.shape) or (1,),
                                       tuple(strides[p] for p in perm) or (0,))


@lower("transpose")
def _transpose(node: Any) -> Callable[[list, Alloc, int], Any]:
    perm_attr, dtype = node.attrs["perm"], node.specs[0].dtype.np

    def run(args: list, alloc: Alloc, step: int) -> Any:
        x = args[0]
        xs = tuple(x.shape)
        perm = tuple(range(len(xs)))[::-1] if perm_attr is None else tuple(perm_attr)
        out = alloc(tuple(xs[p] for p in perm), dtype)
        permute_into(out, x, perm)
        return out
    return run


lower("fill")(_fill(False))
lower("fill_like")(_fill(True))


def _from_shape(node: Any) -> Callable[[list, Alloc, int], Any]:
    """``shape``/``size``: the op's ref on a zero-stride stand-in of the input (its shape
    without its data), uploaded."""
    from graphc.op import get_op

    ref, attrs = get_op(node.op).ref, dict(node.attrs)

    def run(args: list, alloc: Alloc, step: int) -> Any:
        x = args[0]
        dummy = np.lib.stride_tricks.as_strided(np.zeros(1, x.dtype), tuple(x.shape),
                                                (0,) * x.ndim)
        return to_device(np.asarray(ref(dummy, **attrs)))
    return run


lower("shape")(_from_shape)
lower("size")(_from_shape)
