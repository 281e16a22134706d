"""A loop with gradients: the ``scan`` op and TF1's :func:`scan` builder.

The primitive (one node, whatever the sequence length)::

    scan(carries..., xs..., consts...; body, reverse) -> (final carries..., stacked ys...)

``body`` is a :class:`Body`: a subgraph (its own :class:`~graphc.graph.Graph`) whose
placeholders are the carries, one slice ``x[t]`` of each scanned input and the consts, and
whose outputs are the new carries followed by the per-step outputs ``y``. Steps run
``t = 0 .. T-1`` (``reverse``: ``T-1 .. 0``) and ``ys[t]`` is always the output of the step
that read ``x[t]``. ``T`` is the length of axis 0 of the scanned inputs (it may be unknown
when the graph is built; all scanned inputs must agree at run time).

TF1's :func:`scan` is this op with ``ys`` = the new accumulators. ``fn`` is called once,
with placeholders, so the body is built once: the tensors of the enclosing graph that
``fn`` uses (variables, weights, other tensors) are *captured* by the body graph (see
:meth:`Graph.capture`) and become the op's consts, so gradients reach them. Nodes that
``fn`` builds from outer tensors only are placed in the outer graph (computed once per
run, not per step).

Restrictions, checked when the graph is built: the body holds no state (no variables,
assignments or placeholders of its own) and no random ops. A random op in the body would
draw the same numbers at every step (its counter is keyed by the session step, not the
loop step), so it is refused; draw randomness outside the scan instead (a per-step mask
of shape ``(T, ...)`` passed in ``elems``, or one mask captured for all steps).

The gradient (:mod:`graphc.ops.control_grad`) is a reverse scan whose body is the gradient
of this body; it is itself a scan, so it can be differentiated again.

Backends: the ``reference`` target runs the body with the reference interpreter, step by
step. A compiled backend compiles ``body.graph`` (a Program with ``body.inputs`` as feeds
and ``body.outputs`` as fetches) once and calls it in a loop.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from graphc.errors import DTypeError, GraphcError, GraphError, ShapeError
from graphc.graph import Graph, Tensor, TensorSpec, get_default_graph, user_location
from graphc.op import Kind, apply, defop, get_op
from graphc.shapes import format_shape, merge_shapes

__all__ = ["Body", "scan", "scan_with_finals", "scan_op"]


class Body:
    """A loop body: ``graph`` with its input placeholders (``n_carry`` carries, ``n_xs``
    slices of scanned inputs, then consts) and its outputs (the new carries, then ys).
    Compared by identity: two bodies are the same only if they are the same object."""

    def __init__(self, graph: Graph, inputs: Sequence[Tensor], outputs: Sequence[Tensor],
                 n_carry: int, n_xs: int) -> None:
        self.graph = graph
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.n_carry = n_carry
        self.n_xs = n_xs
        self.cache: dict[str, Any] = {}  # derived things: the interpreter, the gradient body

    @property
    def n_consts(self) -> int:
        """How many inputs are loop-invariant consts."""
        return len(self.inputs) - self.n_carry - self.n_xs

    @property
    def n_ys(self) -> int:
        """How many per-step outputs the body has besides the new carries."""
        return len(self.outputs) - self.n_carry

    def __repr__(self) -> str:
        return (f"<Body {len(self.graph.nodes)} nodes: {self.n_carry} carries, {self.n_xs} xs, "
                f"{self.n_consts} consts -> {self.n_ys} ys>")

    def run(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One step on the reference interpreter (compiled on first use)."""
        interp = self.cache.get("interpreter")
        if interp is None:
            # The reference backend is the semantics of a body; imported lazily (the core
            # never imports a backend when it loads).
            from graphc.backends.reference import Interpreter
            from graphc.program import build_program

            program = build_program(self.graph, list(self.outputs), list(self.inputs))
            interp = self.cache["interpreter"] = Interpreter(program)
        return interp(list(arrays), {}, 0)


# -- the primitive ----------------------------------------------------------------------

def _infer_scan(*specs: TensorSpec, body: Body, reverse: bool) -> tuple:
    if len(specs) != len(body.inputs):
        raise ShapeError(f"takes {len(body.inputs)} inputs (its body's), got {len(specs)}")
    nc, nx = body.n_carry, body.n_xs
    if nx < 1:
        raise ShapeError("needs at least one scanned input")
    steps: Any = None
    for i, (spec, ph) in enumerate(zip(specs, body.inputs)):
        role = "carry" if i < nc else "scanned input" if i < nc + nx else "const"
        if spec.dtype != ph.dtype:
            raise DTypeError(f"{role} {i} is {spec.dtype}, its body takes {ph.dtype}")
        shape = spec.shape
        if nc <= i < nc + nx:
            if shape is None or not shape:
                raise ShapeError(f"scanned input {i} must have a known rank >= 1, got "
                                 f"{format_shape(shape)}")
            if steps is not None and shape[0] is not None and shape[0] != steps:
                raise ShapeError(f"scanned inputs differ in length: {steps} vs {shape[0]}")
            steps = shape[0] if steps is None else steps
            shape = shape[1:]
        try:
            merge_shapes(shape, ph.shape)
        except ShapeError:
            raise ShapeError(f"{role} {i} has shape {format_shape(shape)}"
                             f"{' per step' if nc <= i < nc + nx else ''}, its body takes "
                             f"{format_shape(ph.shape)}") from None
    carries = [ph.spec for ph in body.inputs[:nc]]
    ys = [TensorSpec(None if y.shape is None else (steps, *y.shape), y.dtype)
          for y in body.outputs[nc:]]
    return tuple(carries + ys)


def _scan_ref(*arrays: np.ndarray, body: Body, reverse: bool) -> tuple:
    nc, nx = body.n_carry, body.n_xs
    carries = list(arrays[:nc])
    xs, consts = arrays[nc:nc + nx], list(arrays[nc + nx:])
    lengths = {x.shape[0] for x in xs}
    if len(lengths) != 1:
        raise ShapeError(f"scan: scanned inputs differ in length at run time: "
                         f"{sorted(lengths)}")
    steps = lengths.pop()
    per_step: list = [None] * steps
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        out = body.run([*carries, *(x[t] for x in xs), *consts])
        for i, (old, new) in enumerate(zip(carries, out[:nc])):
            if old.shape != new.shape:
                raise ShapeError(f"scan: the body changed the shape of carry {i} from "
                                 f"{old.shape} to {new.shape} at step {t}; a carry must keep "
                                 "its shape")
        carries = [np.asarray(c) for c in out[:nc]]
        per_step[t] = out[nc:]
    ys = []
    for j, y in enumerate(body.outputs[nc:]):
        if steps:
            ys.append(np.stack([s[j] for s in per_step]))
        else:  # no step ran: an empty stack, with the shape a step would have given
            like = _same_as_carry(body, y)
            dims = carries[like].shape if like is not None else \
                tuple(0 if d is None else d for d in (y.shape or ()))
            ys.append(np.zeros((0, *dims), y.dtype.np))
    return tuple(carries + ys)


def _same_as_carry(body: Body, y: Tensor) -> Optional[int]:
    """The carry whose new value ``y`` is (TF1's scan outputs its accumulators), or None."""
    for i, c in enumerate(body.outputs[:body.n_carry]):
        if (c.node.id, c.index) == (y.node.id, y.index):
            return i
    return None


def _vjp_scan(node: Any, *grads: Tensor) -> list:
    from graphc.ops.control_grad import scan_vjp

    return scan_vjp(node, *grads)


defop("scan", kind=Kind.OPAQUE, infer=_infer_scan, ref=_scan_ref, vjp=_vjp_scan,
      doc="a loop over axis 0 of the scanned inputs running the `body` subgraph at each step")


def scan_op(body: Body, carries: Sequence[Tensor], xs: Sequence[Tensor],
            consts: Sequence[Tensor], reverse: bool = False,
            name: Optional[str] = None) -> tuple[list[Tensor], list[Tensor]]:
    """The ``scan`` primitive: returns (final carries, stacked ys)."""
    node = apply("scan", [*carries, *xs, *consts], {"body": body, "reverse": bool(reverse)},
                 name=name or "scan")
    return list(node.outputs[:body.n_carry]), list(node.outputs[body.n_carry:])


# -- TF1's scan ---------------------------------------------------------------------------

def _flatten(structure: Any) -> tuple[list, Callable[[list], Any]]:
    """The leaves of nested lists/tuples (namedtuples too), and a function that rebuilds
    the same structure from new leaves."""
    if isinstance(structure, (list, tuple)):
        parts = [_flatten(s) for s in structure]
        sizes = [len(leaves) for leaves, _ in parts]

        def pack(leaves: list) -> Any:
            out, i = [], 0
            for (_, sub), n in zip(parts, sizes):
                out.append(sub(leaves[i:i + n]))
                i += n
            if hasattr(structure, "_fields"):
                return type(structure)(*out)
            return type(structure)(out)
        return [leaf for leaves, _ in parts for leaf in leaves], pack
    return [structure], lambda leaves: leaves[0]


def _error(err: GraphcError, tensors: Sequence[Tensor] = ()) -> GraphcError:
    labels = [f"in{i}" for i in range(len(tensors))]
    return err.with_context("scan", list(zip(labels, tensors)), user_location())


def _outer_graph(tensors: Sequence[Tensor]) -> Graph:
    """The graph the scan node goes in: the innermost of the inputs' graphs and the default
    graph (when the default is related to them: inside an enclosing scan's fn it is that
    body; a global default unrelated to the inputs is ignored, as ops ignore it)."""
    default = get_default_graph()
    base = tensors[0].graph
    if default is base or default in base.enclosing() or base in default.enclosing():
        base = default
    return base.innermost("scan", tensors)


def scan(fn: Callable[[Any, Any], Any], elems: Any, initializer: Any = None,
         reverse: bool = False, name: Optional[str] = None) -> Any:
    """TF1's ``tf.scan``: ``fn(accumulator, element) -> new accumulator`` applied along
    axis 0 of ``elems``; returns the stacked accumulators (one per element).

    ``elems``: a tensor or a nested list/tuple of tensors (scanned together; ``fn`` gets
    the same structure of slices). ``initializer``: the first accumulator, a tensor or
    nested list/tuple (``fn`` must return the same structure, dtypes and shapes); without
    it the first element is the first accumulator and the first output (TF1), so ``elems``
    and the accumulator then have the same structure. ``reverse`` scans from the end
    (outputs stay aligned with ``elems``). The number of steps may be unknown.

    ``fn`` is called once, to build the loop body; the outer tensors it uses are captured
    (gradients reach them). It must not create variables, assignments, placeholders or
    random ops (see the module docstring).
    """
    return scan_with_finals(fn, elems, initializer, reverse, name)[1]


def scan_with_finals(fn: Callable[[Any, Any], Any], elems: Any, initializer: Any = None,
                     reverse: bool = False, name: Optional[str] = None) -> tuple[Any, Any]:
    """:func:`scan` that also returns the final accumulator: ``(final, stacked)``, each in
    the accumulator's structure. The final accumulator is the initializer when ``elems``
    has no steps (reading ``stacked[-1]`` would fail there)."""
    from graphc.ops.shape import concat, expand_dims
    from graphc.ops.state import convert_to_tensor

    elems_flat, elems_pack = _flatten(elems)
    elems_flat = [convert_to_tensor(e) for e in elems_flat]
    init_flat, init_pack = _flatten(initializer) if initializer is not None else (None, None)
    if init_flat is not None:
        init_flat = [convert_to_tensor(v) for v in init_flat]
    outer = _outer_graph([*elems_flat, *(init_flat or [])])
    with outer.as_default(), outer.name_scope(name or "scan"):
        for e in elems_flat:
            if e.ndim is None or e.ndim < 1:
                raise _error(ShapeError(f"elems must have a known rank >= 1, got "
                                        f"{format_shape(e.shape)}"), [e])
        xs = elems_flat
        if init_flat is None:  # TF1: the first element is the first accumulator
            init_flat = [e[-1] if reverse else e[0] for e in elems_flat]
            xs = [e[:-1] if reverse else e[1:] for e in elems_flat]
            init_pack = elems_pack
        body = _trace(fn, outer, init_flat, init_pack, xs, elems_pack)
        consts = list(body.graph.capture_sources)
        finals, ys = scan_op(body, init_flat, xs, consts, reverse=reverse)
        if initializer is None:
            ys = [concat([y, expand_dims(c, 0)] if reverse else [expand_dims(c, 0), y], 0)
                  for y, c in zip(ys, init_flat)]
    return init_pack(finals), init_pack(ys)


def _trace(fn: Callable, outer: Graph, init: list[Tensor], init_pack: Callable,
           xs: list[Tensor], elems_pack: Callable) -> Body:
    """Build the body graph by calling ``fn`` once on placeholders."""
    from graphc.ops.state import constant, placeholder

    graph = Graph()
    graph.outer = outer
    graph.seed = outer.seed
    before = len(outer.nodes)
    with graph.as_default():
        carries = [placeholder(c.dtype, c.shape, name=f"carry{i}") for i, c in enumerate(init)]
        slices = [placeholder(x.dtype, x.shape[1:], name=f"elem{i}") for i, x in enumerate(xs)]
        result = fn(init_pack(carries), elems_pack(slices))
        out, _ = _flatten(result)
        if len(out) != len(carries):
            raise _error(GraphError(f"fn returned {len(out)} tensors for an accumulator of "
                                    f"{len(carries)}; it must return the accumulator's "
                                    "structure"), init)
        news = []
        for i, (c, v) in enumerate(zip(carries, out)):
            v = v if isinstance(v, Tensor) else constant(v, c.dtype)
            v = graph.capture(v)  # fn may return an outer tensor (or one built from them)
            if v.dtype != c.dtype:
                raise _error(DTypeError(f"fn returned {v.dtype} for accumulator {i}, which is "
                                        f"{c.dtype}"), [init[i], v])
            try:
                merge_shapes(v.shape, c.shape)
            except ShapeError:
                raise _error(ShapeError(f"fn returned shape {format_shape(v.shape)} for "
                                        f"accumulator {i} of shape {format_shape(c.shape)}"),
                             [init[i], v]) from None
            news.append(v)
    _check_pure(graph, outer.nodes[before:], {id(t.node) for t in carries + slices})
    captured = [graph.captured[(s.node.id, s.index)] for s in graph.capture_sources]
    return Body(graph, [*carries, *slices, *captured], news + news, len(carries), len(slices))


def _check_pure(graph: Graph, hoisted: Sequence[Any], own: set) -> None:
    """Refuse state and randomness in a loop body (and in what fn hoisted out of it)."""
    for node in [*graph.nodes, *hoisted]:
        opdef = get_op(node.op)
        if node.op == "placeholder" and (id(node) in own or any(
                t.node is node for t in node.graph.captured.values())):
            continue  # the body's inputs, and captures (also an enclosing body's)
        if opdef.kind == Kind.RANDOM:
            why = ("a random op in a scan body would draw the same numbers at every step; "
                   "draw them outside the scan and pass them in elems (one slice per step) "
                   "or use them as a captured tensor (the same for every step)")
        elif opdef.stateful or node.op == "variable":
            why = (f"a scan body cannot hold state ({node.op}); create variables, "
                   "placeholders and assignments outside fn and use them inside")
        else:
            continue
        where = f"\n  at {node.location}" if node.location else ""
        raise GraphError(f"scan: fn built {node.name} ({node.op}): {why}{where}")


# -- saving graphs with scans -------------------------------------------------------------

def _encode_body(body: Body, enc: Any) -> dict:
    from graphc.serialization import _encode_graph

    doc, _ = _encode_graph(body.graph, arrays=enc.arrays)
    return {"graph": doc, "inputs": [[t.node.id, t.index] for t in body.inputs],
            "outputs": [[t.node.id, t.index] for t in body.outputs],
            "n_carry": body.n_carry, "n_xs": body.n_xs}


def _decode_body(payload: Any, dec: Any) -> Body:
    from graphc.serialization import _decode_graph

    if not isinstance(payload, dict):
        raise ValueError(f"bad scan body {payload!r:.80}")
    graph = _decode_graph(payload["graph"], dec.zf, dec.path)
    sub = type(dec)(graph, dec.zf, dec.path)
    inputs = [sub.tensor(r) for r in payload["inputs"]]
    outputs = [sub.tensor(r) for r in payload["outputs"]]
    n_carry, n_xs = payload["n_carry"], payload["n_xs"]
    for n in (n_carry, n_xs):
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"bad scan body count {n!r}")
    if n_carry + n_xs > len(inputs) or n_carry > len(outputs) or \
            any(t.node.op != "placeholder" for t in inputs):
        raise ValueError("scan body inputs and outputs do not fit its counts")
    return Body(graph, inputs, outputs, n_carry, n_xs)


def _register_codec() -> None:
    from graphc.serialization import register_codec

    register_codec(Body, "scan_body", _encode_body, _decode_body)


_register_codec()
