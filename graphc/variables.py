"""``gc.Variable``: state that persists across runs of a graph.

A Variable *is* the tensor that reads its value (so ``x @ W`` just works). Its initial value
is a tensor of the graph (a constant for NumPy values, or any computation that needs no
feeds, e.g. a seeded random draw); a session evaluates it when the variable is first used.
"""

from __future__ import annotations

from typing import Any, Optional

from graphc import dtypes
from graphc.errors import GraphError, ShapeError
from graphc.graph import Graph, Node, Tensor, get_default_graph, placeholders_needed
from graphc.op import apply
from graphc.ops import state
from graphc.shapes import format_shape, is_fully_known

__all__ = ["Variable", "global_variables", "trainable_variables",
           "global_variables_initializer", "variables_initializer"]


class Variable(Tensor):
    """A named, mutable tensor: ``gc.Variable(initial_value, name=None, trainable=True,
    dtype=None)``."""

    __slots__ = ("initial_value", "trainable")

    def __init__(self, initial_value: Any, name: Optional[str] = None, trainable: bool = True,
                 dtype: Any = None) -> None:
        graph = initial_value.graph if isinstance(initial_value, Tensor) else get_default_graph()
        init = state.convert_to_tensor(initial_value, graph=graph) \
            if isinstance(initial_value, Tensor) else state.constant(initial_value, dtype, graph=graph)
        if dtype is not None and init.dtype != dtypes.as_dtype(dtype):
            from graphc.ops.elementwise import cast

            init = cast(init, dtype)
        if not is_fully_known(init.shape):
            raise ShapeError(f"Variable {name or ''}: the initial value's shape "
                             f"{format_shape(init.shape)} must be fully known")
        _check_no_feeds(init, name)
        node = apply("variable", [], {"shape": init.shape, "dtype": init.dtype},
                     name=name or "Variable", graph=graph)
        super().__init__(node, 0)
        node.outputs = (self,)
        self.initial_value = init
        self.trainable = bool(trainable)
        graph.variables[node.name] = self

    @classmethod
    def restore(cls, node: Node, initial_value: Optional[Tensor], trainable: bool) -> "Variable":
        """The Variable of an existing ``variable`` node (graph loading uses this)."""
        var = cls.__new__(cls)
        Tensor.__init__(var, node, 0)
        node.outputs = (var,)
        var.initial_value = initial_value
        var.trainable = bool(trainable)
        return var

    @property
    def initializer(self) -> Tensor:
        """An op that resets the variable to its initial value."""
        return state.assign(self, self.initial_value, name=f"{self.node.name}/Assign")

    def assign(self, value: Any, name: Optional[str] = None) -> Tensor:
        """``gc.assign(self, value)``."""
        return state.assign(self, value, name)

    def assign_add(self, delta: Any, name: Optional[str] = None) -> Tensor:
        """``gc.assign_add(self, delta)``."""
        return state.assign_add(self, delta, name)

    def assign_sub(self, delta: Any, name: Optional[str] = None) -> Tensor:
        """``gc.assign_sub(self, delta)``."""
        return state.assign_sub(self, delta, name)

    def value(self) -> Tensor:
        """The variable's value (the variable itself: it is its read tensor)."""
        return self

    read_value = value

    def __repr__(self) -> str:
        return f"<gc.Variable {self.name} {self.spec}>"


def _check_no_feeds(init: Tensor, name: Optional[str]) -> None:
    needed = placeholders_needed([init])
    if needed:
        raise GraphError(f"Variable {name or ''}: the initial value depends on placeholder "
                         f"{needed[0].node.name}; initial values cannot need feeds")


def global_variables(graph: Optional[Graph] = None) -> list[Variable]:
    """All variables of the graph, in creation order."""
    return list((graph or get_default_graph()).variables.values())


def trainable_variables(graph: Optional[Graph] = None) -> list[Variable]:
    """The variables created with ``trainable=True``."""
    return [v for v in global_variables(graph) if v.trainable]


def variables_initializer(var_list: list[Variable], name: str = "init") -> Node:
    """An op that resets the given variables to their initial values."""
    return state.group([v.initializer for v in var_list], name=name)


def global_variables_initializer(graph: Optional[Graph] = None) -> Node:
    """An op that (re)initializes every variable of the graph."""
    variables = global_variables(graph)
    if not variables:
        return state.no_op(name="init")
    return variables_initializer(variables)


def variable_of(tensor: Tensor) -> Variable:
    """The Variable whose read node produced ``tensor``."""
    if tensor.node.op != "variable":
        raise GraphError(f"{tensor.name} is not a variable")
    return tensor.graph.variables[tensor.node.name]


def is_variable_node(node: Node) -> bool:
    """True for the read node of a variable."""
    return node.op == "variable"
