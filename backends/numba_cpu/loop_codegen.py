"""One Numba function for a whole scan: the loop, its carries and every body step inside.

Input: the body's lowered :class:`~graphc.lower.Plan` (the cpu pipeline already fused its
elementwise chains). Output: the source of a module with two functions,

* ``shapes(s)`` (plain Python, ``s`` the inputs' shapes): every dimension the loop needs
  and the workspace layout (one int64 array), the workspace sizes and the output shapes; or
  None when an assumption of the generated code fails at run time (:mod:`.loop_shapes`);
* ``loop(dims, workspaces..., carries..., xs..., consts..., final carries..., ys...,
  reverse)`` (``@njit``): all ``T`` steps; ``x[t]`` and ``ys[t]`` are views, not copies.

Every value of the body lives in a slice of a per-dtype *workspace* that the caller
allocates once per input shapes and reuses across runs (the loop allocates nothing). A new
carry that a step wrote into its own buffer is *swapped* with the carry's buffer instead of
copied; steps that read only consts and literals run once, before the loop, and so do
GEMMs of a scanned input by a const (batched), while a carry that only accumulates GEMMs
gets one GEMM after the loop (:mod:`.loop_gemm`). A step whose outputs are read only for
their shapes (``sum_to_like``'s donor, in a gradient body) emits no code: its dims are all
the loop needs of it. A stacked output whose step buffer no other value shares is written
straight into its stack's slice ``ys[t]``. Per-op code: :mod:`.loop_emit`. A body with an
op that has no emitter raises :class:`~.loop_shapes.Unsupported` (the runtime keeps the
Python loop for it).
"""

from __future__ import annotations

import re
from typing import Any

from graphc.lower import Plan
from graphc.op import SHAPE_ONLY_INPUTS

from . import codegen, loop_blas
from .loop_emit import COUNTERS, EMITTERS, emit_constant, emit_fused
from .loop_gemm import accumulate_into, find_accumulators, finish_accumulators
from .loop_shapes import Unsupported
from .loop_values import ALIGN, Gen, LoopSource, Val

__all__ = ["PRELUDE", "Unsupported", "emit_op", "generate_loop", "shape_function"]

# codegen's prelude imports what the elementwise formulas call (and carries a hash of
# fastmath.py, which keys the kernel cache to it). The loops' GEMM (loop_blas.py) is keyed
# in by its stamp: which BLAS, and its file's hash.
PRELUDE = (codegen.PRELUDE + "from graphc.backends.numba_cpu.loop_blas import gemm\n"
           + f"# loop_blas {loop_blas.STAMP}\n\n")


def generate_loop(plan: Plan, n_carry: int, n_xs: int) -> LoopSource:
    """The module source of the compiled loop of the body ``plan`` (its feeds are the
    body's inputs, its fetches the body's outputs); raises :class:`Unsupported`."""
    ir, gen = plan.ir, Gen()
    if any(spec.shape is None for n in ir.nodes for spec in n.specs):
        raise Unsupported("a value of unknown rank")
    carries, xs, consts = _inputs(gen, ir.feeds, n_carry, n_xs)
    gen.accumulate = find_accumulators(plan, n_carry)
    shape_only = _read_for_shapes_only(plan)
    for step in plan.steps:
        if step.node.uid in shape_only:
            _emit_dims_only(gen, step, carries)
        else:
            _emit_step(gen, step, carries)
    outs = [gen.val(r) for r in ir.fetches]
    if len(outs) < n_carry:
        raise Unsupported("fewer outputs than carries")
    for c, new in zip(carries, outs):
        for a, b in zip(c.dims, new.dims):  # a carry keeps its shape (else: the ref's error)
            gen.dims.same(a, b)
    update = _carry_update(gen, carries, outs[:n_carry])
    homes = [gen.buffer(c.dtype, c.dims).name for c in carries]  # where each carry starts
    ys = outs[n_carry:]
    finish_accumulators(gen, ys)
    src = _shape_function(gen, ys) + _loop_function(gen, carries, homes, xs, consts, ys,
                                                    update)
    dtypes = sorted({b[1] for b in gen.buffers}, key=str)
    return LoopSource(PRELUDE + src, dtypes, n_carry, len(ys))


def _inputs(gen: Gen, feeds: list, n_carry: int, n_xs: int) -> tuple[list, list, list]:
    """Vals of the carries (``c<i>``), the slices ``x<j> = xs<j>[t]`` and consts ``k<j>``;
    the shape function reads input ``i``'s shape as ``s[i]``."""
    dims = gen.dims
    carries, xs, consts = [], [], []
    for i, feed in enumerate(feeds):
        static = feed.specs[0].shape
        lead = 1 if n_carry <= i < n_carry + n_xs else 0
        dims.require(f"len(s[{i}]) == {len(static) + lead}")
        shape = tuple(dims.static(dims.fresh(f"s[{i}][{p + lead}]"), d)
                      for p, d in enumerate(static))
        dtype = feed.specs[0].dtype.np
        if i < n_carry:
            val = Val(f"c{i}", shape, dtype, f"c{i}")
            carries.append(val)
        elif lead:
            j = i - n_carry
            length = dims.fresh(f"s[{i}][0]")
            gen.steps = length if gen.steps is None else dims.same(gen.steps, length)
            val = Val(f"x{j}", shape, dtype, f"xs{j}", contiguous=True)
            xs.append(val)
        else:
            j = i - n_carry - n_xs
            val = Val(f"k{j}", shape, dtype, f"k{j}", invariant=True)
            consts.append(val)
        gen.values[(feed.uid, 0)] = val
    if not xs:
        raise Unsupported("no scanned input")
    return carries, xs, consts


def _emit_step(gen: Gen, step: Any, carries: list[Val]) -> None:
    node = step.node
    if step.kind == "feed":
        return
    gen.hoist = all(gen.val(r).invariant for r in step.inputs)
    outs = None
    if step.kind == "fused" and node.uid in gen.accumulate:  # carry + deferred GEMM
        outs = accumulate_into(gen, node, carries[gen.accumulate[node.uid]])
    if outs is None:
        outs = emit_op(gen, step)
    gen.hoist = False
    for i, val in enumerate(outs):
        gen.values[(node.uid, i)] = val


def _read_for_shapes_only(plan: Plan) -> set[int]:
    """The uids of the steps whose every output is read only for its shape (by an input of
    :data:`~graphc.op.SHAPE_ONLY_INPUTS`, or by another such step)."""
    data = {(n.uid, i) for n, i in plan.ir.fetches}
    found: set[int] = set()
    for step in reversed(plan.steps):
        node = step.node
        if step.kind != "feed" and not any((node.uid, i) in data
                                           for i in range(len(node.specs))):
            found.add(node.uid)
            continue
        fused = step.kind == "fused"
        like = () if fused else SHAPE_ONLY_INPUTS.get(node.op, ())
        for p, (src, i) in enumerate(step.inputs if fused else node.inputs):
            if p not in like:
                data.add((src.uid, i))
    return found


def _emit_dims_only(gen: Gen, step: Any, carries: list[Val]) -> None:
    """Emit ``step`` for its outputs' dims, then drop its code and buffers."""
    kept = (len(gen.prologue), len(gen.body), len(gen.tail), len(gen.epilogue),
            len(gen.buffers), gen.nest)
    _emit_step(gen, step, carries)
    for lines, n in zip((gen.prologue, gen.body, gen.tail, gen.epilogue, gen.buffers), kept):
        del lines[n:]
    gen.nest = kept[-1]
    COUNTERS["shape_only"] += 1


def emit_op(gen: Gen, step: Any) -> list[Val]:
    """The Vals of a constant, fused or emittable library/fallback step's outputs (its
    lines emitted); raises :class:`Unsupported` for any other step."""
    node = step.node
    if step.kind == "constant":
        return emit_constant(gen, node)
    if step.kind == "fused":
        return emit_fused(gen, step)
    if step.kind in ("library", "fallback") and node.op in EMITTERS:
        return EMITTERS[node.op](gen, node)
    raise Unsupported(f"{step.kind} step {node.op}")


def _carry_update(gen: Gen, carries: list[Val], news: list[Val]) -> list[str]:
    """Lines that make the new carries current at the end of a step. A new value in a
    step's own buffer is swapped in (the old carry's memory becomes that buffer, which the
    step overwrites next time); others are copied, through a temporary when they live in a
    carry (so no carry is overwritten before every new value was read)."""
    temps, direct, finish, swaps = [], [], [], []
    claimed: set[str] = set()
    for c, new in zip(carries, news):
        if new.name == c.name:
            continue  # the carry passes through unchanged
        if new.owner and new.root == new.name and new.root not in claimed:
            claimed.add(new.root)
            swaps.append(f"{c.name}, {new.name} = {new.name}, {c.name}")
        elif new.root.startswith("c"):
            tmp = gen.buffer(c.dtype, c.dims)
            temps.append(f"{tmp.name}[:] = {new.name}")
            finish.append(f"{c.name}[:] = {tmp.name}")
        else:
            direct.append(f"{c.name}[:] = {new.name}")
    return temps + direct + finish + swaps


def _shape_function(gen: Gen, ys: list[Val]) -> str:
    """``shapes(s)``: the dims (and workspace offsets), workspace sizes, ys' shapes."""
    steps = gen.dims.expr(gen.steps)
    return shape_function(gen, gen.buffers, [[steps, *(gen.dims.expr(d) for d in y.dims)]
                                             for y in ys])


def shape_function(gen: Gen, buffers: list, shapes: list[list[str]]) -> str:
    """The source of ``shapes(s)``, the plain-Python half of a generated loop or program:
    it returns the dims and the offsets of ``buffers`` (name, dtype, dims) in one int64
    array, each dtype's workspace size (offsets aligned to ALIGN elements), and ``shapes``
    (expressions of the dims, one list per output)."""
    dims = gen.dims
    dtypes = sorted({b[1] for b in buffers}, key=str)
    lines = list(dims.lines) + [f"tot{k} = 0" for k in range(len(dtypes))]
    for name, dtype, shape in buffers:
        k = dtypes.index(dtype)
        lines.append(f"w_{name} = tot{k}")
        lines.append(f"tot{k} += -(-({dims.product(shape)}) // {ALIGN}) * {ALIGN}")
    names = dims.names + [f"w_{b[0]}" for b in buffers]
    out_shapes = [f"({''.join(e + ', ' for e in shape)})" for shape in shapes]
    lines.append(f"return (np.array([{', '.join(names)}], np.int64), "
                 f"({''.join(f'tot{k}, ' for k in range(len(dtypes)))}), "
                 f"({''.join(s + ', ' for s in out_shapes)}))")
    return "def shapes(s):\n" + "".join(f"    {ln}\n" for ln in lines) + "\n\n"


def _written_in_place(gen: Gen, ys: list[Val]) -> list[int]:
    """The ys whose step buffer can be the stack's slice ``ys<j>[t]`` itself, so the step
    writes the stack directly instead of its buffer and then a copy (an LSTM's forward
    saves 10 values per step for its gradient; the copies were ~200 KB a step). That takes
    a buffer that one step writes and no other value shares (``owner``: not a view, an
    input or a loop invariant), stacked once, named by no line before the loop. A carry
    swapped with such a buffer becomes a view of the last step's slice, which the next
    step only reads; the buffer itself is the next step's slice again."""
    before = "\n".join(gen.prologue)
    chosen: list[int] = []
    names: set[str] = set()
    for j, y in enumerate(ys):
        if (y.dims and y.owner and y.root == y.name and not y.invariant
                and y.name not in names
                and not re.search(rf"\b{y.name}\b", before)):
            chosen.append(j)
            names.add(y.name)
    return chosen


def _loop_function(gen: Gen, carries: list[Val], homes: list[str], xs: list[Val],
                   consts: list[Val], ys: list[Val], update: list[str]) -> str:
    """``loop(...)``: the njit function running every step."""
    dtypes = sorted({b[1] for b in gen.buffers}, key=str)
    args = (["dims"] + [f"ws{k}" for k in range(len(dtypes))]
            + [f"cin{i}" for i in range(len(carries))] + [f"xs{j}" for j in range(len(xs))]
            + [c.name for c in consts] + [f"cout{i}" for i in range(len(carries))]
            + [f"ys{j}" for j in range(len(ys))] + ["reverse"])
    carry_bufs = []
    for i, (c, home) in enumerate(zip(carries, homes)):
        carry_bufs += [f"{c.name} = {home}", f"{c.name}[:] = cin{i}"]
    head = [f"{n} = dims[{i}]" for i, n in
            enumerate(gen.dims.names + [f"w_{b[0]}" for b in gen.buffers])]
    for name, dtype, shape in gen.buffers:
        ws = f"ws{dtypes.index(dtype)}"
        head.append(f"{name} = {ws}[w_{name}:w_{name} + {gen.dims.product(shape)}]"
                    f".reshape({gen.shape(shape)})")
    in_place = _written_in_place(gen, ys)
    step = ["t = steps - 1 - s_ if reverse else s_"]
    step += [f"{x.name} = xs{j}[t]" if x.dims else f"{x.name} = xs{j}[t:t + 1]"
             for j, x in enumerate(xs)]
    step += [f"{ys[j].name} = ys{j}[t]" for j in in_place]
    step += gen.body + gen.tail
    step += [f"ys{j}[t] = {y.name}" if y.dims else f"ys{j}[t] = {y.name}[0]"
             for j, y in enumerate(ys) if j not in in_place]
    step += update
    lines = (head + carry_bufs + gen.prologue + ["steps = xs0.shape[0]", "for s_ in range(steps):"]
             + ["    " + ln for ln in step] + gen.epilogue
             + [f"cout{i}[:] = {c.name}" for i, c in enumerate(carries)] + ["return 0"])
    return ('@numba.njit(cache=True, nogil=True, error_model="numpy")\n'
            f"def loop({', '.join(args)}):\n" + "".join(f"    {ln}\n" for ln in lines))
