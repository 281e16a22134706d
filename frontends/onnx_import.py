"""ONNX -> graphc: :func:`load_model` (``gc.onnx.load``) and the importer registry.

Reading is defensive; nothing in the file is executed, and a bad file is refused before any
graph is built:

* the bytes must parse as a ``ModelProto`` with an IR version, a default-domain opset and a
  graph (wrong magic / random bytes / truncation give a :class:`graphc.FileFormatError`);
* ``onnx.checker`` validates the structure (topological order, names, attributes);
* tensors with external data are read only from regular files *inside the model's folder*
  (no absolute paths, no ``..``, no symlink escaping it), within the file's size;
* every node's (op_type, opset) must be in the importer table, else an error names the op,
  its version and the node; other domains are refused the same way.

Mapping: graph inputs (not initializers) become placeholders (symbolic dims -> ``None``);
float initializers become **trainable variables** (so an imported model can be fine-tuned
and exported again), integer/bool initializers constants. Values computable from constants
alone (shape arithmetic: ``Shape -> Gather -> Concat -> Reshape``) are folded when imported,
so ops that need static arguments in graphc (Reshape, Slice, Pad...) get them.

Importers live in :mod:`graphc.frontends.onnx_import_ops`: ``@importer("Squeeze", since=13)``
registers ``fn(ctx, node, inputs, attrs) -> outputs`` for opsets from ``since`` up to the next
registration of that op (semantics changed there).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from graphc.errors import FileFormatError, GraphcError

__all__ = ["load_model", "import_model", "importer", "IMPORTERS", "OnnxImportError",
           "supported_ops"]

IMPORTERS: dict[str, list[tuple[int, Callable]]] = {}


class OnnxImportError(GraphcError, ValueError):
    """An ONNX model graphc cannot import (an unsupported op, opset or attribute)."""


OnnxImportError.__module__ = "graphc"


def importer(*op_types: str, since: int = 1) -> Callable:
    """Register an importer for ``op_types`` from opset ``since`` on."""
    def register(fn: Callable) -> Callable:
        for op in op_types:
            IMPORTERS.setdefault(op, []).append((since, fn))
            IMPORTERS[op].sort(key=lambda item: item[0])
        return fn
    return register


def supported_ops() -> dict[str, list[int]]:
    """op_type -> the opset versions from which an importer applies."""
    _load_table()
    return {op: [v for v, _ in items] for op, items in sorted(IMPORTERS.items())}


def _load_table() -> None:
    from graphc.frontends import (onnx_import_nn, onnx_import_ops, onnx_import_rnn,  # noqa: F401
                                  onnx_import_shape)


def _lookup(op_type: str, opset: int) -> Optional[Callable]:
    found = None
    for since, fn in IMPORTERS.get(op_type, ()):
        if since <= opset:
            found = fn
    return found


# -- reading a file safely -------------------------------------------------------------------

def read_model(path: str) -> onnx.ModelProto:
    """Parse and validate the model at ``path`` (external data read safely), or raise."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise FileFormatError(f"cannot read ONNX model {path!r}: {err.strerror}") from None
    return parse_model(data, os.path.dirname(os.path.abspath(path)), path)


def parse_model(data: bytes, folder: Optional[str] = None, what: str = "<bytes>") -> onnx.ModelProto:
    """A checked ``ModelProto`` from serialized bytes (external data from ``folder``)."""
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as err:  # noqa: BLE001 - protobuf raises DecodeError or RuntimeWarning
        raise FileFormatError(f"{what} is not an ONNX model (the protobuf does not parse: "
                              f"{err}); is the file truncated or of another format?") from None
    if not data or model.ir_version <= 0 or not model.HasField("graph"):
        raise FileFormatError(f"{what} is not an ONNX model: no IR version or graph (wrong "
                              "file type or truncated)")
    if not any(o.domain in ("", "ai.onnx") for o in model.opset_import):
        raise FileFormatError(f"{what}: the model imports no default-domain opset")
    for tensor in _all_tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            if folder is None:
                raise FileFormatError(f"{what}: tensor {tensor.name!r} has external data but "
                                      "the model was not loaded from a file")
            _load_external(tensor, folder, what)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        raise FileFormatError(f"{what} is not a valid ONNX model: "
                              f"{str(err).splitlines()[0]}") from None
    return model


def _all_tensors(graph: onnx.GraphProto) -> list[onnx.TensorProto]:
    out = list(graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                out.append(attr.t)
            out.extend(attr.tensors)
            if attr.HasField("g"):
                out.extend(_all_tensors(attr.g))
            for g in attr.graphs:
                out.extend(_all_tensors(g))
    return out


def _load_external(tensor: onnx.TensorProto, folder: str, what: str) -> None:
    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")
    root = os.path.realpath(folder)
    target = os.path.realpath(os.path.join(root, location))
    if not location or os.path.isabs(location) or ".." in location.replace("\\", "/").split("/") \
            or os.path.commonpath([root, target]) != root:
        raise FileFormatError(f"{what}: external data of tensor {tensor.name!r} points outside "
                              f"the model's folder ({location!r}); refused")
    if not os.path.isfile(target):
        raise FileFormatError(f"{what}: external data file {location!r} of tensor "
                              f"{tensor.name!r} is missing")
    try:
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise FileFormatError(f"{what}: bad offset/length for tensor {tensor.name!r}") from None
    size = os.path.getsize(target)
    end = size if length is None else offset + length
    if offset < 0 or end > size or end < offset:
        raise FileFormatError(f"{what}: external data of tensor {tensor.name!r} lies beyond "
                              f"the end of {location!r}")
    with open(target, "rb") as f:
        f.seek(offset)
        tensor.raw_data = f.read(end - offset)
    del tensor.external_data[:]
    tensor.data_location = onnx.TensorProto.DEFAULT


# -- building the graph -------------------------------------------------------------------------

def load_model(path: str) -> tuple[Any, list, list]:
    """``gc.onnx.load``: the ONNX model at ``path`` as (graph, inputs, outputs)."""
    return import_model(read_model(path))


def import_model(model: onnx.ModelProto, graph: Any = None,
                 static_inputs: Optional[dict[str, np.ndarray]] = None) -> tuple[Any, list, list]:
    """A checked ModelProto as a new graphc graph: (graph, input tensors, output tensors).

    ``static_inputs``: graph inputs to specialize on (name -> value): they become constants,
    which lets a model whose shape arguments (Reshape's shape, Slice's starts...) are graph
    inputs import into graphc, whose shape arguments are static. They are left out of the
    returned inputs."""
    import graphc as gc
    from graphc.frontends.onnx_import_ctx import Context

    _load_table()
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if not 1 <= opset <= onnx.defs.onnx_opset_version():
        raise OnnxImportError(f"opset {opset} is not supported: graphc's importer knows opsets "
                              f"1..{onnx.defs.onnx_opset_version()}")
    graph = graph or gc.Graph()
    ctx = Context(graph, opset)
    inits = {t.name: t for t in model.graph.initializer}
    # Check every node first: an unsupported model is refused before anything is built.
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise OnnxImportError(f"node {node.name or node.output[0]!r}: op {node.op_type} of "
                                  f"domain {node.domain!r} is not supported (only the default "
                                  "ONNX domain)")
        if _lookup(node.op_type, opset) is None:
            raise OnnxImportError(f"node {node.name or node.output[0]!r}: op {node.op_type} at "
                                  f"opset {opset} is not supported by graphc's ONNX importer")
    with graph.as_default():
        inputs = []
        for vi in model.graph.input:
            if vi.name in inits:
                continue
            if static_inputs and vi.name in static_inputs:
                ctx.values[vi.name] = gc.constant(np.asarray(static_inputs[vi.name]))
                continue
            inputs.append(ctx.add_input(vi))
        for name, tensor in inits.items():
            try:
                array = numpy_helper.to_array(tensor)
            except Exception as err:  # noqa: BLE001 - a data size that does not match dims
                raise FileFormatError(f"initializer {name!r} is corrupt: {err}") from None
            ctx.add_initializer(name, array)
        with graph.name_scope("onnx"):  # the model's own names stay free for its outputs
            for node in model.graph.node:
                ctx.run_node(node, _lookup(node.op_type, opset))
        outputs = [ctx.output(vi.name) for vi in model.graph.output]
    return graph, inputs, outputs


def attributes(node: onnx.NodeProto) -> dict[str, Any]:
    """A node's attributes as Python values (tensors as arrays)."""
    out: dict[str, Any] = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        if isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value)
        elif isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode() for v in value]
        out[attr.name] = value
    return out


def ints_of(value: Any, what: str) -> Sequence[int]:
    """A constant's value as a list of ints."""
    return [int(v) for v in np.asarray(value).reshape(-1)]
