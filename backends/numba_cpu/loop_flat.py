"""Elementwise maps over one long inner loop: the trailing dims that every operand either
reads densely or broadcasts wholly (see :func:`.loop_emit.emit_map`).

A map's inner loop runs over the output's last dim, so a bias added to a convolution's
output, ``(N, C, H, W) + (C, 1, 1)``, ran ``N*C*H`` loops of ``W`` cells: 28 or 10 in LeNet,
too short for LLVM's vector loop to pay (3.5 us for LeNet's first bias + relu at batch 1).
Here every operand is, over the output's trailing dims ``q..``, either C-ordered with those
very dims (one contiguous run per outer index) or broadcast along all of them (one value
per outer index), so the map runs ``N*C`` loops of ``H*W`` cells over 1-D views instead:
0.5 us for that bias + relu. Results are the same: each cell is computed by the same
formula, only the loop structure changes.
"""

from __future__ import annotations

from typing import Optional

from .loop_values import Gen, Val

__all__ = ["flat_split", "flat_operands"]


def _covers(gen: Gen, v: Val, out: tuple, q: int) -> Optional[str]:
    """How ``v`` reads the output's dims ``q..``: "dense" (its own trailing dims, C-ordered),
    "scalar" (broadcast along all of them), or None (neither)."""
    find, rank = gen.dims.find, len(out)
    dense = scalar = True
    for p in range(q, rank):
        j = p - (rank - len(v.dims))
        present = j >= 0
        one = not present or find(v.dims[j]) == 1
        same = present and find(v.dims[j]) == find(out[p])
        scalar = scalar and one
        dense = dense and same
    if scalar:
        return "scalar"
    if dense and v.contiguous and v.slice_of is None:
        return "dense"
    return None


def flat_split(gen: Gen, ins: list[Val], out: Val) -> Optional[int]:
    """The first of the output's dims that the map can run as one inner loop, when that
    joins two or more dims; None otherwise (the row-by-row loops apply)."""
    rank = len(out.dims)
    best = None
    for q in range(rank - 2, -1, -1):
        if any(v.dims and _covers(gen, v, out.dims, q) is None for v in ins):
            break
        best = q
    return best


def flat_operands(gen: Gen, ins: list[Val], out: Val, q: int) -> tuple[list, list, str]:
    """(lines before the inner loop, each input's element expression, the output's element)
    for a map whose inner loop ``i<q>`` runs over the output's dims ``q..`` flattened."""
    pre, loads = [], []
    for v in ins:
        if not v.dims:
            loads.append(f"{v.name}[0]")
            continue
        # v's indices at the outer loop counters i0 .. i(q-1)
        idx = gen.indices(v, out.dims)[:max(0, q - (len(out.dims) - len(v.dims)))]
        name = gen.name("r")
        if _covers(gen, v, out.dims, q) == "scalar":
            rest = ["0"] * (len(v.dims) - len(idx))
            pre.append(f"{name} = {v.name}[{', '.join(idx + rest)}]")
            loads.append(name)
        else:
            pre.append(f"{name} = {_run(gen, v, idx)}")
            loads.append(f"{name}[i{q}]")
    row = gen.name("r")
    pre.append(f"{row} = {_run(gen, out, [f'i{p}' for p in range(q)])}")
    return pre, loads, f"{row}[i{q}]"


def _run(gen: Gen, v: Val, idx: list[str]) -> str:
    """Source of ``v``'s contiguous run at outer indices ``idx`` (over its leading dims), as
    a 1-D array. A slice of the buffer's flat alias where there is one: Numba's reshape is a
    call (~20 ns), as long as a LeNet bias + relu's 100-cell run, at every outer index."""
    alias = gen.flat_alias(v) if idx else None
    if alias is None:
        return f"{v.name}[{', '.join(idx)}].reshape(-1)" if idx else f"{v.name}.reshape(-1)"
    k = len(idx)
    terms = [f"{i} * {gen.dims.product(v.dims[j + 1:])}" for j, i in enumerate(idx) if i != "0"]
    start = " + ".join(terms) or "0"
    return f"{alias}[{start}:{start} + {gen.dims.product(v.dims[k:])}]"
