"""Symbolic shapes for a compiled scan loop (:mod:`.loop_codegen`).

A compiled loop must know every buffer's shape before its first iteration, and its
generated Numba code trusts those shapes (no bounds checks). So the code generator tracks
each dimension of each value as a *symbol*: an int when the graph knows it, else a name
``d<k>`` computed at run time by a generated **Python** function from the inputs' shapes.
That function also checks every assumption the generated code makes (two unknown dims that
an elementwise op combines are equal, a split divides evenly, a carry keeps its shape...)
and returns None when one fails; the runtime then runs the body the slow way, whose
reference semantics raise the proper error (or handle a broadcast the loop does not).

Equalities the checks establish are remembered (union-find), so later ops see one symbol:
this is what proves, for instance, that ``sum_to_like(g, like)`` is a no-op when ``g`` and
``like`` have the same shape although neither is known when the graph is built.
"""

from __future__ import annotations

from typing import Union

__all__ = ["Dim", "Dims", "Unsupported"]

Dim = Union[int, str]


class Unsupported(Exception):
    """The body holds something the compiled loop cannot run (the Python loop runs it)."""


class Dims:
    """Dimension symbols, their defining expressions and the run-time checks."""

    def __init__(self) -> None:
        self.lines: list[str] = []      # Python lines of the shape function
        self.names: list[str] = []      # every run-time symbol, in definition order
        self._parent: dict[str, Dim] = {}

    def fresh(self, expr: str) -> Dim:
        """A new symbol holding the Python expression ``expr`` (over earlier symbols)."""
        name = f"d{len(self.names)}"
        self.names.append(name)
        self.lines.append(f"{name} = int({expr})")
        return name

    def find(self, d: Dim) -> Dim:
        """The representative of ``d``'s equality class (an int when one is known)."""
        while isinstance(d, str) and d in self._parent:
            d = self._parent[d]
        return d

    def require(self, condition: str) -> None:
        """A run-time check: the loop runs only when ``condition`` holds."""
        self.lines.append(f"if not ({condition}): return None")

    def same(self, a: Dim, b: Dim) -> Dim:
        """``a`` and ``b`` must be equal (checked at run time unless both are ints)."""
        a, b = self.find(a), self.find(b)
        if a == b:
            return a
        if isinstance(a, int) and isinstance(b, int):
            raise Unsupported(f"dims {a} and {b} differ")
        self.require(f"{a} == {b}")
        if isinstance(b, int):
            a, b = b, a
        self._parent[b] = a  # keep ints as representatives: they fold into the code
        return a

    def static(self, d: Dim, known: object) -> Dim:
        """``d`` (a run-time symbol) with the graph's static value ``known`` (int or None)."""
        return self.same(d, known) if isinstance(known, int) else d

    def expr(self, d: Dim) -> str:
        """Source text of ``d`` (for both the shape function and the njit code)."""
        return str(self.find(d))

    def product(self, dims: tuple) -> str:
        """Source text of the product of ``dims``."""
        return " * ".join(["1", *(self.expr(d) for d in dims)])
