"""The :class:`Layer` base: weights as ``gc.Variable`` s, built on first call, shared on
later calls.

A layer is called on graphc Tensors (``Dense(10)(x)``) and builds graph ops right away, in
the inputs' graph: there is no separate symbolic layer graph. On its first call it creates
its weights (``build``), named ``"{layer name}/{weight name}"`` at the graph's root scope;
later calls reuse them (shared layers). Each call records its outputs, which lets a
:class:`~graphc.frontends.keras.models.Model` find the layers between its inputs and outputs.

Layers take images channels-first (NCHW), graphc's layout; see the conv layers.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

import graphc as gc
from graphc.errors import GraphError, ShapeError
from graphc.graph import Graph, Tensor
from graphc.shapes import format_shape
from graphc.frontends.keras import backend

__all__ = ["Layer", "get_activation", "get_initializer", "get_regularizer", "as_list"]

_ACTIVATIONS = {
    "linear": None, None: None, "relu": gc.nn.relu, "relu6": gc.nn.relu6,
    "sigmoid": gc.nn.sigmoid, "tanh": gc.nn.tanh, "softmax": gc.nn.softmax,
    "log_softmax": gc.nn.log_softmax, "elu": gc.nn.elu, "selu": gc.nn.selu,
    "gelu": gc.nn.gelu, "softplus": gc.nn.softplus, "leaky_relu": gc.nn.leaky_relu,
}


def get_activation(identifier: Any) -> Optional[Callable[[Tensor], Tensor]]:
    """An activation by Keras name (``"relu"``, ``"softmax"``...), a callable, or None."""
    if callable(identifier):
        return identifier
    if identifier in _ACTIVATIONS:
        return _ACTIVATIONS[identifier]
    names = ", ".join(sorted(repr(k) for k in _ACTIVATIONS if k is not None))
    raise ValueError(f"unknown activation {identifier!r}; use one of {names}, or a callable")


def activate(activation: Optional[Callable], pre: Tensor) -> Tensor:
    """``activation(pre)``, remembering ``pre`` as the logits of a softmax/sigmoid output."""
    if activation is None:
        return pre
    out = activation(pre)
    if activation in (gc.nn.softmax, gc.nn.sigmoid, gc.sigmoid):
        backend.set_logits(out, pre)
    return out


def get_initializer(identifier: Any) -> Callable[..., np.ndarray]:
    """An initializer by name (``"he_normal"``; Keras's ``"GlorotUniform"`` spelling too) or a
    ``gc.init``-style callable ``(shape, dtype, seed) -> ndarray``."""
    if isinstance(identifier, str) and identifier not in gc.init.__all__:
        identifier = backend.snake_case(identifier)
    return gc.init.get(identifier)


def get_regularizer(identifier: Any) -> Optional[Callable[[Tensor], Tensor]]:
    """None, a callable (``gc.regularizers.l2(1e-4)``), or ``"l1"`` / ``"l2"`` / ``"l1_l2"``
    with Keras's default factor 0.01."""
    if identifier is None or callable(identifier):
        return identifier
    named = {"l1": lambda: gc.regularizers.l1(0.01), "l2": lambda: gc.regularizers.l2(0.01),
             "l1_l2": lambda: gc.regularizers.l1_l2(0.01, 0.01)}
    if identifier in named:
        return named[identifier]()
    raise ValueError(f"unknown regularizer {identifier!r}; use 'l1', 'l2', 'l1_l2' or a "
                     "gc.regularizers callable")


def as_list(x: Any) -> list:
    """``x`` as a list (a single item becomes ``[x]``)."""
    return list(x) if isinstance(x, (list, tuple)) else [x]


class Layer:
    """Base class: override ``build(input_shape)`` (create weights with :meth:`add_weight`)
    and ``call(inputs, training)`` (build the ops; ``training`` is a bool Tensor or a
    Python bool). ``input_shape=`` (without the batch axis) on a Sequential model's first
    layer fixes the model's input."""

    needs_training_flag = False  # layers whose call depends on training (Dropout, BN)

    def __init__(self, name: Optional[str] = None, trainable: bool = True,
                 input_shape: Optional[Sequence[Optional[int]]] = None, dtype: Any = None,
                 **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected arguments {sorted(kwargs)}")
        self.name = name or backend.unique_layer_name(backend.snake_case(type(self).__name__))
        self.trainable = bool(trainable)
        self.input_shape_arg = None if input_shape is None else tuple(input_shape)
        self.dtype = gc.as_dtype(dtype or gc.float32)
        self.built = False
        self.graph: Optional[Graph] = None
        self._weights: list[gc.Variable] = []
        self._trainable_flags: list[bool] = []
        self.losses: list[Tensor] = []       # regularization penalties (scalars)
        self.updates: list[Tensor] = []  # assigns to run with each training step
        self.calls: list[tuple[list[Tensor], list[Tensor]]] = []  # (inputs, outputs) per call

    # -- weights ---------------------------------------------------------------------------

    def add_weight(self, name: str, shape: Sequence[int], initializer: Any = "glorot_uniform",
                   regularizer: Any = None, trainable: bool = True) -> gc.Variable:
        """A new variable ``"{layer}/{name}"`` of ``shape``, initialized by ``initializer``;
        a regularizer's penalty is added to :attr:`losses`."""
        init = get_initializer(initializer)
        value = init(tuple(int(d) for d in shape), self.dtype, seed=backend.next_seed())
        graph = self.graph
        with graph.as_default(), graph.name_scope(None):
            var = gc.Variable(value, name=f"{self.name}/{name}", trainable=trainable)
            reg = get_regularizer(regularizer)
            if reg is not None:
                with graph.name_scope(f"{self.name}/regularizer"):
                    self.losses.append(reg(var))
        self._weights.append(var)
        self._trainable_flags.append(trainable)
        return var

    @property
    def weights(self) -> list[gc.Variable]:
        """All the layer's variables, in creation order."""
        return list(self._weights)

    @property
    def trainable_weights(self) -> list[gc.Variable]:
        """The variables the optimizer updates (none while ``layer.trainable`` is False, so a
        GAN can freeze a discriminator before compiling the combined model)."""
        if not self.trainable:
            return []
        return [w for w, t in zip(self._weights, self._trainable_flags) if t]

    @property
    def non_trainable_weights(self) -> list[gc.Variable]:
        """The other variables (e.g. batch-norm moving statistics)."""
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self._weights if id(w) not in trainable]

    def count_params(self) -> int:
        """The number of scalars in the layer's weights."""
        return int(sum(int(np.prod(w.shape)) for w in self._weights))

    # -- calling ---------------------------------------------------------------------------

    def build(self, input_shape: Any) -> None:
        """Create the weights for inputs of ``input_shape`` (a tuple, or a list for several)."""

    def call(self, inputs: Any, training: Any = None) -> Any:
        """The layer's computation on Tensors."""
        raise NotImplementedError

    def __call__(self, inputs: Any, training: Any = None) -> Any:
        tensors = as_list(inputs)
        for t in tensors:
            if not isinstance(t, Tensor):
                raise TypeError(f"layer {self.name}: inputs must be graphc Tensors (e.g. from "
                                f"gc.keras.Input), got {type(t).__name__}")
        graph = tensors[0].graph
        if self.graph is None:
            self.graph = graph
        elif self.graph is not graph:
            raise GraphError(f"layer {self.name} was built in another graph; a layer's "
                             "weights live in one graph, create a new layer instead")
        shapes = [t.shape for t in tensors]
        if not self.built:
            self.build(shapes if isinstance(inputs, (list, tuple)) else shapes[0])
            self.built = True
        if training is None and self.needs_training_flag:
            training = backend.learning_phase(graph)
        backend.register_layer(graph, self)
        n_updates = len(graph.get_collection("update_ops"))
        with graph.as_default(), graph.name_scope(self.name):
            outputs = self.call(inputs, training=training)
        # ops like batch_norm put their moving-statistics assigns in "update_ops"
        self.updates.extend(graph.get_collection("update_ops")[n_updates:])
        self.calls.append((tensors, as_list(outputs)))
        return outputs

    def check_rank(self, shape: Any, rank: int, what: str) -> None:
        """Raise a ShapeError naming the layer when ``shape`` is not of ``rank``."""
        if shape is None or len(shape) != rank:
            raise ShapeError(f"layer {self.name} ({type(self).__name__}) expects {what} "
                             f"(rank {rank}), got an input of shape {format_shape(shape)}")

    def get_config(self) -> dict:
        """The constructor arguments that matter for ``summary`` and debugging."""
        return {"name": self.name, "trainable": self.trainable}

    def __repr__(self) -> str:
        return f"<gc.keras.layers.{type(self).__name__} {self.name!r}>"
