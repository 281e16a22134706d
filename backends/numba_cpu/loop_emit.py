"""The ops a compiled scan loop runs, each as a few lines of generated Numba code.

An emitter takes the :class:`~.loop_values.Gen` and the IR node (a fused *step* for
:func:`emit_fused`), emits its lines and returns the :class:`~.loop_values.Val` of each
output. These are the ops of RNN bodies and their gradients: fused elementwise groups (from
the same scalar formulas as the cpu kernels), GEMM (BLAS, per step or batched:
:mod:`.loop_gemm`), split/split_like and strided_slice (views, no copy), concat,
sum_to_like/broadcast_like (an alias when the shapes provably agree, else a loop),
fill_like and scalar constants (computed once, before the loop), and reshapes (views).
Anything else raises :class:`~.loop_shapes.Unsupported`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from graphc.kernel_source import scalar_body
from graphc.ops.args import is_int
from graphc.ops.indexing import expand_spec

from . import codegen
from .loop_flat import flat_operands, flat_split
from .loop_gemm import emit_matmul
from .loop_shapes import Unsupported
from .loop_values import Gen, Val, literal

# The cpu kernels' float32 formulas (vectorizable exp/tanh/sigmoid of fastmath.py), when
# codegen has them: the loop's elementwise code should be as fast as the kernels'.
_fast_f32 = getattr(codegen, "_fast_f32", lambda step, lines: lines)

__all__ = ["COUNTERS", "EMITTERS", "emit_constant", "emit_fused"]

#: ``merged``: elementwise maps emitted into the previous map's outer loops;
#: ``shape_only``: steps read only for their shapes, whose code was dropped (loop_codegen).
COUNTERS: dict[str, int] = {"merged": 0, "shape_only": 0}

Emitter = Callable[[Gen, Any], list]
EMITTERS: dict[str, Emitter] = {"matmul": emit_matmul}  # GEMM forms: loop_gemm.py


def _emitter(op: str) -> Callable[[Emitter], Emitter]:
    def register(fn: Emitter) -> Emitter:
        EMITTERS[op] = fn
        return fn
    return register


def _broadcast(gen: Gen, vals: list[Val], static: tuple) -> tuple:
    """The output dims of an elementwise op over ``vals`` (right-aligned); dims other
    than a static 1 must agree (checked at run time), a static 1 broadcasts."""
    rank, dims = len(static), gen.dims
    out = []
    for p in range(rank):
        rep: Any = None
        for v in vals:
            j = p - (rank - len(v.dims))
            if j < 0 or dims.find(v.dims[j]) == 1:
                continue
            rep = v.dims[j] if rep is None else dims.same(rep, v.dims[j])
        rep = 1 if rep is None else rep
        out.append(dims.static(rep, static[p]) if isinstance(rep, str) else rep)
    return tuple(dims.find(d) for d in out)


def _load(gen: Gen, v: Val, out: tuple) -> str:
    """The element of ``v`` at the loop-nest index over ``out`` (plain indexing)."""
    if not v.dims:
        return f"{v.name}[0]"
    return f"{v.name}[{', '.join(gen.indices(v, out))}]"


def _row(gen: Gen, v: Val, out: tuple) -> tuple[str, bool]:
    """``v``'s contiguous row at outer index ``i0, ..`` of a loop nest over ``out`` (or its
    element, True, when ``v`` broadcasts along the last dim): read the inner loop over a
    1-D C-ordered row, LLVM knows the unit stride and vectorizes it."""
    idx = gen.indices(v, out)
    scalar = idx[-1] == "0" and gen.dims.find(out[-1]) != 1
    base = v.name
    if v.slice_of is not None:  # index the split's base: a row of it is contiguous
        base, axis, start, end = v.slice_of
        idx[axis] = f"{start} + {idx[axis]}" if idx[axis] != "0" else start
        if axis == len(idx) - 1 and not scalar:
            idx[axis] = f"{start}:{end}"
            return f"{base}[{', '.join(idx)}]", False
    if scalar:
        return f"{base}[{', '.join(idx)}]", True
    return (f"{base}[{', '.join(idx[:-1])}]" if len(idx) > 1 else base), False


def emit_map(gen: Gen, ins: list[Val], out: Val, render: Callable[[list, str], list],
             flat: bool = False) -> None:
    """``out = f(*ins)`` elementwise with broadcasting: loops over all of ``out``'s dims
    but the last, then one inner loop over contiguous rows. ``render(loads, store)`` gives
    the inner lines from each input's element expression and the output's element.
    ``flat``: the inner loop runs over all the trailing dims it can (:mod:`.loop_flat`);
    whole programs ask for it, the scan loops keep their row loops (and merged nests)."""
    dims = out.dims
    if not dims:
        gen.emit(*render([f"{v.name}[0]" for v in ins], f"{out.name}[0]"))
        return
    q = flat_split(gen, ins, out) if flat else None
    if q is not None:
        pre, loads, store = flat_operands(gen, ins, out, q)
        lines = pre + [f"for i{q} in range({gen.dims.product(dims[q:])}):"]
        _nest(gen, dims[:q], lines + ["    " + ln for ln in render(loads, store)])
        return
    last = len(dims) - 1
    pre, loads = [], []
    for v in ins:
        if not v.dims:
            loads.append(f"{v.name}[0]")
            continue
        text, scalar = _row(gen, v, dims)
        name = gen.name("r")
        pre.append(f"{name} = {text}")
        loads.append(name if scalar else f"{name}[i{last}]")
    out_row = gen.name("r")
    pre.append(f"{out_row} = {out.name}[{', '.join(f'i{p}' for p in range(last))}]"
               if last else f"{out_row} = {out.name}")
    lines = pre + [f"for i{last} in range({gen.dims.expr(dims[last])}):"]
    lines += ["    " + ln for ln in render(loads, f"{out_row}[i{last}]")]
    _nest(gen, dims[:last], lines)


def _nest(gen: Gen, outer: tuple, lines: list[str]) -> None:
    """``lines`` inside loops over ``outer``; inside the previous map's loops when they are
    the last lines emitted and run over the same dims (:attr:`Gen.nest`)."""
    target = gen.prologue if gen.hoist else gen.body
    key = (tuple(gen.dims.find(d) for d in outer), gen.hoist)
    if outer and gen.nest is not None and gen.nest == (key, len(target)):
        target.extend("    " * len(outer) + ln for ln in lines)
        COUNTERS["merged"] += 1
    else:
        gen.loop_nest(outer, lines)
    gen.nest = (key, len(target))


def emit_fused(gen: Gen, step: Any, flat: bool = False) -> list[Val]:
    """A fused elementwise group: one loop nest over the root's shape (``flat``: see
    :func:`emit_map`)."""
    root = step.node
    ins = [gen.val(r) for r in step.inputs]
    out_dims = _broadcast(gen, ins, root.specs[0].shape)
    out = gen.buffer(root.specs[0].dtype.np, out_dims)

    def render(loads: list, store: str) -> list:
        lines, result = scalar_body(step, loads)
        return _fast_f32(step, lines) + [f"{store} = {result}"]
    emit_map(gen, ins, out, render, flat)
    return [out]


def emit_constant(gen: Gen, node: Any) -> list[Val]:
    """A scalar literal, written once before the loop."""
    value = node.attrs["value"].array
    if value.ndim != 0:
        raise Unsupported("a non-scalar constant")
    out = gen.buffer(value.dtype, ())
    gen.prologue.append(f"{out.name}[0] = {literal(value.item(), value.dtype)}")
    return [out]


def _slices(gen: Gen, x: Val, axis: int, sizes: list) -> list[Val]:
    """Views of ``x`` cut along ``axis`` into pieces of ``sizes`` (checked to add up)."""
    dims = gen.dims
    gen.dims.same(x.dims[axis], dims.fresh(" + ".join(["0", *(dims.expr(s) for s in sizes)])))
    outs, offset = [], "0"
    for size in sizes:
        end = dims.fresh(f"{offset} + {dims.expr(size)}")
        index = [":"] * axis + [f"{offset}:{end}"]  # x[o:e] (axis 0) stays C-ordered
        name = gen.name()
        gen.emit(f"{name} = {x.name}[{', '.join(index)}]")
        shape = x.dims[:axis] + (size,) + x.dims[axis + 1:]
        whole = x.contiguous and x.slice_of is None
        outs.append(gen.derived(x, name, shape, contiguous=axis == 0 and whole,
                                slice_of=(x.name, axis, offset, end) if whole else None))
        offset = end
    return outs


def _axis(node: Any, rank: int) -> int:
    axis = node.attrs["axis"]
    if rank == 0 or not -rank <= axis < rank:
        raise Unsupported("bad axis")
    return axis % rank


@_emitter("split")
def _split(gen: Gen, node: Any) -> list[Val]:
    x = gen.val(node.inputs[0])
    axis, dims = _axis(node, len(x.dims)), gen.dims
    d, num, sizes = x.dims[axis], node.attrs["num"], node.attrs["sizes"]
    if sizes is None:
        dims.require(f"{dims.expr(d)} % {num} == 0")
        piece = dims.fresh(f"{dims.expr(d)} // {num}")
        parts = [dims.static(piece, s.shape[axis]) for s in node.specs]
    else:
        rest = dims.fresh(f"{dims.expr(d)} - {sum(s for s in sizes if s != -1)}")
        dims.require(f"{rest} >= 0")
        parts = [rest if s == -1 else s for s in sizes]
    return _slices(gen, x, axis, parts)


@_emitter("split_like")
def _split_like(gen: Gen, node: Any) -> list[Val]:
    g, *likes = (gen.val(r) for r in node.inputs)
    axis = _axis(node, len(g.dims))
    if any(len(v.dims) != len(g.dims) for v in likes):
        raise Unsupported("split_like across ranks")
    return _slices(gen, g, axis, [v.dims[axis] for v in likes])


@_emitter("concat")
def _concat(gen: Gen, node: Any) -> list[Val]:
    vals = [gen.val(r) for r in node.inputs]
    rank, dims = len(vals[0].dims), gen.dims
    axis = _axis(node, rank)
    if any(len(v.dims) != rank for v in vals):
        raise Unsupported("concat across ranks")
    shape = list(vals[0].dims)
    for v in vals[1:]:
        for p in range(rank):
            if p != axis:
                shape[p] = dims.same(shape[p], v.dims[p])
    shape[axis] = dims.fresh(" + ".join(dims.expr(v.dims[axis]) for v in vals))
    out = gen.buffer(node.specs[0].dtype.np, tuple(shape))
    offset = "0"
    for v in vals:
        end = dims.fresh(f"{offset} + {dims.expr(v.dims[axis])}")
        index = [":"] * rank
        index[axis] = f"{offset}:{end}"
        gen.emit(f"{out.name}[{', '.join(index)}] = {v.name}")
        offset = end
    return [out]


@_emitter("sum_to_like")
def _sum_to_like(gen: Gen, node: Any) -> list[Val]:
    g, like = (gen.val(r) for r in node.inputs)
    dims, lead = gen.dims, len(g.dims) - len(like.dims)
    if lead < 0:
        raise Unsupported("sum_to_like to a higher rank")
    reduced = set(range(lead))
    for j, d in enumerate(like.dims):
        if dims.find(d) == 1 and dims.find(g.dims[lead + j]) != 1:
            reduced.add(lead + j)
        else:
            dims.same(d, g.dims[lead + j])
    if not reduced:  # provably the same shape: nothing to do (the gradients' common case)
        return [replace(g, dims=like.dims)]
    out = gen.buffer(g.dtype, like.dims)
    target = ", ".join("0" if lead + j in reduced else f"i{lead + j}"
                       for j in range(len(like.dims))) or "0"
    gen.emit(f"{out.name}.reshape(-1)[:] = 0")
    gen.loop_nest(g.dims, [f"{out.name}[{target}] += {_load(gen, g, g.dims)}"])
    return [out]


@_emitter("broadcast_like")
def _broadcast_like(gen: Gen, node: Any) -> list[Val]:
    a, like = (gen.val(r) for r in node.inputs)
    axes = sorted(node.attrs["axes"])
    expanded = list(a.dims)
    for ax in axes:
        if not 0 <= ax <= len(expanded):
            raise Unsupported("broadcast_like with negative axes")
        expanded.insert(ax, 1)
    if len(expanded) > len(like.dims):
        raise Unsupported("broadcast_like to a lower rank")
    dims, rank = gen.dims, len(like.dims)
    copy = bool(axes) or len(expanded) != rank
    for j, d in enumerate(expanded):
        p = j + rank - len(expanded)
        if dims.find(d) == 1 and dims.find(like.dims[p]) != 1:
            copy = True
        else:
            dims.same(d, like.dims[p])
    if not copy:  # provably the same shape
        return [replace(a, dims=like.dims)]
    src = _reshape(gen, a, tuple(expanded))[0] if axes else a
    out = gen.buffer(a.dtype, like.dims)
    emit_map(gen, [src], out, lambda loads, store: [f"{store} = {loads[0]}"])
    return [out]


@_emitter("fill_like")
def _fill_like(gen: Gen, node: Any) -> list[Val]:
    like = gen.val(node.inputs[0])
    value = node.attrs["value"].array
    hoist, gen.hoist = gen.hoist, True  # like's shape is the same at every step
    out = gen.buffer(value.dtype, like.dims)
    gen.hoist = hoist
    gen.prologue.append(f"{out.name}.reshape(-1)[:] = {literal(value.item(), value.dtype)}")
    return [out]


@_emitter("strided_slice")
def _strided_slice(gen: Gen, node: Any) -> list[Val]:
    """``x[spec]`` (NumPy basic indexing) as a view; each sliced dim's length is computed
    by the shape function as Python's own ``slice.indices`` gives it."""
    x = gen.val(node.inputs[0])
    dims, out, index, k = gen.dims, [], [], 0
    for item in expand_spec(node.attrs["spec"], len(x.dims)):
        if item == "newaxis":
            index.append("None")
            out.append(1)
            continue
        d = dims.expr(x.dims[k])
        if is_int(item):
            dims.require(f"-{d} <= {item} < {d}")
            index.append(str(item))
        else:
            parts = ["" if v is None else str(v) for v in item]
            index.append(":".join(parts))
            out.append(dims.fresh(f"len(range(*slice({', '.join(map(str, item))})"
                                  f".indices({d})))"))
        k += 1
    shape = tuple(out) + x.dims[k:]
    shape = tuple(dims.static(d, s) for d, s in zip(shape, node.specs[0].shape))
    name = gen.name()
    gen.emit(f"{name} = {x.name}[{', '.join(index) or '...'}]")
    return [gen.derived(x, name, shape, contiguous=False)]


def _reshape(gen: Gen, x: Val, dims: tuple) -> list[Val]:
    """``x`` viewed with ``dims`` (same element count: the caller checked it)."""
    base = x.name if x.contiguous else f"np.ascontiguousarray({x.name})"
    name = gen.name()
    gen.emit(f"{name} = {base}.reshape({gen.shape(dims)})")
    if not x.contiguous:  # a copy made at each step: it aliases nothing
        return [Val(name, dims, x.dtype, name, invariant=x.invariant)]
    return [gen.derived(x, name, dims, contiguous=True)]


@_emitter("expand_dims")
def _expand_dims(gen: Gen, node: Any) -> list[Val]:
    x = gen.val(node.inputs[0])
    axis = node.attrs["axis"] % (len(x.dims) + 1)
    return _reshape(gen, x, x.dims[:axis] + (1,) + x.dims[axis:])


@_emitter("squeeze")
def _squeeze(gen: Gen, node: Any) -> list[Val]:
    x = gen.val(node.inputs[0])
    axes = node.attrs["axes"]
    if axes is None:
        raise Unsupported("squeeze of every size-1 axis")
    axes = {a % len(x.dims) for a in axes}
    for a in axes:
        gen.dims.same(x.dims[a], 1)
    return _reshape(gen, x, tuple(d for i, d in enumerate(x.dims) if i not in axes))


@_emitter("reshape_like")
def _reshape_like(gen: Gen, node: Any) -> list[Val]:
    x, like = (gen.val(r) for r in node.inputs)
    gen.dims.require(f"{gen.dims.product(x.dims)} == {gen.dims.product(like.dims)}")
    return _reshape(gen, x, like.dims)


@_emitter("reshape")
def _reshape_to(gen: Gen, node: Any) -> list[Val]:
    x = gen.val(node.inputs[0])
    dims, total = gen.dims, gen.dims.product(x.dims)
    target = node.attrs["shape"]
    known = 1
    for d in target:
        known *= d if d != -1 else 1
    out: list = []
    for d, static in zip(target, node.specs[0].shape):
        if d != -1:
            out.append(d)
        elif isinstance(static, int):
            out.append(static)
        else:  # the -1 of an unknown count (inference refused known == 0)
            dims.require(f"({total}) % {known} == 0")
            out.append(dims.fresh(f"({total}) // {known}"))
    dims.require(f"{total} == {dims.product(tuple(out))}")
    return _reshape(gen, x, tuple(out))
