"""The exporter table for graphc's forward ops (see :mod:`graphc.backends.onnx_export`).

Each exporter maps one node to ONNX nodes with the node's exact semantics (its ``ref``);
where ONNX's op differs, the difference is spelled out:

* ``mod`` on floats: ONNX ``Mod`` with ``fmod=0`` is integer-only, so ``a - b * floor(a/b)``
  (Python's sign-of-divisor remainder); integer ``floordiv`` is ``(a - mod(a, b)) / b``.
* ``one_hot``: ONNX ``OneHot`` counts negative indices from the end, graphc gives all-off
  rows for any index outside ``[0, depth)``, so it is ``Equal(indices, range) -> Where``.
* ``pad`` SYMMETRIC (which ONNX lacks) is built from reversed ``Slice`` s and ``Concat``.
* ``strided_slice``: ``Slice`` over the sliced axes, ``Squeeze`` of the picked ones,
  ``Unsqueeze`` of the new ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.backends.onnx_export import Emitter, exporter, onnx_dtype
from graphc.graph import Node

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min

_UNARY = {"negative": "Neg", "abs": "Abs", "sign": "Sign", "exp": "Exp", "log": "Log",
          "sqrt": "Sqrt", "sin": "Sin", "cos": "Cos", "tanh": "Tanh", "sigmoid": "Sigmoid",
          "erf": "Erf", "floor": "Floor", "ceil": "Ceil", "round": "Round",
          "logical_not": "Not", "identity": "Identity", "stop_gradient": "Identity",
          "relu": "Relu", "softplus": "Softplus"}
_BINARY = {"add": "Add", "subtract": "Sub", "multiply": "Mul", "divide": "Div", "pow": "Pow",
           "maximum": "Max", "minimum": "Min", "equal": "Equal", "greater": "Greater",
           "greater_equal": "GreaterOrEqual", "less": "Less", "less_equal": "LessOrEqual",
           "logical_and": "And", "logical_or": "Or"}


def _simple(op_type: str):
    return lambda em, node, ins: [em.op(op_type, ins)]


for _op, _onnx in {**_UNARY, **_BINARY}.items():
    exporter(_op)(_simple(_onnx))


def _one(em: Emitter, node: Node) -> str:
    """A scalar 1 of the node's input dtype."""
    return em.const(np.ones((), node.inputs[0].dtype.np))


@exporter("log1p")
def _log1p(em: Emitter, node: Node, ins: list) -> list:
    return [em.op("Log", [em.op("Add", [ins[0], _one(em, node)])])]


@exporter("rsqrt")
def _rsqrt(em: Emitter, node: Node, ins: list) -> list:
    return [em.op("Reciprocal", [em.op("Sqrt", ins)])]


@exporter("square")
def _square(em: Emitter, node: Node, ins: list) -> list:
    return [em.op("Mul", [ins[0], ins[0]])]


@exporter("not_equal")
def _not_equal(em: Emitter, node: Node, ins: list) -> list:
    return [em.op("Not", [em.op("Equal", ins)])]


@exporter("leaky_relu")
def _leaky_relu(em: Emitter, node: Node, ins: list) -> list:
    return [em.op("LeakyRelu", ins, alpha=float(node.attrs["alpha"]))]


@exporter("elu")
def _elu(em: Emitter, node: Node, ins: list) -> list:
    return [em.op("Elu", ins, alpha=float(node.attrs["alpha"]))]


@exporter("cast")
def _cast(em: Emitter, node: Node, ins: list) -> list:
    return [em.op("Cast", ins, to=onnx_dtype(node.attrs["dtype"]))]


@exporter("mod")
def _mod(em: Emitter, node: Node, ins: list) -> list:
    a, b = ins
    if node.inputs[0].dtype.is_integer:
        return [em.op("Mod", ins, fmod=0)]
    return [em.op("Sub", [a, em.op("Mul", [b, em.op("Floor", [em.op("Div", ins)])])])]


@exporter("floordiv")
def _floordiv(em: Emitter, node: Node, ins: list) -> list:
    a, b = ins
    if node.inputs[0].dtype.is_integer:  # exact: a - mod(a, b) is a multiple of b
        return [em.op("Div", [em.op("Sub", [a, em.op("Mod", ins, fmod=0)]), b])]
    return [em.op("Floor", [em.op("Div", ins)])]


@exporter("where")
def _where(em: Emitter, node: Node, ins: list) -> list:
    return [em.op("Where", ins)]


# -- matmul --------------------------------------------------------------------------------

def _swap_last(em: Emitter, x: str, rank: Any) -> str:
    if rank is None:
        raise em.error("a transposed operand of unknown rank")
    perm = list(range(rank))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return em.op("Transpose", [x], perm=perm)


@exporter("matmul")
def _matmul(em: Emitter, node: Node, ins: list) -> list:
    a, b = node.inputs
    ta, tb = node.attrs["transpose_a"], node.attrs["transpose_b"]
    if a.ndim == 2 and b.ndim == 2 and a.dtype.is_floating:
        return [em.op("Gemm", ins, transA=int(ta) or None, transB=int(tb) or None)]
    x = _swap_last(em, ins[0], a.ndim) if ta else ins[0]
    y = _swap_last(em, ins[1], b.ndim) if tb else ins[1]
    return [em.op("MatMul", [x, y])]


def gemm_bias(em: Emitter, node: Node, ins: list) -> list:
    """``add(matmul2d(a, b), bias)`` as one ``Gemm`` (the leaves are a, b, bias)."""
    mm = node.inputs[0].node if node.inputs[0].node.op == "matmul" else node.inputs[1].node
    return [em.op("Gemm", ins, transA=int(mm.attrs["transpose_a"]) or None,
                  transB=int(mm.attrs["transpose_b"]) or None)]


# -- reductions ------------------------------------------------------------------------------

_REDUCE = {"reduce_sum": "ReduceSum", "reduce_mean": "ReduceMean", "reduce_max": "ReduceMax",
           "reduce_min": "ReduceMin", "reduce_prod": "ReduceProd"}


@exporter(*_REDUCE)
def _reduce(em: Emitter, node: Node, ins: list) -> list:
    axes = node.attrs["axes"]
    if axes is not None and len(axes) == 0:
        return [em.op("Identity", ins)]
    return [em.reduce(_REDUCE[node.op], ins[0], axes, node.attrs["keepdims"])]


@exporter("argmax", "argmin")
def _arg(em: Emitter, node: Node, ins: list) -> list:
    out = em.op("ArgMax" if node.op == "argmax" else "ArgMin", ins, axis=node.attrs["axis"],
                keepdims=0)
    want = node.attrs["output_type"]
    return [out if want.np == np.int64 else em.op("Cast", [out], to=onnx_dtype(want))]


@exporter("prod_others")
def _prod_others(em: Emitter, node: Node, ins: list) -> list:
    # Exact with zeros: P = product of the non-zero elements, z = count of zeros per group;
    # an element's "others" product is P/x if z == 0, P if it is the only zero, else 0.
    x = ins[0]
    dt = node.inputs[0].dtype.np
    axes = node.attrs["axes"]
    zero, one = em.const(np.zeros((), dt)), em.const(np.ones((), dt))
    is_zero = em.op("Equal", [x, zero])
    nonzero = em.op("Where", [is_zero, one, x])
    prod = em.reduce("ReduceProd", nonzero, axes, True)
    zeros = em.reduce("ReduceSum", em.op("Cast", [is_zero], to=onnx_dtype(dt)), axes, True)
    none = em.op("Equal", [zeros, zero])
    single = em.op("And", [em.op("Equal", [zeros, one]), is_zero])
    other = em.op("Where", [single, prod, em.op("Mul", [prod, zero])])
    return [em.op("Where", [none, em.op("Div", [prod, nonzero]), other])]


# -- state, creation ---------------------------------------------------------------------------

@exporter("constant")
def _constant(em: Emitter, node: Node, ins: list) -> list:
    return [em.const(node.attrs["value"].array)]


@exporter("assign")
def _assign(em: Emitter, node: Node, ins: list) -> list:
    return [ins[1]]  # the new value; the driver makes it a `<variable>/new` output


@exporter("group")
def _group(em: Emitter, node: Node, ins: list) -> list:
    return []


def _fill_value(em: Emitter, shape: str, value: np.ndarray) -> str:
    from onnx import numpy_helper

    return em.op("ConstantOfShape", [shape],
                 value=numpy_helper.from_array(np.asarray(value).reshape(1)))


@exporter("fill")
def _fill(em: Emitter, node: Node, ins: list) -> list:
    return [_fill_value(em, em.ints(node.attrs["shape"]), node.attrs["value"].array)]


@exporter("fill_like")
def _fill_like(em: Emitter, node: Node, ins: list) -> list:
    return [_fill_value(em, em.shape(ins[0]), node.attrs["value"].array)]


@exporter("range")
def _range(em: Emitter, node: Node, ins: list) -> list:
    return [em.op("Range", ins)]


@exporter("size")
def _size(em: Emitter, node: Node, ins: list) -> list:
    axes = node.attrs["axes"]
    if axes is None:
        return [em.op("Size", ins)]
    dims = em.op("Gather", [em.shape(ins[0]), em.ints(axes)], axis=0)
    return [em.reduce("ReduceProd", dims, None, False)]


# -- nn ------------------------------------------------------------------------------------------

@exporter("sparse_softmax_cross_entropy_with_logits")
def _sparse_xent(em: Emitter, node: Node, ins: list) -> list:
    labels, logits = ins
    depth = node.inputs[1].shape[-1]
    flat_logits = em.op("Reshape", [logits, em.ints([-1, depth])])
    flat_labels = em.op("Reshape", [labels, em.ints([-1])])
    if node.inputs[0].dtype.np != np.int64:
        flat_labels = em.op("Cast", [flat_labels], to=onnx_dtype(np.int64))
    loss = em.op("SoftmaxCrossEntropyLoss", [flat_logits, flat_labels], reduction="none")
    return [em.op("Reshape", [loss, em.shape(labels)])]


@exporter("sparse_softmax_cross_entropy_grad")
def _sparse_xent_grad(em: Emitter, node: Node, ins: list) -> list:
    labels, logits, g = ins
    spec = node.inputs[1]
    depth = spec.shape[-1]
    positions = em.const(np.arange(depth, dtype=node.inputs[0].dtype.np))
    hot = em.op("Cast", [em.op("Equal", [em.unsqueeze(labels, [-1]), positions])],
                to=onnx_dtype(spec.dtype.np))
    probs = em.op("Softmax", [logits], axis=-1)
    return [em.op("Mul", [em.unsqueeze(g, [-1]), em.op("Sub", [probs, hot])])]


def softmax(em: Emitter, node: Node, ins: list, *, axis: int) -> list:
    """The matched softmax pattern (leaf: the logits) as ``Softmax``."""
    return [em.op("Softmax", ins, axis=axis)]


def log_softmax(em: Emitter, node: Node, ins: list, *, axis: int) -> list:
    """The matched log_softmax pattern (leaf: the logits) as ``LogSoftmax``."""
    return [em.op("LogSoftmax", ins, axis=axis)]


def layer_norm(em: Emitter, node: Node, ins: list, *, axis: int, eps: float,
               has_beta: bool) -> list:
    """The matched layer-norm pattern (leaves x, gamma[, beta]) as ``LayerNormalization``."""
    return [em.op("LayerNormalization", ins, axis=axis, epsilon=eps)]


def batch_norm(em: Emitter, node: Node, ins: list, *, eps: float, channels: int,
               present: tuple) -> list:
    """The matched inference batch norm (leaves x and the present ones of gamma, beta,
    mean, var, each per channel) as ``BatchNormalization``."""
    dt = node.outputs[0].dtype.np
    defaults = [np.ones(channels, dt), np.zeros(channels, dt), np.zeros(channels, dt),
                np.ones(channels, dt)]
    it = iter(ins[1:])
    params = [em.op("Reshape", [next(it), em.ints([-1])]) if p else em.const(d)
              for p, d in zip(present, defaults)]
    return [em.op("BatchNormalization", [ins[0], *params], epsilon=eps)]
