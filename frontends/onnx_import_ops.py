"""ONNX importers: elementwise math, comparisons, matmul/Gemm, activations, reductions.

Semantics follow the ONNX operator spec per opset; where graphc's op differs the importer
composes (integer ``Div`` truncates toward zero; ``Pow`` takes an exponent of another
dtype; ``Clip`` bounds moved from attributes to inputs at 11; ``Softmax`` before 13 works
on the input flattened to 2-D at ``axis``; reduction axes became inputs at 13 (ReduceSum)
and 18 (the others)). The shape ops are in :mod:`.onnx_import_shape`, conv/pool/norm and the
losses in :mod:`.onnx_import_nn`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import graphc as gc
from graphc.frontends.onnx_import import importer
from graphc.frontends.onnx_import_ctx import Context, np_dtype

_UNARY = {"Exp": gc.exp, "Log": gc.log, "Sqrt": gc.sqrt, "Neg": gc.negative, "Abs": gc.abs,
          "Erf": gc.erf, "Relu": gc.nn.relu, "Sigmoid": gc.sigmoid, "Tanh": gc.tanh,
          "Floor": gc.floor, "Ceil": gc.ceil, "Sin": gc.sin, "Cos": gc.cos, "Sign": gc.sign,
          "Round": gc.round, "Softplus": gc.nn.softplus, "Not": gc.logical_not,
          "Identity": gc.identity}
_BINARY = {"Add": gc.add, "Sub": gc.subtract, "Mul": gc.multiply, "Equal": gc.equal,
           "Greater": gc.greater, "Less": gc.less, "GreaterOrEqual": gc.greater_equal,
           "LessOrEqual": gc.less_equal, "And": gc.logical_and, "Or": gc.logical_or}


def _unary(fn):
    return lambda ctx, node, ins, attrs: [fn(ins[0])]


def _binary(fn):
    return lambda ctx, node, ins, attrs: [fn(ins[0], ins[1])]


for _op, _fn in _UNARY.items():
    importer(_op)(_unary(_fn))
for _op, _fn in _BINARY.items():
    importer(_op)(_binary(_fn))


@importer("Xor")
def _xor(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    return [gc.not_equal(ins[0], ins[1])]


@importer("Reciprocal")
def _reciprocal(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    return [gc.divide(gc.ones_like(ins[0]), ins[0])]


@importer("Div")
def _div(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    a, b = ins
    if a.dtype.is_floating:
        return [gc.divide(a, b)]
    # Integer division truncates toward zero in ONNX (C), graphc's // floors.
    q = gc.floordiv(a, b)
    inexact = gc.not_equal(gc.mod(a, b), gc.zeros_like(a))
    signs_differ = gc.not_equal(gc.less(a, gc.zeros_like(a)), gc.less(b, gc.zeros_like(b)))
    return [gc.where(gc.logical_and(inexact, signs_differ), q + gc.ones_like(q), q)]


@importer("Mod")
def _mod(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    a, b = ins
    if attrs.get("fmod", 0):  # C fmod: the sign of the dividend
        r = gc.mod(gc.abs(a), gc.abs(b))
        return [gc.where(gc.less(a, gc.zeros_like(a)), -r, r)]
    return [gc.mod(a, b)]


@importer("Pow")
def _pow(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    a, b = ins
    return [gc.pow(a, gc.cast(b, a.dtype))]


@importer("Max", "Min", "Sum", "Mean")
def _variadic(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    fn = {"Max": gc.maximum, "Min": gc.minimum, "Sum": gc.add, "Mean": gc.add}[node.op_type]
    out = ins[0]
    for t in ins[1:]:
        out = fn(out, t)
    if len(ins) == 1:
        out = gc.identity(out)
    return [out / float(len(ins)) if node.op_type == "Mean" else out]


@importer("Where")
def _where(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    return [gc.where(*ins)]


@importer("Clip")
def _clip_v6(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    lo = attrs.get("min", -3.4028234663852886e38)
    hi = attrs.get("max", 3.4028234663852886e38)
    return [gc.minimum(gc.maximum(ins[0], lo), hi)]


@importer("Clip", since=11)
def _clip(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    x = ins[0]
    lo = ins[1] if len(ins) > 1 else None
    hi = ins[2] if len(ins) > 2 else None
    out = x if lo is None else gc.maximum(x, lo)
    out = out if hi is None else gc.minimum(out, hi)
    return [gc.identity(out) if out is x else out]


@importer("Cast")
def _cast(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    out = gc.cast(ins[0], np_dtype(attrs["to"], "Cast: "))
    return [gc.identity(out) if out is ins[0] else out]


@importer("CastLike", since=15)
def _cast_like(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    out = gc.cast(ins[0], ins[1].dtype)
    return [gc.identity(out) if out is ins[0] else out]


# -- activations ------------------------------------------------------------------------------

@importer("LeakyRelu")
def _leaky_relu(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    return [gc.nn.leaky_relu(ins[0], attrs.get("alpha", 0.01))]


@importer("Elu")
def _elu(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    return [gc.nn.elu(ins[0], attrs.get("alpha", 1.0))]


@importer("Selu")
def _selu(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    alpha = attrs.get("alpha", 1.67326319217681884765625)
    gamma = attrs.get("gamma", 1.05070102214813232421875)
    return [gc.nn.elu(ins[0], alpha) * gamma]


@importer("HardSigmoid", since=6)
def _hard_sigmoid(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    y = ins[0] * attrs.get("alpha", 0.2) + attrs.get("beta", 0.5)
    return [gc.minimum(gc.maximum(y, 0.0), 1.0)]


@importer("Gelu", since=20)
def _gelu(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    return [gc.nn.gelu(ins[0], approximate=attrs.get("approximate", "none") == "tanh")]


def _flattened(ctx: Context, x: Any, axis: int, fn: Any) -> Any:
    """Softmax before opset 13: over the input flattened to 2-D at ``axis``."""
    if x.ndim is None:
        raise ctx.fail("needs a known rank")
    axis %= max(x.ndim, 1)
    if axis == x.ndim - 1:
        return fn(x, -1)
    tail = x.shape[axis:]
    if None in tail:
        raise ctx.fail("before opset 13 needs the dims after `axis` to be static")
    flat = gc.reshape(x, (-1, int(np.prod(tail))))
    from graphc.ops.shape import reshape_like

    return reshape_like(fn(flat, -1), x)


@importer("Softmax", "LogSoftmax", "Hardmax")
def _softmax_v1(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    return [_flattened(ctx, ins[0], attrs.get("axis", 1), _SOFTMAX[node.op_type])]


@importer("Softmax", "LogSoftmax", "Hardmax", since=13)
def _softmax(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    return [_SOFTMAX[node.op_type](ins[0], attrs.get("axis", -1))]


def _hardmax(x: Any, axis: int) -> Any:
    depth = x.shape[axis]
    if depth is None:
        raise ValueError("Hardmax needs a static size along its axis")
    return gc.one_hot(gc.argmax(x, axis), depth, axis=axis, dtype=x.dtype)


_SOFTMAX = {"Softmax": lambda x, a: gc.nn.softmax(x, a),
            "LogSoftmax": lambda x, a: gc.nn.log_softmax(x, a), "Hardmax": _hardmax}


# -- matmul / Gemm ----------------------------------------------------------------------------

@importer("MatMul")
def _matmul(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    return [gc.matmul(ins[0], ins[1])]


@importer("Gemm")
def _gemm(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    a, b = ins[:2]
    y = gc.matmul(a, b, transpose_a=bool(attrs.get("transA", 0)),
                  transpose_b=bool(attrs.get("transB", 0)))
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    if alpha != 1.0:
        y = y * alpha
    c = ins[2] if len(ins) > 2 else None
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return [y]


# -- reductions --------------------------------------------------------------------------------

_REDUCE = {"ReduceSum": gc.reduce_sum, "ReduceMean": gc.reduce_mean, "ReduceMax": gc.reduce_max,
           "ReduceMin": gc.reduce_min, "ReduceProd": gc.reduce_prod,
           "ReduceL1": lambda x, axis, keepdims: gc.reduce_sum(gc.abs(x), axis, keepdims),
           "ReduceL2": lambda x, axis, keepdims: gc.sqrt(gc.reduce_sum(gc.square(x), axis,
                                                                       keepdims)),
           "ReduceSumSquare": lambda x, axis, keepdims: gc.reduce_sum(gc.square(x), axis,
                                                                      keepdims),
           "ReduceLogSumExp": lambda x, axis, keepdims: _logsumexp(x, axis, keepdims),
           "ReduceLogSum": lambda x, axis, keepdims: gc.log(gc.reduce_sum(x, axis, keepdims))}


def _logsumexp(x: Any, axis: Any, keepdims: bool) -> Any:
    m = gc.stop_gradient(gc.reduce_max(x, axis, keepdims=True))
    s = gc.log(gc.reduce_sum(gc.exp(x - m), axis, keepdims=True)) + m
    return s if keepdims else gc.squeeze(s, list(range(x.ndim)) if axis is None else axis)


def _reduce(ctx: Context, op: str, x: Any, axes: Any, attrs: dict) -> Any:
    keepdims = bool(attrs.get("keepdims", 1))
    if axes is not None and len(axes) == 0:
        axes = None
        if attrs.get("noop_with_empty_axes", 0):
            return gc.identity(x)
    axis = None if axes is None else tuple(int(a) for a in axes)
    if axis is None and x.ndim == 0:
        return gc.identity(x)
    if x.dtype.is_bool:
        if op not in ("ReduceMax", "ReduceMin"):
            raise ctx.fail("bool input is not supported")
        # max = any, min = all (so an empty reduction gives False / True, as ONNX)
        flip = op == "ReduceMin"
        count = _reduce(ctx, "ReduceSum", gc.cast(gc.logical_not(x) if flip else x, gc.int32),
                        axes, attrs)
        return gc.equal(count, 0) if flip else gc.greater(count, 0)
    if x.shape is not None and None not in x.shape and op in _EMPTY:
        reduced = range(x.ndim) if axis is None else [a % x.ndim for a in axis]
        if any(x.shape[a] == 0 for a in reduced):  # ONNX: the reduction's identity
            shape = [1 if i in reduced else d for i, d in enumerate(x.shape) if keepdims or
                     i not in reduced]
            return gc.fill(shape, _EMPTY[op](x.dtype.np), x.dtype)
    return _REDUCE[op](x, axis=axis, keepdims=keepdims)


def _extreme(dt: Any, sign: int) -> Any:
    return sign * np.inf if dt.kind == "f" else (np.iinfo(dt).max if sign > 0 else np.iinfo(dt).min)


_EMPTY = {"ReduceSum": lambda dt: 0, "ReduceProd": lambda dt: 1,
          "ReduceMax": lambda dt: _extreme(dt, -1), "ReduceMin": lambda dt: _extreme(dt, 1),
          "ReduceSumSquare": lambda dt: 0, "ReduceL1": lambda dt: 0, "ReduceL2": lambda dt: 0,
          "ReduceLogSumExp": lambda dt: -np.inf, "ReduceLogSum": lambda dt: -np.inf}


def _reduce_attr(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    return [_reduce(ctx, node.op_type, ins[0], attrs.get("axes"), attrs)]


def _reduce_input(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    axes = ins[1] if len(ins) > 1 else None
    axes = None if axes is None else ctx.need_const(axes, "axes").reshape(-1).tolist()
    if axes is None and attrs.get("noop_with_empty_axes", 0):
        return [gc.identity(ins[0])]
    return [_reduce(ctx, node.op_type, ins[0], axes, attrs)]


importer(*_REDUCE)(_reduce_attr)
importer("ReduceSum", since=13)(_reduce_input)
importer(*(op for op in _REDUCE if op != "ReduceSum"), since=18)(_reduce_input)


@importer("ArgMax", "ArgMin")
def _arg(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    x = ins[0]
    axis = attrs.get("axis", 0)
    fn = gc.argmax if node.op_type == "ArgMax" else gc.argmin
    if attrs.get("select_last_index", 0):
        if x.ndim is None or x.shape[axis] is None:
            raise ctx.fail("select_last_index needs a static size along the axis")
        spec = [slice(None)] * (axis % x.ndim) + [slice(None, None, -1)]
        out = (x.shape[axis] - 1) - fn(x[tuple(spec)], axis)
    else:
        out = fn(x, axis)
    return [gc.expand_dims(out, axis) if attrs.get("keepdims", 1) else out]

