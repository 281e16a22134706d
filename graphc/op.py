"""How an op is defined once: :class:`OpDef`, the registry and :func:`apply`.

An op declares everything that does not depend on a backend:

* ``infer(*specs, **attrs)`` -> the output :class:`TensorSpec` (or a tuple of them for
  several outputs); it raises a bare ShapeError/DTypeError, which :func:`apply` completes
  with the op name, the inputs and the user's line;
* ``ref(*arrays, **attrs)`` -> the NumPy reference result (the semantics; the ``reference``
  target runs it, every other target is tested against it);
* ``vjp(node, *output_grads)`` -> one gradient Tensor (or None) per input, built from graph
  ops so that gradients are graphs too (higher order, fusion and export for free);
* ``kind``: how the fusion pass treats it (see :class:`Kind`);
* ``formula``: for elementwise ops, one scalar expression over ``{0}, {1}, ...`` (the inputs)
  and ``{attr}`` names, in Python syntax with the ``math`` module, from which the Numba
  backends generate their fused loops. ``tests/test_ops.py`` checks it against ``ref``.

Composites (softmax, cross-entropy, gelu...) are not OpDefs: they are builder functions that
compose primitives, so they need no per-backend work.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

from graphc.errors import GraphcError
from graphc.graph import Node, Tensor

__all__ = ["Kind", "OpDef", "REGISTRY", "SHAPE_ONLY_INPUTS", "defop", "get_op", "apply",
           "apply1", "freeze"]

#: The inputs that an op reads only for their shapes (op -> input positions). A value that
#: nothing else reads need not be saved for a scan's gradient (ops/control_residuals.py) nor
#: computed by a compiled loop that knows its shape anyway (numba_cpu/loop_codegen.py).
SHAPE_ONLY_INPUTS: dict[str, tuple[int, ...]] = {
    "sum_to_like": (1,), "broadcast_like": (1,), "reshape_like": (1,), "fill_like": (0,),
    "shape": (0,), "size": (0,), "pad_grad": (1,), "tile_grad": (1,),
    "strided_slice_grad": (1,), "scatter_add_like": (2,),
}


class Kind(str, enum.Enum):
    """Fusion kinds (TVM's classification)."""

    ELEMENTWISE = "elementwise"  # same-shape map; fuses freely
    BROADCAST = "broadcast"      # elementwise with broadcasting, or a shape-only fill
    REDUCE = "reduce"            # reductions; may absorb elementwise producers/consumers
    OPAQUE = "opaque"            # GEMM, conv, gathers: library calls, may absorb epilogues
    SHAPE = "shape"              # layout only (reshape, transpose, slice, concat)
    STATE = "state"              # placeholders, constants, variables, assignments
    RANDOM = "random"            # draws from the counter-based generator; never merged


@dataclass(frozen=True)
class OpDef:
    """The backend-neutral definition of one primitive op."""

    name: str
    infer: Callable[..., Any]
    ref: Callable[..., Any]
    kind: Kind
    vjp: Optional[Callable[..., Sequence[Optional[Tensor]]]] = None
    formula: Optional[str] = None
    stateful: bool = False
    doc: str = ""
    input_names: tuple[str, ...] = field(default=())


REGISTRY: dict[str, OpDef] = {}


def defop(name: str, *, infer: Callable[..., Any], ref: Callable[..., Any], kind: Kind,
          vjp: Optional[Callable[..., Any]] = None, formula: Optional[str] = None,
          stateful: bool = False, doc: str = "",
          input_names: Sequence[str] = ()) -> OpDef:
    """Declare and register a primitive op (once per name)."""
    if name in REGISTRY:
        raise ValueError(f"op {name!r} is defined twice")
    opdef = OpDef(name, infer, ref, Kind(kind), vjp, formula, stateful, doc, tuple(input_names))
    REGISTRY[name] = opdef
    return opdef


def get_op(name: str) -> OpDef:
    """The OpDef called ``name``."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}") from None


def apply(op: str, inputs: Sequence[Tensor], attrs: Optional[Mapping[str, Any]] = None,
          name: Optional[str] = None, graph: Any = None) -> Node:
    """Build a node of ``op``: check it by shape inference, then add it to the graph.

    Inputs must already be Tensors (builders convert Python values first). ``graph`` is
    needed only for ops without inputs; otherwise it is the inputs' graph.
    """
    opdef = get_op(op)
    attrs = {k: freeze(v) for k, v in (attrs or {}).items()}
    for key, value in attrs.items():
        try:
            hash(value)
        except TypeError:
            raise TypeError(f"{op}: attribute {key}={value!r} is not hashable; graphc needs "
                            "hashable attributes (tuples, numbers, strings, Literals)") from None
    if graph is None:
        from graphc.graph import get_default_graph

        graph = inputs[0].graph if inputs else get_default_graph()
    try:
        out = opdef.infer(*(t.spec for t in inputs), **attrs)
    except GraphcError as err:
        labels = opdef.input_names or _default_labels(len(inputs))
        named = list(zip(labels, inputs))
        from graphc.graph import user_location

        raise err.with_context(op, named, graph._location_override or user_location()) from None
    specs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    return graph.add_node(op, inputs, attrs, specs, name=name, stateful=opdef.stateful)


def apply1(op: str, inputs: Sequence[Tensor], attrs: Optional[Mapping[str, Any]] = None,
           name: Optional[str] = None, graph: Any = None) -> Tensor:
    """:func:`apply` for single-output ops: returns the output Tensor."""
    return apply(op, inputs, attrs, name, graph).outputs[0]


def freeze(value: Any) -> Any:
    """An attribute value in hashable form: lists become tuples, arrays Literals."""
    import numpy as np

    from graphc.graph import Literal

    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, np.ndarray):
        return Literal(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _default_labels(n: int) -> tuple[str, ...]:
    return ("x",) if n == 1 else tuple("abcdefgh"[:n]) if n <= 8 else tuple(f"in{i}" for i in range(n))
