"""The state of a compiled scan loop's code generation (see :mod:`.loop_codegen`).

One :class:`Gen` collects, while :mod:`.loop_codegen` walks the body's steps, the symbolic
dimensions (:class:`~.loop_shapes.Dims`), the workspace buffers, the lines that run once
before the loop (loop-invariant steps, batched GEMMs), the lines of one iteration and
those after the loop (accumulated GEMMs, :mod:`.loop_gemm`); :class:`Val` is one
value of the body as the generated code names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .loop_shapes import Dims, Unsupported

__all__ = ["ALIGN", "LoopSource", "Val", "Gen", "Layouts", "literal"]

ALIGN = 16  # workspace slices start on 64-byte boundaries (float32), for SIMD loads


@dataclass
class Val:
    """A value of the body in the generated code: variable ``name`` with symbolic
    ``dims`` (``()`` for a scalar, stored as a 1-element array). ``root`` names the
    storage it lives in (its own buffer, a view's base, an input); ``owner``: it is the
    per-iteration buffer a step writes (so a new carry may take it over by a swap);
    ``slice_of``: a split's piece, read by elementwise loops through rows of its base
    (contiguous, so they vectorize) rather than through the strided view."""

    name: str
    dims: tuple
    dtype: np.dtype
    root: str
    owner: bool = False
    contiguous: bool = True
    invariant: bool = False
    slice_of: Optional[tuple] = None  # (base, axis, start, end): a slice of C-ordered base


@dataclass
class LoopSource:
    """The generated module's source and what the runtime needs to call it."""

    source: str
    ws_dtypes: list[np.dtype]
    n_carry: int
    n_ys: int


@dataclass
class Gen:
    """Code-generation state shared by the op emitters of :mod:`.loop_emit`."""

    dims: Dims = field(default_factory=Dims)
    values: dict[tuple[int, int], Val] = field(default_factory=dict)
    buffers: list[tuple[str, np.dtype, tuple]] = field(default_factory=list)
    prologue: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    hoist: bool = False  # the current step reads loop invariants only
    steps: Any = None    # the symbol of the number of steps T
    tail: list[str] = field(default_factory=list)      # end of each step (stack copies)
    epilogue: list[str] = field(default_factory=list)  # after the loop
    # Accumulated carries (loop_gemm.py): matmul/add uid -> carry index; the deferred
    # products (uid -> (p, q, dims)); the carries that take them, after the loop.
    accumulate: dict[int, int] = field(default_factory=dict)
    deferred: dict[int, tuple] = field(default_factory=dict)
    pending: list[tuple[int, Val]] = field(default_factory=list)
    # The last elementwise map's outer loops: ((dims, hoisted), length of the lines they
    # end) -- the next map over the same dims joins them if nothing came in between.
    nest: Optional[tuple] = None
    _n: int = 0

    def name(self, prefix: str = "u") -> str:
        """A fresh variable name (not v<k>/t<k>: scalar_body's locals)."""
        self._n += 1
        return f"{prefix}{self._n}"

    def val(self, ref: Any) -> Val:
        """The value of IR output ``ref`` = (INode, index)."""
        try:
            return self.values[(ref[0].uid, ref[1])]
        except KeyError:
            raise Unsupported(f"{ref[0].op} is not computed in the loop") from None

    def emit(self, *lines: str) -> None:
        """Lines of the current step (before the loop when it is invariant)."""
        (self.prologue if self.hoist else self.body).extend(lines)

    def shape(self, dims: tuple) -> str:
        """Source of the storage shape tuple of ``dims`` (``(1,)`` for a scalar)."""
        parts = [self.dims.expr(d) for d in dims] or ["1"]
        return f"({', '.join(parts)},)"

    def buffer(self, dtype: Any, dims: tuple) -> Val:
        """A workspace buffer for a step's output."""
        name = self.name("b")
        self.buffers.append((name, np.dtype(dtype), tuple(dims)))
        return Val(name, tuple(dims), np.dtype(dtype), name, owner=not self.hoist,
                   invariant=self.hoist)

    def indices(self, v: Val, out: tuple) -> list[str]:
        """``v``'s index per dim inside a loop nest ``i0, i1, ..`` over ``out`` (``v``
        right-aligned, broadcasting): ``"0"`` where ``v`` has a 1 against a longer dim."""
        find, lead = self.dims.find, len(out) - len(v.dims)
        return ["0" if find(d) == 1 and find(out[j + lead]) != 1 else f"i{j + lead}"
                for j, d in enumerate(v.dims)]

    def output(self, node: Any, dims: tuple, dtype: Any = None) -> Val:
        """A workspace buffer for ``node``'s first output, of ``dims`` with each dim the
        graph knows statically pinned to that size (a run-time check, and an int the
        generated code folds); ``dtype``: the node's own unless given."""
        static = node.specs[0].shape
        pinned = tuple(self.dims.static(d, s) for d, s in zip(dims, static))
        return self.buffer(node.specs[0].dtype.np if dtype is None else dtype, pinned)

    def derived(self, base: Val, name: str, dims: tuple, contiguous: bool,
                slice_of: Optional[tuple] = None) -> Val:
        """A view of ``base``: it lives in base's storage."""
        return Val(name, tuple(dims), base.dtype, base.root, contiguous=contiguous,
                   invariant=base.invariant, slice_of=slice_of)

    def flat_alias(self, v: Val) -> Optional[str]:
        """The name of a 1-D view of all of ``v``, made once before the loop (the
        prologue), when ``v`` is a whole workspace buffer; else None."""
        if v.name != v.root or not any(b[0] == v.name for b in self.buffers):
            return None
        line = f"{v.name}_flat = {v.name}.reshape(-1)"
        if line not in self.prologue:  # (a line dropped with its step is made again)
            self.prologue.append(line)
        return f"{v.name}_flat"

    def loop_nest(self, dims: tuple, lines: list[str]) -> None:
        """``lines`` inside loops ``i0, i1, ...`` over ``dims`` (none for a scalar)."""
        for p, d in enumerate(dims):
            self.emit("    " * p + f"for i{p} in range({self.dims.expr(d)}):")
        self.emit(*("    " * len(dims) + ln for ln in lines))


def literal(value: Any, dtype: np.dtype) -> str:
    """Source text of one scalar of ``dtype`` (exact: floats round-trip through repr)."""
    if dtype.kind == "b":
        return "True" if bool(value) else "False"
    if dtype.kind in "iu":
        return str(int(value))
    f = float(value)
    if f != f:
        return "np.nan"
    if f in (float("inf"), float("-inf")):
        return "np.inf" if f > 0 else "-np.inf"
    return repr(f)


class Layouts:
    """A generated module's run-time layout per distinct input shapes: ``(dims,
    workspaces, output shapes)`` from its ``shapes(s)``, or None where it does not apply.
    Workspaces are allocated once per input shapes and reused across runs; past ``limit``
    distinct shapes (many batch sizes) the old ones are dropped."""

    def __init__(self, shapes_fn: Any, ws_dtypes: Any, limit: int = 16) -> None:
        self._shapes_fn, self._ws_dtypes, self._limit = shapes_fn, ws_dtypes, limit
        self._memo: dict[tuple, Optional[tuple]] = {}

    def __call__(self, shapes: tuple) -> Optional[tuple]:
        if shapes in self._memo:
            return self._memo[shapes]
        if len(self._memo) >= self._limit:
            self._memo.clear()
        found = self._shapes_fn(shapes)
        if found is not None:
            dims, sizes, out_shapes = found
            workspaces = [np.empty(n, dt) for n, dt in zip(sizes, self._ws_dtypes)]
            found = (dims, workspaces, out_shapes)
        self._memo[shapes] = found
        return found
