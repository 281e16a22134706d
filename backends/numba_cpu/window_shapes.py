"""Symbolic window geometry (pads, output sizes) for the compiled program's convolution
and pooling emitters (:mod:`.conv_emit`, :mod:`.pool_emit`).

The step-by-step kernels resolve pads and output sizes from the run-time shapes with the
ops' own helpers (``graphc.ops.conv.resolve_pads`` / ``out_dim``). The generated program
must know them before it runs, as :class:`~.loop_shapes.Dims` symbols: this module writes
the same arithmetic as expressions of the shape function (folded to ints when every
operand is known), and the checks that inference makes at run time (the window fits in the
padded input) as :meth:`~.loop_shapes.Dims.require` lines, so a failing shape makes
``shapes()`` return None and the step-by-step path raise the proper error.
"""

from __future__ import annotations

from typing import Any, Union

from .loop_shapes import Dim, Unsupported
from .loop_values import Gen

__all__ = ["Axis", "calc", "require", "window_axis"]

#: Builtins the folded expressions may use (they are this module's own arithmetic on ints).
_BUILTINS = {"__builtins__": {}, "max": max, "min": min}


def calc(gen: Gen, expr: str, *dims: Dim) -> Dim:
    """The dim ``expr.format(*dims)``: an int when every operand is one, else a run-time
    symbol of the shape function."""
    found = [gen.dims.find(d) for d in dims]
    if all(isinstance(d, int) for d in found):
        return int(eval(expr.format(*found), _BUILTINS))  # noqa: S307 - ints and + - * //
    return gen.dims.fresh(expr.format(*(gen.dims.expr(d) for d in found)))


def require(gen: Gen, expr: str, *dims: Dim) -> None:
    """The condition ``expr.format(*dims)`` must hold: checked now when every operand is
    known (Unsupported if it fails: inference would have refused the graph), else at run
    time by the shape function."""
    found = [gen.dims.find(d) for d in dims]
    if all(isinstance(d, int) for d in found):
        if not eval(expr.format(*found), _BUILTINS):  # noqa: S307
            raise Unsupported(f"window check {expr.format(*found)} fails")
        return
    gen.dims.require(expr.format(*(gen.dims.expr(d) for d in found)))


class Axis:
    """One spatial axis of a window op: ``lo``/``hi`` pads, padded ``size`` and ``out``."""

    def __init__(self, lo: Dim, hi: Dim, padded: Dim, out: Dim) -> None:
        self.lo, self.hi, self.padded, self.out = lo, hi, padded, out

    @property
    def unpadded(self) -> bool:
        """Both pads are known zeros (no padded copy needed)."""
        return self.lo == 0 and self.hi == 0


def window_axis(gen: Gen, size: Dim, k: Dim, s: int, d: int,
                padding: Union[str, Any], axis: int) -> Axis:
    """The geometry along spatial ``axis`` of a window ``k`` (stride ``s``, dilation
    ``d``) over ``size`` cells: pads by TF's rule for ``"SAME"`` (the odd cell at the end,
    as ``conv._same_pads``), else the explicit pair; output length as ``conv.out_dim``."""
    if padding == "SAME":
        # total = max((ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        total = calc(gen, f"max((-(-{{0}} // {s}) - 1) * {s} + ({{1}} - 1) * {d} + 1 - {{0}}, 0)",
                     size, k)
        lo = calc(gen, "{0} // 2", total)
        hi = calc(gen, "{0} - {1}", total, lo)
        out = calc(gen, f"-(-{{0}} // {s})", size)
    else:
        lo, hi = (int(p) for p in padding[axis])
        # the dilated window must fit in the padded input (else inference's ShapeError)
        require(gen, f"{{0}} + {lo + hi} >= ({{1}} - 1) * {d} + 1", size, k)
        out = calc(gen, f"({{0}} + {lo + hi} - ({{1}} - 1) * {d} - 1) // {s} + 1", size, k)
    padded = calc(gen, "{0} + {1} + {2}", size, lo, hi)
    return Axis(lo, hi, padded, out)
