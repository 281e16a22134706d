"""Layout copies on the device: concat, split, split_like, strided_slice (and its gradient),
tile (and its gradient).

Each is one generic kernel, :func:`copy_region`: a grid-stride copy of an n-d region of
one flat array into an n-d region of another, each region given by a start offset and
element strides (negative for reversed slices, 0 on new axes):

* ``concat``: one launch per input, into its slice of the output;
* ``split``/``split_like``: one launch per piece, out of its slice of the input; a piece
  that is a contiguous block of the input (every dim before the axis is 1, as for
  ``unstack`` along axis 0) is a device *view* instead, no copy, as reshape-like ops are;
* ``strided_slice``: the slice's offset and strides are found by NumPy itself, indexing a
  one-byte-per-element stand-in of the input with the reference's own index (so ints,
  negative steps, new axes and ellipses mean exactly what they mean to the reference);
  ``strided_slice_grad`` fills zeros and copies ``g`` into that region;
* ``tile``: a broadcast of ``x`` viewed as ``(1, d0, 1, d1, ...)`` to the output viewed as
  ``(m0, d0, m1, d1, ...)`` (:func:`.layout_kernels.broadcast_into`); ``tile_grad`` is the
  tree reduction of ``g`` viewed that way over the repeat axes, with no copy.

Copies work on every dtype (Numba specializes the kernel per dtype and rank on first use);
``tile_grad`` sums float32/float64 only. What the kernels do not handle (a run-time shape
the reference refuses, an out-of-bounds index, an integer ``tile_grad``) returns None: the
host reference then runs and raises its own error.
"""

from __future__ import annotations

import builtins
import math
from functools import lru_cache
from typing import Any, Callable, Optional

import numpy as np

from graphc.ops.indexing import np_index

from .device import cuda, flat_offset, launch
from .kernels import Alloc, lower
from .layout_kernels import broadcast_into
from .reduce_kernels import SUM, reduce_axes
from .scratch import Scratch

__all__ = ["c_strides", "copy_region", "fill", "slice_geometry"]

Run = Callable[[list, Alloc, int], Any]


def c_strides(shape: tuple) -> tuple:
    """Element strides of a C-contiguous array of ``shape``."""
    return tuple(math.prod(shape[d + 1:]) for d in range(len(shape)))


@cuda.jit
def _copy_region(dst, dst_start, dst_strides, src, src_start, src_strides, shape, n):
    i = cuda.grid(1)
    while i < n:
        dst[dst_start + flat_offset(i, shape, dst_strides)] = \
            src[src_start + flat_offset(i, shape, src_strides)]
        i += cuda.gridsize(1)


def copy_region(dst: Any, dst_start: int, dst_strides: tuple, src: Any, src_start: int,
                src_strides: tuple, shape: tuple) -> None:
    """Copy the region of ``shape`` at (``src_start``, ``src_strides``) of the contiguous
    device array ``src`` into the region at (``dst_start``, ``dst_strides``) of ``dst``
    (offsets and strides in elements of the flat arrays)."""
    n = math.prod(shape)
    if n == 0:
        return
    # Plain ints: a tuple mixing NumPy and Python ints is not a UniTuple to Numba. Rank 0 is
    # one dim of 1 (Numba cannot index an empty tuple).
    shape, dst_strides, src_strides = ((tuple(int(v) for v in t) or (z,)) for t, z in
                                       ((shape, 1), (dst_strides, 0), (src_strides, 0)))
    blocks, threads = launch(n)
    _copy_region[blocks, threads](dst.reshape(dst.size), int(dst_start), dst_strides,
                                  src.reshape(src.size), int(src_start), src_strides, shape, n)


@cuda.jit
def _fill(out, value):
    i = cuda.grid(1)
    while i < out.shape[0]:
        out[i] = value
        i += cuda.gridsize(1)


def fill(out: Any, value: Any) -> None:
    """Set every element of the contiguous device array ``out`` to ``value``."""
    if out.size:
        blocks, threads = launch(out.size)
        _fill[blocks, threads](out.reshape(out.size), np.asarray(value, out.dtype)[()])


# -- concat, split, split_like --------------------------------------------------------------

@lower("concat")
def _concat(node: Any) -> Run:
    axis, dtype = node.attrs["axis"], node.specs[0].dtype.np

    def run(args: list, alloc: Alloc, step: int) -> Optional[Any]:
        shapes = [tuple(x.shape) for x in args]
        rank = len(shapes[0])
        if not rank or not -rank <= axis < rank:
            return None
        a = axis % rank
        rest = {s[:a] + s[a + 1:] for s in shapes}
        if any(x.dtype != dtype for x in args) or {len(s) for s in shapes} != {rank} \
                or len(rest) != 1:
            return None  # the reference raises NumPy's error
        shape = shapes[0][:a] + (sum(s[a] for s in shapes),) + shapes[0][a + 1:]
        out = alloc(shape, dtype)
        strides, at = c_strides(shape), 0
        for x, s in zip(args, shapes):
            copy_region(out, at * strides[a], strides, x, 0, c_strides(s), s)
            at += s[a]
        return out
    return run


def _cut(x: Any, axis: int, parts: list, alloc: Alloc, scratch: Scratch) -> tuple:
    """The pieces of ``x`` along ``axis`` given as (start, length) pairs: device views where
    a piece is one contiguous block of ``x``, copies otherwise (the first into ``alloc``'s
    buffer, the others into arrays the node keeps)."""
    xs = tuple(x.shape)
    outer, inner, stride = math.prod(xs[:axis]), math.prod(xs[axis + 1:]), c_strides(xs)
    pieces = []
    for k, (start, length) in enumerate(parts):
        shape = xs[:axis] + (length,) + xs[axis + 1:]
        if outer == 1 and length and inner:
            pieces.append(x.reshape(x.size)[start * inner:(start + length) * inner].reshape(shape))
            continue
        piece = alloc(shape, x.dtype) if k == 0 else scratch.get(k, shape, x.dtype)
        copy_region(piece, 0, c_strides(shape), x, start * stride[axis], stride, shape)
        pieces.append(piece)
    return tuple(pieces)


def _starts(lengths: list) -> list:
    """(start, length) pairs of consecutive pieces."""
    return [(sum(lengths[:k]), n) for k, n in enumerate(lengths)]


@lower("split")
def _split(node: Any) -> Run:
    axis, num, sizes = node.attrs["axis"], node.attrs["num"], node.attrs["sizes"]
    dtype, scratch = node.specs[0].dtype.np, Scratch()

    def run(args: list, alloc: Alloc, step: int) -> Optional[tuple]:
        x = args[0]
        if x.dtype != dtype or not -x.ndim <= axis < x.ndim:
            return None
        a = axis % x.ndim
        d = tuple(x.shape)[a]
        if sizes is None:
            lengths = [d // num] * num if d % num == 0 else None
        else:
            known = sum(s for s in sizes if s != -1)
            lengths = [d - known if s == -1 else s for s in sizes]
            if sum(lengths) != d or min(lengths) < 0:
                lengths = None
        if lengths is None:
            return None  # the reference raises its error
        return _cut(x, a, _starts(lengths), alloc, scratch)
    return run


@lower("split_like")
def _split_like(node: Any) -> Run:
    axis, dtype, scratch = node.attrs["axis"], node.specs[0].dtype.np, Scratch()

    def run(args: list, alloc: Alloc, step: int) -> Optional[tuple]:
        g, *values = args
        if g.dtype != dtype or any(v.ndim != g.ndim for v in values) \
                or not -g.ndim <= axis < g.ndim:
            return None
        a = axis % g.ndim
        d = tuple(g.shape)[a]
        # np.split(g, cumsum(lengths)[:-1]): pieces between the cut points, clipped to g
        # (the last one runs to the end), exactly as the reference cuts.
        cuts = [0] + [int(c) for c in np.cumsum([tuple(v.shape)[a] for v in values])[:-1]] \
            + [d]
        parts = []
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            start, stop, _ = builtins.slice(lo, hi).indices(d)
            parts.append((start, max(0, stop - start)))
        return _cut(g, a, parts, alloc, scratch)
    return run


# -- strided_slice and its gradient ----------------------------------------------------------

@lru_cache(maxsize=256)
def slice_geometry(shape: tuple, spec: tuple) -> tuple:
    """(shape, start, strides) of ``x[spec]`` in a C-contiguous ``x`` of ``shape``, in
    elements (strides negative on reversed slices, 0 on new axes). IndexError for an int
    index out of bounds."""
    base = np.zeros(1, np.uint8)
    # One byte per element: NumPy's byte offsets and strides are element ones. The view
    # is never read: indexing it only does NumPy's pointer arithmetic.
    whole = np.lib.stride_tricks.as_strided(base, shape, c_strides(shape))
    index = np_index(spec)
    if not any(i is Ellipsis for i in index):
        index += (Ellipsis,)  # an all-int index then gives a 0-d view, not a NumPy scalar
    part = whole[index]
    start = part.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    return part.shape, start, part.strides


def _geometry(shape: tuple, spec: tuple) -> Optional[tuple]:
    try:
        return slice_geometry(shape, spec)
    except IndexError:  # the reference raises its ShapeError/IndexError
        return None


@lower("strided_slice")
def _strided_slice(node: Any) -> Run:
    spec, dtype = node.attrs["spec"], node.specs[0].dtype.np

    def run(args: list, alloc: Alloc, step: int) -> Optional[Any]:
        x = args[0]
        geometry = _geometry(tuple(x.shape), spec)
        if geometry is None or x.dtype != dtype:
            return None
        shape, start, strides = geometry
        out = alloc(shape, dtype)
        copy_region(out, 0, c_strides(shape), x, start, strides, shape)
        return out
    return run


@lower("strided_slice_grad")
def _strided_slice_grad(node: Any) -> Run:
    spec, dtype = node.attrs["spec"], node.specs[0].dtype.np

    def run(args: list, alloc: Alloc, step: int) -> Optional[Any]:
        g, like = args
        geometry = _geometry(tuple(like.shape), spec)
        # (a g of another shape would be broadcast by the reference's assignment)
        if geometry is None or g.dtype != dtype or tuple(g.shape) != geometry[0]:
            return None
        shape, start, strides = geometry
        out = alloc(tuple(like.shape), dtype)
        fill(out, 0)
        copy_region(out, start, strides, g, 0, c_strides(shape), shape)
        return out
    return run


# -- tile and its gradient ---------------------------------------------------------------------

def _interleave(multiples: tuple, shape: tuple) -> tuple:
    """(m0, d0, m1, d1, ...): a tiled array's shape with the repeats as axes of their own."""
    return tuple(n for pair in zip(multiples, shape) for n in pair)


@lower("tile")
def _tile(node: Any) -> Run:
    multiples, dtype = tuple(node.attrs["multiples"]), node.specs[0].dtype.np

    def run(args: list, alloc: Alloc, step: int) -> Optional[Any]:
        x = args[0]
        xs = tuple(x.shape)
        if len(multiples) != len(xs) or x.dtype != dtype:
            return None
        out = alloc(tuple(d * m for d, m in zip(xs, multiples)), dtype)
        if out.size:
            broadcast_into(out.reshape(_interleave(multiples, xs) or (1,)), x,
                           _interleave((1,) * len(xs), xs) or (1,))
        return out
    return run


@lower("tile_grad")
def _tile_grad(node: Any) -> Run:
    multiples, dtype = tuple(node.attrs["multiples"]), node.specs[0].dtype.np

    def run(args: list, alloc: Alloc, step: int) -> Optional[Any]:
        g, like = args
        ls = tuple(like.shape)
        split = _interleave(multiples, ls)
        if dtype.kind != "f" or g.dtype != dtype or len(multiples) != len(ls) \
                or math.prod(split) != g.size:
            return None
        if all(m == 1 for m in multiples):
            return g.reshape(ls)  # nothing repeated: the sum over the repeats is g itself
        out = alloc(ls, dtype)
        if g.size == 0:
            fill(out, 0)  # a multiple of 0: empty sums
        else:
            reduce_axes(g.reshape(split), tuple(range(0, len(split), 2)), out, SUM)
        return out
    return run
