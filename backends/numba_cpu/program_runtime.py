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
size compiles nothing), and its dispatcher is then closed to other signatures: it checks
the arguments' dtypes, ranks and C order in C, faster than Python code can, and an
argument that does not fit raises TypeError, upon which the arguments are converted here
(a variable of another dtype, a strided array) and the call made again. The layout is
looked up by the feeds' shapes only; the generated code checks the variables' shapes and
returns 1 when one changed (a user may put an array of any shape into the state), and the
layout is then computed from every shape. Workspaces are allocated once per distinct
input shapes and reused; the fetched arrays are allocated at every run, so they may be
handed to the user.

A row-wise plan (:mod:`.sample_rows`: each fetched row depends on the same row of the
batched feeds alone, and the plan has convolutions or pooling, which a program runs on
one thread) runs as blocks of rows at once, one call of the program per block on a thread
of its own (:mod:`.block_threads`), each block writing its rows of the fetched arrays and
using workspaces of its own. It takes one block per thread of Numba's pool, each with at
least :data:`BLOCK_MIN_WORK`: LeNet-5 at batch 128 went from 2.65 to 1.66 ms on 2 threads.
A block too big for the program (a convolution the kernel would run on Numba's pool)
runs as smaller blocks one after the other on its thread: LeNet-5 at batch 1024, which
ran step by step with parallel kernels, went from 21.8 to 14.2 ms.
A block that returns 1 or 2, another caller using the threads, or an argument to convert
sends the run down the unsplit path, which handles those cases.

:data:`COUNTERS` (``programs``: plans generated as one function, ``runs``: runs made by
one, ``blocks``: runs of those made as row blocks) let tests check which path ran without
timing anything.
"""

from __future__ import annotations

import warnings
from collections.abc import MutableMapping, Sequence
from typing import Any

import numba
import numpy as np
from numba import from_dtype, types

from graphc.errors import first_line
from graphc.lower import Plan

from . import cache
from .block_threads import run_blocks
from .loop_values import Layouts
from .program_codegen import Unsupported, generate_program
from .sample_rows import sample_rows

__all__ = ["BLOCK_MIN_WORK", "COUNTERS", "CompiledProgram", "compiled_program"]

COUNTERS: dict[str, int] = {"programs": 0, "runs": 0, "blocks": 0}

#: The least work (multiply-adds of the convolutions and pooling, :mod:`.sample_rows`) a
#: block of rows gets: LeNet-5 gained from 32 rows in two blocks (0.44 against 0.74 ms)
#: and not at 8 (the worker's wake and the blocks' single-threaded GEMMs cost more).
BLOCK_MIN_WORK = 1 << 22


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
        self._program: Any = None
        self._outs = list(zip(self.source.out_dtypes, self.source.out_ranks))
        # Whether any argument is a scalar (passed as a 1-element array); at batch 1 the
        # per-call Python work matters, so the common case skips the reshapes.
        self._scalars = any(i.rank == 0 for i in self.source.inputs) \
            or any(r == 0 for r in self.source.out_ranks)
        # The inputs are the feeds, then the variables, then the constants (program_codegen
        # orders them so).
        inputs = self.source.inputs
        self._feed_index = [i.index for i in inputs if i.kind == "feed"]
        self._variables = [i.name for i in inputs if i.kind == "variable"]
        self._constants = [np.ascontiguousarray(i.value) for i in inputs if i.kind == "constant"]
        assert [i.kind for i in inputs] == sorted(
            (i.kind for i in inputs), key=("feed", "variable", "constant").index)
        self._out_dtypes = [dt for dt, _ in self._outs]
        # Row-wise plans may run as row blocks on several threads, each block with its own
        # workspaces (a layout table per block).
        self._rows = sample_rows(plan)
        self._block_layouts: list[Layouts] = []
        # The feeds' shapes of the last run and their layout (see __call__).
        self._last: tuple = (None, None)
        COUNTERS["programs"] += 1

    def _signature(self) -> Any:
        src = self.source
        args = [_array_type(np.dtype(np.int64), 1)]
        args += [_array_type(dt, 1) for dt in src.ws_dtypes]
        args += [_array_type(i.dtype, i.rank, readonly=True) for i in src.inputs]
        args += [_array_type(dt, rank) for dt, rank in self._outs]
        return types.int64(*args)

    def _compile(self) -> Any:
        """The dispatcher, compiled for the one signature (loaded from Numba's disk cache
        when it is there) and closed to others: an argument of another dtype, rank or memory
        layout raises TypeError instead of compiling a variant."""
        disp = self.module.program
        if not disp.signatures:  # else an equal plan already compiled it in this process
            stats = disp.stats
            before = sum(stats.cache_hits.values())
            disp.compile(self._signature())
            loaded = sum(stats.cache_hits.values()) > before
            cache.COUNTERS["loads" if loaded else "compiles"] += 1
        disp.disable_compile()
        return disp

    def _arguments(self, feeds: Sequence[Any], state: MutableMapping) -> list | None:
        """The inputs as C-ordered arrays of the plan's dtypes, or None (a feed of another
        dtype, an input of another rank: the step-by-step path converts or refuses)."""
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
            if a.ndim != i.rank:
                return None
            # (np.ascontiguousarray would also turn a 0-d array into a 1-d one)
            args.append(a if a.flags.c_contiguous else np.ascontiguousarray(a))
        return args

    def _new_outs(self, shapes: Sequence[tuple]) -> list:
        """Fresh arrays for the fetches of ``shapes``."""
        if len(shapes) == 1:  # (the common case, without the list's loop)
            return [np.empty(shapes[0], self._out_dtypes[0])]
        return [np.empty(shape, dt) for shape, dt in zip(shapes, self._out_dtypes)]

    def _call(self, layout: tuple, args: list, outs: list | None = None) -> tuple[int, list]:
        """One call of the compiled program: its return code and the fetched arrays
        (``outs`` when given, else new ones)."""
        dims, workspaces, out_shapes = layout
        if outs is None:
            outs = self._new_outs(out_shapes)
        if self._scalars:
            args = [a.reshape(1) if a.ndim == 0 else a for a in args]
            outs_in = [o.reshape(1) if o.ndim == 0 else o for o in outs]
        else:
            outs_in = outs
        return self._program(dims, *workspaces, *args, *outs_in), outs

    def _block_count(self, args: list) -> int:
        """How many row blocks to run at once: one per thread of Numba's pool
        (NUMBA_NUM_THREADS, the threads graphc's kernels use), each with at least
        :data:`BLOCK_MIN_WORK`; 1 for a plan that is not row-wise."""
        if self._rows is None:
            return 1
        n = args[self._rows.feeds[0]].shape[0]
        threads = numba.config.NUMBA_NUM_THREADS
        return min(threads, n, n * self._rows.work // BLOCK_MIN_WORK) if threads > 1 else 1

    def _run_blocks(self, args: list, blocks: int) -> list | None:
        """The fetched arrays, computed as ``blocks`` row blocks at once; None when that
        path does not apply to this run (the caller runs the program unsplit)."""
        feeds = self._rows.feeds
        n = args[feeds[0]].shape[0]
        if any(args[k].shape[0] != n for k in feeds):
            return None  # (the unsplit path raises the shape error)
        while len(self._block_layouts) < blocks:
            self._block_layouts.append(Layouts(self.module.shapes, self.source.ws_dtypes))
        cuts = [n * b // blocks for b in range(blocks + 1)]
        calls = [self._block_calls(args, b, lo, hi) for b, (lo, hi)
                 in enumerate(zip(cuts, cuts[1:]))]
        if any(c is None for c in calls):
            return None
        # Every fetch is row-wise: the blocks write their rows of the whole arrays.
        outs = self._new_outs([(n, *shape[1:]) for shape in calls[0][0][0][2]])

        def job(block_calls: list) -> int:
            return max(self._call(layout, part, [o[lo:hi] for o in outs])[0]
                       for layout, part, lo, hi in block_calls)
        try:
            codes = run_blocks([lambda c=c: job(c) for c in calls])
        except TypeError:  # an argument of another dtype, rank or layout: converted unsplit
            return None
        return outs if codes is not None and not any(codes) else None

    def _block_calls(self, args: list, b: int, lo: int, hi: int) -> list | None:
        """The program calls of thread ``b`` for rows ``lo .. hi``: ``(layout, arguments,
        lo, hi)`` each. One call, or the rows in halves (and so on) while the layout
        refuses them: a block too big for the program's one-thread loops (a convolution
        the kernel would run on Numba's pool) is run as smaller blocks, one after the
        other. None when even a single row is refused."""
        part = list(args)
        for k in self._rows.feeds:
            part[k] = args[k][lo:hi]
        layout = self._block_layouts[b](tuple([a.shape for a in part]))
        if layout is not None:
            return [(layout, part, lo, hi)]
        if hi - lo < 2:
            return None
        mid = (lo + hi) // 2
        first, second = self._block_calls(args, b, lo, mid), self._block_calls(args, b, mid, hi)
        return None if first is None or second is None else first + second

    def __call__(self, feeds: Sequence[Any], state: MutableMapping) -> list | None:
        # At batch 1 the Python here is a fifth of a LeNet's run, so the common case only
        # gathers the arguments: the dispatcher checks their dtypes, ranks and C order (in
        # C, no per-argument Python), the program checks the variables' shapes, and the
        # layout is the last run's while the feeds' shapes stay the same.
        if self.broken is not None:
            return None
        try:
            key = tuple([feeds[i].shape for i in self._feed_index])
        except AttributeError:  # a feed that is not an array: the steps convert it
            return None
        args = [feeds[i] for i in self._feed_index]
        args += [state[name] for name in self._variables]
        args += self._constants
        last, layout = self._last
        try:
            if self._program is None:
                self._program = self._compile()
            blocks = self._block_count(args)
            if blocks > 1:
                outs = self._run_blocks(args, blocks)
                if outs is not None:
                    COUNTERS["runs"] += 1
                    COUNTERS["blocks"] += 1
                    return outs
            if key != last:
                layout = self._layout(tuple([a.shape for a in args]))
                if layout is None:
                    return None
                self._last = (key, layout)
            try:
                code, outs = self._call(layout, args)
            except TypeError:  # an argument of another dtype, rank or memory layout
                args = self._arguments(feeds, state)
                if args is None:
                    return None
                layout = self._layout(tuple([a.shape for a in args]))
                if layout is None:
                    return None
                code, outs = self._call(layout, args)
            if code == 1:  # a variable's shape is not the one of the last run's layout
                layout = self._layout(tuple([a.shape for a in args]))
                if layout is None:
                    return None
                self._last = (key, layout)
                code, outs = self._call(layout, args)
            if code:  # 2: a value the reference refuses (the steps raise its error)
                return None
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
