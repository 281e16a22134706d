"""``gc.Signature``: what a model file asks graphc to compile.

A signature names a model's inputs (placeholders), its outputs (tensors) and, for a model
that trains, its updates (train ops such as ``opt.minimize(loss)``)::

    def build():
        x = gc.placeholder(gc.float32, (None, 784), name="x")
        ...
        return gc.Signature(inputs=[x], outputs={"probs": probs}, updates=[train_op])

Inputs and outputs may be one tensor, a list of tensors (each keeps its own name) or a
dict ``public name -> tensor``. The public names are what ``graphc run --input NAME=...``
and a loaded bundle's keyword arguments use.

:func:`as_signature` also accepts a Keras-like model, recognized by duck typing: any object
with ``.inputs`` and ``.outputs`` lists of graphc tensors (and optionally ``.updates``, a
list of train ops or tensors, ``.training_flag``, a bool placeholder that is then fed
False on every run: ``fixed``, ``.inference_outputs()``, the outputs rebuilt without that
flag, used instead of ``.outputs`` when there is a flag, and ``.checkpoint_keys``, a dict
from the keys of its weight files to variable names: ``checkpoint_keys``).
``gc.keras.Model`` fits this.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Union

import numpy as np

from graphc.errors import GraphError
from graphc.graph import Graph, Node, Tensor
from graphc.shapes import format_shape

__all__ = ["Signature", "is_keras_like", "as_signature"]

Tensors = Union[Tensor, list, tuple, Mapping[str, Tensor]]


def _named(value: Any, what: str) -> dict[str, Tensor]:
    """``value`` (a tensor, a list of them or a dict name -> tensor) as an ordered dict."""
    if isinstance(value, Tensor):
        items = [(value.name, value)]
    elif isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = [(getattr(t, "name", None), t) for t in value]
    else:
        raise GraphError(f"Signature {what} must be a tensor, a list of tensors or a dict "
                         f"name -> tensor, got {type(value).__name__}")
    out: dict[str, Tensor] = {}
    for name, t in items:
        if not isinstance(t, Tensor):
            raise GraphError(f"Signature {what}: {t!r:.60} is not a graphc tensor")
        if not isinstance(name, str) or not name:
            raise GraphError(f"Signature {what}: names must be non-empty strings, got {name!r}")
        if name in out:
            raise GraphError(f"Signature {what}: the name {name!r} is used twice; pass a dict "
                             "to give the tensors distinct names")
        out[name] = t
    return out


class Signature:
    """A model's inputs, outputs and (optional) training updates, by public name."""

    def __init__(self, inputs: Tensors = (), outputs: Tensors = (),
                 updates: Any = (), fixed: Optional[Mapping[Tensor, Any]] = None,
                 checkpoint_keys: Optional[Mapping[str, str]] = None) -> None:
        self.inputs: dict[str, Tensor] = _named(inputs, "inputs")
        self.outputs: dict[str, Tensor] = _named(outputs, "outputs")
        if not self.outputs:
            raise GraphError("Signature: give at least one output tensor")
        if isinstance(updates, (Node, Tensor)):
            updates = [updates]
        self.updates: list[Union[Node, Tensor]] = []
        for u in updates or ():
            if not isinstance(u, (Node, Tensor)):
                raise GraphError(f"Signature updates must be train ops or tensors, got {u!r:.60}")
            self.updates.append(u)
        graph = self.graph
        for t in [*self.inputs.values(), *self.outputs.values(), *self.updates]:
            if t.graph is not graph:
                raise GraphError(f"Signature: {t.name} belongs to another graph than "
                                 f"{next(iter(self.outputs.values())).name}")
        for name, t in self.inputs.items():
            if t.node.op != "placeholder":
                raise GraphError(f"Signature input {name!r} is {t.name} ({t.node.op}); "
                                 "inputs must be placeholders")
        # Placeholders fed a fixed value on every run (a Keras model's training flag: False).
        self.fixed: dict[Tensor, np.ndarray] = {}
        for t, value in (fixed or {}).items():
            if not isinstance(t, Tensor) or t.graph is not graph or t.node.op != "placeholder":
                raise GraphError(f"Signature fixed: {t!r:.60} is not a placeholder of the graph")
            if any(t is i for i in self.inputs.values()):
                raise GraphError(f"Signature fixed: {t.name} is also an input")
            self.fixed[t] = np.asarray(value, dtype=t.dtype.np)
        # Keys of the model's own weight files (Keras's save_weights: "0/kernel") -> variable
        # names, so `graphc compile --weights` reads those files as well as Saver's.
        self.checkpoint_keys: dict[str, str] = dict(checkpoint_keys or {})
        unknown = sorted(set(self.checkpoint_keys.values()) - set(graph.variables))
        if unknown:
            raise GraphError(f"Signature checkpoint_keys name no variable: {', '.join(unknown)}")

    @property
    def graph(self) -> Graph:
        """The graph every tensor of the signature belongs to."""
        return next(iter(self.outputs.values())).graph

    def with_outputs(self, names: list[str]) -> "Signature":
        """The same inputs and updates, with the outputs replaced by the graph's tensors of
        these names (``graphc compile --output NAME``)."""
        graph = self.graph
        outputs = {n: graph.get_tensor_by_name(n) for n in names}
        return Signature(self.inputs, outputs, self.updates, self.fixed, self.checkpoint_keys)

    def describe(self) -> str:
        """A few lines: each input and output with its dtype and shape (None = any size)."""
        lines = ["inputs:"] + [f"  {n}: {_spec(t)}" for n, t in self.inputs.items()]
        lines += ["outputs:"] + [f"  {n}: {_spec(t)}" for n, t in self.outputs.items()]
        if self.updates:
            lines.append("updates: " + ", ".join(u.name for u in self.updates))
        if self.fixed:
            lines.append("fixed: " + ", ".join(f"{t.name}={v.tolist()}"
                                               for t, v in self.fixed.items()))
        return "\n".join(lines)

    def __repr__(self) -> str:
        ins = ", ".join(f"{n}: {_spec(t)}" for n, t in self.inputs.items())
        outs = ", ".join(f"{n}: {_spec(t)}" for n, t in self.outputs.items())
        extra = f", {len(self.updates)} updates" if self.updates else ""
        return f"<gc.Signature ({ins}) -> ({outs}){extra}>"


def _spec(t: Tensor) -> str:
    return f"{t.dtype.name}{format_shape(t.shape)}"


def is_keras_like(obj: Any) -> bool:
    """True for an object with ``.inputs`` and ``.outputs`` lists of graphc tensors (a
    ``gc.keras.Model``, or anything shaped like one)."""
    if isinstance(obj, (Signature, type)):
        return False
    try:
        inputs, outputs = getattr(obj, "inputs", None), getattr(obj, "outputs", None)
    except Exception:  # noqa: BLE001 - a property that fails means "not a model"
        return False
    return (isinstance(inputs, (list, tuple)) and isinstance(outputs, (list, tuple))
            and bool(outputs) and all(isinstance(t, Tensor) for t in [*inputs, *outputs]))


def as_signature(obj: Any) -> Optional[Signature]:
    """``obj`` as a Signature if it is one or is Keras-like, else None."""
    if isinstance(obj, Signature):
        return obj
    if is_keras_like(obj):
        updates = getattr(obj, "updates", None)
        ok = isinstance(updates, (list, tuple)) and all(
            isinstance(u, (Node, Tensor)) for u in updates)
        flag = getattr(obj, "training_flag", None)  # gc.keras: Dropout/BatchNorm's switch
        fixed = {flag: False} if isinstance(flag, Tensor) else None
        keys = getattr(obj, "checkpoint_keys", None)
        # The outputs without the training flag where the model offers them (gc.keras: the
        # layers replayed with training=False): the same values as the outputs with the
        # flag fed False, but no dropout or batch-statistics branch left in the plan.
        replay = getattr(obj, "inference_outputs", None)
        outputs: Any = list(obj.outputs)
        if callable(replay) and fixed:  # (public names: the original outputs')
            outputs = dict(zip((t.name for t in outputs), replay()))
        return Signature(list(obj.inputs), outputs, list(updates) if ok else (), fixed,
                         keys if isinstance(keys, Mapping) else None)
    return None
