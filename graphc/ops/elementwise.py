"""Elementwise ops: arithmetic, math functions, comparisons, logic, ``where`` and ``cast``.

Each op is one :func:`graphc.op.defop` call carrying its NumPy reference, its scalar
formula (for the generated kernels) and its gradient. Inputs of binary ops are promoted to
a common dtype by explicit ``cast`` nodes when the graph is built (the rules are in
:mod:`graphc.dtypes`), so every backend sees inputs of one dtype.

Piecewise-constant ops (floor, ceil, round, sign, floordiv, comparisons) have no gradient
(None), as in TF1.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

from graphc import dtypes
from graphc.errors import DTypeError
from graphc.graph import Tensor, TensorSpec
from graphc.op import Kind, apply1, defop
from graphc.ops.state import constant
from graphc.shapes import broadcast_shapes

# Which input dtypes an op accepts.
FLOAT, NUMERIC, BOOL, ANY = "float", "numeric", "bool", "any"
_ACCEPTS = {
    FLOAT: (lambda d: d.is_floating, "a float"),
    NUMERIC: (lambda d: not d.is_bool, "a numeric (non-bool)"),
    BOOL: (lambda d: d.is_bool, "a bool"),
    ANY: (lambda d: True, "any"),
}


def _infer(accepts: str, out_dtype: Optional[dtypes.DType] = None):
    ok, what = _ACCEPTS[accepts]

    def infer(*specs: TensorSpec, **_attrs: Any) -> TensorSpec:
        first = specs[0].dtype
        for s in specs:
            if s.dtype != first:
                raise DTypeError("inputs have different dtypes: "
                                 + ", ".join(str(x.dtype) for x in specs))
            if not ok(s.dtype):
                raise DTypeError(f"expects {what} tensor, got {s.dtype}; use gc.cast")
        return TensorSpec(broadcast_shapes(*(s.shape for s in specs)), out_dtype or first)
    return infer


def _ref(fn: Callable[..., Any]) -> Callable[..., np.ndarray]:
    # NumPy returns scalars for 0-d inputs and may widen float16; keep the input dtype.
    def ref(*arrays: np.ndarray, **attrs: Any) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(fn(*arrays, **attrs)).astype(arrays[0].dtype, copy=False)
    return ref


def _ref_bool(fn: Callable[..., Any]) -> Callable[..., np.ndarray]:
    return lambda *arrays, **attrs: np.asarray(fn(*arrays, **attrs), dtype=np.bool_)


def _unary(op_name: str, ref: Callable, formula: str, vjp: Optional[Callable],
           accepts: str = FLOAT, doc: str = "") -> Callable[..., Tensor]:
    defop(op_name, kind=Kind.ELEMENTWISE, infer=_infer(accepts), ref=_ref(ref), formula=formula,
          vjp=vjp, doc=doc)

    def build(x: Any, name: Optional[str] = None) -> Tensor:
        return apply1(op_name, [_as_tensor(x)], name=name)
    build.__name__ = op_name
    build.__doc__ = doc
    return build


def _binary(op_name: str, ref: Callable, formula: str, vjp: Optional[Callable], accepts: str,
            doc: str, out_dtype: Optional[dtypes.DType] = None) -> Callable[..., Tensor]:
    defop(op_name, kind=Kind.BROADCAST, infer=_infer(accepts, out_dtype),
          ref=_ref_bool(ref) if out_dtype is dtypes.bool else _ref(ref),
          formula=formula, vjp=vjp, doc=doc)

    def build(a: Any, b: Any, name: Optional[str] = None) -> Tensor:
        a, b = promote(a, b)
        return apply1(op_name, [a, b], name=name)
    build.__name__ = op_name
    build.__doc__ = doc
    return build


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else constant(x)


def promote(*values: Any) -> list[Tensor]:
    """Tensors of one dtype from tensors and Python scalars (weak), casting as needed."""
    tensors = [v for v in values if isinstance(v, Tensor)]
    if not tensors:  # only Python values: make constants, then promote those
        return promote(*(constant(v) for v in values))
    graph = tensors[0].graph
    target = dtypes.result_type(*(t.dtype for t in tensors))
    for v in values:  # a Python float lifts an integer computation to the default float
        if not isinstance(v, Tensor) and np.ndim(v) == 0:
            d = dtypes.weak_scalar_dtype(v, target)
            target = d if d.is_floating and not target.is_floating else target
    out = []
    for v in values:
        if isinstance(v, Tensor):
            out.append(v if v.dtype == target else cast(v, target))
        else:  # Python values and NumPy arrays adopt the tensors' dtype
            out.append(constant(v, target, graph=graph))
    return out


def _sum_to(g: Tensor, x: Tensor) -> Tensor:
    """``g`` summed over the axes along which ``x`` was broadcast."""
    from graphc.ops.reduce import sum_to_like

    return sum_to_like(g, x)


def _grads_broadcast(node: Any, *grads: Optional[Tensor]) -> list[Optional[Tensor]]:
    return [None if g is None else _sum_to(g, x) for g, x in zip(grads, node.inputs)]


# -- unary math --------------------------------------------------------------------------

negative = _unary("negative", np.negative, "-{0}", lambda n, g: [-g], NUMERIC, "-x")
abs = _unary("abs", np.abs, "abs({0})", lambda n, g: [g * sign(n.inputs[0])], NUMERIC, "|x|")  # noqa: A001
sign = _unary("sign", np.sign, "(1 if {0} > 0 else (-1 if {0} < 0 else 0))", None, NUMERIC,
              "-1, 0 or 1 by the sign of x")
exp = _unary("exp", np.exp, "math.exp({0})", lambda n, g: [g * n.outputs[0]], doc="e**x")
log = _unary("log", np.log, "math.log({0})", lambda n, g: [g / n.inputs[0]], doc="natural log")
log1p = _unary("log1p", np.log1p, "math.log1p({0})", lambda n, g: [g / (n.inputs[0] + 1.0)],
               doc="log(1 + x), accurate for small x")
sqrt = _unary("sqrt", np.sqrt, "math.sqrt({0})", lambda n, g: [g * 0.5 / n.outputs[0]],
              doc="square root")
rsqrt = _unary("rsqrt", lambda x: 1.0 / np.sqrt(x), "1.0 / math.sqrt({0})",
               lambda n, g: [g * -0.5 * n.outputs[0] * n.outputs[0] * n.outputs[0]],
               doc="1 / sqrt(x)")
square = _unary("square", np.square, "{0} * {0}", lambda n, g: [g * 2.0 * n.inputs[0]],
                NUMERIC, "x * x")
sin = _unary("sin", np.sin, "math.sin({0})", lambda n, g: [g * cos(n.inputs[0])], doc="sine")
cos = _unary("cos", np.cos, "math.cos({0})", lambda n, g: [-g * sin(n.inputs[0])], doc="cosine")
tanh = _unary("tanh", np.tanh, "math.tanh({0})",
              lambda n, g: [g * (1.0 - square(n.outputs[0]))], doc="hyperbolic tangent")


def _sigmoid_ref(x: np.ndarray) -> np.ndarray:
    # Stable both ways: exp only ever sees non-positive arguments.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


sigmoid = _unary("sigmoid", _sigmoid_ref,
                 "(1.0 / (1.0 + math.exp(-{0})) if {0} >= 0 else "
                 "math.exp({0}) / (1.0 + math.exp({0})))",
                 lambda n, g: [g * n.outputs[0] * (1.0 - n.outputs[0])],
                 doc="1 / (1 + exp(-x)), computed without overflow")

_erf_vec = np.vectorize(math.erf, otypes=[np.float64])
erf = _unary("erf", _erf_vec, "math.erf({0})",
             lambda n, g: [g * (2.0 / math.sqrt(math.pi)) * exp(-square(n.inputs[0]))],
             doc="the error function")
floor = _unary("floor", np.floor, "math.floor({0})", None, doc="round down")
ceil = _unary("ceil", np.ceil, "math.ceil({0})", None, doc="round up")
round = _unary("round", np.round, "np.rint({0})", None,  # noqa: A001
               doc="round half to even (as NumPy and TF)")
logical_not = _unary("logical_not", np.logical_not, "not {0}", None, BOOL, "not x")
identity = _unary("identity", lambda x: x.copy(), "{0}", lambda n, g: [g], ANY,
                  "the same value (a new tensor)")
stop_gradient = _unary("stop_gradient", lambda x: x.copy(), "{0}", lambda n, g: [None], ANY,
                       "the same value, but gradients do not flow through it")


# -- cast ------------------------------------------------------------------------------

def _infer_cast(x: TensorSpec, *, dtype: dtypes.DType) -> TensorSpec:
    return TensorSpec(x.shape, dtype)


def _vjp_cast(node: Any, g: Tensor) -> list[Optional[Tensor]]:
    x = node.inputs[0]
    return [cast(g, x.dtype) if x.dtype.is_floating else None]


defop("cast", kind=Kind.ELEMENTWISE, infer=_infer_cast, formula="{0}", vjp=_vjp_cast,
      ref=lambda x, *, dtype: x.astype(dtype.np), doc="convert to `dtype` (the kernel casts)")


def cast(x: Any, dtype: Any, name: Optional[str] = None) -> Tensor:
    """``x`` converted to ``dtype`` (floats to ints truncate toward zero, as NumPy)."""
    x = _as_tensor(x)
    dtype = dtypes.as_dtype(dtype)
    if x.dtype == dtype:
        return x
    return apply1("cast", [x], {"dtype": dtype}, name=name)


# -- binary arithmetic -----------------------------------------------------------------

def _vjp_mul(n: Any, g: Tensor) -> list:
    a, b = n.inputs
    return _grads_broadcast(n, g * b, g * a)


def _vjp_div(n: Any, g: Tensor) -> list:
    a, b = n.inputs
    return _grads_broadcast(n, g / b, -g * n.outputs[0] / b)


def _vjp_pow(n: Any, g: Tensor) -> list:
    a, b = n.inputs
    ga = g * b * pow(a, b - 1.0)
    # d/db a**b = log(a) a**b, taken as 0 where a <= 0 (as TF) rather than NaN.
    safe_log = where(greater(a, 0.0), log(where(greater(a, 0.0), a, 1.0)), 0.0)
    return _grads_broadcast(n, ga, g * safe_log * n.outputs[0])


def _vjp_mod(n: Any, g: Tensor) -> list:
    a, b = n.inputs
    return _grads_broadcast(n, g, -g * floor(a / b))


def _vjp_max(n: Any, g: Tensor) -> list:
    a, b = n.inputs
    mask = greater_equal(a, b)
    return _grads_broadcast(n, where(mask, g, 0.0), where(mask, 0.0, g))


def _vjp_min(n: Any, g: Tensor) -> list:
    a, b = n.inputs
    mask = less_equal(a, b)
    return _grads_broadcast(n, where(mask, g, 0.0), where(mask, 0.0, g))


add = _binary("add", np.add, "{0} + {1}", lambda n, g: _grads_broadcast(n, g, g), NUMERIC,
              "a + b")
subtract = _binary("subtract", np.subtract, "{0} - {1}",
                   lambda n, g: _grads_broadcast(n, g, -g), NUMERIC, "a - b")
multiply = _binary("multiply", np.multiply, "{0} * {1}", _vjp_mul, NUMERIC, "a * b")
_divide = _binary("divide", np.divide, "{0} / {1}", _vjp_div, FLOAT, "a / b")
floordiv = _binary("floordiv", np.floor_divide, "{0} // {1}", None, NUMERIC,
                   "floor(a / b), as Python's //")
mod = _binary("mod", np.mod, "{0} % {1}", _vjp_mod, NUMERIC,
              "remainder with the sign of b, as Python's %")
_pow = _binary("pow", np.power, "{0} ** {1}", _vjp_pow, NUMERIC, "a ** b")
maximum = _binary("maximum", np.maximum, "({0} if {0} >= {1} or {0} != {0} else {1})",
                  _vjp_max, NUMERIC, "the larger of a and b (NaN if either is)")
minimum = _binary("minimum", np.minimum, "({0} if {0} <= {1} or {0} != {0} else {1})",
                  _vjp_min, NUMERIC, "the smaller of a and b (NaN if either is)")


def divide(a: Any, b: Any, name: Optional[str] = None) -> Tensor:
    """True division ``a / b``; integer inputs are first cast to the default float."""
    a, b = promote(a, b)
    if not a.dtype.is_floating:
        a, b = cast(a, dtypes.DEFAULT_FLOAT), cast(b, dtypes.DEFAULT_FLOAT)
    return _divide(a, b, name)


def pow(a: Any, b: Any, name: Optional[str] = None) -> Tensor:  # noqa: A001
    """``a ** b`` (TF1's ``pow``)."""
    return _pow(a, b, name)


# -- comparisons and logic ------------------------------------------------------------

def _compare(name: str, fn: Callable, op: str) -> Callable[..., Tensor]:
    return _binary(name, fn, f"{{0}} {op} {{1}}", None, ANY, f"a {op} b, elementwise",
                   out_dtype=dtypes.bool)


equal = _compare("equal", np.equal, "==")
not_equal = _compare("not_equal", np.not_equal, "!=")
greater = _compare("greater", np.greater, ">")
greater_equal = _compare("greater_equal", np.greater_equal, ">=")
less = _compare("less", np.less, "<")
less_equal = _compare("less_equal", np.less_equal, "<=")
logical_and = _binary("logical_and", np.logical_and, "({0} and {1})", None, BOOL, "a and b")
logical_or = _binary("logical_or", np.logical_or, "({0} or {1})", None, BOOL, "a or b")


# -- where ------------------------------------------------------------------------------

def _infer_where(cond: TensorSpec, a: TensorSpec, b: TensorSpec) -> TensorSpec:
    if not cond.dtype.is_bool:
        raise DTypeError(f"condition must be bool, got {cond.dtype}")
    if a.dtype != b.dtype:
        raise DTypeError(f"branches have different dtypes: {a.dtype}, {b.dtype}")
    return TensorSpec(broadcast_shapes(cond.shape, a.shape, b.shape), a.dtype)


def _vjp_where(n: Any, g: Tensor) -> list:
    c = n.inputs[0]
    return _grads_broadcast(n, None, where(c, g, 0.0), where(c, 0.0, g))


defop("where", kind=Kind.BROADCAST, infer=_infer_where, vjp=_vjp_where,
      ref=lambda c, a, b: np.where(c, a, b).astype(a.dtype, copy=False),
      formula="({1} if {0} else {2})", input_names=("condition", "x", "y"),
      doc="elementwise choice: x where condition, else y")


def where(condition: Any, x: Any, y: Any, name: Optional[str] = None) -> Tensor:
    """``x`` where ``condition`` holds, else ``y`` (all three broadcast, as ``np.where``)."""
    condition = _as_tensor(condition)
    x, y = promote(x, y)
    return apply1("where", [condition, x, y], name=name)


def clip_by_value(t: Any, clip_value_min: Any, clip_value_max: Any,
                  name: Optional[str] = None) -> Tensor:
    """``t`` limited to ``[clip_value_min, clip_value_max]``."""
    return minimum(maximum(t, clip_value_min), clip_value_max, name)
