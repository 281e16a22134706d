"""``embedding_lookup``: rows of an embedding table, on ``gather``.

Its gradient is ``gather``'s: ``scatter_add_like`` into zeros of the table's shape, so ids
that repeat accumulate their gradients (``np.add.at`` semantics), as TF's dense gradient.
"""

from __future__ import annotations

from typing import Any, Optional

from graphc import dtypes
from graphc.graph import Tensor
from graphc.ops.indexing import gather
from graphc.ops.state import constant
from graphc.ops.elementwise import _as_tensor

__all__ = ["embedding_lookup"]


def embedding_lookup(params: Any, ids: Any, name: Optional[str] = None) -> Tensor:
    """The rows ``params[ids]``: ``params`` (V, ...) and integer ``ids`` of any shape give
    ``ids.shape + params.shape[1:]``. Ids must lie in ``[0, V)`` (checked at run time).
    ``params`` may be a list of one tensor (TF1's sharded form, unsharded)."""
    if isinstance(params, (list, tuple)):
        if len(params) != 1:
            raise ValueError("embedding_lookup: sharded params (a list of several tensors) are "
                             "not supported; concatenate them with gc.concat(params, 0)")
        params = params[0]
    params = _as_tensor(params)
    if not isinstance(ids, Tensor):
        ids = constant(ids, dtypes.int64, graph=params.graph)
    return gather(params, ids, axis=0, name=name)
