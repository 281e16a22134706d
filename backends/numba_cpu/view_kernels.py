"""Layout ops as views on the cpu target: reshape, reshape_like, expand_dims, squeeze.

Their references copy (the reference target never aliases), which cost a full memory pass
per step: 0.29 ms for an LSTM gradient's (32, 32, 512) reshape. Here the result is NumPy's
view of the input whenever NumPy can give one (a copy otherwise), which is safe because of
how the plan uses buffers (passes/plan_memory.py):

* a kernel-owned buffer is overwritten in place only by a group that is its only reader,
  so never while a view of it (made by another reader) is alive;
* a view is never kernel-owned, so no group overwrites it;
* fetched values and values written to variables that are not fresh arrays are copied
  by the runtime.

The exception is a variable's array: an optimizer update may overwrite it in place
(``inplace_var``) once every reader has run, and a view would let a later consumer of
the reshaped weight see the new values. Views of variables are therefore copies.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .kernels import Alloc, lower

__all__: list[str] = []


def _view_or_copy(node: Any, view: Callable[..., np.ndarray]) -> Callable[[list, Alloc], np.ndarray]:
    source = node.inputs[0][0]
    if source.op == "variable":
        return lambda args, alloc: view(*args).copy()
    return lambda args, alloc: view(*args)


@lower("reshape")
def _reshape(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    shape = tuple(node.attrs["shape"])
    return _view_or_copy(node, lambda x: np.reshape(x, shape))


@lower("reshape_like")
def _reshape_like(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    return _view_or_copy(node, lambda x, like: np.reshape(x, like.shape))


@lower("expand_dims")
def _expand_dims(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    axis = node.attrs["axis"]
    return _view_or_copy(node, lambda x: np.expand_dims(x, axis))


@lower("squeeze")
def _squeeze(node: Any) -> Callable[[list, Alloc], np.ndarray]:
    axes = node.attrs["axes"]
    return _view_or_copy(node, lambda x: np.squeeze(x, axis=axes))
