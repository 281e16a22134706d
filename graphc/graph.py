"""The graph IR: :class:`Graph`, immutable :class:`Node` s and :class:`Tensor` handles.

Nodes are appended to a graph only after their inputs, so a graph's node list is always in
topological order. Pure nodes are hash-consed when built: asking for the same
``(op, inputs, attrs)`` twice returns the first node. Stateful nodes (placeholders,
variables, assignments, random draws) carry an identity attribute so they never merge.

A node remembers where the user's code created it (:class:`Location`), which errors and
debugging output name.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np

from graphc.dtypes import DType
from graphc.errors import GraphError
from graphc.shapes import Shape, format_shape

__all__ = ["Graph", "Node", "Tensor", "TensorSpec", "Literal", "Location",
           "get_default_graph", "reset_default_graph", "name_scope", "placeholders_needed"]


@dataclass(frozen=True)
class TensorSpec:
    """The static type of a tensor: shape (with unknown dims) and dtype."""

    shape: Shape
    dtype: DType

    def __str__(self) -> str:
        return f"{self.dtype.name}{format_shape(self.shape)}"


@dataclass(frozen=True)
class Location:
    """A place in the user's source: file and line."""

    file: str
    line: int

    def __str__(self) -> str:
        code = linecache.getline(self.file, self.line).strip()
        return f"{_short_path(self.file)}:{self.line}" + (f"  {code}" if code else "")


def _short_path(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


_PACKAGE_DIRS: tuple[str, ...] = ()


def _package_dirs() -> tuple[str, ...]:
    # graphc/, and frontends/ and backends/ (siblings in a checkout, children when installed).
    global _PACKAGE_DIRS
    if not _PACKAGE_DIRS:
        here = os.path.dirname(os.path.abspath(__file__))
        parent = os.path.dirname(here)
        _PACKAGE_DIRS = tuple(d + os.sep for d in (here, os.path.join(parent, "frontends"),
                                                   os.path.join(parent, "backends")))
    return _PACKAGE_DIRS


def user_location() -> Optional[Location]:
    """The innermost stack frame outside graphc's own packages."""
    dirs = _package_dirs()
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(dirs) and not filename.startswith("<frozen"):
            return Location(filename, frame.f_lineno)
        frame = frame.f_back
    return None


def warn_user(message: str, category: type = UserWarning) -> None:
    """Warn at the user's line (:func:`user_location`), not at graphc's code that noticed."""
    where = user_location()
    if where is None:
        warnings.warn(message, category, stacklevel=2)
    else:
        warnings.warn_explicit(message, category, where.file, where.line)


class Literal:
    """An immutable array stored in an attribute, hashed and compared by value."""

    __slots__ = ("array", "_hash")

    def __init__(self, value: Any, dtype: Any = None) -> None:
        array = np.array(value, dtype=dtype)
        array.flags.writeable = False
        self.array = array
        self._hash = hash((array.dtype.str, array.shape, array.tobytes()))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Literal) and self._hash == other._hash
                and self.array.dtype == other.array.dtype
                and self.array.shape == other.array.shape
                and self.array.tobytes() == other.array.tobytes())

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        if self.array.size <= 8:
            return f"Literal({self.array.tolist()!r}, {self.array.dtype.name})"
        return f"Literal({self.array.dtype.name}{list(self.array.shape)})"


class Node:
    """One operation in a graph. Immutable; build nodes with :func:`graphc.op.apply`."""

    __slots__ = ("graph", "id", "op", "inputs", "attrs", "name", "specs", "location",
                 "serial", "outputs", "__weakref__")

    def __init__(self, graph: "Graph", node_id: int, op: str, inputs: tuple["Tensor", ...],
                 attrs: Mapping[str, Any], name: str, specs: tuple[TensorSpec, ...],
                 location: Optional[Location], serial: Optional[int] = None) -> None:
        self.graph = graph
        self.id = node_id
        self.op = op
        self.inputs = inputs
        self.attrs = dict(attrs)
        self.name = name
        self.specs = specs
        self.location = location
        self.serial = serial  # distinguishes stateful nodes, which must never merge
        self.outputs: tuple[Tensor, ...] = tuple(Tensor(self, i) for i in range(len(specs)))

    @property
    def type(self) -> str:
        """The op name (TF1's ``Operation.type``)."""
        return self.op

    @property
    def output(self) -> "Tensor":
        """The single output of a one-output node."""
        if len(self.outputs) != 1:
            raise GraphError(f"{self.name} ({self.op}) has {len(self.outputs)} outputs")
        return self.outputs[0]

    def key(self) -> tuple:
        """The identity used by hash-consing and CSE: op, inputs and attrs."""
        return (self.op, tuple((t.node.id, t.index) for t in self.inputs),
                tuple(sorted(self.attrs.items())), self.serial)

    def __repr__(self) -> str:
        return f"<Node {self.name}: {self.op}>"


class Tensor:
    """A handle to one output of a node: what users combine into graphs.

    ``==`` and ``hash`` are identity (so tensors work as ``feed_dict`` keys, as in TF1); use
    :func:`graphc.equal` for elementwise equality. The other operators build ops.
    """

    __slots__ = ("node", "index")
    __array_ufunc__ = None  # NumPy defers to our reflected operators: ndarray + Tensor -> Tensor

    def __init__(self, node: Node, index: int) -> None:
        self.node = node
        self.index = index

    @property
    def spec(self) -> TensorSpec:
        """The static shape and dtype."""
        return self.node.specs[self.index]

    @property
    def shape(self) -> Shape:
        """The static shape: a tuple with None for unknown dims (None if the rank is unknown)."""
        return self.spec.shape

    @property
    def dtype(self) -> DType:
        """The element type."""
        return self.spec.dtype

    @property
    def ndim(self) -> Optional[int]:
        """The rank, or None when unknown."""
        return None if self.shape is None else len(self.shape)

    @property
    def name(self) -> str:
        """The node's name, with ``:i`` for outputs after the first."""
        return self.node.name if self.index == 0 else f"{self.node.name}:{self.index}"

    @property
    def op(self) -> Node:
        """The node that computes this tensor."""
        return self.node

    @property
    def graph(self) -> "Graph":
        """The graph this tensor belongs to."""
        return self.node.graph

    def describe(self) -> str:
        """``name  dtype[shape]``, as error messages show a tensor."""
        return f"{self.name}  {self.spec}"

    def __repr__(self) -> str:
        return f"<Tensor {self.name} {self.spec}>"

    def __bool__(self) -> bool:
        raise TypeError(f"the truth value of graph tensor {self.name} is not known until the "
                        "graph runs; use gc.where or gc.logical_and/or instead of if/and/or")

    def __iter__(self) -> Iterator["Tensor"]:
        raise TypeError(f"graph tensor {self.name} is not iterable; use gc.split or indexing")

    def __len__(self) -> int:
        if self.shape and self.shape[0] is not None:
            return self.shape[0]
        raise TypeError(f"len() of tensor {self.name} with shape {format_shape(self.shape)}")

    # The operators are attached by graphc.ops.operators, which knows the op builders.


_DEFAULT = threading.local()


class Graph:
    """A dataflow graph: nodes in topological order, variables, names and collections."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.variables: dict[str, Any] = {}  # name -> graphc.variables.Variable, in creation order
        self.collections: dict[str, list] = {}
        self.seed: Optional[int] = None  # graph-level seed for random ops (gc.set_random_seed)
        self._cons: dict[tuple, Node] = {}
        self._by_name: dict[str, Node] = {}
        self._scope: list[str] = []
        self._location_override: Optional[Location] = None
        self._stateful_counter = 0
        # Subgraphs (a scan's body): the enclosing graph, and the outer tensors this graph
        # uses, each read through a placeholder of its own (see capture()).
        self.outer: Optional["Graph"] = None
        self.captured: dict[tuple[int, int], Tensor] = {}  # outer (node id, index) -> placeholder
        self.capture_sources: list[Tensor] = []  # the captured outer tensors, in order

    # -- building ---------------------------------------------------------------------

    def add_node(self, op: str, inputs: Sequence[Tensor], attrs: Mapping[str, Any],
                 specs: Sequence[TensorSpec], name: Optional[str] = None,
                 stateful: bool = False) -> Node:
        """Append a node (or return an equal pure one). Use :func:`graphc.op.apply` instead.

        A node whose inputs include tensors of a subgraph of this graph goes into the
        innermost such subgraph, and inputs from enclosing graphs are captured there."""
        inner = self.innermost(op, inputs)
        if inner is not self:
            return inner.add_node(op, inputs, attrs, specs, name, stateful)
        inputs = [t if t.graph is self else self.capture(t) for t in inputs]
        serial = None
        if stateful:
            self._stateful_counter += 1
            serial = self._stateful_counter
        node = Node(self, len(self.nodes), op, tuple(inputs), attrs, "", tuple(specs),
                    self._location_override or user_location(), serial)
        key = node.key()
        existing = self._cons.get(key)
        if existing is not None:
            if name is not None:
                self._by_name.setdefault(self._scoped(name), existing)
            return existing
        node.name = self.unique_name(name or op)
        self.nodes.append(node)
        self._cons[key] = node
        self._by_name[node.name] = node
        return node

    def innermost(self, op: str, inputs: Sequence[Tensor]) -> "Graph":
        """The graph a node with ``inputs`` belongs in: the deepest of this graph and the
        inputs' graphs, which must lie on one chain of enclosing graphs."""
        inner = self
        for t in inputs:
            if t.graph is inner or t.graph in inner.enclosing():
                continue
            if inner in t.graph.enclosing():
                inner = t.graph
                continue
            raise GraphError(f"{op}: input {t.name} belongs to another graph; build all "
                             "ops of a model inside one graph's `with g.as_default():`")
        return inner

    def enclosing(self) -> list["Graph"]:
        """The graphs that enclose this one, innermost first (empty for a top graph)."""
        chain, g = [], self.outer
        while g is not None:
            chain.append(g)
            g = g.outer
        return chain

    def capture(self, t: Tensor) -> Tensor:
        """The placeholder through which this subgraph reads ``t`` of an enclosing graph
        (made on first use, through every graph in between). A scan passes the captured
        tensors in as extra inputs, so gradients flow to them."""
        if t.graph is self:
            return t
        if self.outer is None:
            raise GraphError(f"input {t.name} belongs to another graph; build all ops of a "
                             "model inside one graph's `with g.as_default():`")
        src = self.outer.capture(t)
        key = (src.node.id, src.index)
        ph = self.captured.get(key)
        if ph is None:
            node = self.add_node("placeholder", [], {"shape": src.shape, "dtype": src.dtype},
                                 [src.spec], name="capture", stateful=True)
            ph = self.captured[key] = node.outputs[0]
            self.capture_sources.append(src)
        return ph

    def _restore_node(self, op: str, inputs: Sequence[Tensor], attrs: Mapping[str, Any],
                      specs: Sequence[TensorSpec], name: str, location: Optional[Location],
                      serial: Optional[int] = None, aliases: Sequence[str] = ()) -> Node:
        """Append a node exactly as described (for :mod:`graphc.serialization`): no
        renaming, hash-consing or location lookup. ``aliases`` are extra names that
        resolve to it (those given to builds that hash-consed to this node)."""
        for n in (name, *aliases):
            if n in self._by_name:
                raise GraphError(f"a node named {n!r} is already in the graph")
        node = Node(self, len(self.nodes), op, tuple(inputs), attrs, name, tuple(specs),
                    location, serial)
        self.nodes.append(node)
        self._cons.setdefault(node.key(), node)
        for n in (name, *aliases):
            self._by_name[n] = node
        if serial is not None:
            self._stateful_counter = max(self._stateful_counter, serial)
        return node

    def unique_name(self, base: str) -> str:
        """``base`` within the current name scope, suffixed ``_1``, ``_2``... if taken."""
        name = self._scoped(base)
        if name not in self._by_name:
            return name
        i = 1
        while f"{name}_{i}" in self._by_name:
            i += 1
        return f"{name}_{i}"

    def _scoped(self, name: str) -> str:
        return "/".join([*self._scope, name])

    @contextlib.contextmanager
    def name_scope(self, name: Optional[str]) -> Iterator[str]:
        """Prefix the names of nodes built inside with ``name/``; ``None`` builds at the root,
        outside every enclosing scope (as TF1)."""
        saved = self._scope
        self._scope = [] if name is None else [*saved, name]
        try:
            yield "/".join(self._scope)
        finally:
            self._scope = saved

    @contextlib.contextmanager
    def at_location(self, location: Optional[Location]) -> Iterator[None]:
        """Attribute nodes built inside to ``location`` (gradient nodes to their forward op)."""
        saved, self._location_override = self._location_override, location
        try:
            yield
        finally:
            self._location_override = saved

    def add_to_collection(self, key: str, value: Any) -> None:
        """TF1's collections, e.g. ``"update_ops"`` for batch-norm statistics."""
        self.collections.setdefault(key, []).append(value)

    def get_collection(self, key: str) -> list:
        """A copy of a collection (empty if absent)."""
        return list(self.collections.get(key, []))

    # -- looking up -------------------------------------------------------------------

    def get_operation_by_name(self, name: str) -> Node:
        """The node called ``name``."""
        node = self._by_name.get(name)
        if node is None:
            raise GraphError(f"no operation named {name!r} in the graph"
                             + _close_matches(name, self._by_name))
        return node

    def get_tensor_by_name(self, name: str) -> Tensor:
        """The tensor ``name`` or ``name:i``."""
        base, _, index = name.rpartition(":")
        if base and index.isdigit():
            node, i = self.get_operation_by_name(base), int(index)
        else:
            node, i = self.get_operation_by_name(name), 0
        if i >= len(node.outputs):
            raise GraphError(f"{node.name} ({node.op}) has no output {i}")
        return node.outputs[i]

    def as_graph_element(self, obj: Any) -> "Tensor | Node":
        """A fetch or feed key as a Tensor or Node of this graph, or a clear error."""
        if isinstance(obj, str):
            if obj in self._by_name and not self._by_name[obj].outputs:
                return self._by_name[obj]
            return self.get_tensor_by_name(obj)
        if isinstance(obj, (Tensor, Node)):
            if obj.graph is not self:
                raise GraphError(f"{_name_of(obj)} belongs to another graph than the session's")
            return obj
        raise GraphError(f"cannot interpret {obj!r} ({type(obj).__name__}) as a tensor or "
                         "operation of the graph")

    # -- the default graph ------------------------------------------------------------

    @contextlib.contextmanager
    def as_default(self) -> Iterator["Graph"]:
        """Make this the graph that ops are built in, inside the ``with`` block."""
        stack = _default_stack()
        stack.append(self)
        try:
            yield self
        finally:
            stack.pop()

    def __repr__(self) -> str:
        return f"<graphc.Graph with {len(self.nodes)} nodes>"


def placeholders_needed(tensors: Sequence[Tensor]) -> list[Tensor]:
    """The placeholders that ``tensors`` depend on, in creation order."""
    seen: set[int] = set()
    stack = [t.node for t in tensors]
    found = []
    while stack:
        node = stack.pop()
        if node.id in seen:
            continue
        seen.add(node.id)
        if node.op == "placeholder":
            found.append(node)
        stack.extend(t.node for t in node.inputs)
    return [n.outputs[0] for n in sorted(found, key=lambda n: n.id)]


def _name_of(obj: Any) -> str:
    return getattr(obj, "name", repr(obj))


def _close_matches(name: str, names: Mapping[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(names), n=3)
    return f"; did you mean {', '.join(map(repr, close))}?" if close else ""


def _default_stack() -> list[Graph]:
    if not hasattr(_DEFAULT, "stack"):
        _DEFAULT.stack = []
    return _DEFAULT.stack


_GLOBAL_DEFAULT: list[Graph] = [Graph()]


def get_default_graph() -> Graph:
    """The graph new ops go into: the innermost ``as_default()`` one, else the global one."""
    stack = _default_stack()
    return stack[-1] if stack else _GLOBAL_DEFAULT[0]


def reset_default_graph() -> Graph:
    """Replace the global default graph with a new, empty one (outside any ``as_default``)."""
    if _default_stack():
        raise GraphError("reset_default_graph() inside a `with graph.as_default():` block")
    _GLOBAL_DEFAULT[0] = Graph()
    return _GLOBAL_DEFAULT[0]


def name_scope(name: Optional[str]) -> contextlib.AbstractContextManager:
    """``with gc.name_scope("layer1"):`` prefixes names in the default graph (None: the root)."""
    return get_default_graph().name_scope(name)
