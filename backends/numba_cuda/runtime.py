"""Running a lowered :class:`~graphc.lower.Plan` on the device: the cuda executable.

Residency: values live in a flat list of slots, as device arrays. Feeds are copied in once
per run, constants once per executable, fetched values copied out at the end; nothing
else crosses the bus except the inputs and outputs of host-fallback steps (listed in
:data:`.kernels.FALLBACK`). Variables and optimizer slots stay on the device for the
session's lifetime: a run reads ``state[name]``, uploads it only when it is a host array
(a fresh initial value, or one a ``Saver.restore`` or the user put there) and puts the
device array back into ``state``; writes replace ``state[name]`` by the new device array.
So after a cuda run ``Session.state`` holds device arrays: ``np.asarray(v)`` or
``v.copy_to_host()`` give host values (the Saver calls ``copy_to_host``).

Intermediate buffers, and the device copies of host feeds, persist across runs and are
reused while their shape holds; a value handed out (fetched, or written to a variable)
always gets an array of its own, so a variable never shares memory with a buffer, a
constant or another variable. Those arrays are recycled once nothing holds them any more
(:mod:`.recycle`): at steady state a training step allocates no device memory.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, MutableMapping, Sequence

import numpy as np

from graphc.errors import GraphcError, first_line
from graphc.lower import Plan, Step
from graphc.op import Kind, get_op

from . import codegen
from .device import (broadcast_strides, cuda, device_copy, is_device, launch, require_gpu,
                     to_device, to_host)
from .kernels import LIBRARY
from .recycle import Recycler
from .scratch import Scratch

__all__ = ["Executable", "FusedKernel"]

Run = Callable[[list, MutableMapping, int], None]


class FusedKernel:
    """A fused group's generated module (``flat`` and ``nd`` kernels)."""

    def __init__(self, step: Step) -> None:
        from graphc.backends.numba_cpu import cache  # the same on-disk source cache

        self.step = step
        self.src = codegen.generate(step)
        self.module = cache.load_source(self.src.source)

    def __call__(self, out: Any, ins: list) -> None:
        n = out.size
        if n == 0:
            return
        blocks, threads = launch(n)
        flat_out = out.reshape(n)
        if all(a.size == n for a in ins):  # same shape (broadcasting cannot keep the size)
            self.module.flat[blocks, threads](flat_out, *[a.reshape(n) for a in ins])
            return
        shape = tuple(out.shape)
        strides = [broadcast_strides(tuple(a.shape), shape) for a in ins]
        self.module.nd[blocks, threads](flat_out, *[a.reshape(a.size) for a in ins], shape,
                                        *strides)


class Executable:
    """The compiled program: ``exe(feeds, state, step) -> fetched host arrays``."""

    def __init__(self, plan: Plan, check_nodes: bool = False) -> None:
        self.plan = plan
        self.check_nodes = check_nodes
        table = plan.slot_table()
        self.slots, self.n_slots = table.index, len(table.index)
        self.handed_out = _through_aliases(plan, table.index, table.handed_out)
        self.feed_slots, self.fetch_slots, self.write_slots = table.feeds, table.fetches, table.writes
        self.buffers: dict[int, Any] = {}
        self.feed_buffers = Scratch()  # slot -> the device copy of a host feed
        self.fresh: set[int] = set()  # ids of the arrays taken this run for handed-out values
        self.recycler = Recycler(limit=4 * len(self.handed_out) + 8)
        self.kernels: list[FusedKernel] = []
        # How each step ran at its last run: "kernel", "fallback" (tests list them).
        self.ran: dict[str, str] = {}
        self.runs: list[Run] = [self._build(step) for step in plan.steps]

    # -- building the step closures -----------------------------------------------------

    def _alloc_for(self, slot: int) -> Callable[[tuple, Any], Any]:
        buffers, fresh, recycler = self.buffers, self.fresh, self.recycler
        if slot in self.handed_out:
            def alloc_fresh(shape: tuple, dtype: Any) -> Any:
                array = recycler.take(tuple(shape), dtype)
                fresh.add(id(array))
                return array
            return alloc_fresh

        def alloc(shape: tuple, dtype: Any) -> Any:
            buf = buffers.get(slot)
            if buf is None or tuple(buf.shape) != tuple(shape) or buf.dtype != dtype:
                buf = buffers[slot] = cuda.device_array(shape, dtype)
            return buf
        return alloc

    def _build(self, step: Step) -> Run:
        node, slots = step.node, self.slots
        out = slots.get((node.uid, 0))
        ins = [slots[(s.uid, i)] for s, i in step.inputs]
        outs = [slots[(node.uid, i)] for i in range(len(node.specs))]
        kind = step.kind
        if kind == "feed":
            return _noop  # uploaded in __call__
        if kind == "variable":
            name, dtype = node.name, node.specs[0].dtype.np

            def variable(vals: list, state: MutableMapping, step_no: int) -> None:
                value = state[name]
                if not is_device(value) or value.dtype != dtype:
                    # Kernels trust dtypes: a user may have put another dtype in the state.
                    value = state[name] = to_device(np.asarray(to_host(value), dtype))
                vals[out] = value
            return variable
        if kind == "constant":
            host = node.attrs["value"].array
            uploaded: list = []

            def constant(vals: list, state: MutableMapping, step_no: int) -> None:
                if not uploaded:
                    uploaded.append(to_device(host))
                vals[out] = uploaded[0]
            return constant
        if kind == "alias":
            src = ins[1]
            return lambda vals, state, step_no: vals.__setitem__(out, vals[src])
        fallback = _fallback(node, outs, ins, self.ran)
        if kind == "library":
            return self._build_library(step, out, outs, ins, fallback)
        if kind == "fused":
            return self._build_fused(step, out, ins)
        return fallback

    def _build_library(self, step: Step, out: int, outs: list[int], ins: list[int],
                       fallback: Run) -> Run:
        node = step.node
        run = LIBRARY[node.op](node)
        alloc = self._alloc_for(out)
        ran = self.ran

        broken: list[str] = []

        def library(vals: list, state: MutableMapping, step_no: int) -> None:
            result = None
            if not broken:
                try:
                    result = _guard(node, lambda: run([to_device(vals[i]) for i in ins], alloc,
                                                      step_no))
                except GraphcError as err:  # e.g. a kernel this GPU cannot compile
                    broken.append(str(err))
                    warnings.warn(f"{err}; running it with NumPy", RuntimeWarning, stacklevel=2)
            if result is None:
                return fallback(vals, state, step_no)
            ran[node.name] = "kernel"
            for slot, value in zip(outs, result if isinstance(result, tuple) else (result,)):
                vals[slot] = value
        return library

    def _build_fused(self, step: Step, out: int, ins: list[int]) -> Run:
        kernel = FusedKernel(step)
        self.kernels.append(kernel)
        root = step.node
        dtype = root.specs[0].dtype.np
        alloc = self._alloc_for(out)
        ran = self.ran

        # A formula the CUDA compiler rejects (a NumPy function without a device version)
        # runs the group's refs on the host instead, once warned: same values, slower.
        members = [_fallback(m, [self.slots[(m.uid, 0)]],
                             [self.slots[(s.uid, i)] for s, i in m.inputs], ran)
                   for m in step.nodes]
        broken: list[str] = []

        def fused(vals: list, state: MutableMapping, step_no: int) -> None:
            if not broken:
                args = [to_device(vals[i]) for i in ins]
                shape = np.broadcast_shapes(*(tuple(a.shape) for a in args)) if args else ()
                dst = alloc(shape, dtype)
                try:
                    _guard(root, lambda: kernel(dst, args))
                    ran[root.name] = "kernel"
                    vals[out] = dst
                    return
                except GraphcError as err:
                    broken.append(str(err))
                    warnings.warn(f"{err}; running {root.name} "
                                  f"({' '.join(m.op for m in step.nodes)}) with NumPy",
                                  RuntimeWarning, stacklevel=2)
            for run in members:
                run(vals, state, step_no)
        return fused

    # -- running ------------------------------------------------------------------------

    def __call__(self, feeds: Sequence[np.ndarray], state: MutableMapping[str, Any],
                 step: int) -> list[np.ndarray]:
        return [np.array(to_host(value), copy=True) if not is_device(value)
                else value.copy_to_host()
                for value in self.run_on_device(feeds, state, step, own=False)]

    def run_on_device(self, feeds: Sequence[Any], state: MutableMapping[str, Any],
                      step: int, own: bool = True) -> list[Any]:
        """Run the plan; the fetched values on the device, not copied out (a scan's body
        runs this way, step after step). With ``own`` every fetched value is an array of
        its own, which no later run overwrites: a view of a reused buffer, a constant or a
        feed handed straight back is copied."""
        require_gpu()
        self.fresh.clear()
        vals: list[Any] = [None] * self.n_slots
        for slot, array in zip(self.feed_slots, feeds):
            vals[slot] = self._upload(slot, array)
        s = None
        try:  # (free when nothing is raised: the failing step is the loop variable)
            for s, run in zip(self.plan.steps, self.runs):
                run(vals, state, step)
                if self.check_nodes:
                    _check_finite(s, vals, self.slots)
        except GraphcError as err:
            raise err.at(s.node.location if s is not None else None)
        pending, written = [], set()
        for name, slot in self.write_slots:
            value = vals[slot]
            if value is state.get(name):
                continue
            if not is_device(value):
                value = to_device(value)
            elif id(value) not in self.fresh or id(value) in written:
                value = device_copy(value)  # a buffer, constant, feed, variable: not its own
            written.add(id(value))
            pending.append((name, value))
        state.update(pending)  # after every read: a run sees start-of-run values only
        fetched = [vals[slot] for slot in self.fetch_slots]
        if own:
            fetched = [v if id(v) in self.fresh else device_copy(to_device(v)) for v in fetched]
        return fetched

    def _upload(self, slot: int, value: Any) -> Any:
        """A feed on the device: a device array as is; a host array copied into the slot's
        persistent buffer (a feed is never handed out as is: fetches are copied to the host,
        writes and ``own`` results are copied on the device)."""
        return value if is_device(value) else self.feed_buffers.upload(slot, np.asarray(value))


def _through_aliases(plan: Plan, slots: dict, handed_out: set[int]) -> set[int]:
    """The handed-out slots and the slots whose value an ``assign`` among them hands out
    (followed back through chains): a variable's new value gets an array of its own where
    it is computed, instead of a copy at the end of the run."""
    result = set(handed_out)
    for step in reversed(plan.steps):
        if step.kind == "alias" and slots[(step.node.uid, 0)] in result:
            src, index = step.inputs[1]
            result.add(slots[(src.uid, index)])
    return result


def _noop(vals: list, state: MutableMapping, step_no: int) -> None:
    return None


def _check_finite(step: Step, vals: list, slots: dict) -> None:
    """GRAPHC_DEBUG=nodes: raise naming the node when its result holds a NaN or an Inf."""
    node = step.node
    for i, spec in enumerate(node.specs):
        v = vals[slots[(node.uid, i)]]
        if v is None or not spec.dtype.is_floating:
            continue
        v = to_host(v)
        if not np.all(np.isfinite(v)):
            what = "NaN" if np.isnan(v).any() else "Inf"
            where = f"\n  at {node.location}" if node.location else ""
            inputs = ", ".join(s.name for s, _ in node.inputs)
            raise GraphcError(f"GRAPHC_DEBUG=nodes: {node.name} ({node.op}) produced {what} "
                              f"from inputs ({inputs}){where}")


def _guard(node: Any, call: Callable[[], Any]) -> Any:
    """Run a kernel launch; a Numba error becomes a GraphcError naming the node."""
    try:
        return call()
    except GraphcError:
        raise
    except Exception as err:  # noqa: BLE001 - Numba's errors never reach users as tracebacks
        where = f"\n  at {node.location}" if getattr(node, "location", None) else ""
        raise GraphcError(f"graphc cuda: the kernel for {node.name} ({node.op}) failed: "
                          f"{first_line(err)}{where}") from None


def _fallback(node: Any, outs: list[int], ins: list[int], ran: dict) -> Run:
    """The host path: copy the inputs to the host, run the op's NumPy ref, copy back."""
    opdef = get_op(node.op)
    random = opdef.kind == Kind.RANDOM
    attrs = dict(node.attrs)
    dtypes = [s.dtype.np for s in node.specs]
    ref = opdef.ref

    def fallback(vals: list, state: MutableMapping, step_no: int) -> None:
        args = [to_host(vals[i]) for i in ins]
        with np.errstate(all="ignore"):
            result = ref(*args, **attrs, step=step_no) if random else ref(*args, **attrs)
        ran[node.name] = "fallback"
        for slot, dtype, value in zip(outs, dtypes, result if isinstance(result, tuple)
                                      else (result,)):
            value = np.asarray(value)
            vals[slot] = to_device(value if value.dtype == dtype else value.astype(dtype))
    return fallback
