"""State and inputs: placeholders, constants, variables, assignments and groups.

A run is a function from (feeds, variable values) to (fetches, new variable values): every
read of a variable in one run sees the value from the start of the run, and ``assign`` nodes
that the fetches need write their values when the run ends. Two writes to one variable in
the same run are refused when the run is compiled. This is what lets every target (and the
ONNX export of a training step) treat a step as a pure function.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from graphc import dtypes
from graphc.errors import DTypeError, GraphError, ShapeError
from graphc.graph import Literal, Node, Tensor, TensorSpec, get_default_graph
from graphc.op import Kind, apply, apply1, defop
from graphc.shapes import as_shape, format_shape, merge_shapes

__all__ = ["placeholder", "constant", "convert_to_tensor", "assign", "group", "no_op"]


def _not_computed(what: str):
    def ref(*_args: Any, **_attrs: Any) -> np.ndarray:
        raise GraphError(f"a {what} has no value of its own; the runtime provides it")
    return ref


defop("placeholder", kind=Kind.STATE, stateful=True, ref=_not_computed("placeholder"),
      infer=lambda *, shape, dtype: TensorSpec(shape, dtype),
      doc="A value fed at run time.")

defop("variable", kind=Kind.STATE, stateful=True, ref=_not_computed("variable"),
      infer=lambda *, shape, dtype: TensorSpec(shape, dtype),
      doc="Reads a variable's value at the start of the run.")

defop("constant", kind=Kind.STATE,
      infer=lambda *, value: TensorSpec(value.array.shape, dtypes.as_dtype(value.array.dtype)),
      ref=lambda *, value: value.array,
      doc="A value fixed in the graph.")


def _infer_assign(var: TensorSpec, value: TensorSpec) -> TensorSpec:
    if var.dtype != value.dtype:
        raise DTypeError(f"value dtype {value.dtype} differs from the variable's {var.dtype}")
    try:
        merge_shapes(var.shape, value.shape)
    except ShapeError:
        raise ShapeError(f"value shape {format_shape(value.shape)} differs from the "
                         f"variable's {format_shape(var.shape)}") from None
    return var


defop("assign", kind=Kind.STATE, stateful=True, infer=_infer_assign,
      ref=lambda var, value: value, input_names=("ref", "value"),
      doc="Writes `value` to the variable read by input 0 when the run ends; outputs `value`.")

defop("group", kind=Kind.STATE, infer=lambda *specs: (), ref=lambda *args: (),
      doc="Runs its inputs for their effects; has no output.")


def placeholder(dtype: Any, shape: Any = None, name: Optional[str] = None) -> Tensor:
    """A tensor whose value is fed at run time; ``None`` dims (or ``shape=None``) are free."""
    return apply1("placeholder", [], {"shape": as_shape(shape), "dtype": dtypes.as_dtype(dtype)},
                  name=name or "Placeholder", graph=get_default_graph())


def constant(value: Any, dtype: Any = None, name: Optional[str] = None,
             graph: Any = None) -> Tensor:
    """A tensor with a fixed value. Python floats become float32 and ints int64 unless
    ``dtype`` says otherwise; NumPy arrays keep their dtype."""
    array = to_array(value, dtype)
    return apply1("constant", [], {"value": Literal(array)}, name=name or "Const",
                  graph=graph or get_default_graph())


def to_array(value: Any, dtype: Any = None) -> np.ndarray:
    """A NumPy array for a constant: Python floats as float32, ints as int64 (TF's rule)."""
    if dtype is not None:
        return np.asarray(value, dtype=dtypes.as_numpy_dtype(dtype))
    array = np.asarray(value)
    if not isinstance(value, (np.ndarray, np.generic)):
        if array.dtype == np.float64:  # Python floats: the default float, as in TF
            array = array.astype(dtypes.DEFAULT_FLOAT.np)
        elif array.dtype.kind in "iu":
            array = array.astype(dtypes.DEFAULT_INT.np)
    dtypes.as_dtype(array.dtype)  # refuses unsupported dtypes (object, complex, str)
    return array


def convert_to_tensor(value: Any, dtype: Any = None, graph: Any = None) -> Tensor:
    """A Tensor as is (checked against ``dtype`` if given), anything else as a constant."""
    if isinstance(value, Tensor):
        if dtype is not None and value.dtype != dtypes.as_dtype(dtype):
            raise DTypeError(f"expected a {dtypes.as_dtype(dtype)} tensor, got {value.describe()}")
        return value
    try:
        return constant(value, dtype, graph=graph)
    except (TypeError, ValueError) as err:
        raise DTypeError(f"cannot convert {type(value).__name__} to a tensor: {err}") from None


def _variable_node(ref: Tensor) -> Node:
    if not (isinstance(ref, Tensor) and ref.node.op == "variable"):
        raise GraphError(f"assign needs a gc.Variable, got {getattr(ref, 'name', ref)!r}")
    return ref.node


def assign(ref: Tensor, value: Any, name: Optional[str] = None) -> Tensor:
    """Write ``value`` to variable ``ref`` when the run ends; returns the new value."""
    _variable_node(ref)
    value = convert_to_tensor(value, graph=ref.graph) if isinstance(value, Tensor) else \
        constant(value, ref.dtype, graph=ref.graph)
    return apply1("assign", [ref, value], name=name or "Assign")


def assign_add(ref: Tensor, delta: Any, name: Optional[str] = None) -> Tensor:
    """``assign(ref, ref + delta)``."""
    return assign(ref, ref + delta, name=name or "AssignAdd")


def assign_sub(ref: Tensor, delta: Any, name: Optional[str] = None) -> Tensor:
    """``assign(ref, ref - delta)``."""
    return assign(ref, ref - delta, name=name or "AssignSub")


def group(*inputs: Any, name: Optional[str] = None) -> Node:
    """One operation that runs all of ``inputs`` (tensors, ops, or lists of them)."""
    flat: list[Tensor] = []
    for item in _flatten(inputs):
        if isinstance(item, Node):
            flat.extend(item.outputs if item.outputs else item.inputs)
        elif isinstance(item, Tensor):
            flat.append(item)
        elif item is not None:
            raise GraphError(f"group: cannot group {item!r}")
    graph = flat[0].graph if flat else get_default_graph()
    return apply("group", flat, name=name or "group", graph=graph)


def no_op(name: Optional[str] = None) -> Node:
    """An operation that does nothing (a group of nothing)."""
    return group(name=name or "NoOp")


def _flatten(items: Sequence[Any]) -> list:
    out: list = []
    for item in items:
        if isinstance(item, (list, tuple)):
            out.extend(_flatten(item))
        else:
            out.append(item)
    return out
