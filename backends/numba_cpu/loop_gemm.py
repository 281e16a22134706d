"""GEMM in a compiled scan loop (:mod:`.loop_codegen`): per step, batched before the loop,
or accumulated after it.

Three forms of ``matmul`` (2-D float operands of one dtype), each through
:func:`.loop_blas.gemm`:

* **per step**: ``out = op(a) @ op(b)`` at every step (the default);
* **hoisted** (:data:`COUNTERS` ``hoisted``): ``a`` is a scanned slice ``x[t]`` (not
  transposed) and ``b`` a loop invariant, so every step's product is one row block of
  ``xs.reshape(T*N, K) @ op(b)``, computed before the loop as one GEMM into a ``(T, N, M)``
  buffer whose ``[t]`` the step reads. An LSTM's gradient body recomputes the forward
  gates ``h[t] @ R`` from the saved states this way: 32 GEMMs of ``(32, 128) @ (128, 512)``
  took 1.8 ms, the one ``(1024, 128) @ (128, 512)`` 1.5 ms (and the loop's working set
  shrinks);
* **accumulated** (``accumulated``): a carry that the body only ever updates as
  ``c + matmul(p, q, transpose_a=True)`` (``p``, ``q`` per-step values; the carry, the
  product and the sum read by nothing else; :func:`find_accumulators` checks this on the
  IR) ends as ``c0 + P^T Q`` with ``P``, ``Q`` the stacks of every step's ``p``, ``q``
  reshaped to ``(T*N, .)``: one GEMM after the loop instead of a GEMM and a read-modify-
  write of the whole carry at every step. This is the gradient of every loop-invariant
  weight in a backward scan (``dR += h^T @ dG``): 32 x (GEMM + 64K-element add) took
  2.4 ms where the one GEMM takes 1.5 ms. A stack that the loop has anyway (the scanned
  input itself, or a ``ys`` output holding the same value) is used as is; otherwise each
  step copies its value into a stack buffer.
"""

from __future__ import annotations

from typing import Any, Optional

from .loop_shapes import Unsupported
from .loop_values import Gen, Val

__all__ = ["COUNTERS", "accumulate_into", "emit_matmul", "find_accumulators",
           "finish_accumulators"]

COUNTERS: dict[str, int] = {"hoisted": 0, "accumulated": 0}


def find_accumulators(plan: Any, n_carry: int) -> dict[int, int]:
    """uid of each ``matmul`` (and of each one-``add`` fused step root) that accumulates
    into a carry as described in the module docstring -> that carry's index."""
    ir = plan.ir
    users = ir.users()
    found: dict[int, int] = {}
    for step in plan.steps:
        add = step.node
        if step.kind != "fused" or len(step.nodes) != 1 or add.op != "add":
            continue
        refs = list(add.inputs)
        carries = [i for i in range(n_carry) if (ir.feeds[i], 0) in refs]
        if len(carries) != 1 or len({src.uid for src, _ in refs}) != 2:
            continue
        i = carries[0]
        mm = next(src for src, _ in refs if src is not ir.feeds[i])
        if (mm.op != "matmul" or not mm.attrs["transpose_a"] or mm.attrs["transpose_b"]
                or [u.uid for u in users[mm.uid]] != [add.uid]
                or [u.uid for u in users[ir.feeds[i].uid]] != [add.uid]
                or users[add.uid] or ir.fetches.count((add, 0)) != 1
                or ir.fetches[i] != (add, 0)):
            continue
        found[mm.uid] = found[add.uid] = i
    return found


def _operand(v: Val) -> str:
    """BLAS takes C-ordered operands: a strided view is copied."""
    return v.name if v.contiguous else f"np.ascontiguousarray({v.name})"


def _scanned(v: Val) -> Optional[str]:
    """The scanned input ``xs<j>`` when ``v`` is its slice ``x<j> = xs<j>[t]``."""
    return v.root if v.root.startswith("xs") and v.name == "x" + v.root[2:] else None


def emit_matmul(gen: Gen, node: Any) -> list[Val]:
    """``matmul`` per step, hoisted or accumulated (see the module docstring)."""
    a, b = (gen.val(r) for r in node.inputs)
    if len(a.dims) != 2 or len(b.dims) != 2 or a.dtype.kind != "f" or a.dtype != b.dtype \
            or a.dtype.itemsize not in (4, 8):
        raise Unsupported("matmul other than 2-D float32/float64 @ the same")
    ta, tb = bool(node.attrs["transpose_a"]), bool(node.attrs["transpose_b"])
    m, k = a.dims[::-1] if ta else a.dims
    k2, n = b.dims[::-1] if tb else b.dims
    gen.dims.same(k, k2)
    if node.uid in gen.accumulate and not a.invariant and not b.invariant:
        gen.deferred[node.uid] = (a, b, (m, n))
        return [Val(gen.name("acc"), (m, n), a.dtype, "")]  # read only by the carry's add
    if _scanned(a) and not ta and b.invariant and not gen.hoist:
        return [_hoisted(gen, a, b, (m, n), tb)]
    out = gen.buffer(a.dtype, (m, n))
    gen.emit(f"gemm({_operand(a)}, {_operand(b)}, {out.name}, {ta}, {tb})")
    return [out]


def _hoisted(gen: Gen, a: Val, b: Val, dims: tuple, tb: bool) -> Val:
    """The product's ``[t]`` in a ``(T, m, n)`` buffer computed before the loop."""
    ex, steps = gen.dims.expr, gen.dims.expr(gen.steps)
    gen.hoist = True
    big = gen.buffer(a.dtype, (gen.steps, *dims))
    gen.hoist = False
    rows = f"{steps} * {ex(dims[0])}"
    gen.prologue.append(
        f"gemm({_scanned(a)}.reshape(({rows}, {ex(a.dims[1])})), {_operand(b)}, "
        f"{big.name}.reshape(({rows}, {ex(dims[1])})), False, {tb})")
    name = gen.name("h")
    gen.emit(f"{name} = {big.name}[t]")
    COUNTERS["hoisted"] += 1
    return Val(name, dims, a.dtype, big.name)  # not owned: a carry copies it, never swaps


def accumulate_into(gen: Gen, add: Any, carry: Val) -> Optional[list[Val]]:
    """The fused ``carry + product`` step of an accumulator whose product was deferred:
    the carry is left alone in the loop (its value is the carry itself); None otherwise."""
    mm = next((src for src, _ in add.inputs if src.uid in gen.deferred), None)
    if mm is None:
        return None
    _, _, dims = gen.deferred[mm.uid]
    for c, d in zip(carry.dims, dims):  # the add must not broadcast the carry
        gen.dims.same(c, d)
    gen.pending.append((mm.uid, carry))
    return [carry]


def finish_accumulators(gen: Gen, ys: list[Val]) -> None:
    """The after-loop GEMMs of the accumulated carries (and the stacks they read)."""
    ex = gen.dims.expr
    for uid, carry in gen.pending:
        p, q, (m, n) = gen.deferred[uid]
        rows = f"{ex(gen.steps)} * {ex(p.dims[0])}"
        sp, sq = _stack(gen, p, ys), _stack(gen, q, ys)
        tmp = gen.buffer(carry.dtype, (m, n))
        acc, add = gen.name("f"), gen.name("f")
        gen.epilogue += [
            (f"gemm({sp}.reshape(({rows}, {ex(m)})), {sq}.reshape(({rows}, {ex(n)})), "
             f"{tmp.name}, True, False)"),
            f"{acc} = {carry.name}.reshape(-1)",
            f"{add} = {tmp.name}.reshape(-1)",
            f"for i_ in range({acc}.size):",
            f"    {acc}[i_] += {add}[i_]"]
        COUNTERS["accumulated"] += 1


def _stack(gen: Gen, v: Val, ys: list[Val]) -> str:
    """An array holding ``v`` of every step along axis 0 (C-ordered, indexed like xs)."""
    if _scanned(v):
        return _scanned(v)  # type: ignore[return-value]
    for j, y in enumerate(ys):
        if y.name == v.name and y.dims:
            return f"ys{j}"
    stack = gen.buffer(v.dtype, (gen.steps, *v.dims))
    gen.tail.append(f"{stack.name}[t] = {v.name}")
    return stack.name
