"""Running a scan as one compiled loop (:mod:`.loop_codegen`) on the cpu target.

The Python loop (the op's reference loop calling the body's compiled sub-program once per
step) pays Python dispatch for every step of every iteration: for an LSTM's gradient about
50 closures per step. :class:`CompiledLoop` instead calls one generated ``@njit`` function
that runs all ``T`` steps. It returns None, and the caller runs the Python loop, whenever it
cannot run: no steps (the reference builds the empty outputs), a run-time shape the
generated code does not handle (the reference raises the proper error or broadcasts), or
Numba failing to compile the loop (once, with a RuntimeWarning; Numba's errors never reach
users).

Workspaces are allocated once per distinct input shapes and reused; the arrays it returns
(final carries, stacked ys) are fresh at every run, so they may be handed to the user: an
array of the last run is reused only when nothing but the loop holds it any more.

:data:`COUNTERS` (``loops``: bodies compiled as a loop, ``runs``: scans run by a compiled
loop) let tests check which path ran without timing anything.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, Optional, Sequence

import numpy as np

from graphc.errors import first_line
from graphc.lower import Plan

from . import cache
from .loop_codegen import Unsupported, generate_loop
from .loop_values import Layouts

__all__ = ["COUNTERS", "CompiledLoop", "compiled_loop"]

COUNTERS: dict[str, int] = {"loops": 0, "runs": 0}


class CompiledLoop:
    """A body's loop as one Numba function: ``loop(args, reverse)`` -> the scan's outputs
    (final carries, then stacked ys), or None when the caller must run the Python loop."""

    def __init__(self, plan: Plan, n_carry: int, n_xs: int, y_dtypes: Sequence[Any]) -> None:
        self.source = generate_loop(plan, n_carry, n_xs)
        self.module = cache.load_source(self.source.source)
        self._layout = Layouts(self.module.shapes, self.source.ws_dtypes)
        self.n_carry, self.n_xs = n_carry, n_xs
        self.y_dtypes = [np.dtype(d) for d in y_dtypes]
        self.broken: Optional[str] = None
        self._memo: dict[tuple, Optional[tuple]] = {}
        self._last: list[Optional[np.ndarray]] = []  # the outputs of the last run
        COUNTERS["loops"] += 1

    def _fresh(self, shape: tuple, dtype: Any) -> np.ndarray:
        """An array for an output: one this loop returned last time if nothing else holds
        it any more (no consumer, user or view: CPython's reference count says so), else a
        new one. Reusing them keeps the big stacks (a gradient's saved residuals) from
        being allocated and page-faulted again at every run when malloc has trimmed them."""
        last = self._last
        for i in range(len(last)):
            a = last[i]
            # 3: the list, `a` and getrefcount's argument
            if a is not None and a.shape == shape and a.dtype == dtype and \
                    sys.getrefcount(a) == 3:
                last[i] = None
                return a
        return np.empty(shape, dtype)

    def __call__(self, args: Sequence[np.ndarray], reverse: bool) -> Optional[tuple]:
        if self.broken is not None:
            return None
        nc = self.n_carry
        arrays = [np.ascontiguousarray(a) for a in args]  # the generated code trusts C order
        if arrays[nc].shape[0] == 0:
            return None
        layout = self._layout(tuple([a.shape for a in arrays]))
        if layout is None:
            return None
        dims, workspaces, y_shapes = layout
        # Scalars are 1-element arrays in the loop (one array type for every value).
        flat = [a.reshape(1) if a.ndim == 0 else a for a in arrays]
        finals = [self._fresh(a.shape, a.dtype) for a in arrays[:nc]]
        ys = [self._fresh(shape, dt) for shape, dt in zip(y_shapes, self.y_dtypes)]
        self._last = finals + ys
        try:
            self.module.loop(dims, *workspaces, *flat[:nc], *flat[nc:],
                             *[f.reshape(1) if f.ndim == 0 else f for f in finals], *ys,
                             bool(reverse))
        except Exception as err:  # noqa: BLE001 - Numba's errors never reach users
            self.broken = first_line(err)
            warnings.warn(f"graphc cpu: the compiled scan loop failed ({self.broken}); "
                          "running the loop in Python", RuntimeWarning, stacklevel=2)
            return None
        COUNTERS["runs"] += 1
        return tuple(finals + ys)


def compiled_loop(plan: Plan, body: Any) -> Optional[CompiledLoop]:
    """The compiled loop of ``body`` (whose lowered program is ``plan``), or None when the
    body holds an op the loop has no code for (it keeps the Python loop)."""
    from graphc.passes import debug_flags

    if "nodes" in debug_flags():  # per-node checks need the step-by-step sub-program
        return None
    y_dtypes = [t.dtype.np for t in body.outputs[body.n_carry:]]
    try:
        return CompiledLoop(plan, body.n_carry, body.n_xs, y_dtypes)
    except Unsupported:
        return None
    except Exception as err:  # noqa: BLE001 - a generator bug must not break the scan
        warnings.warn(f"graphc cpu: no compiled loop for a scan body ({type(err).__name__}: "
                      f"{err}); running the loop in Python", RuntimeWarning, stacklevel=2)
        return None
