"""``pad`` and ``pad_grad`` on the device.

``pad`` is one kernel for the three modes: each output element finds its input position
axis by axis (its coordinate minus the padding before); outside the input it takes the
constant (CONSTANT) or the mirrored position (REFLECT: without the edge, SYMMETRIC: with
it), the formulas of the reference's ``_pad_grad_ref``.

``pad_grad`` (the gradient of REFLECT and SYMMETRIC padding; CONSTANT's is a strided slice)
folds the padded axes one at a time, as the reference does: an input cell of the folded
axis is the sum of the at most three padded cells that copy it (the mirror on the left,
the cell itself, the mirror on the right), added in that order, which is ``np.add.at``'s
order over the padded positions: the results are the reference's bit for bit. The
intermediate folds live in arrays the node keeps (:class:`.scratch.Scratch`).

float32/float64 for ``pad_grad`` (a sum); ``pad`` copies any dtype. Paddings the
reference refuses at run time (a mirror wider than the axis) run the reference, which
raises its ShapeError.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

from .device import cuda, launch
from .kernels import Alloc, lower
from .scratch import Scratch

__all__: list[str] = []

Run = Callable[[list, Alloc, int], Any]
_MODES = {"CONSTANT": 0, "REFLECT": 1, "SYMMETRIC": 2}
_LIMIT = {"REFLECT": 1, "SYMMETRIC": 0}  # how much narrower than the axis a mirror must be


@cuda.jit
def _pad(out, x, oshape, xshape, xstrides, before, mode, value):
    i = cuda.grid(1)
    while i < out.shape[0]:
        rem, off, inside = i, 0, True
        for d in range(len(oshape) - 1, -1, -1):
            q = rem % oshape[d] - before[d]
            rem //= oshape[d]
            size = xshape[d]
            if q < 0 or q >= size:
                if mode == 0:
                    inside = False
                elif mode == 1:  # REFLECT
                    q = -q if q < 0 else 2 * (size - 1) - q
                else:  # SYMMETRIC
                    q = -q - 1 if q < 0 else 2 * size - 1 - q
            off += q * xstrides[d]
        out[i] = x[off] if inside else value
        i += cuda.gridsize(1)


def _too_wide(mode: str, shape: tuple, paddings: tuple) -> bool:
    """True where the reference raises: a mirror padding wider than its axis allows."""
    limit = _LIMIT.get(mode)
    return limit is not None and any(max(b, e) > d - limit for d, (b, e) in zip(shape, paddings))


@lower("pad")
def _pad_factory(node: Any) -> Run:
    paddings, mode = tuple(tuple(p) for p in node.attrs["paddings"]), node.attrs["mode"]
    dtype = node.specs[0].dtype.np
    constant = getattr(node.attrs["constant_values"], "array", node.attrs["constant_values"])
    value = np.asarray(constant).astype(dtype)[()]  # np.pad's assignment casts it so too

    def run(args: list, alloc: Alloc, step: int) -> Optional[Any]:
        x = args[0]
        xs = tuple(x.shape)
        if x.dtype != dtype or len(paddings) != len(xs) or _too_wide(mode, xs, paddings):
            return None
        out = alloc(tuple(d + b + e for d, (b, e) in zip(xs, paddings)), dtype)
        n = out.size
        if n == 0:
            return out
        flat = out.reshape(n)
        src = x.reshape(x.size) if x.size else flat  # (an empty x is never read)
        strides = tuple(math.prod(xs[d + 1:]) for d in range(len(xs)))
        blocks, threads = launch(n)
        _pad[blocks, threads](flat, src, tuple(out.shape) or (1,), xs or (1,), strides or (0,),
                              tuple(b for b, _ in paddings) or (0,), _MODES[mode], value)
        return out
    return run


@cuda.jit
def _fold(out, g, d, inner, before, after, mode):
    # out viewed as (outer, d, inner), g as (outer, before + d + after, inner).
    i = cuda.grid(1)
    dg = before + d + after
    while i < out.shape[0]:
        k = i % inner
        j = (i // inner) % d
        row = (i // (inner * d)) * dg * inner + k
        acc = g[row + (before + j) * inner]
        # The mirror on the left (a smaller padded position: added first), then the right.
        left = before - j if mode == 1 else before - 1 - j
        if 0 <= left < before:
            acc = g[row + left * inner] + acc
        right = before + 2 * (d - 1) - j if mode == 1 else before + 2 * d - 1 - j
        if before + d <= right < dg:
            acc = acc + g[row + right * inner]
        out[i] = acc
        i += cuda.gridsize(1)


@lower("pad_grad")
def _pad_grad(node: Any) -> Run:
    paddings, mode = tuple(tuple(p) for p in node.attrs["paddings"]), node.attrs["mode"]
    dtype, scratch = node.specs[0].dtype.np, Scratch()

    def run(args: list, alloc: Alloc, step: int) -> Optional[Any]:
        g, like = args
        ls = tuple(like.shape)
        padded = tuple(d + b + e for d, (b, e) in zip(ls, paddings))
        if mode not in _LIMIT or dtype not in (np.float32, np.float64) or g.dtype != dtype \
                or len(paddings) != len(ls) or tuple(g.shape) != padded \
                or _too_wide(mode, ls, paddings) or g.size == 0:
            return None
        axes = [a for a, (b, e) in enumerate(paddings) if b or e]
        if not axes:
            return g  # nothing padded: g is the gradient as it is
        current, shape = g, list(padded)
        for a in axes:
            shape[a] = ls[a]
            dst = alloc(ls, dtype) if a == axes[-1] else scratch.get(a, tuple(shape), dtype)
            n = dst.size
            blocks, threads = launch(n)
            _fold[blocks, threads](dst.reshape(n), current.reshape(current.size), ls[a],
                                   math.prod(shape[a + 1:]), paddings[a][0], paddings[a][1],
                                   _MODES[mode])
            current = dst
        return current
    return run
