"""``dropout``: inverted dropout, a composite over ``random_uniform``.

The mask is ``random_uniform(x) >= rate`` drawn from the counter-based generator (keyed by
seed, stream and step; see :mod:`graphc.ops.creation`), so with a ``seed`` the same
session step gives the same mask in any session, and on every target. Kept values are
scaled by ``1 / (1 - rate)`` so the expectation is unchanged; ``gc.where`` (not a multiply
by the mask) keeps dropped cells exactly 0 even where ``x`` is inf or NaN, and the gradient
is masked and scaled exactly as the forward.
"""

from __future__ import annotations

import numbers
from typing import Any, Optional, Union

from graphc.errors import GraphError
from graphc.graph import Tensor
from graphc.ops import elementwise as E
from graphc.ops.creation import random_uniform
from graphc.ops.elementwise import _as_tensor

__all__ = ["dropout"]


def dropout(x: Any, rate: float, training: Union[bool, Tensor] = True,
            seed: Optional[int] = None, name: Optional[str] = None) -> Tensor:
    """Zero each element of ``x`` with probability ``rate`` (a Python number in [0, 1)) and
    scale the others by ``1 / (1 - rate)``. ``training``: a Python bool (False: ``x``
    unchanged) or a bool scalar tensor (both paths are built, chosen at run time).
    ``seed``: makes the mask reproducible (same seed and session step, same mask)."""
    x = _as_tensor(x)
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout: rate must be a number in [0, 1), got {rate!r}")
    if not x.dtype.is_floating:
        raise TypeError(f"dropout: expects a float tensor, got {x.describe()}")
    if isinstance(training, Tensor):
        if not training.dtype.is_bool or training.shape not in ((), None):
            raise GraphError(f"dropout: training must be a Python bool or a bool scalar "
                             f"tensor, got {training.describe()}")
    elif not isinstance(training, bool):
        raise TypeError(f"dropout: training must be a Python bool or a bool scalar tensor, "
                        f"got {training!r}")
    if training is False or rate == 0.0:
        return x if name is None else E.identity(x, name)
    keep = E.greater_equal(random_uniform(x, dtype=x.dtype, seed=seed), float(rate))
    dropped = E.where(keep, x * (1.0 / (1.0 - float(rate))), 0.0,
                      name=name if training is True else None)
    return dropped if training is True else E.where(training, dropped, x, name=name)
