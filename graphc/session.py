"""Running graphs: :class:`Session`, :class:`Executable` and :func:`compile`.

A session owns the variables' values (``state``) and a run counter (``step``, which keys
random draws). It compiles each distinct (fetches, feeds) signature once through its
target's backend and reuses it; the backends specialize on dtype and rank, never on sizes,
so a new batch size compiles nothing new. Runs from several threads are serialized (one
lock per session): compiled programs reuse their buffers from run to run, and the step
counter must count each run once.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from graphc.errors import FeedError, GraphError
from graphc.graph import Graph, Tensor, get_default_graph
from graphc.program import Program, build_program
from graphc.shapes import format_shape
from graphc.targets import get_backend, resolve_target

__all__ = ["Session", "Executable", "compile"]


class Session:
    """Runs fetches of ``graph`` on ``target`` ("reference" | "cpu" | "cuda" | "onnx";
    None: the default, ``cpu`` when built, else ``reference``)."""

    def __init__(self, graph: Optional[Graph] = None, target: Optional[str] = None,
                 compile_options: Optional[Mapping[str, Any]] = None) -> None:
        self.graph = graph or get_default_graph()
        self.target = resolve_target(target)
        # Passed to the backend's compile (e.g. cpu: explain=True, optimize=False).
        self.compile_options = dict(compile_options or {})
        self._backend = get_backend(self.target)
        self.state: dict[str, np.ndarray] = {}
        self.step = 0
        self._compiled: dict[tuple, tuple[Program, Callable]] = {}
        self._running = threading.RLock()  # _execute holds it around _initialize

    # -- the public interface ----------------------------------------------------------

    def run(self, fetches: Any, feed_dict: Optional[Mapping[Any, Any]] = None) -> Any:
        """Evaluate ``fetches`` (a tensor, op, name, or nested list/tuple/dict of them) and
        return the same structure of NumPy arrays (None for ops)."""
        flat, rebuild = _flatten(fetches)
        elements = [self.graph.as_graph_element(f) for f in flat]
        feed_dict = feed_dict or {}
        feed_tensors = [self._feed_key(k) for k in feed_dict]
        arrays = [check_feed(t, v) for t, v in zip(feed_tensors, feed_dict.values())]
        values = self._run(elements, feed_tensors, arrays)
        return rebuild(values)

    def make_callable(self, fetches: Any, feed_list: Sequence[Any] = ()) -> "Executable":
        """A function of the ``feed_list`` arrays that runs ``fetches`` in this session."""
        return Executable(self, fetches, feed_list)

    def close(self) -> None:
        """Release the compiled programs and the variables' values."""
        self._compiled.clear()
        self.state.clear()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<graphc.Session target={self.target!r}, {len(self.state)} variables>"

    # -- machinery ---------------------------------------------------------------------

    def _feed_key(self, key: Any) -> Tensor:
        element = self.graph.as_graph_element(key)
        if not isinstance(element, Tensor):
            raise FeedError(f"cannot feed operation {element.name}: feed tensors")
        return element

    def _program(self, elements: Sequence[Any], feeds: Sequence[Tensor]) -> tuple[Program, Callable]:
        key = (tuple(_key(e) for e in elements), tuple(_key(t) for t in feeds))
        entry = self._compiled.get(key)
        if entry is None:
            program = build_program(self.graph, elements, feeds)
            compiled = self._backend.compile(program, **_accepted(self._backend.compile,
                                                                  self.compile_options))
            entry = self._compiled[key] = (program, compiled)
        return entry

    def _run(self, elements: Sequence[Any], feeds: Sequence[Tensor],
             arrays: Sequence[np.ndarray]) -> list[Optional[np.ndarray]]:
        return self._execute(self._program(elements, feeds), elements, arrays)

    def _execute(self, entry: tuple[Program, Callable], elements: Sequence[Any],
                 arrays: Sequence[np.ndarray]) -> list[Optional[np.ndarray]]:
        program, compiled = entry
        with self._running:
            state = self.state
            if not state.keys() >= program.read_set:  # (a set comparison in C: batch 1 runs)
                self._initialize(program.reads)
            results = compiled(list(arrays), state, self.step)
            self.step += 1
        if len(program.fetches) == len(elements):  # every element a tensor
            return list(results)
        values = iter(results)
        return [next(values) if isinstance(e, Tensor) else None for e in elements]

    def _initialize(self, names: Sequence[str]) -> None:
        """Give uninitialized variables their initial values (computed at step 0)."""
        with self._running:
            missing = [self.graph.variables[n] for n in names if n not in self.state]
            if missing:
                program, compiled = self._program([v.initial_value for v in missing], [])
                for var, value in zip(missing, compiled([], self.state, 0)):
                    self.state[var.name] = np.array(value, copy=True)


class Executable:
    """A compiled (fetches, feeds) signature: call it with the feeds' arrays, positionally
    in ``inputs`` order or by placeholder name."""

    def __init__(self, session: Session, fetches: Any, feeds: Sequence[Any]) -> None:
        self.session = session
        flat, self._rebuild = _flatten(fetches)
        self._elements = [session.graph.as_graph_element(f) for f in flat]
        self.inputs: list[Tensor] = [session._feed_key(f) for f in feeds]
        self.outputs = [e for e in self._elements if isinstance(e, Tensor)]
        self._specs = [(t, t.dtype.np, t.shape) for t in self.inputs]  # for the checks per call
        self._entry = session._program(self._elements, self.inputs)  # compile now, errors now
        self._by_name = {t.name: i for i, t in enumerate(self.inputs)}
        self._by_name.update({t.node.name: i for i, t in enumerate(self.inputs)})

    @property
    def target(self) -> str:
        """The target this executable runs on."""
        return self.session.target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs and len(args) == len(self._specs):  # the common case, kept short
            arrays = []
            for (t, want, shape), v in zip(self._specs, args):
                if v is None:
                    break  # a missing input: the general path names it
                arrays.append(_checked_feed(t, want, shape, v))
            else:
                return self._rebuild(self.session._execute(self._entry, self._elements, arrays))
        values: list[Any] = list(args) + [None] * (len(self.inputs) - len(args))
        if len(args) > len(self.inputs):
            raise FeedError(f"expected {len(self.inputs)} inputs ({self._signature()}), "
                            f"got {len(args)}")
        for name, value in kwargs.items():
            if name not in self._by_name:
                raise FeedError(f"unknown input {name!r}; inputs: {self._signature()}")
            values[self._by_name[name]] = value
        for t, v in zip(self.inputs, values):
            if v is None:
                raise FeedError(f"missing input {t.name}; inputs: {self._signature()}")
        arrays = [check_feed(t, v) for t, v in zip(self.inputs, values)]
        return self._rebuild(self.session._execute(self._entry, self._elements, arrays))

    def _signature(self) -> str:
        return ", ".join(f"{t.name}: {t.dtype.name}{format_shape(t.shape)}" for t in self.inputs)

    def __repr__(self) -> str:
        return f"<graphc.Executable ({self._signature()}) on {self.target!r}>"


def compile(fetches: Any, feeds: Sequence[Any] = (), target: Optional[str] = None,  # noqa: A001
            graph: Optional[Graph] = None, explain: bool = False) -> Executable:
    """Compile ``fetches`` as a function of ``feeds`` on ``target``, with its own variables.
    ``explain=True`` prints what each optimization pass changed (targets that run passes)."""
    options = {"explain": True} if explain else None
    return Session(graph, target, compile_options=options).make_callable(fetches, feeds)


def _accepted(fn: Callable, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options ``fn`` takes (a target without passes ignores ``explain``)."""
    if not options:
        return {}
    import inspect

    params = inspect.signature(fn).parameters
    return {k: v for k, v in options.items() if k in params}


def check_feed(tensor: Tensor, value: Any) -> np.ndarray:
    """``value`` as an array of ``tensor``'s dtype, or FeedError naming what was expected.
    Same-kind conversions are made (float64 to float32, int to float); others are refused."""
    return _checked_feed(tensor, tensor.dtype.np, tensor.shape, value)


def _checked_feed(tensor: Tensor, want: np.dtype, shape: Optional[tuple], value: Any) -> np.ndarray:
    """:func:`check_feed` with the tensor's NumPy dtype and static shape looked up already."""
    array = value if type(value) is np.ndarray else np.asarray(value)
    if array.dtype != want:
        if array.dtype == object or not np.can_cast(array.dtype, want, "same_kind"):
            raise FeedError(f"feed for {tensor.name}: expected {_described(tensor)}, got a "
                            f"{array.dtype} array; convert it with .astype(np.{want.name})")
        array = array.astype(want)
    if shape is not None and (array.ndim != len(shape) or not _dims_fit(shape, array.shape)):
        raise FeedError(f"feed for {tensor.name}: expected shape {format_shape(shape)} "
                        f"({_described(tensor)}), got {tuple(array.shape)}")
    return array


def _dims_fit(shape: tuple, dims: tuple) -> bool:
    for d, n in zip(shape, dims):  # (a loop, not any(...): cheaper per call)
        if d is not None and d != n:
            return False
    return True


def _described(tensor: Tensor) -> str:
    return f"{tensor.dtype.name}{format_shape(tensor.shape)}"


def _key(element: Any) -> tuple[int, int]:
    return (element.node.id, element.index) if isinstance(element, Tensor) else (element.id, -1)


def _flatten(fetches: Any) -> tuple[list[Any], Callable[[list[Any]], Any]]:
    """The leaves of a nested fetch structure, and a function that rebuilds it from values."""
    if isinstance(fetches, Mapping):
        keys = list(fetches)
        parts = [_flatten(fetches[k]) for k in keys]
        return _join(parts, lambda vs: type(fetches)(zip(keys, vs)) if type(fetches) is not
                     dict else dict(zip(keys, vs)))
    if isinstance(fetches, (list, tuple)):
        parts = [_flatten(f) for f in fetches]
        if hasattr(fetches, "_fields"):  # a namedtuple
            return _join(parts, lambda vs: type(fetches)(*vs))
        return _join(parts, lambda vs: type(fetches)(vs))
    if fetches is None:
        raise GraphError("cannot fetch None")
    return [fetches], lambda values: values[0]


def _join(parts: list, make: Callable[[list[Any]], Any]) -> tuple[list[Any], Callable]:
    flat = [leaf for leaves, _ in parts for leaf in leaves]
    sizes = [len(leaves) for leaves, _ in parts]

    def rebuild(values: list[Any]) -> Any:
        out, i = [], 0
        for (_, sub), n in zip(parts, sizes):
            out.append(sub(values[i:i + n]))
            i += n
        return make(out)
    return flat, rebuild
