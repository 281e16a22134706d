"""The op case table: one entry per op behaviour, driving the generic tests in test_ops.py.

A :class:`Case` builds a small graph from placeholders (one per input array) and returns
the tensor(s) to check. The generic tests then check, for every case:

* shape inference agrees with what the reference produces (and with unknown dims too);
* the gradient of every float input agrees with central finite differences in float64;
* second-order gradients, for cases marked ``second_order``;
* every other built target agrees with ``reference``.

Coverage is automatic: the ops a case's graph contains count as covered; the coverage test
fails when a registered op appears in no case and is not in ``NOT_IN_TABLE``.

Input arrays are float64 (cast to ``dtype`` for forward checks); pick domains where the
function is smooth (no ties for max/min, positive inputs for log), since finite differences
straddle any kink.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

import graphc as gc
from graphc.op import apply1

RNG = np.random.default_rng(1234)


def rand(*shape: int, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """Uniform float64 test input."""
    return RNG.uniform(low, high, size=shape)


def distinct(*shape: int) -> np.ndarray:
    """float64 values without ties (for max/min/sort-like ops)."""
    n = int(np.prod(shape))
    return (RNG.permutation(n) / n * 2 - 1 + RNG.uniform(0, 0.1 / n, n)).reshape(shape)


def ints(*shape: int, high: int = 5) -> np.ndarray:
    """int64 test input in [0, high)."""
    return RNG.integers(0, high, size=shape)


@dataclass
class Case:
    """One op behaviour to check."""

    name: str
    build: Callable[..., Any]          # (*placeholder tensors) -> Tensor or list of Tensors
    inputs: Sequence[np.ndarray]       # one array per placeholder (float64 / int64 / bool)
    grad: bool = True                  # check gradients of the float inputs
    grad_inputs: Optional[Sequence[int]] = None  # only these inputs (default: all float ones)
    second_order: bool = False         # also check the gradient of the gradient
    dtypes: Sequence[str] = ("float32", "float64")  # float inputs are cast to each
    unknown_dims: bool = True          # also build with every dim None
    value_dependent_shape: bool = False  # output dims depend on input values (range)
    atol: float = 1e-5
    rtol: float = 1e-3
    tags: dict = field(default_factory=dict)


CASES: list[Case] = []


def case(name: str, build: Callable[..., Any], *inputs: np.ndarray, **options: Any) -> None:
    """Add a case to the table."""
    CASES.append(Case(name, build, inputs, **options))


# Ops checked elsewhere, with the reason (state ops have no value of their own; random ops
# are checked statistically in test_random_ops.py).
NOT_IN_TABLE = {
    "placeholder": "fed at run time (test_session.py)",
    "variable": "state (test_session.py, test_train.py)",
    "constant": "in every case through Python scalars",
    "assign": "state (test_session.py, test_train.py)",
    "group": "state (test_session.py)",
    "random_uniform": "statistical tests (test_random_ops.py)",
    "random_normal": "statistical tests (test_random_ops.py)",
}

# -- elementwise -------------------------------------------------------------------------

for _name in ("negative", "abs", "exp", "sin", "cos", "tanh", "sigmoid", "erf", "square",
              "identity"):
    case(_name, getattr(gc, _name), rand(3, 4), second_order=_name in ("tanh", "sigmoid", "exp"))
case("sigmoid/large", gc.sigmoid, np.array([-800.0, -30.0, 0.0, 30.0, 800.0]), grad=False)
for _name in ("log", "sqrt", "rsqrt", "log1p"):
    case(_name, getattr(gc, _name), rand(3, 4, low=0.5, high=2.0), second_order=_name == "log")
for _name in ("floor", "ceil", "round", "sign"):
    case(_name, getattr(gc, _name), rand(3, 4, low=-3, high=3) + 0.25, grad=False)
# Finite differences cannot see stop_gradient: its gradient is checked in test_autodiff.py.
case("stop_gradient", lambda x: gc.stop_gradient(x) * x, rand(3, 4), grad=False)

for _name in ("add", "subtract", "multiply", "maximum", "minimum"):
    case(_name, getattr(gc, _name), distinct(3, 4), distinct(3, 4))
    case(f"{_name}/broadcast", getattr(gc, _name), distinct(2, 3, 4), distinct(1, 4))
case("divide", gc.divide, rand(3, 4), rand(3, 4, low=0.5, high=2.0))
case("divide/broadcast", gc.divide, rand(2, 3), rand(3, low=0.5, high=2.0), second_order=True)
case("pow", gc.pow, rand(3, 4, low=0.5, high=2.0), rand(3, 4))
case("pow/scalar_exponent", lambda a: a ** 3.0, rand(3, 4))
case("mod", gc.mod, rand(3, 4, low=0.1, high=3.0), rand(3, 4, low=1.1, high=1.3) * [1, -1, 1, -1])
case("floordiv", gc.floordiv, rand(3, 4, low=-3, high=3), rand(3, 4, low=0.5, high=2.0),
     grad=False)
case("mul/scalar", lambda a: 2.0 * a - 1.0, rand(3, 4), second_order=True)
for _name in ("equal", "not_equal", "greater", "greater_equal", "less", "less_equal"):
    case(_name, getattr(gc, _name), ints(3, 4).astype(float), ints(3, 4).astype(float), grad=False)
case("logical", lambda a, b: gc.logical_or(gc.logical_and(a, b), gc.logical_not(a)),
     ints(3, 4, high=2).astype(bool), ints(1, 4, high=2).astype(bool))
case("where", gc.where, ints(3, 4, high=2).astype(bool), rand(3, 4), rand(1, 4))
case("clip_by_value", lambda x: gc.clip_by_value(x, -0.5, 0.5), distinct(3, 4) * 0.9)
case("cast", lambda x: gc.cast(x, gc.float64) * 2.0, rand(3, 4), dtypes=("float32",), grad=False)
case("cast/int", lambda x: gc.cast(x, gc.int32), rand(3, 4, low=-3, high=3), grad=False)
case("operators", lambda a, b: (-a + b * 2.0 - a / (b * b + 1.0)) ** 2.0 + abs(a) @ b.__rmatmul__(a),
     rand(3, 3), rand(3, 3))

# -- reductions --------------------------------------------------------------------------

for _name in ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod"):
    _fn = getattr(gc, _name)
    case(f"{_name}/all", _fn, distinct(3, 4))
    case(f"{_name}/axis", lambda x, f=_fn: f(x, axis=1), distinct(2, 3, 4))
    case(f"{_name}/axes_keepdims", lambda x, f=_fn: f(x, axis=(0, -1), keepdims=True),
         distinct(2, 3, 4), second_order=_name == "reduce_sum")
case("reduce_prod/zeros", lambda x: gc.reduce_prod(x, axis=1),
     np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 2.0], [1.5, 2.0, -1.0]]))
case("reduce_max/ties", lambda x: gc.reduce_max(x, axis=1),
     np.array([[1.0, 1.0, 0.0]]), grad=False)
case("reduce_mean/second_order", lambda x: gc.reduce_mean(gc.square(x), axis=0), rand(4, 3),
     second_order=True)
case("argmax", lambda x: gc.argmax(x, axis=1), distinct(3, 4), grad=False)
case("argmin", lambda x: gc.argmin(x, axis=0), distinct(3, 4), grad=False)
case("norm", lambda x: gc.norm(x, axis=1), rand(3, 4))
case("norm/ord1", lambda x: gc.norm(x, ord=1), rand(3, 4) + 2.0)

# -- matmul ------------------------------------------------------------------------------

case("matmul", gc.matmul, rand(3, 4), rand(4, 5), second_order=True)
case("matmul/batched_broadcast", gc.matmul, rand(2, 3, 4), rand(4, 5), second_order=True)
case("matmul/batched_transpose_b", lambda a, b: gc.matmul(a, b, transpose_b=True),
     rand(2, 2, 3, 4), rand(5, 4), second_order=True)
case("matmul/batched_both_3d", gc.matmul, rand(2, 3, 4), rand(2, 4, 5))
case("matmul/transpose_a", lambda a, b: gc.matmul(a, b, transpose_a=True), rand(4, 3), rand(4, 5))
case("matmul/transpose_b", lambda a, b: gc.matmul(a, b, transpose_b=True), rand(3, 4), rand(5, 4))
case("matmul/transpose_both", lambda a, b: gc.matmul(a, b, transpose_a=True, transpose_b=True),
     rand(2, 4, 3), rand(2, 5, 4))
case("matmul/vector", lambda a, v: a @ v, rand(3, 4), rand(4))
case("matmul/int", gc.matmul, ints(3, 4), ints(4, 2), grad=False)

# -- creation ----------------------------------------------------------------------------

case("fill_like", lambda x: gc.ones_like(x) * x + gc.zeros_like(x), rand(3, 4))
case("fill", lambda x: gc.fill((3, 4), 2.0, x.dtype) * x + gc.zeros((4,), x.dtype), rand(3, 4),
     unknown_dims=False)
case("range", lambda n: gc.range(0, n, 1), np.array(5), grad=False, unknown_dims=False,
     value_dependent_shape=True)

# -- nn and losses -------------------------------------------------------------------------

for _name in ("relu", "relu6", "elu", "selu", "softplus"):
    case(f"nn.{_name}", getattr(gc.nn, _name), distinct(3, 4) * 3.0 + 0.01,
         second_order=_name in ("softplus", "elu"))
case("nn.leaky_relu", lambda x: gc.nn.leaky_relu(x, alpha=0.1), distinct(3, 4) + 0.01)
case("nn.gelu", gc.nn.gelu, rand(3, 4) * 3.0, second_order=True)
case("nn.gelu/approximate", lambda x: gc.nn.gelu(x, approximate=True), rand(3, 4) * 3.0)
case("nn.softmax", gc.nn.softmax, rand(3, 5) * 3.0, second_order=True)
case("nn.softmax/axis0", lambda x: gc.nn.softmax(x, axis=0), rand(3, 5) * 3.0)
case("nn.softmax/large", gc.nn.softmax, np.array([[1000.0, 0.0, -1000.0]]), grad=False)
case("nn.log_softmax", gc.nn.log_softmax, rand(2, 3, 5) * 3.0)
case("nn.bias_add", gc.nn.bias_add, rand(2, 3, 4), rand(4))
case("nn.l2_loss", gc.nn.l2_loss, rand(3, 4))
case("nn.softmax_xent", lambda z, x: gc.nn.softmax_cross_entropy_with_logits(labels=z, logits=x),
     RNG.dirichlet(np.ones(5), size=3), rand(3, 5) * 3.0)
case("nn.sparse_softmax_xent",
     lambda y, x: gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x),
     ints(4, high=5), rand(4, 5) * 3.0, second_order=True, unknown_dims=False)
case("nn.sparse_softmax_xent_grad",
     lambda y, x, g: apply1("sparse_softmax_cross_entropy_grad", [y, x, g]),
     ints(4, high=5), rand(4, 5) * 3.0, rand(4), second_order=True, unknown_dims=False)
case("nn.sparse_softmax_xent/large",
     lambda y, x: gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x),
     np.array([0, 2]), np.array([[1000.0, 0.0, -1000.0], [5.0, 800.0, 0.0]]), grad=False,
     unknown_dims=False)
case("nn.sigmoid_xent", lambda z, x: gc.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x),
     ints(3, 4, high=2).astype(float), distinct(3, 4) * 5.0, grad_inputs=(1,))
case("losses.mse", gc.losses.mean_squared_error, rand(3, 4), rand(3, 4))
case("losses.mae", gc.losses.absolute_difference, distinct(3, 4), distinct(3, 4) + 0.01)
case("losses.huber", lambda a, b: gc.losses.huber_loss(a, b, delta=0.5), rand(3, 4) * 2.0,
     rand(3, 4) * 2.0 + 0.01)
case("losses.log_loss", gc.losses.log_loss, ints(3, 4, high=2).astype(float),
     rand(3, 4, low=0.1, high=0.9), grad_inputs=(1,))
case("losses.softmax_ce", lambda z, x: gc.losses.softmax_cross_entropy(z, x, label_smoothing=0.1),
     np.eye(5)[ints(3, high=5)], rand(3, 5))
case("losses.sparse_softmax_ce", gc.losses.sparse_softmax_cross_entropy, ints(4, high=5),
     rand(4, 5), unknown_dims=False)  # the class count must be static (see test_errors.py)
case("losses.sum_weighted", lambda a, b: gc.losses.mean_squared_error(
    a, b, weights=0.5, reduction="sum"), rand(3, 4), rand(3, 4))

# -- shape ops --

# `gc.reshape` is `gc.reshape` once exported; the module keeps the table importable before.

case("reshape/-1", lambda x: gc.tanh(gc.reshape(x, (-1, 6))), rand(2, 3, 4), second_order=True)
case("reshape/static", lambda x: gc.reshape(x, [3, 8]), rand(2, 3, 4))
case("reshape/scalar", lambda x: gc.reshape(x, []) * 2.0, rand(1, 1))
case("expand_dims", lambda x: gc.expand_dims(x, -1) * gc.expand_dims(x, 0), rand(3, 3))
case("squeeze/axes", lambda x: gc.squeeze(x, [-1, 1]), rand(3, 1, 4, 1))
# axis=None removes the dims that *are* 1: with unknown dims the result's rank is unknown.
case("squeeze/all", gc.squeeze, rand(1, 3, 1, 4), unknown_dims=False)
case("transpose/default", gc.transpose, rand(3, 4))
case("transpose/perm", lambda x: gc.tanh(gc.transpose(x, [1, 2, 0])), rand(2, 3, 4),
     second_order=True)
case("concat/axis0", lambda a, b, c: gc.concat([a, b, c], 0), rand(1, 3), rand(2, 3), rand(3, 3))
case("concat/negative_axis", lambda a, b, c: gc.concat([a, b, c], -1),
     rand(2, 1), rand(2, 3), rand(2, 2))
case("concat/second_order", lambda a, b: gc.tanh(gc.concat([a, b], -1)), rand(2, 3), rand(2, 2),
     second_order=True)
case("stack", lambda a, b: gc.stack([a, b], axis=1), rand(3, 4), rand(3, 4))
case("stack/negative_axis", lambda a, b, c: gc.stack([a, b, c], axis=-1),
     rand(2, 3), rand(2, 3), rand(2, 3))
case("unstack", lambda x: gc.unstack(x, num=3, axis=1), rand(2, 3, 4))
case("unstack/one_output", lambda x: gc.unstack(x, 2)[1] * 2.0, rand(2, 3))
case("split/equal", lambda x: gc.split(x, 3, axis=1), rand(2, 6))
case("split/one_output", lambda x: gc.split(x, 3, axis=1)[0] * 2.0, rand(2, 6))
case("split/sizes", lambda x: [gc.tanh(p) for p in gc.split(x, [1, -1, 2], axis=-1)], rand(2, 6),
     second_order=True)
case("split/sizes_some_outputs", lambda x: gc.split(x, [2, 1, 3], axis=0)[2] * 3.0, rand(6, 2))
case("slice", lambda x: gc.slice(x, [1, 0, 2], [-1, 2, 2]), rand(3, 3, 4))
case("getitem/int", lambda x: x[1, -1], rand(3, 4, 2))
case("getitem/negative_steps", lambda x: x[::-1, 3:0:-2], rand(3, 5))
case("getitem/newaxis_ellipsis", lambda x: x[None, ..., ::-2, None], rand(2, 3, 5))
case("getitem/mixed", lambda x: x[-2:, 1, :-1], rand(3, 4, 5))
case("getitem/second_order", lambda x: gc.tanh(x[1:, ::-1]), rand(3, 4), second_order=True)
case("gather/axis0", lambda p, i: gc.gather(p, i), rand(4, 3), np.array([[0, 2], [2, 2]]))
case("gather/axis1", lambda p, i: gc.gather(p, i, axis=1), rand(2, 4, 3),
     np.array([[1, 1], [3, 0], [1, 3]]))
case("gather/int32_second_order", lambda p, i: gc.tanh(gc.gather(p, gc.cast(i, gc.int32))),
     rand(5, 2), np.array([4, 0, 4, 4]), second_order=True)
case("one_hot", lambda i: gc.one_hot(i, 4), np.array([[0, 3], [-1, 5]]), grad=False)
case("one_hot/axis_values", lambda i: gc.one_hot(i, 3, on_value=5.0, off_value=-1.0, axis=0,
                                                 dtype=gc.float64), np.array([0, 2, 1, 1]),
     grad=False)
case("one_hot/mask", lambda x, i: x * gc.one_hot(i, 4, dtype=x.dtype), rand(3, 4),
     np.array([1, 0, 3]))
case("pad/constant", lambda x: gc.pad(x, [[1, 0], [2, 3]], constant_values=0.5), rand(2, 3))
case("pad/reflect", lambda x: gc.tanh(gc.pad(x, [[1, 2], [2, 1]], "REFLECT")), rand(3, 4),
     second_order=True)
case("pad/symmetric", lambda x: gc.pad(x, [[2, 3], [0, 1]], mode="SYMMETRIC"), rand(3, 4))
case("tile", lambda x: gc.tile(x, [2, 1, 3]), rand(2, 3, 2))
case("tile/second_order", lambda x: gc.tanh(gc.tile(x, [2, 3])), rand(2, 2), second_order=True)
case("broadcast_to", lambda x: gc.broadcast_to(x, (2, 3, 4)), rand(3, 1))
case("shape", gc.shape, rand(3, 4), grad=False)
case("shape/in_graph", lambda x: x * gc.cast(gc.shape(x, out_type=gc.int64)[0], x.dtype),
     rand(3, 4))

# -- convolution, pooling, normalization, embeddings (issue 3) ------------------------------
# Imported from their modules until gc.nn exports them. Tiny shapes: finite differences
# evaluate the graph twice per input element.

from graphc.ops import conv as _conv, normalization as _norm, pool as _pool  # noqa: E402
from graphc.ops.embedding import embedding_lookup as _embedding_lookup  # noqa: E402


def _positive(*shape: int) -> np.ndarray:
    return rand(*shape, low=0.5, high=1.5)


case("nn.conv2d/valid", _conv.conv2d, rand(2, 2, 5, 5), rand(3, 2, 3, 3), second_order=True)
case("nn.conv2d/strides_int_pad", lambda x, w: _conv.conv2d(x, w, strides=2, padding=1),
     rand(2, 2, 5, 6), rand(3, 2, 3, 3))
case("nn.conv2d/same_strided", lambda x, w: _conv.conv2d(x, w, strides=(2, 3), padding="SAME"),
     rand(1, 2, 5, 7), rand(2, 2, 3, 2))
case("nn.conv2d/dilated_explicit", lambda x, w: _conv.conv2d(
    x, w, dilations=(2, 1), padding=((1, 0), (2, 1))), rand(1, 2, 6, 5), rand(2, 2, 2, 3),
     second_order=True)
case("nn.conv2d/groups", lambda x, w: _conv.conv2d(x, w, groups=2, padding="SAME"),
     rand(1, 4, 4, 5), rand(4, 2, 3, 3), second_order=True)
case("nn.conv2d/depthwise_strided_dilated", lambda x, w: _conv.conv2d(
    x, w, strides=2, dilations=2, groups=3), rand(1, 3, 7, 6), rand(3, 1, 2, 2))
case("nn.conv2d_transpose/natural", lambda x, w: _conv.conv2d_transpose(x, w, strides=2,
                                                                         padding=1),
     rand(2, 3, 3, 3), rand(3, 2, 3, 3), second_order=True)
case("nn.conv2d_transpose/output_shape", lambda x, w: _conv.conv2d_transpose(
    x, w, output_shape=(None, 2, 6, 5), strides=2, padding="SAME"), rand(1, 3, 3, 3),
     rand(3, 2, 3, 3))
case("nn.conv2d_transpose/valid_groups_dilated", lambda x, w: _conv.conv2d_transpose(
    x, w, strides=(1, 2), dilations=(2, 1), groups=2), rand(1, 4, 3, 2), rand(4, 1, 2, 3))
case("nn.conv2d/grad_of_grad", lambda x, w, v: gc.gradients(
    gc.reduce_sum(_conv.conv2d(x, w, strides=2, padding="SAME") * v), [x, w]),
     rand(1, 2, 5, 4), rand(2, 2, 3, 3), rand(1, 2, 3, 2))

case("nn.max_pool2d/odd", lambda x: _pool.max_pool2d(x, 2), distinct(2, 2, 5, 5))
case("nn.max_pool2d/same_strided", lambda x: _pool.max_pool2d(x, 3, strides=2, padding="SAME"),
     distinct(1, 2, 5, 6))
case("nn.max_pool2d/explicit_pad", lambda x: _pool.max_pool2d(
    x, (2, 3), strides=(1, 2), padding=((1, 0), (0, 2))), distinct(1, 2, 4, 5))
case("nn.max_pool2d/grad_of_grad", lambda x, v: gc.gradients(
    gc.reduce_sum(_pool.max_pool2d(x, 3, strides=2, padding="SAME") * v), x)[0],
     distinct(1, 2, 5, 5), rand(1, 2, 3, 3), grad_inputs=(1,), second_order=True)
case("nn.max_pool2d/ties", lambda x: _pool.max_pool2d(x, 2),
     np.ones((1, 1, 2, 4)), grad=False)
case("nn.avg_pool2d/odd", lambda x: _pool.avg_pool2d(x, (2, 3)), rand(2, 2, 5, 7))
case("nn.avg_pool2d/same_strided", lambda x: _pool.avg_pool2d(x, 3, strides=2, padding="SAME"),
     rand(1, 2, 5, 6), second_order=True)
case("nn.avg_pool2d/explicit_pad", lambda x: _pool.avg_pool2d(x, 3, strides=1, padding=1),
     rand(1, 1, 4, 3))
case("nn.avg_pool2d/partial_windows", lambda x: _pool.avg_pool2d(
    x, (2, 3), strides=(1, 2), padding=((1, 1), (0, 2))), rand(2, 1, 3, 4), second_order=True)
case("nn.global_avg_pool2d", _pool.global_avg_pool2d, rand(2, 3, 3, 5))

case("nn.batch_normalization", lambda x, m, v, b, s: _norm.batch_normalization(
    x, m, v, b, s, 1e-3), rand(2, 3, 4), rand(4), _positive(4), rand(4), _positive(4))
case("nn.batch_normalization/no_offset_scale", lambda x, m, v: _norm.batch_normalization(
    x, m, v, None, None, 0.01), rand(3, 4), rand(4), _positive(4))


def _bn(x, gamma, beta, training, axis=1, c=3):
    mean = gc.Variable(np.linspace(-0.5, 0.5, c).astype(x.dtype.np), trainable=False)
    var = gc.Variable(np.linspace(0.5, 1.5, c).astype(x.dtype.np), trainable=False)
    return _norm.batch_norm(x, gamma, beta, mean, var, training, momentum=0.9, axis=axis)


case("nn.batch_norm/training", lambda x, g, b: _bn(x, g, b, True), rand(3, 3, 2, 2) * 2.0,
     _positive(3), rand(3), second_order=True)
case("nn.batch_norm/inference", lambda x, g, b: _bn(x, g, b, False), rand(2, 3, 2, 2),
     _positive(3), rand(3))
case("nn.batch_norm/training_placeholder_on", lambda x, g, b, t: _bn(x, g, b, t),
     rand(2, 3, 3, 2), _positive(3), rand(3), np.array(True))
case("nn.batch_norm/training_placeholder_off", lambda x, g, b, t: _bn(x, g, b, t),
     rand(2, 3, 3, 2), _positive(3), rand(3), np.array(False))
case("nn.batch_norm/dense_last_axis", lambda x, g, b: _bn(x, g, b, True, axis=-1, c=4),
     rand(5, 4), _positive(4), rand(4))
case("nn.layer_norm", lambda x, g, b: _norm.layer_norm(x, g, b), rand(2, 3, 4), _positive(4),
     rand(4), second_order=True)
case("nn.layer_norm/axes", lambda x, g, b: _norm.layer_norm(x, g, b, axis=(1, 3), eps=1e-3),
     rand(2, 3, 2, 4), _positive(3, 4), rand(3, 4))

case("nn.embedding_lookup/repeated_ids", lambda p, i: gc.tanh(_embedding_lookup(p, i)),
     rand(5, 3), np.array([[0, 2, 2], [4, 2, 0]]), second_order=True)

# -- scan and recurrent layers (graphc/ops/control.py, graphc/ops/rnn.py) -----------------

from graphc.ops.control import scan as _scan  # noqa: E402
from graphc.ops import rnn as _rnn  # noqa: E402

# `w` is an outer tensor that the body captures (a weight): its gradient sums over steps.
case("scan/captured", lambda xs, a0, w: _scan(lambda a, x: gc.tanh(a * w + x), xs, a0),
     rand(4, 3), rand(3), rand(3), second_order=True)
case("scan/no_initializer", lambda xs: _scan(lambda a, x: a * 0.5 + gc.sin(x), xs), rand(4, 2))
case("scan/reverse_tuple", lambda xs, ys, w: _scan(
    lambda acc, e: (acc[0] + e[0] * acc[1], gc.tanh(acc[1] @ w) + e[1]),
    (xs, ys), initializer=(xs[0] * 0.0, ys[0]), reverse=True), rand(3, 2), rand(3, 2), rand(2, 2))
case("nn.lstm", lambda x, W, R, b: list(_flat(_rnn.lstm(x, W, R, b))),
     rand(3, 2, 3), rand(3, 8), rand(2, 8), rand(8))
case("nn.lstm/lengths_batch_major", lambda x, W, R, h0, c0: list(_flat(_rnn.lstm(
    x, W, R, initial_state=(h0, c0), sequence_lengths=np.array([3, 1]), time_major=False))),
     rand(2, 3, 3), rand(3, 8), rand(2, 8), rand(2, 2), rand(2, 2))
case("nn.gru", lambda x, W, R, b, rb: list(_flat(_rnn.gru(x, W, R, b, rb))),
     rand(3, 2, 3), rand(3, 6), rand(2, 6), rand(6), rand(6))
case("nn.gru/reset_before_lengths", lambda x, W, R, b, rb: list(_flat(_rnn.gru(
    x, W, R, b, rb, linear_before_reset=False, sequence_lengths=np.array([2, 3])))),
     rand(3, 2, 3), rand(3, 6), rand(2, 6), rand(6), rand(6))
case("nn.simple_rnn", lambda x, W, R, b: list(_flat(_rnn.simple_rnn(x, W, R, b))),
     rand(3, 2, 3), rand(3, 2), rand(2, 2), rand(2))


def _flat(value):
    """The tensors of a nested tuple (an RNN's (outputs, states))."""
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _flat(v)
    else:
        yield value

# -- N-d pooling with dilations (graphc/ops/pool_nd.py) ------------------------------------

from graphc.ops import pool_nd as _pool_nd  # noqa: E402

case("nn.max_pool/3d", lambda x: _pool_nd.max_pool(x, 2, strides=(1, 2, 2)),
     distinct(1, 2, 3, 4, 5))
case("nn.max_pool/1d_dilated_padded", lambda x: _pool_nd.max_pool(
    x, 3, strides=2, dilations=2, padding=((2, 1),)), distinct(2, 2, 8))
case("nn.max_pool/2d_dilated_same", lambda x: _pool_nd.max_pool(
    x, (2, 3), strides=(2, 1), dilations=(2, 1), padding="SAME"), distinct(1, 2, 5, 6))
case("nn.max_pool/grad_of_grad_3d", lambda x, v: gc.gradients(
    gc.reduce_sum(_pool_nd.max_pool(x, 2, strides=1, dilations=(1, 2, 1),
                                    padding=((1, 0), (0, 1), (1, 1))) * v), x)[0],
     distinct(1, 1, 3, 4, 3), rand(1, 1, 3, 3, 4), grad_inputs=(1,), second_order=True)
case("nn.max_pool/ties", lambda x: _pool_nd.max_pool(x, 2, dilations=2),
     np.ones((1, 1, 4, 4)), grad=False)
case("nn.max_pool_argmax/2d_dilated_padded", lambda x: _pool_nd.max_pool_argmax(
    x, 3, strides=(1, 2), dilations=(2, 1), padding=((2, 1), (1, 1))), distinct(2, 2, 5, 6),
     grad=False)
case("nn.max_pool_argmax/3d", lambda x: _pool_nd.max_pool_argmax(x, (2, 1, 2)),
     distinct(1, 2, 4, 3, 4), grad=False)
case("nn.avg_pool/3d_dilated_padded", lambda x: _pool_nd.avg_pool(
    x, (2, 2, 3), strides=(1, 2, 1), dilations=(2, 1, 1), padding=((1, 1), (0, 1), (1, 0))),
     rand(1, 2, 5, 4, 5), second_order=True)
case("nn.avg_pool/1d_same", lambda x: _pool_nd.avg_pool(x, 3, strides=2, padding="SAME"),
     rand(2, 3, 7))
case("nn.avg_pool/2d_dilated", lambda x: _pool_nd.avg_pool(x, 2, strides=1, dilations=2),
     rand(1, 2, 5, 4))

# LSTM peepholes (ONNX's P; graphc/ops/rnn.py), with sequence lengths: a composite on scan
case("nn.lstm/peepholes_lengths", lambda x, W, R, b, p: list(_flat(_rnn.lstm(
    x, W, R, b, peepholes=p, sequence_lengths=np.array([3, 2])))),
     rand(3, 2, 3), rand(3, 8), rand(2, 8), rand(8), rand(6), second_order=True)
case("nn.avg_pool/2d_dilated_same", lambda x: _pool_nd.avg_pool(
    x, (3, 2), strides=(1, 2), dilations=(2, 2), padding="SAME"), rand(1, 2, 6, 5))

# -- N-d convolution (graphc/ops/conv_nd.py) ------------------------------------------------

from graphc.ops import conv_nd as _conv_nd  # noqa: E402

case("nn.conv/3d_strided_padded", lambda x, w: _conv_nd.conv(x, w, strides=(1, 2, 1), padding=1),
     rand(1, 2, 4, 3, 4), rand(3, 2, 2, 2, 2), second_order=True)
case("nn.conv/1d_dilated_groups_same", lambda x, w: _conv_nd.conv(
    x, w, dilations=2, groups=2, padding="SAME"), rand(2, 4, 7), rand(4, 2, 3))
case("nn.conv_transpose/3d_natural", lambda x, w: _conv_nd.conv_transpose(
    x, w, strides=2, padding=((1, 0), (0, 1), (1, 1))), rand(1, 2, 2, 3, 2),
     rand(2, 3, 2, 2, 3), second_order=True)
case("nn.conv_transpose/1d_output_shape_groups", lambda x, w: _conv_nd.conv_transpose(
    x, w, output_shape=(5,), strides=2, padding="SAME", groups=2), rand(1, 4, 3),
     rand(4, 1, 3))
case("nn.conv/grad_of_grad_3d", lambda x, w, v: gc.gradients(
    gc.reduce_sum(_conv_nd.conv(x, w, strides=2, padding="SAME") * v), [x, w]),
     rand(1, 2, 3, 4, 3), rand(2, 2, 2, 3, 2), rand(1, 2, 2, 2, 2))
# avg_pool's gradient as an output (so the onnx target and the export tests run it)
case("nn.avg_pool/grad_3d_dilated", lambda x, v: gc.gradients(gc.reduce_sum(_pool_nd.avg_pool(
    x, (2, 3, 2), strides=(2, 1, 2), dilations=(1, 2, 1), padding=((1, 0), (1, 1), (0, 1)))
    * v), x)[0], rand(1, 2, 4, 5, 5), rand(1, 2, 2, 3, 3), grad_inputs=(1,), second_order=True)
case("nn.avg_pool/grad_same_dilated", lambda x, v: gc.gradients(gc.reduce_sum(
    _pool_nd.avg_pool(x, 2, strides=2, dilations=(2, 1), padding="SAME") * v), x)[0],
     rand(1, 2, 5, 4), rand(1, 2, 3, 2), grad_inputs=(1,))
