"""Python operators on :class:`~graphc.graph.Tensor`: ``+ - * / // % ** @``, unary ``-``,
``abs``, the order comparisons, ``& | ~`` on bool tensors, and NumPy-style indexing.

``==`` and ``!=`` stay identity comparisons, as in TF1, so tensors can be dict keys; use
``gc.equal`` / ``gc.not_equal`` for elementwise equality.
"""

from __future__ import annotations

from typing import Any, Callable

from graphc.graph import Tensor
from graphc.ops import elementwise as E
from graphc.ops.linalg import matmul


def _binary(fn: Callable[[Any, Any], Tensor]) -> tuple[Callable, Callable]:
    return (lambda a, b: fn(a, b)), (lambda a, b: fn(b, a))


def _getitem(tensor: Tensor, index: Any) -> Tensor:
    from graphc.ops.indexing import getitem

    return getitem(tensor, index)


_OPERATORS = {
    "add": E.add, "sub": E.subtract, "mul": E.multiply, "truediv": E.divide,
    "floordiv": E.floordiv, "mod": E.mod, "pow": E.pow, "matmul": matmul,
}
for _name, _fn in _OPERATORS.items():
    _forward, _reflected = _binary(_fn)
    setattr(Tensor, f"__{_name}__", _forward)
    setattr(Tensor, f"__r{_name}__", _reflected)

Tensor.__neg__ = lambda self: E.negative(self)
Tensor.__abs__ = lambda self: E.abs(self)
Tensor.__lt__ = lambda self, other: E.less(self, other)
Tensor.__le__ = lambda self, other: E.less_equal(self, other)
Tensor.__gt__ = lambda self, other: E.greater(self, other)
Tensor.__ge__ = lambda self, other: E.greater_equal(self, other)
Tensor.__and__ = Tensor.__rand__ = lambda self, other: E.logical_and(self, other)
Tensor.__or__ = Tensor.__ror__ = lambda self, other: E.logical_or(self, other)
Tensor.__invert__ = lambda self: E.logical_not(self)
Tensor.__getitem__ = _getitem
