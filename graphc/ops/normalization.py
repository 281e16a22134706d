"""Normalization composites: ``batch_normalization`` (TF1's inference form), ``batch_norm``
(Keras/TF semantics, with moving statistics) and ``layer_norm``.

They are compositions of primitives (means, ``rsqrt``, broadcasting arithmetic), so they
need no backend code, fuse like any elementwise chain and differentiate to any order.

``batch_norm`` in training normalizes by the batch mean and the **biased** batch variance
(divided by the element count, as Keras and TF; PyTorch's running variance uses the unbiased
one) and builds the moving-statistics updates::

    moving_mean <- momentum * moving_mean + (1 - momentum) * batch_mean
    moving_var  <- momentum * moving_var  + (1 - momentum) * batch_var

(PyTorch's ``momentum`` is ``1 - momentum`` here.) The updates are ``gc.assign`` tensors
added to the graph collection ``"update_ops"`` (as TF1's ``tf.layers.batch_normalization``);
they run when fetched, and :meth:`graphc.train.Optimizer.minimize` groups the ones whose
batch-norm output the loss depends on with the train op (the pairs live in the collection
``UPDATE_OWNERS``). With a bool placeholder ``training``, both paths are in the graph,
chosen by ``gc.where``, and the updates write the old values when not training.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from graphc.errors import GraphError, ShapeError
from graphc.graph import Tensor
from graphc.ops import elementwise as E
from graphc.ops.args import fail
from graphc.ops.elementwise import _as_tensor, promote
from graphc.ops.reduce import reduce_mean
from graphc.ops.shape import expand_dims, reshape, squeeze
from graphc.ops.state import assign
from graphc.shapes import normalize_axes, normalize_axis

__all__ = ["batch_normalization", "batch_norm", "layer_norm", "UPDATE_OWNERS"]

# Graph collection of (update tensor, batch-norm output) pairs: which update belongs to
# which output, so that minimize() runs exactly the updates its loss calls for.
UPDATE_OWNERS = "update_ops_owners"


def batch_normalization(x: Any, mean: Any, variance: Any, offset: Any, scale: Any,
                        variance_epsilon: float, name: Optional[str] = None) -> Tensor:
    """``(x - mean) / sqrt(variance + variance_epsilon) * scale + offset`` (TF1's form; all
    broadcast against ``x``; ``offset``/``scale`` may be None). Computed as ``x * inv +
    (offset - mean * inv)`` with ``inv = scale * rsqrt(variance + eps)``, as TF."""
    x, mean, variance = promote(x, mean, variance)
    inv = E.rsqrt(variance + float(variance_epsilon))
    if scale is not None:
        inv = inv * promote(scale, x)[0]
    shift = -mean * inv if offset is None else promote(offset, x)[0] - mean * inv
    return E.add(x * inv, shift, name)


def _channel_shape(p: Tensor, rank: int, axis: int) -> Tensor:
    """A per-channel (C,) tensor shaped to broadcast along ``axis`` of a rank-``rank`` x."""
    return p if axis == rank - 1 else reshape(p, [-1] + [1] * (rank - 1 - axis))


def _check_param(p: Any, name: str, x: Tensor, axis: int) -> Optional[Tensor]:
    if p is None:
        return None
    p = promote(p, x)[0]
    c = x.shape[axis]
    if p.ndim != 1 or (c is not None and p.shape[0] not in (None, c)):
        raise fail(ShapeError(f"{name} must have shape ({c},), the size of axis {axis}, got "
                              f"{list(p.shape) if p.shape is not None else '?'}"),
                   "batch_norm", x, p)
    return p


def batch_norm(x: Any, gamma: Any, beta: Any, moving_mean: Any, moving_var: Any,
               training: Union[bool, Tensor], momentum: float = 0.99, eps: float = 1e-3,
               axis: int = 1, name: Optional[str] = None) -> Tensor:
    """Batch normalization over every axis but ``axis`` (the channels: 1 for NCHW).

    ``gamma``/``beta`` (C,) or None; ``moving_mean``/``moving_var`` (C,) ``gc.Variable``s.
    ``training``: a Python bool, or a bool scalar placeholder (both paths are built). In
    training: batch statistics (biased variance) and update ops in ``"update_ops"`` (see the
    module doc); in inference: the moving statistics.
    """
    x = _as_tensor(x)
    if x.ndim is None:
        raise fail(ShapeError("needs an input of known rank"), "batch_norm", x)
    try:
        axis = normalize_axis(axis, x.ndim)
    except ShapeError as err:
        raise fail(err, "batch_norm", x) from None
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"batch_norm: momentum must be in [0, 1], got {momentum}")
    from graphc.variables import Variable

    for v, what in ((moving_mean, "moving_mean"), (moving_var, "moving_var")):
        if not isinstance(v, Variable):
            raise GraphError(f"batch_norm: {what} must be a gc.Variable (it is updated in "
                             f"training), got {getattr(v, 'name', v)!r}")
        _check_param(v, what, x, axis)
    gamma, beta = _check_param(gamma, "gamma", x, axis), _check_param(beta, "beta", x, axis)
    if isinstance(training, Tensor):
        if not training.dtype.is_bool or training.shape not in ((), None):
            raise GraphError(f"batch_norm: training must be a Python bool or a bool scalar "
                             f"tensor, got {training.describe()}")
    elif not isinstance(training, bool):
        raise TypeError(f"batch_norm: training must be a Python bool or a bool scalar tensor, "
                        f"got {training!r}")
    rank = x.ndim
    shaped = {k: None if p is None else _channel_shape(p, rank, axis)
              for k, p in (("gamma", gamma), ("beta", beta))}

    def normalize(mean: Tensor, var: Tensor, out_name: Optional[str]) -> Tensor:
        return batch_normalization(x, mean, var, shaped["beta"], shaped["gamma"], eps, out_name)

    if training is not True:
        inference = normalize(_channel_shape(moving_mean, rank, axis),
                              _channel_shape(moving_var, rank, axis),
                              name if training is False else None)
        if training is False:
            return inference
    axes = tuple(a for a in range(rank) if a != axis)
    mean = reduce_mean(x, axes, keepdims=True)
    var = reduce_mean(E.square(x - mean), axes, keepdims=True)  # biased, as Keras/TF
    train_out = normalize(mean, var, name if training is True else None)
    stats = [(moving_mean, squeeze(mean, axes)), (moving_var, squeeze(var, axes))]
    updates = []
    for moving, batch in stats:
        new = moving * momentum + batch * (1.0 - momentum)
        if isinstance(training, Tensor):
            new = E.where(training, new, moving)
        updates.append(assign(moving, new))
    out = train_out if training is True else E.where(training, train_out, inference, name)
    graph = x.graph
    for u in updates:
        graph.add_to_collection("update_ops", u)
        graph.add_to_collection(UPDATE_OWNERS, (u, out))
    return out


def layer_norm(x: Any, gamma: Any, beta: Any, axis: Union[int, Sequence[int]] = -1,
               eps: float = 1e-5, name: Optional[str] = None) -> Tensor:
    """Normalize ``x`` over ``axis`` (an int or several axes; biased variance), then scale
    by ``gamma`` and shift by ``beta`` (shaped as ``x`` along ``axis``, or None). With the
    trailing axes this is PyTorch's ``LayerNorm(normalized_shape)``; ``eps`` as PyTorch."""
    x = _as_tensor(x)
    if x.ndim is None:
        raise fail(ShapeError("needs an input of known rank"), "layer_norm", x)
    try:
        axes = normalize_axes(axis, x.ndim)
    except ShapeError as err:
        raise fail(err, "layer_norm", x) from None
    mean = reduce_mean(x, axes, keepdims=True)
    var = reduce_mean(E.square(x - mean), axes, keepdims=True)

    def shaped(p: Any, what: str) -> Optional[Tensor]:
        if p is None:
            return None
        p = promote(p, x)[0]
        want = tuple(x.shape[a] for a in axes)
        if p.ndim != len(axes) or any(a is not None and b is not None and a != b
                                      for a, b in zip(p.shape, want)):
            raise fail(ShapeError(f"{what} must have shape {list(want)} (x along axis "
                                  f"{list(axes)}), got {list(p.shape or ())}"), "layer_norm", x, p)
        # Insert unit dims for the axes between the normalized ones, so it broadcasts.
        for i in range(axes[0], x.ndim):
            if i not in axes:
                p = expand_dims(p, i - axes[0])
        return p
    return batch_normalization(x, mean, var, shaped(beta, "beta"), shaped(gamma, "gamma"), eps,
                               name)
