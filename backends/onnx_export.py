"""graphc graph -> ONNX ``ModelProto``: the driver and the exporter table's registry.

One exporter per graphc op (``@exporter("matmul")``) turns a node into ONNX nodes through an
:class:`Emitter`; the table lives in ``onnx_export_ops`` (elementwise, reductions, nn),
``onnx_export_shape`` (shape and indexing), ``onnx_export_nn`` (conv, pools and their
gradients), ``onnx_export_scan`` (``scan`` as ONNX ``Scan``, so graphc's LSTM/GRU/RNN
layers, built on scan, export as loops rather than as ONNX's LSTM/GRU ops) and
``onnx_export_grad`` (graphc's gradient helpers: ``sum_to_like``, ``broadcast_like``,
``strided_slice_grad``...), so backward graphs export too. Ops that ONNX cannot express are
listed in :data:`UNSUPPORTED` with the reason; exporting one raises an error naming the op
and the node (never a silent fallback).

What the driver decides:

* **Inputs** are the fed tensors (placeholders), with ``None`` dims as named symbolic dims
  (``<input>_d<i>``), so a model exported once runs at any batch size.
* **Variables** become initializers holding their current values (inference export), or
  graph inputs (the ``onnx`` target's step function: variables and optimizer slots in, new
  values out as extra outputs named ``<variable>/new``).
* **Constants** become ``Constant`` nodes, never initializers: :func:`gc.onnx.load` turns
  initializers into trainable variables, and a constant must stay a constant.
* **Composites** are recognized as patterns and mapped to their ONNX op: graphc's softmax
  and log_softmax (max-shifted exp / sum) become ``Softmax``/``LogSoftmax``; a 2-D matmul
  (with its transpose flags) becomes ``Gemm``, absorbing a following 1-D bias add.
* **Random ops** cannot be exported to a file (ONNX's RandomUniform cannot reproduce graphc's
  Philox stream, so the numbers would silently differ); the ``onnx`` target instead computes
  the draws in graphc and feeds them (``random_as_inputs=True``).
* **Names**: every tensor keeps its graphc name (``node`` or ``node:i``); helper values are
  ``<node>/<op_type>...``, all unique.

Only opsets >= 13 are produced (axes-as-inputs era); 13, 17 (the default) and the newest
one onnx knows are tested. ``ScatterElements``' ``reduction="add"`` needs opset 16, so the
gradients of gather/pad/tile need opset >= 16.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphc.errors import GraphcError, GraphError
from graphc.graph import Graph, Node, Tensor
from graphc.program import Program, build_program

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "EXPORTERS", "UNSUPPORTED", "OnnxExportError",
           "Emitter", "ExportedModel", "exporter", "export_model", "newest_opset", "load_table",
           "unexportable", "onnx_dtype"]

DEFAULT_OPSET = 17
MIN_OPSET = 13
EXPORTERS: dict[str, Callable[..., Sequence[str]]] = {}

# Ops that ONNX cannot express, with the reason (a coverage test checks every registered op
# is either exported or listed here).
UNSUPPORTED: dict[str, str] = {
    "random_uniform": "ONNX RandomUniform cannot reproduce graphc's Philox numbers; the onnx "
                      "target feeds draws computed by graphc instead",
    "random_normal": "ONNX RandomNormal cannot reproduce graphc's Philox numbers; the onnx "
                     "target feeds draws computed by graphc instead",
}


class OnnxExportError(GraphcError, ValueError):
    """A graph that cannot be written as ONNX (an op ONNX cannot express, a bad opset)."""


OnnxExportError.__module__ = "graphc"


def exporter(*ops: str) -> Callable:
    """Register ``fn(em, node, inputs) -> output names`` as the exporter of ``ops``."""
    def register(fn: Callable) -> Callable:
        for op in ops:
            EXPORTERS[op] = fn
        return fn
    return register


def load_table() -> dict[str, Callable[..., Sequence[str]]]:
    """The full exporter table (importing the modules that fill it)."""
    from graphc.backends import (onnx_export_grad, onnx_export_nn, onnx_export_ops,  # noqa: F401
                                 onnx_export_scan, onnx_export_shape)
    return EXPORTERS


def unexportable(graph: Graph) -> dict[str, str]:
    """The ops of ``graph`` that cannot be exported, with the reason for each."""
    load_table()
    out = {}
    for node in graph.nodes:
        if node.op in UNSUPPORTED:
            out[node.op] = UNSUPPORTED[node.op]
        elif node.op not in EXPORTERS and node.op not in ("variable", "placeholder"):
            out[node.op] = "no ONNX exporter (not in the table)"
    return out


def newest_opset() -> int:
    """The newest default-domain opset the installed onnx package knows."""
    return int(onnx.defs.onnx_opset_version())


_DTYPES = {np.dtype(k): v for k, v in (("float16", TensorProto.FLOAT16),
                                       ("float32", TensorProto.FLOAT),
                                       ("float64", TensorProto.DOUBLE), ("int8", TensorProto.INT8),
                                       ("int16", TensorProto.INT16), ("int32", TensorProto.INT32),
                                       ("int64", TensorProto.INT64), ("uint8", TensorProto.UINT8),
                                       ("bool", TensorProto.BOOL))}


def onnx_dtype(dtype: Any) -> int:
    """The ONNX element type of a graphc/NumPy dtype."""
    return _DTYPES[np.dtype(getattr(dtype, "np", dtype))]


class Emitter:
    """Collects ONNX nodes for one model; exporters build with :meth:`op` and :meth:`const`."""

    def __init__(self, opset: int) -> None:
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.node: Optional[Node] = None  # the graphc node being exported (for names, errors)
        self._used: set[str] = set()
        self._consts: dict[tuple, str] = {}
        self._shapes: dict[str, str] = {}

    def fresh(self, base: str) -> str:
        """A value/node name not used yet, derived from ``base``."""
        name, i = base, 1
        while name in self._used:
            name, i = f"{base}_{i}", i + 1
        self._used.add(name)
        return name

    def reserve(self, name: str) -> None:
        """Mark ``name`` as taken (graph inputs, initializers)."""
        self._used.add(name)

    def _hint(self, op_type: str) -> str:
        return f"{self.node.name}/{op_type}" if self.node is not None else op_type

    def op(self, op_type: str, inputs: Sequence[str], n_out: int = 1, **attrs: Any) -> Any:
        """Add one ONNX node; returns its output name (or the list, when ``n_out != 1``).
        Attribute values of None are left out; empty input names mean "absent"."""
        outs = [self.fresh(self._hint(op_type)) for _ in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), outs,
                                           name=self.fresh(self._hint(op_type) + "/node"), **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, value: Any, dtype: Any = None) -> str:
        """A ``Constant`` node holding ``value`` (shared between identical values)."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        name = self._consts.get(key)
        if name is None:
            name = self.fresh(self._hint("const"))
            self.nodes.append(helper.make_node(
                "Constant", [], [name], name=self.fresh(name + "/node"),
                value=numpy_helper.from_array(array, name)))
            self._consts[key] = name
        return name

    def ints(self, values: Sequence[int]) -> str:
        """A 1-D int64 constant (axes, shapes, pads)."""
        return self.const(np.asarray(list(values), np.int64).reshape(-1))

    def shape(self, x: str) -> str:
        """``Shape(x)`` (one node per value)."""
        if x not in self._shapes:
            self._shapes[x] = self.op("Shape", [x])
        return self._shapes[x]

    def reduce(self, op_type: str, x: str, axes: Optional[Sequence[int]], keepdims: bool,
               noop_with_empty_axes: Optional[int] = None) -> str:
        """A ReduceXxx over static ``axes`` (None: all), axes as attribute or input by opset."""
        return self.reduce_dyn(op_type, x, None if axes is None else self.ints(axes), keepdims,
                               noop_with_empty_axes, static=axes)

    def reduce_dyn(self, op_type: str, x: str, axes: Optional[str], keepdims: bool,
                   noop_with_empty_axes: Optional[int] = None, static: Any = None) -> str:
        """A ReduceXxx whose axes are the value ``axes`` (None: all)."""
        as_input = op_type == "ReduceSum" and self.opset >= 13 or self.opset >= 18
        if as_input or axes is None:
            ins = [x] if axes is None else [x, axes]
            return self.op(op_type, ins, keepdims=int(keepdims),
                           noop_with_empty_axes=noop_with_empty_axes if as_input else None)
        if static is None:
            raise self.error(f"{op_type} with run-time axes needs opset 18")
        return self.op(op_type, [x], axes=list(static), keepdims=int(keepdims))

    def unsqueeze(self, x: str, axes: Sequence[int]) -> str:
        """``Unsqueeze`` (axes are an input from opset 13)."""
        return self.op("Unsqueeze", [x, self.ints(axes)])

    def squeeze(self, x: str, axes: Optional[Sequence[int]]) -> str:
        """``Squeeze`` over ``axes`` (None: every size-1 axis)."""
        return self.op("Squeeze", [x] if axes is None else [x, self.ints(axes)])

    def error(self, message: str) -> OnnxExportError:
        """An export error naming the current node, its op and the user's line."""
        node = self.node
        if node is None:
            return OnnxExportError(message)
        where = f"\n  at {node.location}" if node.location else ""
        return OnnxExportError(f"cannot export node {node.name} (op {node.op}) to ONNX opset "
                               f"{self.opset}: {message}{where}")


@dataclass
class ExportedModel:
    """A model and how its inputs and outputs map back to the graph."""

    model: onnx.ModelProto
    inputs: list[str]                                   # ONNX names of the fed tensors
    outputs: list[str]                                  # ONNX names of the fetches
    variable_inputs: dict[str, str] = field(default_factory=dict)   # variable -> input name
    random_inputs: list[tuple[Node, str]] = field(default_factory=list)  # draws fed by graphc
    write_outputs: dict[str, str] = field(default_factory=dict)     # variable -> output name


def export_model(graph: Graph, inputs: Sequence[Tensor], outputs: Sequence[Tensor], *,
                 opset: Optional[int] = None, values: Optional[dict[str, np.ndarray]] = None,
                 variables_as_inputs: bool = False, writes: bool = False,
                 random_as_inputs: bool = False, program: Optional[Program] = None,
                 producer: str = "graphc") -> ExportedModel:
    """Build the ONNX model computing ``outputs`` from ``inputs``.

    ``values``: variable name -> current value (missing ones are computed from their
    initial values by the caller). With ``variables_as_inputs`` the variables are inputs
    instead, and with ``writes`` the program's assignments become outputs too.
    """
    from graphc.backends.onnx_patterns import find_rewrites

    load_table()

    opset = DEFAULT_OPSET if opset is None else int(opset)
    if not MIN_OPSET <= opset <= newest_opset():
        raise OnnxExportError(f"opset {opset} is not supported: graphc exports opsets "
                              f"{MIN_OPSET}..{newest_opset()}")
    if program is None:
        program = build_program(graph, list(outputs), list(inputs))
    if program.writes and not writes:
        raise OnnxExportError("the fetches assign variables (" + ", ".join(program.writes)
                              + "); an inference export cannot update state: fetch the "
                              "outputs only, or run it with Session(target='onnx')")
    em = Emitter(opset)
    fed = program.fed_keys()
    names: dict[tuple[int, int], str] = {}
    graph_inputs, initializers = [], []
    result = ExportedModel(None, [], [])  # type: ignore[arg-type]
    for t in program.feeds:
        name = _unique_input(em, t.name)
        names[(t.node.id, t.index)] = name
        graph_inputs.append(_value_info(name, t))
        result.inputs.append(name)
    rewrites = find_rewrites(program, opset)
    live = _live_nodes(program, rewrites, fed)
    for node in program.nodes:
        if node.id not in live or (node.outputs and all((node.id, i) in fed
                                                        for i in range(len(node.outputs)))):
            continue
        em.node = node
        if node.op == "variable":
            name = _unique_input(em, node.name)
            names[(node.id, 0)] = name
            if variables_as_inputs:
                graph_inputs.append(_value_info(name, node.outputs[0]))
                result.variable_inputs[node.name] = name
            else:
                if values is None or node.name not in values:
                    raise GraphError(f"no value for variable {node.name} to export")
                array = np.asarray(values[node.name], node.specs[0].dtype.np)
                initializers.append(numpy_helper.from_array(array, name))
            continue
        if node.op == "placeholder":
            raise GraphError(f"placeholder {node.name} must be one of the exported inputs")
        if node.op in UNSUPPORTED and not (random_as_inputs and node.op.startswith("random_")):
            raise em.error(UNSUPPORTED[node.op])
        if node.op.startswith("random_") and random_as_inputs:
            name = _unique_input(em, node.name)
            names[(node.id, 0)] = name
            graph_inputs.append(_value_info(name, node.outputs[0]))
            result.random_inputs.append((node, name))
            continue
        rewrite = rewrites.get(node.id)
        if rewrite is not None:
            fn, leaves = rewrite
            outs = _run_exporter(em, node, fn, [names[(t.node.id, t.index)] for t in leaves])
        else:
            fn = EXPORTERS.get(node.op)
            if fn is None:
                raise em.error("graphc has no ONNX exporter for this op")
            outs = _run_exporter(em, node, fn, [names[(t.node.id, t.index)]
                                                for t in node.inputs])
        for i, name in enumerate(outs):
            names[(node.id, i)] = name
    em.node = None
    graph_outputs = []
    wanted = [(t, t.name) for t in program.fetches]
    if writes:
        wanted += [(t, f"{var}/new") for var, t in program.writes.items()]
    input_names = {vi.name for vi in graph_inputs} | {i.name for i in initializers}
    emitted: set[str] = set()
    for i, (t, label) in enumerate(wanted):
        name = names[(t.node.id, t.index)]
        if name in input_names or name in emitted:  # outputs must be distinct node outputs
            name = _named_identity(em, name, label)
        emitted.add(name)
        graph_outputs.append(_value_info(name, t, symbolic=False))
        if i < len(program.fetches):
            result.outputs.append(name)
        else:
            result.write_outputs[label[:-len("/new")]] = name
    onnx_graph = helper.make_graph(em.nodes, "graphc", graph_inputs, graph_outputs, initializers)
    model = helper.make_model(onnx_graph, producer_name=producer,
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, _max_ir(opset))
    _fill_unknown_ranks(model)
    result.model = model
    return result


def _fill_unknown_ranks(model: onnx.ModelProto) -> None:
    """Outputs whose rank graphc does not know get the type ONNX shape inference finds
    (the checker wants every graph output to have a shape)."""
    missing = [o for o in model.graph.output if not o.type.tensor_type.HasField("shape")]
    if not missing:
        return
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.extend(o for o in model.graph.output
                              if o.type.tensor_type.HasField("shape"))
    inferred = onnx.shape_inference.infer_shapes(probe)
    found = {v.name: v for v in inferred.graph.value_info}
    found.update({v.name: v for v in inferred.graph.input})
    for out in missing:
        info = found.get(out.name)
        if info is not None and info.type.tensor_type.HasField("shape"):
            out.type.CopyFrom(info.type)
        else:  # the rank is unknown to ONNX too: say only "some shape" (checker-valid)
            out.type.tensor_type.shape.SetInParent()


def _max_ir(opset: int) -> int:
    for _, ir, op, *_ in reversed(helper.VERSION_TABLE):
        if op == opset:
            return ir
    return onnx.IR_VERSION


def _run_exporter(em: Emitter, node: Node, fn: Callable, ins: list[str]) -> list[str]:
    """Call an exporter, then give each produced output the graphc tensor's name."""
    start = len(em.nodes)
    outs = list(fn(em, node, ins))
    if len(outs) != len(node.outputs):
        raise em.error(f"the exporter gave {len(outs)} outputs for {len(node.outputs)}")
    for i, old in enumerate(outs):
        producer = next((n for n in em.nodes[start:] if old in n.output), None)
        if producer is None or old in outs[:i]:
            continue  # an input passed through, or already renamed: keep the name
        new = em.fresh(node.outputs[i].name)
        producer.output[list(producer.output).index(old)] = new
        for n in em.nodes[start:]:
            for j, name in enumerate(n.input):
                if name == old:
                    n.input[j] = new
        em._shapes = {(new if k == old else k): (new if v == old else v)
                      for k, v in em._shapes.items()}
        em._consts = {k: (new if v == old else v) for k, v in em._consts.items()}
        outs[i] = new
    return outs


def _named_identity(em: Emitter, src: str, label: str) -> str:
    out = em.fresh(label)
    em.nodes.append(helper.make_node("Identity", [src], [out], name=em.fresh(out + "/node")))
    return out


def _unique_input(em: Emitter, name: str) -> str:
    return em.fresh(name or "input")


def _value_info(name: str, t: Tensor, symbolic: bool = True) -> onnx.ValueInfoProto:
    shape = t.shape
    if shape is not None:
        shape = [d if d is not None else (f"{name}_d{i}" if symbolic else None)
                 for i, d in enumerate(shape)]
    return helper.make_tensor_value_info(name, onnx_dtype(t.dtype), shape)


def _live_nodes(program: Program, rewrites: dict, fed: set) -> set[int]:
    """The node ids needed for the fetches and writes, following rewrites' leaves."""
    stack = [t.node for t in program.fetches] + [t.node for t in program.writes.values()]
    live: set[int] = set()
    while stack:
        node = stack.pop()
        if node.id in live:
            continue
        live.add(node.id)
        if node.outputs and all((node.id, i) in fed for i in range(len(node.outputs))):
            continue
        deps = rewrites[node.id][1] if node.id in rewrites else node.inputs
        stack.extend(t.node for t in deps)
    return live
