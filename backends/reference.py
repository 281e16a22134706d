"""The ``reference`` target: a NumPy interpreter that runs each node's ``ref``.

It is the oracle every other target is tested against, so it favours plain and checked
over fast: each node's result is checked against the shape and dtype that inference
promised, and a mismatch (a graphc bug) is reported with the node.
"""

from __future__ import annotations

from typing import Any, MutableMapping, Sequence

import numpy as np

from graphc.errors import GraphcError, ShapeError
from graphc.op import Kind, get_op
from graphc.program import Program
from graphc.shapes import format_shape

__all__ = ["compile", "Interpreter"]


class Interpreter:
    """Runs a :class:`~graphc.program.Program` node by node with NumPy."""

    def __init__(self, program: Program) -> None:
        self.program = program
        fed = program.fed_keys()
        self._steps = [(node, get_op(node.op)) for node in program.nodes
                       if not (node.outputs and all((node.id, i) in fed
                                                    for i in range(len(node.outputs))))]

    def __call__(self, feeds: Sequence[np.ndarray], state: MutableMapping[str, np.ndarray],
                 step: int) -> list[np.ndarray]:
        values: dict[tuple[int, int], Any] = {}
        for t, array in zip(self.program.feeds, feeds):
            values[(t.node.id, t.index)] = array
        node = None
        try:  # (free when nothing is raised: the failing node is the loop's own variable)
            for node, opdef in self._steps:
                if node.op == "variable":
                    values[(node.id, 0)] = state[node.name]
                    continue
                args = [values[(t.node.id, t.index)] for t in node.inputs]
                attrs = dict(node.attrs, step=step) if opdef.kind == Kind.RANDOM else node.attrs
                result = opdef.ref(*args, **attrs)
                outputs = result if isinstance(result, tuple) else (result,)
                for i, (spec, out) in enumerate(zip(node.specs, outputs)):
                    values[(node.id, i)] = _checked(node, spec, out)
        except GraphcError as err:
            raise err.at(node.location if node is not None else None)
        states = {id(a) for a in state.values()}
        results = [values[(t.node.id, t.index)] for t in self.program.fetches]
        # Fetched arrays must not alias the variables the session keeps.
        results = [r.copy() if id(r) in states else r for r in results]
        for name, t in self.program.writes.items():
            state[name] = np.array(values[(t.node.id, t.index)], copy=True)
        return results


def _checked(node: Any, spec: Any, out: Any) -> np.ndarray:
    # A mismatch with inference is a graphc bug; the oracle must not hide it by converting.
    out = np.asarray(out)
    if out.dtype != spec.dtype.np:
        raise GraphcError(f"produced {out.dtype} at run time, but {spec.dtype} was inferred "
                          f"for {node.name}").with_context(node.op, (), node.location)
    shape = spec.shape
    if shape is not None and (len(shape) != out.ndim or any(
            d is not None and d != n for d, n in zip(shape, out.shape))):
        raise ShapeError(f"produced shape {out.shape} at run time, but {format_shape(shape)} "
                         f"was inferred for {node.name}").with_context(node.op, (), node.location)
    return out


def compile(program: Program) -> Interpreter:  # noqa: A001 - the backend protocol's name
    """Compile (here: prepare to interpret) ``program``."""
    return Interpreter(program)

