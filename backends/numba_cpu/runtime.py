"""Running a lowered :class:`~graphc.lower.Plan`: the cpu target's executable.

Values live in a flat list of slots (one per IR output). Each step is a closure over its
input and output slots, built once at compile time, so a run is one loop over closures.
Kernel-owned results (fused groups, GEMMs) get buffers that persist across runs and are
reused while their shape holds; values handed to the user are always fresh (or copied),
never a buffer a later run overwrites. Variables are read from ``state`` at each run (a
``Saver.restore`` may have replaced the arrays) and written at the end: in place when the
plan put the update straight into the variable's array, else by copying into it.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Callable, MutableMapping, Optional, Sequence

import numpy as np
from numba.core.errors import NumbaError

from graphc.errors import GraphcError, first_line
from graphc.lower import Plan, Step
from graphc.op import Kind, get_op

from . import cache, codegen, row_split
from .kernels import LIBRARY
from .program_runtime import compiled_program
from .threads import PARALLEL_LOCK, choose_threading_layer

__all__ = ["Executable", "FusedKernel", "PARALLEL_MIN_ELEMENTS"]

# Below this many output elements a fused loop runs on one thread. Waking Numba's thread
# pool costs tens of microseconds, and loops of cheap arithmetic are bound by memory
# bandwidth, which a second thread hardly adds to: on the 2-core machine a 256k-element
# add+relu took 33 us on one thread and 80 us on two; at 4M elements two threads saved 25%.
# Loops that compute transcendental functions are compute-bound (even float32 ones with
# fastmath.py's vectorized versions, ~1.5 ns an element) and pay for threads 16x sooner.
PARALLEL_MIN_ELEMENTS = 1 << 22
_COSTLY = re.compile(r"math\.(exp|expm1|log|log1p|tanh|erf|sin|cos)\(|\*\*")


class FusedKernel:
    """A fused group's generated module; compiles each loop variant on first use."""

    def __init__(self, step: Step, inplace: Optional[int] = None) -> None:
        self.step = step
        self.src = codegen.generate(step, inplace)
        # The flat module now (a generation error surfaces here, and the runtime falls
        # back); the rank's module (rows, nd) on first use: most steps never need it.
        self._modules = {"flat": cache.load_source(self.src.flat_source)}
        self._ready: dict[str, Any] = {}
        self._fits: dict[tuple, bool] = {}  # shapes -> whether the rows loop applies
        formulas = " ".join(get_op(m.op).formula or "" for m in step.nodes)
        costly = _COSTLY.search(formulas) is not None
        self.parallel_min = PARALLEL_MIN_ELEMENTS >> 4 if costly else PARALLEL_MIN_ELEMENTS
        self.broken: str | None = None

    def variant(self, name: str) -> Any:
        """The compiled dispatcher of loop variant ``name`` (flat, nd, flat_par, nd_par)."""
        disp = self._ready.get(name)
        if disp is None:
            part = "flat" if name.startswith("flat") else "shaped"
            module = self._modules.get(part)
            if module is None:
                module = self._modules[part] = cache.load_source(self.src.shaped_source)
            disp = getattr(module, name)
            if not disp.signatures:  # else an equal group already compiled it in this process
                if name.endswith("_par"):
                    choose_threading_layer()
                stats = disp.stats
                before = sum(stats.cache_hits.values())
                disp.compile(getattr(module, "SIG_" + name))
                loaded = sum(stats.cache_hits.values()) > before
                cache.COUNTERS["loads" if loaded else "compiles"] += 1
            # The compiled entry point, without the dispatcher's per-call type matching:
            # the plan guarantees the dtypes and ranks of the arguments.
            disp = disp.overloads[disp.signatures[0]].entry_point
            self._ready[name] = disp
        return disp

    def __call__(self, out: np.ndarray, ins: list[np.ndarray]) -> None:
        shape = out.shape
        if out.ndim != self.src.rank:  # the compiled loops trust ranks: never pass others
            raise GraphcError(f"{self.step.node.name}: rank {out.ndim} at run time, "
                              f"{self.src.rank} was inferred")
        n = out.size
        par = n >= self.parallel_min
        scalars = self.src.scalars
        flat = []
        for a, scalar in zip(ins, scalars):
            # Scalars go in as 1-element arrays; full-size contiguous operands (also those
            # that only lack leading 1s, such as a bias at batch 1) are flattened; anything
            # else (a runtime broadcast, a strided view) needs the n-d loop.
            if scalar:
                flat.append(a.reshape(1))
            elif a.size == n and a.flags.c_contiguous:
                flat.append(a.reshape(-1))
            else:
                break
        else:
            k = self.src.inplace
            io = k is not None and ins[k] is out  # updating that input's buffer in place
            self._launch("flat_io" if io else "flat", par, out.reshape(-1), flat)
            return
        if not shape:
            out, shape = out.reshape(1), (1,)
        elif self._rows_fit(shape, ins):
            rank = len(shape)
            args = [a.reshape(1) if scalar else a.reshape((1,) * (rank - a.ndim) + a.shape)
                    for a, scalar in zip(ins, scalars)]
            self._launch("rows", par, out, args)
            return
        args = [a.reshape(1) if scalar else _broadcast(a if a.ndim else a.reshape(1), shape)
                for a, scalar in zip(ins, scalars)]
        self._launch("nd", par, out, args)

    def _launch(self, variant: str, par: bool, out: np.ndarray, args: list) -> None:
        if par:
            with PARALLEL_LOCK:
                self.variant(variant + "_par")(out, *args)
        else:
            self.variant(variant)(out, *args)

    def _rows_fit(self, shape: tuple, ins: list[np.ndarray]) -> bool:
        split = self.src.rows
        if split is None or not all(a.flags.c_contiguous for a in ins):
            return False
        key = (shape, *[a.shape for a in ins])
        fit = self._fits.get(key)
        if fit is None:
            if len(self._fits) > 64:  # many distinct batch sizes: keep the memo small
                self._fits.clear()
            fit = self._fits[key] = row_split.fits(split, shape, [a.shape for a in ins],
                                                   self.src.scalars)
        return fit


def _aliased_input(step: Step, reuse: Any, var_name: Optional[str]) -> Optional[int]:
    """The input of ``step`` whose buffer the plan lets it overwrite, if any: the reused
    buffer, or the variable it updates in place."""
    for k, (src, i) in enumerate(step.inputs):
        if reuse is not None and (src.uid, i) == (reuse[0].uid, reuse[1]):
            return k
        if var_name is not None and src.op == "variable" and src.name == var_name:
            return k
    return None


def _broadcast(a: np.ndarray, shape: tuple) -> np.ndarray:
    """``np.broadcast_to(a, shape)`` without its Python-level argument handling (a few
    microseconds a call, which the batch-1 profile showed adding up): a zero-stride view
    built directly. ``a`` must broadcast to ``shape`` (the plan's inference says so)."""
    if a.shape == shape:
        return a
    if not a.flags.c_contiguous or a.size == 0:
        return np.broadcast_to(a, shape)
    pad = len(shape) - a.ndim
    strides = (0,) * pad + tuple(0 if d == 1 else st for d, st in zip(a.shape, a.strides))
    return np.ndarray(shape, a.dtype, a, 0, strides)


class Executable:
    """The compiled program: ``exe(feeds, state, step) -> fetched arrays``."""

    def __init__(self, plan: Plan, check_nodes: bool = False) -> None:
        self.plan = plan
        self.check_nodes = check_nodes
        table = plan.slot_table()
        self.slots, self.n_slots, self.handed_out = table.index, len(table.index), table.handed_out
        self.feed_slots, self.fetch_slots, self.write_slots = table.feeds, table.fetches, table.writes
        self.buffers: dict[int, np.ndarray] = {}
        self.runs: list[Callable[[list, MutableMapping, int], None]] = []
        self.kernels: list[FusedKernel] = []
        for step in plan.steps:
            self.runs.append(self._build(step))
        # The whole plan as one Numba function when it allows (inference: program_runtime);
        # the steps above run whenever it cannot.
        self.program = None if check_nodes else compiled_program(plan)

    # -- building the step closures -----------------------------------------------------

    def _alloc_for(self, slot: int) -> Callable[[tuple, Any], np.ndarray]:
        if slot in self.handed_out:
            return lambda shape, dtype: np.empty(shape, dtype)
        buffers = self.buffers

        def alloc(shape: tuple, dtype: Any) -> np.ndarray:
            buf = buffers.get(slot)
            if buf is None or buf.shape != shape or buf.dtype != dtype:
                buf = buffers[slot] = np.empty(shape, dtype)
            return buf
        return alloc

    def _build(self, step: Step) -> Callable[[list, MutableMapping, int], None]:
        node, slots = step.node, self.slots
        out = slots.get((node.uid, 0))
        ins = [slots[(s.uid, i)] for s, i in step.inputs]
        kind = step.kind
        if kind == "feed":
            return _noop
        if kind == "variable":
            name, dtype = node.name, node.specs[0].dtype.np

            def variable(vals: list, state: MutableMapping, step_no: int) -> None:
                value = state[name]
                # Kernels trust dtypes (no per-call type matching): a user may have put an
                # array of another dtype into the session's state.
                vals[out] = value if value.dtype == dtype else value.astype(dtype)
            return variable
        if kind == "constant":
            value = node.attrs["value"].array
            return lambda vals, state, step_no: vals.__setitem__(out, value)
        if kind == "alias":
            src = ins[1]
            return lambda vals, state, step_no: vals.__setitem__(out, vals[src])
        if kind == "library":
            run = LIBRARY[node.op](node)
            alloc = self._alloc_for(out)

            outs = [slots[(node.uid, i)] for i in range(len(node.specs))]
            fallback = _fallback(node, outs, ins)
            broken: list[str] = []

            def library(vals: list, state: MutableMapping, step_no: int) -> None:
                if broken:
                    return fallback(vals, state, step_no)
                try:
                    result = run([vals[i] for i in ins], alloc)
                except NumbaError as err:  # Numba's errors never reach users
                    broken.append(first_line(err))
                    warnings.warn(f"graphc cpu: the {node.op} kernel failed for {node.name} "
                                  f"({broken[0]}); running it with NumPy", RuntimeWarning,
                                  stacklevel=2)
                    return fallback(vals, state, step_no)
                if isinstance(result, tuple):  # several outputs
                    for slot, value in zip(outs, result):
                        vals[slot] = value
                else:
                    vals[out] = result
            return library
        if kind == "fused":
            return self._build_fused(step, out, ins)
        return _fallback(node, [slots[(node.uid, i)] for i in range(len(node.specs))], ins)

    def _build_fused(self, step: Step, out: int, ins: list[int]) -> Callable:
        root = step.node
        reuse = self.plan.ir.inplace.get(root.uid)
        reuse_slot = self.slots[(reuse[0].uid, reuse[1])] if reuse is not None else None
        var_name = self.plan.ir.inplace_var.get(root.uid)
        try:
            kernel = FusedKernel(step, _aliased_input(step, reuse, var_name))
        except Exception as err:  # noqa: BLE001 - generation failed: run the refs instead
            return self._fused_fallback(step, err)
        self.kernels.append(kernel)
        dtype = root.specs[0].dtype.np
        alloc = self._alloc_for(out)
        fallback = self._fused_fallback(step, None)

        shapes: dict[tuple, tuple] = {}  # input shapes -> output shape, as np.broadcast_shapes

        def fused(vals: list, state: MutableMapping, step_no: int) -> None:
            args = [vals[i] for i in ins]
            key = tuple([a.shape for a in args])
            shape = shapes.get(key)
            if shape is None:
                if len(shapes) > 64:  # many distinct batch sizes: keep the memo small
                    shapes.clear()
                shape = shapes[key] = np.broadcast_shapes(*key) if args else ()
            dst = None
            if var_name is not None:
                dst = _usable(state.get(var_name), shape, dtype)
            if dst is None and reuse_slot is not None:
                dst = _usable(vals[reuse_slot], shape, dtype)
            if dst is None:
                dst = alloc(shape, dtype)
            if kernel.broken is None:
                try:
                    kernel(dst, args)
                    vals[out] = dst
                    return
                except Exception as err:  # noqa: BLE001 - Numba's errors never reach users
                    kernel.broken = first_line(err)
                    warnings.warn(f"graphc cpu: the fused kernel for {root.name} "
                                  f"({' '.join(m.op for m in step.nodes)}) failed to compile "
                                  f"({kernel.broken}); running it with NumPy", RuntimeWarning,
                                  stacklevel=2)
            fallback(vals, state, step_no)
        return fused

    def _fused_fallback(self, step: Step, err: Exception | None) -> Callable:
        # Run the group's nodes one by one with their NumPy refs (same values, slower).
        scratch = {}
        order = []
        for m in step.nodes:
            slot = self.slots[(m.uid, 0)]
            order.append(_fallback(m, [slot], [self.slots[(s.uid, i)] for s, i in m.inputs]))
        del scratch
        if err is not None:
            warnings.warn(f"graphc cpu: no kernel for {step.node.name} ({first_line(err)}); "
                          "running it with NumPy", RuntimeWarning, stacklevel=3)

        def run(vals: list, state: MutableMapping, step_no: int) -> None:
            for f in order:
                f(vals, state, step_no)
        return run

    # -- running ------------------------------------------------------------------------

    def _location_of(self, run: Callable | None) -> Any:
        """The user's source line of the step whose ``run`` raised (None if not found)."""
        for s, r in zip(self.plan.steps, self.runs):
            if r is run:
                return s.node.location
        return None

    def __call__(self, feeds: Sequence[np.ndarray], state: MutableMapping[str, np.ndarray],
                 step: int) -> list[np.ndarray]:
        if self.program is not None:
            results = self.program(feeds, state)
            if results is not None:
                return results
        vals: list[Any] = [None] * self.n_slots
        for slot, array in zip(self.feed_slots, feeds):
            vals[slot] = array
        run = None
        try:  # (free when nothing is raised: the failing step's run is the loop variable)
            if self.check_nodes:
                for s, run in zip(self.plan.steps, self.runs):
                    run(vals, state, step)
                    _check_finite(s, vals, self.slots)
            else:
                for run in self.runs:
                    run(vals, state, step)
        except GraphcError as err:
            raise err.at(self._location_of(run))
        state_ids = {id(a) for a in state.values()}
        owned = {id(b) for b in self.buffers.values()}
        results = []
        for slot in self.fetch_slots:
            r = vals[slot]
            if slot not in self.handed_out or id(r) in state_ids or id(r) in owned \
                    or not _fresh(r):
                r = np.array(r, copy=True)
            results.append(r)
        pending = []
        for name, slot in self.write_slots:
            value, current = vals[slot], state.get(name)
            if value is current:
                continue  # the kernel already wrote into the variable
            if id(value) in state_ids or not _fresh(value):
                value = np.array(value, copy=True)  # may alias a variable written below
            pending.append((name, value))
        for name, value in pending:
            current = state.get(name)
            if _usable(current, value.shape, value.dtype) is not None:
                np.copyto(current, value)
            else:
                state[name] = np.array(value, copy=True)
        return results


def _noop(vals: list, state: MutableMapping, step_no: int) -> None:
    return None


def _fresh(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.flags.owndata and a.flags.writeable


def _usable(a: Any, shape: tuple, dtype: Any) -> np.ndarray | None:
    if (isinstance(a, np.ndarray) and a.shape == shape and a.dtype == dtype
            and a.flags.c_contiguous and a.flags.writeable):
        return a
    return None


def _fallback(node: Any, outs: list[int], ins: list[int]) -> Callable:
    opdef = get_op(node.op)
    random = opdef.kind == Kind.RANDOM
    shape_only = opdef.kind == Kind.SHAPE
    attrs = dict(node.attrs)
    dtypes = [s.dtype.np for s in node.specs]
    ref = opdef.ref

    def fallback(vals: list, state: MutableMapping, step_no: int) -> None:
        args = [vals[i] for i in ins]
        if shape_only:  # no arithmetic, so no floating-point warning to silence
            result = ref(*args, **attrs)
        else:
            with np.errstate(all="ignore"):  # (1-2 us: worth skipping at batch 1)
                result = ref(*args, **attrs, step=step_no) if random else ref(*args, **attrs)
        results = result if isinstance(result, tuple) else (result,)
        for slot, dtype, value in zip(outs, dtypes, results):
            value = np.asarray(value)
            vals[slot] = value if value.dtype == dtype else value.astype(dtype)
    return fallback


def _check_finite(step: Step, vals: list, slots: dict) -> None:
    node = step.node
    for i, spec in enumerate(node.specs):
        v = vals[slots[(node.uid, i)]]
        if spec.dtype.is_floating and isinstance(v, np.ndarray) and not np.all(np.isfinite(v)):
            what = "NaN" if np.isnan(v).any() else "Inf"
            where = f"\n  at {node.location}" if node.location else ""
            inputs = ", ".join(f"{s.name}" for s, _ in node.inputs)
            raise GraphcError(f"GRAPHC_DEBUG=nodes: {node.name} ({node.op}) produced {what} "
                              f"from inputs ({inputs}){where}")

