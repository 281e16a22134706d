"""Running a whole inference plan as one compiled function (:mod:`.program_codegen`).

:class:`CompiledProgram` is what the cpu :class:`~.runtime.Executable` calls first when
its plan allows it: it gathers the feeds, the variables (read from the session's state at
every run, converted to the plan's dtype as the step-by-step runtime does) and the
constants, and makes one call into the generated ``@njit`` function. It returns None, and
the executable runs its steps one by one, whenever it cannot run: an argument of another
dtype, a run-time shape the generated code does not handle (``shapes()`` returned None:
the step-by-step path broadcasts or raises the proper error), or Numba failing to compile
the program (once, with a RuntimeWarning; Numba's errors never reach users).

The function is compiled on first use for one signature (dtypes and ranks; a new batch
size compiles nothing) and called through its compiled entry point, without the
dispatcher's per-call type matching (the arguments' dtypes, ranks and C order are checked
or made so here). Workspaces are allocated once per distinct input shapes and reused; the
fetched arrays are allocated at every run, so they may be handed to the user.

:data:`COUNTERS` (``programs``: plans generated as one function, ``runs``: runs made by
one) let tests check which path ran without timing anything.
"""

from __future__ import annotations

import warnings
from collections.abc import MutableMapping, Sequence
from typing import Any

import numpy as np
from numba import from_dtype, types

from graphc.errors import first_line
from graphc.lower import Plan

from . import cache
from .loop_values import Layouts
from .program_codegen import Unsupported, generate_program

__all__ = ["COUNTERS", "CompiledProgram", "compiled_program"]

COUNTERS: dict[str, int] = {"programs": 0, "runs": 0}


def _array_type(dtype: np.dtype, rank: int, readonly: bool = False) -> types.Array:
    # Scalars are 1-element arrays in the generated code (one array type for every value).
    return types.Array(from_dtype(dtype), max(rank, 1), "C", readonly=readonly)


class CompiledProgram:
    """A plan as one Numba function: ``program(feeds, state)`` -> the fetched arrays, or
    None when the caller must run the plan step by step."""

    def __init__(self, plan: Plan) -> None:
        self.source = generate_program(plan)
        self.module = cache.load_source(self.source.source)
        self._layout = Layouts(self.module.shapes, self.source.ws_dtypes)
        self.broken: str | None = None
        self._entry: Any = None
        self._outs = list(zip(self.source.out_dtypes, self.source.out_ranks))
        # Whether any argument is a scalar (passed as a 1-element array); at batch 1 the
        # per-call Python work matters, so the common case skips the reshapes.
        self._scalars = any(i.rank == 0 for i in self.source.inputs) \
            or any(r == 0 for r in self.source.out_ranks)
        COUNTERS["programs"] += 1

    def _signature(self) -> Any:
        src = self.source
        args = [_array_type(np.dtype(np.int64), 1)]
        args += [_array_type(dt, 1) for dt in src.ws_dtypes]
        args += [_array_type(i.dtype, i.rank, readonly=True) for i in src.inputs]
        args += [_array_type(dt, rank) for dt, rank in self._outs]
        return types.int64(*args)

    def _compile(self) -> Any:
        """The compiled entry point (loaded from Numba's disk cache when it is there)."""
        disp = self.module.program
        if not disp.signatures:  # else an equal plan already compiled it in this process
            stats = disp.stats
            before = sum(stats.cache_hits.values())
            disp.compile(self._signature())
            loaded = sum(stats.cache_hits.values()) > before
            cache.COUNTERS["loads" if loaded else "compiles"] += 1
        return disp.overloads[disp.signatures[0]].entry_point


    def _arguments(self, feeds: Sequence[Any], state: MutableMapping) -> list | None:
        """The inputs as C-ordered arrays of the plan's dtypes, or None (another dtype)."""
        args: list[Any] = []
        for i in self.source.inputs:
            if i.kind == "feed":
                a = feeds[i.index]
                if not isinstance(a, np.ndarray) or a.dtype != i.dtype:
                    return None
            elif i.kind == "variable":
                a = state[i.name]
                # Kernels trust dtypes: a user may have put another dtype into the state.
                if a.dtype != i.dtype:
                    a = a.astype(i.dtype)
            else:
                a = i.value
            # (np.ascontiguousarray would also turn a 0-d array into a 1-d one)
            args.append(a if a.flags.c_contiguous else np.ascontiguousarray(a))
        return args

    def __call__(self, feeds: Sequence[Any], state: MutableMapping) -> list | None:
        if self.broken is not None:
            return None
        args = self._arguments(feeds, state)
        if args is None:
            return None
        layout = self._layout(tuple([a.shape for a in args]))
        if layout is None:
            return None
        dims, workspaces, out_shapes = layout
        outs = [np.empty(shape, dt) for shape, (dt, _) in zip(out_shapes, self._outs)]
        if self._scalars:
            args = [a.reshape(1) if a.ndim == 0 else a for a in args]
            outs_in = [o.reshape(1) if o.ndim == 0 else o for o in outs]
        else:
            outs_in = outs
        try:
            if self._entry is None:
                self._entry = self._compile()
            self._entry(dims, *workspaces, *args, *outs_in)
        except Exception as err:  # noqa: BLE001 - Numba's errors never reach users
            self.broken = first_line(err)
            warnings.warn(f"graphc cpu: the compiled program failed ({self.broken}); "
                          "running its steps one by one", RuntimeWarning, stacklevel=3)
            return None
        COUNTERS["runs"] += 1
        return outs


def compiled_program(plan: Plan) -> CompiledProgram | None:
    """The plan as one compiled function, or None when it holds something outside that
    path's scope (see :mod:`.program_codegen`): the step-by-step executable runs it."""
    try:
        return CompiledProgram(plan)
    except Unsupported:
        return None
    except Exception as err:  # noqa: BLE001 - a generator bug must not break the target
        warnings.warn(f"graphc cpu: no compiled program ({type(err).__name__}: {err}); "
                      "running the steps one by one", RuntimeWarning, stacklevel=3)
        return None
