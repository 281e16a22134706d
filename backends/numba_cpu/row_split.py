"""Broadcasting loops as rows: the output's trailing dims as one contiguous run.

A fused group whose operands broadcast (a bias over ``(N, C, H, W)``, a row mean over
``(N, F)``) cannot use the flat loop. The general n-d loop addresses every operand through
run-time strides, which keeps LLVM from vectorizing it: it measured 10x slower than the
flat loop on LeNet's bias + ReLU. Most such groups split instead into *outer* dims (looped
over, with an offset computed per row) and *inner* dims, the longest trailing run over
which every operand either walks contiguously with the output (``full``) or stays
constant (a broadcast: read once per row). The inner loop then reads 1-D contiguous
arrays and vectorizes like the flat loop.

The split is decided from the static shapes when the kernel is generated (a ``None`` dim
is assumed not to broadcast) and checked against the run-time shapes before each use
(:func:`fits`); a mismatch takes the n-d loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

__all__ = ["RowSplit", "plan_rows", "fits"]

Shape = Sequence[Optional[int]]


@dataclass(frozen=True)
class RowSplit:
    """Dims ``[0, outer)`` are looped; per input, ``full[k]``: it runs along the row
    (else it is constant on each row; scalars count as constant)."""

    outer: int
    full: tuple[bool, ...]


def _padded(shape: Shape, rank: int) -> tuple:
    return (1,) * (rank - len(shape)) + tuple(shape)


def plan_rows(out_shape: Shape, in_shapes: Sequence[Shape],
              scalars: Sequence[bool]) -> Optional[RowSplit]:
    """The split for static shapes, or None (rank 0, or an operand of unknown rank)."""
    rank = len(out_shape)
    if rank == 0 or any(s is None for s in in_shapes):
        return None
    padded = [_padded(s, rank) for s in in_shapes]
    full: list[Optional[bool]] = [False if sc else None for sc in scalars]
    outer = 0
    for d in reversed(range(rank)):
        if out_shape[d] == 1:
            continue  # a dim of size 1 suits either class
        runs = [None if sc else shape[d] != 1 for shape, sc in zip(padded, scalars)]
        if any(f is not None and r is not None and f != r for f, r in zip(full, runs)):
            outer = d + 1  # an operand changes class here: dims [0, d] are looped
            break
        full = [f if r is None else r for f, r in zip(full, runs)]
    return RowSplit(outer, tuple(bool(f) for f in full))


def fits(split: RowSplit, out_shape: tuple, shapes: Sequence[tuple],
         scalars: Sequence[bool]) -> bool:
    """Whether run-time ``shapes`` (already broadcast-compatible) follow ``split``."""
    rank = len(out_shape)
    for shape, full, sc in zip(shapes, split.full, scalars):
        if sc:
            continue
        padded = _padded(shape, rank)
        for d in range(split.outer, rank):
            if padded[d] != (out_shape[d] if full else 1):
                return False
    return True
