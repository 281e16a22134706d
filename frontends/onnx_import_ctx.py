"""The state of one ONNX import: ONNX value names -> graphc tensors, and constant folding.

A value computed from constants alone (``Shape`` of a static tensor, the shape arithmetic
exporters emit) is evaluated once with the reference interpreter and replaced by a
``constant``, so importers that need static arguments (Reshape's shape, Slice's starts) find
them with :meth:`Context.const`.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import onnx

from graphc.errors import GraphcError
from graphc.frontends.onnx_import import OnnxImportError, attributes

_DTYPES = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.DOUBLE: np.float64,
           onnx.TensorProto.FLOAT16: np.float16, onnx.TensorProto.INT8: np.int8,
           onnx.TensorProto.INT16: np.int16, onnx.TensorProto.INT32: np.int32,
           onnx.TensorProto.INT64: np.int64, onnx.TensorProto.UINT8: np.uint8,
           onnx.TensorProto.BOOL: np.bool_}


def np_dtype(elem_type: int, what: str = "") -> np.dtype:
    """The NumPy dtype of an ONNX element type graphc supports, or OnnxImportError."""
    if elem_type not in _DTYPES:
        name = onnx.TensorProto.DataType.Name(elem_type) if elem_type in \
            onnx.TensorProto.DataType.values() else str(elem_type)
        raise OnnxImportError(f"{what}element type {name} is not supported by graphc")
    return np.dtype(_DTYPES[elem_type])


FOLD_LIMIT = 1 << 20  # elements: constant folding never materializes more than this


def _small(t: Any) -> bool:
    """Fold only results of a static, modest size: a hostile model cannot make the import
    allocate (``ConstantOfShape([10**12])``) or compute at length."""
    shape = t.shape
    return shape is not None and None not in shape and int(np.prod(shape, dtype=np.int64)) \
        <= FOLD_LIMIT


class Context:
    """ONNX names -> tensors for one import, with helpers for importers."""

    def __init__(self, graph: Any, opset: int) -> None:
        self.graph = graph
        self.opset = opset
        self.values: dict[str, Any] = {}
        self.node: Optional[onnx.NodeProto] = None
        self.initial: dict[int, np.ndarray] = {}  # variable node id -> initializer value

    # -- inputs ------------------------------------------------------------------------------

    def add_input(self, vi: onnx.ValueInfoProto) -> Any:
        import graphc as gc

        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise OnnxImportError(f"graph input {vi.name!r} is not a tensor")
        dtype = np_dtype(tt.elem_type, f"graph input {vi.name!r}: ")
        shape = None
        if tt.HasField("shape"):
            shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
        t = gc.placeholder(dtype, shape, name=vi.name)
        self.values[vi.name] = t
        return t

    def add_initializer(self, name: str, array: np.ndarray) -> None:
        import graphc as gc

        np_dtype(onnx.helper.np_dtype_to_tensor_dtype(array.dtype), f"initializer {name!r}: ")
        if array.dtype.kind == "f":  # weights: trainable, so the model can be fine-tuned
            var = gc.Variable(array, name=name)
            self.values[name] = var
            self.initial[var.node.id] = array
        else:
            self.values[name] = gc.constant(array, name=name)

    # -- nodes -------------------------------------------------------------------------------

    def run_node(self, node: onnx.NodeProto, fn: Callable) -> None:
        self.node = node
        ins = []
        for name in node.input:
            if name and name not in self.values:
                raise OnnxImportError(f"{self.where()}: input {name!r} is not produced by any "
                                      "earlier node, graph input or initializer")
            ins.append(self.values[name] if name else None)
        try:
            outs = list(fn(self, node, ins, attributes(node)))
        except OnnxImportError:
            raise
        except (GraphcError, ValueError, TypeError, KeyError, IndexError) as err:
            raise OnnxImportError(f"{self.where()}: {err}") from None
        foldable = all(t is None or self.const(t) is not None for t in ins) and node.op_type not in (
            "RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Dropout")
        for name, t in zip(node.output, outs):
            if not name or t is None:
                continue
            if foldable and self.const(t) is None and _small(t):
                t = self.fold(t)
            self.values[name] = t
        self.node = None

    def fold(self, t: Any) -> Any:
        """``t`` (computed from constants only) evaluated, as a constant."""
        import graphc as gc

        value = gc.Session(self.graph, target="reference").run(t)
        return gc.constant(np.asarray(value), t.dtype)

    def output(self, name: str) -> Any:
        import graphc as gc

        if name not in self.values:
            raise OnnxImportError(f"graph output {name!r} is not produced by any node")
        return gc.identity(self.values[name], name=name)

    # -- helpers for importers -----------------------------------------------------------------

    @staticmethod
    def const(t: Any) -> Optional[np.ndarray]:
        """The value of a constant tensor, else None."""
        if t is not None and t.node.op == "constant":
            return t.node.attrs["value"].array
        return None

    def need_const(self, t: Any, what: str) -> np.ndarray:
        """The constant value of input ``what``, or an error naming the node."""
        value = self.const(t)
        if value is None and t is not None and t.node.id in self.initial:
            # A float initializer used as a static argument (Pad's value...): its value at
            # import time is taken; it is not a trainable part of that op in graphc.
            value = self.initial[t.node.id]
        if value is None:
            raise OnnxImportError(f"{self.where()}: {what} must be a constant (computed from "
                                  "initializers and static shapes only) for graphc")
        return value

    def where(self) -> str:
        node = self.node
        if node is None:
            return "model"
        label = node.name or (node.output[0] if node.output else "?")
        return f"node {label!r} (op {node.op_type}, opset {self.opset})"

    def fail(self, message: str) -> OnnxImportError:
        """An import error naming the current node."""
        return OnnxImportError(f"{self.where()}: {message}")
