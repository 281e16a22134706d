"""The scalar body of a fused elementwise group, rendered from the ops' formulas.

Both Numba backends turn a ``fused`` step (:mod:`graphc.lower`) into generated source: the
cpu target into loops (``backends/numba_cpu/codegen.py``), the cuda target into kernels
(``backends/numba_cuda/codegen.py``). What differs is the iteration (loops vs threads) and
how an input element is addressed; the per-element computation is the same, so it is
rendered here, once: one line per external input (``v{k} = <load>``), one line per member
node (``t{j} = <dtype>(<formula>)``), the last of which is the group's result.

Every intermediate is rounded to its node's dtype (``np.float32(...)``), as the reference
rounds each op's result, so fusion changes results only by float reassociation inside
``math`` functions, never by extra precision.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["scalar_body", "dtype_ctor"]


def dtype_ctor(dtype: Any) -> str:
    """The Python/Numba expression that rounds a scalar to ``dtype`` (``np.float32`` ...)."""
    return "bool" if dtype.is_bool else f"np.{dtype.np.name}"


def scalar_body(step: Any, loads: Sequence[str]) -> tuple[list[str], str]:
    """Lines computing a fused step's root element, and the name holding the result.

    ``step`` is a :class:`graphc.lower.Step` of kind ``fused``; ``loads[k]`` is the
    expression reading external input ``k``'s element (e.g. ``a0[i]``).
    """
    from graphc.op import get_op

    if len(loads) != len(step.inputs):
        raise ValueError(f"{len(step.inputs)} inputs, {len(loads)} loads")
    names: dict[tuple[int, int], str] = {}
    lines = []
    for k, ((src, i), load) in enumerate(zip(step.inputs, loads)):
        names[(src.uid, i)] = f"v{k}"
        lines.append(f"v{k} = {load}")
    for j, node in enumerate(step.nodes):
        formula = get_op(node.op).formula
        args = [names[(s.uid, i)] for s, i in node.inputs]
        attrs = {k: repr(v) for k, v in node.attrs.items()}
        if node.op == "cast" and node.specs[0].dtype.is_bool:
            formula = "({0} != 0)"  # bool(x) of a float NaN is True; NumPy's cast agrees
        expr = formula.format(*args, **attrs)
        lines.append(f"t{j} = {dtype_ctor(node.specs[0].dtype)}({expr})")
        names[(node.uid, 0)] = f"t{j}"
    return lines, f"t{len(step.nodes) - 1}"
