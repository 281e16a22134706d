"""Graph-level state the Keras frontend keeps per graph: the training flag, the logits
behind probability outputs, layer names and the seed stream for initial weights.

The training flag is one scalar ``bool`` placeholder per graph (``keras_learning_phase``),
created the first time a layer needs it (Dropout, BatchNormalization). ``fit`` feeds True,
``evaluate``/``predict`` feed False, so one compiled program serves each mode and switching
mode never recompiles. A model without such layers has no flag and needs no extra feed.
"""

from __future__ import annotations

import itertools
import re
import weakref
from typing import Optional

import numpy as np

import graphc as gc
from graphc.graph import Graph, Tensor

__all__ = ["learning_phase", "has_learning_phase", "register_layer", "layers_of",
           "session_for", "set_logits", "logits_of", "unique_layer_name",
           "set_random_seed", "next_seed"]

_FLAG_NAME = "keras_learning_phase"
_flags: "weakref.WeakKeyDictionary[Graph, Tensor]" = weakref.WeakKeyDictionary()
_logits: "weakref.WeakKeyDictionary[Graph, dict]" = weakref.WeakKeyDictionary()
_layers: "weakref.WeakKeyDictionary[Graph, list]" = weakref.WeakKeyDictionary()
_name_counts: dict[str, itertools.count] = {}
_seeds: list[Optional[np.random.Generator]] = [None]


def learning_phase(graph: Graph) -> Tensor:
    """The graph's training flag: a scalar bool placeholder (True while ``fit`` trains)."""
    flag = _flags.get(graph)
    if flag is None:
        with graph.as_default(), graph.name_scope(None):
            flag = _flags[graph] = gc.placeholder(gc.bool, shape=(), name=_FLAG_NAME)
    return flag


def has_learning_phase(graph: Graph) -> Optional[Tensor]:
    """The graph's training flag if a layer created one, else None."""
    return _flags.get(graph)


def register_layer(graph: Graph, layer: object) -> None:
    """Remember that ``layer`` built ops in ``graph`` (models find their layers here)."""
    layers = _layers.setdefault(graph, [])
    if not any(existing is layer for existing in layers):
        layers.append(layer)


def layers_of(graph: Graph) -> list:
    """The layers called in ``graph``, in the order of their first call."""
    return list(_layers.get(graph, []))


def session_for(graph: Graph, target: Optional[str] = None) -> "gc.Session":
    """The one session of ``graph`` shared by every model built in it (so a GAN's generator,
    discriminator and combined model see the same weights). Asking for another target
    moves the weights' values to a new session on that target."""
    sess = graph.__dict__.get("_keras_session")
    if sess is None or (target is not None and sess.target != target):
        new = gc.Session(graph, target=target)
        if sess is not None:
            new.state.update(sess.state)
            new.step = sess.step
        graph.__dict__["_keras_session"] = sess = new
    return sess


def set_logits(probabilities: Tensor, logits: Tensor) -> None:
    """Remember that ``probabilities`` = softmax/sigmoid(``logits``), so a cross-entropy loss
    can use the logits (stable, exact gradients), as Keras does for its outputs."""
    _logits.setdefault(probabilities.graph, {})[(probabilities.node.id, probabilities.index)] = logits


def logits_of(probabilities: Tensor) -> Optional[Tensor]:
    """The logits recorded for ``probabilities`` by :func:`set_logits`, or None."""
    return _logits.get(probabilities.graph, {}).get((probabilities.node.id, probabilities.index))


def unique_layer_name(base: str) -> str:
    """``base``, ``base_1``, ``base_2``... (Keras's layer naming, per process)."""
    counter = _name_counts.setdefault(base, itertools.count())
    n = next(counter)
    return base if n == 0 else f"{base}_{n}"


def snake_case(name: str) -> str:
    """``"BatchNormalization"`` -> ``"batch_normalization"`` (default layer names)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower().replace("2_d", "2d")


def set_random_seed(seed: Optional[int]) -> None:
    """Make initial weights (and shuffling in ``fit``) reproducible: every weight created
    after this call draws its seed from one stream started at ``seed`` (None: fresh entropy)."""
    _seeds[0] = None if seed is None else np.random.default_rng(seed)


def next_seed() -> Optional[int]:
    """A seed for the next initializer or shuffle, from the stream of :func:`set_random_seed`."""
    rng = _seeds[0]
    return None if rng is None else int(rng.integers(0, 2**31 - 1))
