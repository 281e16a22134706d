"""Which inference plans may run as blocks of rows: every fetched value's row ``i``
depends on row ``i`` of the batched feeds alone.

A compiled program (:mod:`.program_codegen`) runs on one thread except for its GEMMs, so a
CNN's convolution and pooling loops leave the other cores idle. When every step of a plan
is row-wise, the program can instead run on row blocks of the batch at once, one block
per thread (:mod:`.program_runtime`), and give the same results.

Each value of the IR is classed as

* ``ROWS``: axis 0 is the batch; its row ``i`` is computed from row ``i`` of the batched
  feeds (the feeds whose axis 0 is of unknown size) and from shared values;
* ``SHARED``: it depends on no batched feed (weights, constants, their functions).

Each op's rule (below) says when its output is ``ROWS``; an op with a batched input and
no rule, or a rule that fails (a sum over the batch axis, a reshape to a fixed batch, a
shared operand as long as the batch), makes the whole plan run unsplit. The rules look at
static shapes only, so a plan classed row-wise is row-wise for every batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

from graphc.lower import Plan
from graphc.op import Kind, get_op
from graphc.ops.indexing import FULL_SLICE, expand_spec

from .reduce_kernels import reduced_axes

__all__ = ["ROWS", "SHARED", "Rows", "sample_rows"]

ROWS, SHARED = "rows", "shared"

# Ops whose per-row work runs on one thread inside a program (the GEMMs do not: BLAS has
# its own threads), and what :class:`Rows` counts.
_ONE_THREAD_OPS = ("conv2d", "max_pool2d", "avg_pool2d")


@dataclass(frozen=True)
class Rows:
    """A row-wise plan: ``feeds``, the positions of the batched feeds (cut into blocks);
    ``work``, the multiply-adds (or window reads) per row of its convolutions and pooling."""

    feeds: tuple[int, ...]
    work: int


def sample_rows(plan: Plan) -> Optional[Rows]:
    """The plan's :class:`Rows` when every fetch is row-wise and it has window ops to
    share out, else None."""
    ir = plan.ir
    classes: dict[tuple[int, int], str] = {}
    for node in ir.nodes:
        if node.op == "feed":
            shape = node.specs[0].shape
            cls: Optional[str] = ROWS if shape and shape[0] is None else SHARED
        elif node.op in ("variable", "constant"):
            cls = SHARED
        else:
            ins = [classes[(src.uid, i)] for src, i in node.inputs]
            cls = SHARED if ROWS not in ins and get_op(node.op).kind != Kind.RANDOM \
                else _rule(node, ins)
        if cls is None:
            return None
        classes.update({(node.uid, k): cls for k in range(len(node.specs))})
    if any(classes[(n.uid, i)] != ROWS for n, i in ir.fetches):
        return None
    feeds = tuple(k for k, f in enumerate(ir.feeds) if classes[(f.uid, 0)] == ROWS)
    work = sum(_row_work(n) for n in ir.nodes if n.op in _ONE_THREAD_OPS)
    return Rows(feeds, work) if work else None


def _row_work(node: Any) -> int:
    """Multiply-adds per row of a convolution (window reads of a pooling)."""
    out = node.specs[0].shape
    window = _shapes(node)[1][1:] if node.op == "conv2d" else node.attrs["ksize"]
    dims = (*out[1:], *window)
    return 0 if None in dims else math.prod(dims)


def _rule(node: Any, ins: list[str]) -> Optional[str]:
    """``ROWS`` when ``node`` (with at least one ``ROWS`` input) is row-wise, else None."""
    if node.op in _RULES:
        rule = _RULES[node.op]
    else:
        kind = get_op(node.op).kind
        rule = _elementwise if kind in (Kind.ELEMENTWISE, Kind.BROADCAST) else None
    return ROWS if rule is not None and rule(node, ins, _shapes(node)) else None


def _shapes(node: Any) -> list[tuple]:
    """The static shapes of ``node``'s inputs (ranks are known in a program)."""
    return [src.specs[i].shape for src, i in node.inputs]


def _aligned(shape: tuple, cls: str, rank: int) -> bool:
    """An operand of an elementwise map of rank ``rank`` keeps rows apart: a ``ROWS``
    operand of the full rank (its axis 0 is the output's), or a ``SHARED`` one broadcast
    along axis 0 (lower rank, or a static 1 there)."""
    if cls == ROWS:
        return len(shape) == rank
    return len(shape) < rank or shape[0] == 1


def _elementwise(node: Any, ins: list[str], shapes: list[tuple]) -> bool:
    rank = len(node.specs[0].shape)
    return all(_aligned(s, c, rank) for s, c in zip(shapes, ins))


def _axis_kept(axis: Any, rank: int) -> bool:
    return axis is not None and axis % max(rank, 1) != 0


def _rows_first(ins: list[str]) -> bool:
    """The first input is the batched one, the others shared (weights, a window's)."""
    return ins[0] == ROWS and all(c == SHARED for c in ins[1:])


def _matmul(node: Any, ins: list[str], shapes: list[tuple]) -> bool:
    (sa, sb), a = shapes, node.attrs
    if ins == [ROWS, SHARED]:  # x @ W: each row of x alone (a's batch axis not contracted)
        return len(sb) == 2 and (len(sa) > 2 or not a["transpose_a"])
    return ins == [ROWS, ROWS] and len(sa) == len(sb) > 2  # one product per sample


def _axes_kept(node: Any, ins: list[str], shapes: list[tuple]) -> bool:
    """A reduction (or squeeze) whose ``axes`` (None: all) leave axis 0 alone."""
    return 0 not in reduced_axes(node.attrs["axes"], len(shapes[0]))


def _reshape(node: Any, ins: list[str], shapes: list[tuple]) -> bool:
    """Rows stay rows when axis 0 is inferred (-1) and the rest of each row is static."""
    target, shape = node.attrs["shape"], shapes[0]
    return bool(target) and target[0] == -1 and -1 not in target[1:] \
        and None not in shape[1:] and math.prod(target[1:]) == math.prod(shape[1:])


def _like(node: Any, ins: list[str], shapes: list[tuple]) -> bool:
    """``op(x, like)`` with ``like``'s shape: both batched, of the same rank and static row
    size (reshape_like, sum_to_like: no sum over the batch)."""
    (sx, sl) = shapes
    return ins == [ROWS, ROWS] and len(sx) == len(sl) and None not in (*sx[1:], *sl[1:]) \
        and (node.op != "reshape_like" or math.prod(sx[1:]) == math.prod(sl[1:]))


def _broadcast_like(node: Any, ins: list[str], shapes: list[tuple]) -> bool:
    """``a`` with ``axes`` re-inserted, broadcast to ``like``'s (batched) shape."""
    (sa, sl), axes = shapes, node.attrs["axes"]
    rank = len(sa) + len(axes)
    if ins[1] != ROWS:
        return False
    if ins[0] == SHARED:  # broadcast along axis 0
        return rank < len(sl) or 0 in axes or (len(sa) > 0 and sa[0] == 1)
    return rank == len(sl) and 0 not in axes


def _strided_slice(node: Any, ins: list[str], shapes: list[tuple]) -> bool:
    spec = expand_spec(node.attrs["spec"], len(shapes[0]))
    return not spec or spec[0] in (FULL_SLICE, (0, None, 1))  # axis 0 whole


def _all_rows_off_axis0(node: Any, ins: list[str], shapes: list[tuple]) -> bool:
    """concat, split_like: every input batched, joined or cut along another axis."""
    return all(c == ROWS for c in ins) and _axis_kept(node.attrs["axis"], len(shapes[0]))


def _split(node: Any, ins: list[str], shapes: list[tuple]) -> bool:
    return _rows_first(ins) and _axis_kept(node.attrs["axis"], len(shapes[0]))



def _expand_dims(node: Any, ins: list[str], shapes: list[tuple]) -> bool:
    return _axis_kept(node.attrs["axis"], len(node.specs[0].shape))


def _arg_extreme(node: Any, ins: list[str], shapes: list[tuple]) -> bool:
    return _axis_kept(node.attrs["axis"], len(shapes[0]))


def _window(node: Any, ins: list[str], shapes: list[tuple]) -> bool:
    return _rows_first(ins)


def _per_example_loss(node: Any, ins: list[str], shapes: list[tuple]) -> bool:
    (labels, logits) = shapes  # per-example losses of (N,) labels and (N, classes) logits
    return ins == [ROWS, ROWS] and len(logits) == len(labels) + 1 and len(labels) >= 1


Rule = Callable[[Any, list, list], bool]
_RULES: dict[str, Optional[Rule]] = {
    "matmul": _matmul,
    **{op: _axes_kept for op in ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min",
                                 "squeeze")},
    "argmax": _arg_extreme, "argmin": _arg_extreme,
    "reshape": _reshape, "reshape_like": _like, "sum_to_like": _like,
    "broadcast_like": _broadcast_like,
    "fill_like": lambda node, ins, shapes: True,  # (its one input is the batched one)
    "strided_slice": _strided_slice, "concat": _all_rows_off_axis0, "split": _split,
    "split_like": _all_rows_off_axis0, "expand_dims": _expand_dims,
    "conv2d": _window, "max_pool2d": _window, "avg_pool2d": _window,
    "sparse_softmax_cross_entropy_with_logits": _per_example_loss,
    # shape-only ops whose attrs fix a batch size: never row-wise
    "broadcast_to": None, "fill": None,
}
