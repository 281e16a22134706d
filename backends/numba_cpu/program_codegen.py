"""One Numba function for a whole inference plan: every step of a run in one call.

At batch 1 the step-by-step executable (:mod:`.runtime`) is bound by Python dispatch: an
MLP's 13 closures cost about as much as its three GEMMs. This module turns a plan whose
every step has an emitter into one generated ``@njit`` function, reusing the compiled scan
loops' machinery: :class:`~.loop_values.Gen`, the per-op emitters of :mod:`.loop_emit`
(fused groups, GEMM through :func:`.loop_blas.gemm`, GEMV at batch 1, views,
split/concat...) and the symbolic shapes of :mod:`.loop_shapes`, plus the window ops of
inference plans, which only programs emit (convolutions, :mod:`.conv_emit`; max and
average pooling, :mod:`.pool_emit`; reductions such as a softmax's, :mod:`.reduce_emit`:
the cpu kernels' own njit helpers, called from the generated code, so a CNN such as LeNet
runs as one call). The generated module holds

* ``shapes(s)`` (plain Python, ``s`` the inputs' shapes): the dims and workspace offsets
  (one int64 array), the workspace sizes and the fetches' shapes; None when an assumption
  of the generated code fails at run time (the caller runs the step-by-step executable);
* ``program(dims, workspaces..., inputs..., outputs...)`` (``@njit``): the whole run; it
  returns 0, or 1 before doing anything when a variable's shape is not the one ``dims``
  was computed for (the caller finds ``dims`` by the feeds' shapes alone), or 2 when a
  value makes the reference raise (a label out of range: :mod:`.loss_emit`; the caller
  runs the step-by-step executable, which raises the reference's error).

Inputs are the feeds, the variables (read from the session's state by the caller) and the
non-scalar constants, in that order (weights are arguments, never baked-in globals). Each
fetch is written into a fresh output array the caller allocates: a fetched value that a
step computes into a buffer of its own is computed straight into the output array (no
copy); anything else (a view, an input, a value fetched twice) is copied into it. Other
values live in per-dtype workspaces that the caller allocates once per input shapes. The
kernel is specialized on dtypes and ranks only, so a new batch size compiles nothing.

A plan with variable writes, effects, random ops, a value of unknown rank, float16 or a
step without an emitter raises :class:`~.loop_shapes.Unsupported`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from graphc.lower import Plan
from graphc.op import Kind, get_op

from . import conv_emit, loss_emit, pool_emit, reduce_emit
from .loop_codegen import PRELUDE, emit_op, shape_function
from .loop_emit import EMITTERS, emit_fused
from .loop_shapes import Unsupported
from .loop_values import Gen, Val

__all__ = ["Input", "ProgramSource", "Unsupported", "generate_program"]

_DTYPES = {np.dtype(t) for t in ("float32", "float64", "int8", "int16", "int32", "int64",
                                 "uint8", "bool")}

# Ops only whole programs emit (the scan loops' table, EMITTERS, stays as it is): the
# window ops, the reductions and the loss of a classifier's evaluate, with the compiled
# helpers their generated code calls (module -> names).
_WINDOW_OPS: dict[str, tuple[Callable, dict]] = {
    "conv2d": (conv_emit.emit_conv2d, conv_emit.IMPORTS),
    "max_pool2d": (pool_emit.emit_max_pool2d, pool_emit.IMPORTS),
    "avg_pool2d": (pool_emit.emit_avg_pool2d, pool_emit.AVG_IMPORTS),
    **{op: (reduce_emit.emit_reduce, reduce_emit.IMPORTS)
       for op in ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min")},
    "argmax": (reduce_emit.emit_arg_extreme, reduce_emit.ARG_IMPORTS),
    "argmin": (reduce_emit.emit_arg_extreme, reduce_emit.ARG_IMPORTS),
    "sparse_softmax_cross_entropy_with_logits": (loss_emit.emit_sparse_xent, loss_emit.IMPORTS),
}


def _emits(op: str) -> bool:
    return op in EMITTERS or op in _WINDOW_OPS


def _helpers_prelude(ops: set[str]) -> str:
    """Imports of the helpers the window ops of ``ops`` call, with a hash of each helper's
    file: Numba's disk cache does not notice a changed callee in another module, so the
    source (and with it the kernel cache key) follows them."""
    names: dict[str, set[str]] = {}
    for op in sorted(ops & set(_WINDOW_OPS)):
        for module, fns in _WINDOW_OPS[op][1].items():
            names.setdefault(module, set()).update(fns)
    lines = []
    here = os.path.dirname(__file__)
    for module in sorted(names):
        with open(os.path.join(here, module + ".py"), "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()[:16]
        lines.append(f"from graphc.backends.numba_cpu.{module} import "
                     f"{', '.join(sorted(names[module]))}  # {sha}")
    return "".join(ln + "\n" for ln in lines) + ("\n" if lines else "")


@dataclass
class Input:
    """One argument of the generated program: ``kind`` feed (``index`` into the feeds),
    variable (``name`` in the state) or constant (``value``, the array to pass)."""

    kind: str
    dtype: np.dtype
    rank: int
    index: int = 0
    name: str = ""
    value: Any = None


@dataclass
class ProgramSource:
    """The generated module's source and what the runtime needs to call it."""

    source: str
    inputs: list[Input]
    ws_dtypes: list[np.dtype]
    out_dtypes: list[np.dtype]
    out_ranks: list[int]


def generate_program(plan: Plan) -> ProgramSource:
    """The module source running all of ``plan``; raises :class:`Unsupported`."""
    ir, gen = plan.ir, Gen()
    _check_plan(plan)
    inputs, in_vals = _inputs(gen, plan)
    for step in plan.steps:
        if step.kind in ("feed", "variable") or (step.kind == "constant"
                                                 and (step.node.uid, 0) in gen.values):
            continue
        gen.hoist = False
        vals = _emit_step(gen, step)
        for i, val in enumerate(vals):
            gen.values[(step.node.uid, i)] = val
    outs = [gen.val(r) for r in ir.fetches]
    out_dtypes = [r[0].specs[r[1]].dtype.np for r in ir.fetches]
    bound = _bind_outputs(gen, outs, out_dtypes)
    src = _shape_function(gen, outs, bound) + _program_function(gen, inputs, in_vals, outs,
                                                                bound)
    dtypes = sorted({b[1] for b in gen.buffers if b[0] not in bound}, key=str)
    ranks = [len(v.dims) for v in outs]
    # The runtime compiles the dispatcher for one signature and shares it between plans
    # of the same source, but the source alone may not fix the dtypes (an argmax or a max
    # reads the same for every dtype): the signature is written into it.
    signature = ", ".join([f"ws {d}" for d in dtypes] + [f"in {i.dtype}[{i.rank}]" for i in inputs]
                          + [f"out {d}[{r}]" for d, r in zip(out_dtypes, ranks)])
    prelude = PRELUDE + _helpers_prelude({s.node.op for s in plan.steps})
    return ProgramSource(f"{prelude}# signature: {signature}\n{src}", inputs, dtypes,
                         out_dtypes, ranks)


def _emit_step(gen: Gen, step: Any) -> list[Val]:
    """The Vals of one step's outputs, its lines emitted: the window ops' emitters, fused
    groups with flat inner loops where the operands allow (not the scan loops' row
    loops: a conv's bias + relu runs over whole planes), else the scan loops' emitters."""
    if step.kind == "fused":
        return emit_fused(gen, step, flat=True)
    window = _WINDOW_OPS.get(step.node.op) if step.kind in ("library", "fallback") else None
    return window[0](gen, step.node) if window else emit_op(gen, step)


def _check_plan(plan: Plan) -> None:
    """The scope of the compiled program (see the module docstring)."""
    ir = plan.ir
    if ir.writes:
        raise Unsupported("a training step: it writes variables")
    if ir.effects:
        raise Unsupported("the plan runs effects")
    if not any(s.kind in ("fused", "library", "fallback") for s in plan.steps):
        raise Unsupported("nothing to compute")
    for node in ir.nodes:
        if node.op not in ("feed", "variable", "constant") \
                and get_op(node.op).kind == Kind.RANDOM:
            raise Unsupported("a random op")
        for spec in node.specs:
            if spec.shape is None:
                raise Unsupported("a value of unknown rank")
            if spec.dtype.np not in _DTYPES:
                raise Unsupported(f"dtype {spec.dtype.np}")
    for step in plan.steps:
        if step.kind in ("library", "fallback") and not _emits(step.node.op):
            raise Unsupported(f"{step.kind} step {step.node.op}")
        if step.kind not in ("feed", "variable", "constant", "fused", "library", "fallback"):
            raise Unsupported(f"{step.kind} step")


def _inputs(gen: Gen, plan: Plan) -> tuple[list[Input], list[Val]]:
    """The inputs and their Vals ``in<i>``: the feeds, variables and non-scalar constants;
    the shape function reads input ``i``'s shape as ``s[i]`` (constants' are static)."""
    dims, inputs, vals = gen.dims, [], []
    nodes = list(plan.ir.feeds)
    nodes += [s.node for s in plan.steps if s.kind == "variable"]
    nodes += [s.node for s in plan.steps
              if s.kind == "constant" and s.node.attrs["value"].array.ndim != 0]
    for i, node in enumerate(nodes):
        spec = node.specs[0]
        dtype, static = spec.dtype.np, spec.shape
        if node.op == "constant":
            value = np.ascontiguousarray(node.attrs["value"].array, dtype)
            inputs.append(Input("constant", dtype, len(static), value=value))
            shape = value.shape
        else:
            if node.op == "feed":
                inputs.append(Input("feed", dtype, len(static), index=i))
            else:
                inputs.append(Input("variable", dtype, len(static), name=node.name))
            dims.require(f"len(s[{i}]) == {len(static)}")
            shape = tuple(dims.static(dims.fresh(f"s[{i}][{p}]"), d)
                          for p, d in enumerate(static))
        vals.append(Val(f"in{i}", shape, dtype, f"in{i}"))
        gen.values[(node.uid, 0)] = vals[-1]
    return inputs, vals


def _bind_outputs(gen: Gen, outs: list[Val], dtypes: list[np.dtype]) -> dict[str, int]:
    """Workspace buffers that become output arrays: a fetched value that is a step's own
    buffer (not a view of it), fetched once with its dtype -> the fetch's index."""
    buffers = {b[0] for b in gen.buffers}
    bound: dict[str, int] = {}
    for j, (v, dtype) in enumerate(zip(outs, dtypes)):
        if v.name in buffers and v.root == v.name and v.name not in bound \
                and v.dtype == dtype:
            bound[v.name] = j
    return bound


def _shape_function(gen: Gen, outs: list[Val], bound: dict[str, int]) -> str:
    """``shapes(s)``: the dims (and workspace offsets), workspace sizes, fetch shapes."""
    ws = [b for b in gen.buffers if b[0] not in bound]
    return shape_function(gen, ws, [[gen.dims.expr(d) for d in v.dims] for v in outs])


def _program_function(gen: Gen, inputs: list[Input], in_vals: list[Val], outs: list[Val],
                      bound: dict[str, int]) -> str:
    """``program(...)``: the njit function running every step. It returns 0, 1 without
    running anything when a variable's shape is not the one its layout was made for, or 2
    (:mod:`.loss_emit`) when the step-by-step path must run to raise the reference's error."""
    ws = [b for b in gen.buffers if b[0] not in bound]
    dtypes = sorted({b[1] for b in ws}, key=str)
    args = (["dims"] + [f"ws{k}" for k in range(len(dtypes))]
            + [f"in{i}" for i in range(len(inputs))] + [f"out{j}" for j in range(len(outs))])
    lines = [f"{n} = dims[{i}]" for i, n in
             enumerate(gen.dims.names + [f"w_{b[0]}" for b in ws])]
    # The caller finds the layout by the feeds' shapes alone (hashing every weight's shape
    # at each run cost about a microsecond at batch 1), so the variables' shapes are
    # checked here (the dispatcher checks their dtypes and ranks).
    for inp, val in zip(inputs, in_vals):
        if inp.kind == "variable":
            lines += [f"if {val.name}.shape[{p}] != {gen.dims.expr(d)}: return 1"
                      for p, d in enumerate(val.dims)]
    for name, dtype, shape in gen.buffers:
        if name in bound:
            lines.append(f"{name} = out{bound[name]}")
        else:
            ws_name = f"ws{dtypes.index(dtype)}"
            lines.append(f"{name} = {ws_name}[w_{name}:w_{name} + "
                         f"{gen.dims.product(shape)}].reshape({gen.shape(shape)})")
    lines += gen.prologue + gen.body
    lines += [f"out{j}[:] = {v.name}" for j, v in enumerate(outs) if bound.get(v.name) != j]
    lines.append("return 0")
    return ('@numba.njit(cache=True, nogil=True, error_model="numpy")\n'
            f"def program({', '.join(args)}):\n" + "".join(f"    {ln}\n" for ln in lines))
