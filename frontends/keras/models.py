"""``Input``, the functional :class:`Model` and :class:`Sequential`.

A model is a view of one graphc graph: its ``inputs`` are placeholders, its ``outputs``
tensors built by layers (so the CLI and ``gc.onnx.export`` can take ``model.inputs`` /
``model.outputs`` as they are). Its weights' values live in the model's ``gc.Session``
(``model.session``), created on first use on the target given to ``compile``.
Training is in :mod:`graphc.frontends.keras.training`.

Weight files (``save_weights``) are ``.npz`` (no pickle), written atomically, with keys
``"{layer index}/{weight}"`` (e.g. ``"0/kernel"``), so a file fits any model built the same
way, whatever its layers happen to be named in this process.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Sequence

import numpy as np

import graphc as gc
from graphc.checkpoint import load_variables, save_variables
from graphc.errors import CheckpointError, GraphError
from graphc.graph import Graph, Tensor
from graphc.shapes import format_shape
from graphc.frontends.keras import backend
from graphc.frontends.keras.layers.base import Layer, as_list
from graphc.frontends.keras.training import TrainingMixin

__all__ = ["Input", "Model", "Sequential"]


def Input(shape: Sequence[Optional[int]], dtype: Any = gc.float32, name: Optional[str] = None,
          batch_size: Optional[int] = None) -> Tensor:
    """A placeholder of shape ``(batch_size, *shape)`` in the default graph (a model's input)."""
    if isinstance(shape, int):
        shape = (shape,)
    return gc.placeholder(dtype, (batch_size, *shape), name=name or "input")


class Model(TrainingMixin):
    """``Model(inputs, outputs)``: the layers between placeholders and output tensors."""

    def __init__(self, inputs: Any = None, outputs: Any = None, name: Optional[str] = None) -> None:
        self.name = name or backend.unique_layer_name("model")
        self._target: Optional[str] = None
        self.stop_training = False
        self.compiled = False
        self._inference: Optional[list[Tensor]] = None
        if inputs is not None or outputs is not None:
            self._init_graph(as_list(inputs), as_list(outputs))

    # -- structure -------------------------------------------------------------------------

    def _init_graph(self, inputs: list, outputs: list) -> None:
        for t in inputs + outputs:
            if not isinstance(t, Tensor):
                raise TypeError(f"Model: inputs and outputs must be graphc Tensors, got "
                                f"{type(t).__name__}")
        for t in inputs:
            if t.node.op != "placeholder":
                raise GraphError(f"Model: input {t.name} is not a placeholder; create inputs "
                                 "with gc.keras.Input(shape)")
        graph = inputs[0].graph
        if any(t.graph is not graph for t in inputs + outputs):
            raise GraphError("Model: inputs and outputs belong to different graphs")
        self._graph: Graph = graph
        self._inputs, self._outputs = list(inputs), list(outputs)
        ancestors = _ancestors(outputs, stop={t.node.id for t in inputs})
        missing = [t for t in inputs if t.node.id not in ancestors]
        if missing:
            raise GraphError("Model: the outputs do not depend on input(s) "
                             + ", ".join(t.name for t in missing))
        self._calls = []  # (layer, inputs, outputs) in build order
        for layer in backend.layers_of(graph):
            for ins, outs in layer.calls:
                if any(o.node.id in ancestors for o in outs):
                    self._calls.append((layer, ins, outs))
        self._calls.sort(key=lambda c: min(o.node.id for o in c[2]))
        self.layers: list[Layer] = []
        for layer, _, _ in self._calls:
            if not any(layer is seen for seen in self.layers):
                self.layers.append(layer)

    @property
    def graph(self) -> Graph:
        """The graph the model's ops are in."""
        self._ensure_built()
        return self._graph

    @property
    def inputs(self) -> list[Tensor]:
        """The input placeholders."""
        return self._inputs

    @property
    def outputs(self) -> list[Tensor]:
        """The output tensors."""
        return self._outputs

    @property
    def training_flag(self) -> Optional[Tensor]:
        """The bool placeholder the outputs depend on (Dropout/BatchNormalization), or None;
        feed it False to run ``outputs`` outside ``predict``."""
        flag = backend.has_learning_phase(self.graph)
        return flag if flag is not None and flag.node.id in _ancestors(self.outputs) else None

    @property
    def updates(self) -> list[Tensor]:
        """The assigns a training step runs besides the optimizer's (batch-norm statistics)."""
        return [u for layer in self.layers for u in layer.updates]

    def inference_outputs(self) -> list[Tensor]:
        """The outputs without the training flag: :attr:`outputs` when they do not depend on
        it, else the layers replayed once on the inputs with ``training=False`` (the same
        weights; dropout is the identity, batch norm uses its moving statistics)."""
        if self.training_flag is None:
            return self.outputs
        if self._inference is None:
            with self.graph.as_default():
                args = self.inputs if len(self.inputs) > 1 else self.inputs[0]
                self._inference = as_list(self(args, training=False))
        return self._inference

    @property
    def weights(self) -> list[gc.Variable]:
        """Every weight of every layer, in layer order."""
        self._ensure_built()
        return _unique(w for layer in self.layers for w in layer.weights)

    @property
    def trainable_weights(self) -> list[gc.Variable]:
        """The weights the optimizer updates."""
        self._ensure_built()
        return _unique(w for layer in self.layers for w in layer.trainable_weights)

    @property
    def non_trainable_weights(self) -> list[gc.Variable]:
        """The other weights (batch-norm moving statistics, frozen layers)."""
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    @property
    def losses(self) -> list[Tensor]:
        """The layers' regularization penalties."""
        return [loss for layer in self.layers for loss in layer.losses]

    def count_params(self) -> int:
        """The number of scalars in the model's weights."""
        return int(sum(int(np.prod(w.shape)) for w in self.weights))

    def get_layer(self, name: Optional[str] = None, index: Optional[int] = None) -> Layer:
        """A layer by name or by index."""
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; layers: "
                         + ", ".join(layer.name for layer in self.layers))

    def __call__(self, inputs: Any, training: Any = None) -> Any:
        """Apply the model to new tensors of the same graph, sharing its weights (replays
        its layer calls), e.g. ``discriminator(generator(z))``."""
        new = as_list(inputs)
        if len(new) != len(self.inputs):
            raise ValueError(f"model {self.name} takes {len(self.inputs)} inputs, got {len(new)}")
        mapping = {(t.node.id, t.index): n for t, n in zip(self.inputs, new)}
        for layer, ins, outs in self._calls:
            args = [mapping.get((t.node.id, t.index)) for t in ins]
            if any(a is None for a in args):
                raise GraphError(f"model {self.name}: cannot replay layer {layer.name}: one of "
                                 "its inputs is not computed from the model's inputs")
            result = as_list(layer(args if len(ins) > 1 else args[0], training=training))
            mapping.update({(o.node.id, o.index): r for o, r in zip(outs, result)})
        results = [mapping[(t.node.id, t.index)] for t in self.outputs]
        return results if len(results) > 1 else results[0]

    # -- values ----------------------------------------------------------------------------

    @property
    def session(self) -> gc.Session:
        """The session holding the weights' values: one per graph, shared by the models
        built in it, on the target given to ``compile`` (created on first use)."""
        return backend.session_for(self.graph, self._target)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights' values, in :attr:`weights` order."""
        weights = self.weights
        sess = self.session
        sess._initialize([w.node.name for w in weights])
        return [np.array(sess.state[w.node.name], copy=True) for w in weights]

    def set_weights(self, values: Sequence[np.ndarray]) -> None:
        """Set the weights from arrays in :attr:`weights` order (shapes must match)."""
        weights = self.weights
        if len(values) != len(weights):
            raise ValueError(f"set_weights: the model has {len(weights)} weights, got "
                             f"{len(values)} arrays")
        arrays = []
        for w, v in zip(weights, values):
            a = np.asarray(v)
            if tuple(a.shape) != tuple(w.shape):
                raise ValueError(f"set_weights: {w.name} has shape {format_shape(w.shape)}, "
                                 f"got an array of shape {a.shape}")
            arrays.append(np.array(a, dtype=w.dtype.np, copy=True, order="C"))
        self.session._initialize([w.node.name for w in weights])
        for w, a in zip(weights, arrays):
            self.session.state[w.node.name] = a

    def _weight_keys(self) -> list[tuple[str, gc.Variable]]:
        self._ensure_built()
        keys, seen = [], set()
        for i, layer in enumerate(self.layers):
            for w in layer.weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    keys.append((f"{i}/{w.node.name.rsplit('/', 1)[-1]}", w))
        return keys

    @property
    def checkpoint_keys(self) -> dict[str, str]:
        """Each key of a :meth:`save_weights` file -> the name of its variable in the graph
        (so ``graphc compile model.py --weights FILE`` reads those files too)."""
        return {key: w.node.name for key, w in self._weight_keys()}

    def save_weights(self, filepath: Any) -> str:
        """Write the weights to the ``.npz`` file ``filepath`` atomically; returns the path."""
        pairs = self._weight_keys()
        return save_variables(filepath, dict(zip((k for k, _ in pairs), self.get_weights())))

    def load_weights(self, filepath: Any) -> None:
        """Read weights written by :meth:`save_weights` (no pickle); every weight must be
        there with its shape, or nothing changes and CheckpointError says what differs."""
        path = os.fspath(filepath)
        arrays = load_variables(path)
        pairs = self._weight_keys()
        problems = [f"{k}: missing" for k, _ in pairs if k not in arrays]
        problems += [f"{k}: shape {list(arrays[k].shape)} in the file, {format_shape(w.shape)} "
                     f"in the model" for k, w in pairs
                     if k in arrays and tuple(arrays[k].shape) != tuple(w.shape)]
        extra = set(arrays) - {k for k, _ in pairs}
        if extra:
            problems.append("entries for no weight of this model: " + ", ".join(sorted(extra)))
        if problems:
            raise CheckpointError(f"{path} does not fit model {self.name}:\n  "
                                  + "\n  ".join(problems))
        self.set_weights([arrays[k] for k, _ in pairs])

    def export_onnx(self, path: Any, opset: Optional[int] = None) -> Any:
        """Write the model in inference mode (current weights) as ONNX via
        ``gc.onnx.export``; returns the ONNX model."""
        try:
            from graphc import onnx as gc_onnx
            export = gc_onnx.export
        except (ImportError, AttributeError):
            raise NotImplementedError("export_onnx needs gc.onnx.export, which this build of "
                                      "graphc does not have yet") from None
        outputs = self.inference_outputs()
        return export(os.fspath(path), self.inputs, outputs, session=self.session, opset=opset)

    # -- display ---------------------------------------------------------------------------

    def summary(self, print_fn: Callable[[str], Any] = print) -> str:
        """Print (and return) a table: each layer, its output shape and parameter count."""
        self._ensure_built()
        rows = [("Layer (type)", "Output Shape", "Param #")]
        for t in self.inputs:
            rows.append((f"{t.node.name} (Input)", format_shape(t.shape), "0"))
        for layer in self.layers:
            outs = layer.calls[-1][1]
            shape = ", ".join(format_shape(o.shape) for o in outs)
            rows.append((f"{layer.name} ({type(layer).__name__})", shape,
                         f"{layer.count_params():,}"))
        widths = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
        line = "_" * sum(widths)
        out = [f'Model: "{self.name}"', line]
        for i, r in enumerate(rows):
            out.append("".join(c.ljust(w) for c, w in zip(r, widths)))
            out.append("=" * sum(widths) if i == 0 else line)
        trainable = sum(int(np.prod(w.shape)) for w in self.trainable_weights)
        total = self.count_params()
        out += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                f"Non-trainable params: {total - trainable:,}", line]
        text = "\n".join(out)
        print_fn(text)
        return text

    def __repr__(self) -> str:
        return f"<gc.keras.{type(self).__name__} {self.name!r}>"


class Sequential(Model):
    """A stack of layers, each applied to the previous one's output.

    The input comes from ``input_shape=`` on the first layer, a leading ``gc.keras.Input``
    tensor, or the first data given to ``fit``/``predict``/``build``. The model is built
    (in its own graph, unless an ``Input`` gives one) the first time it is needed.
    """

    def __init__(self, layers: Optional[Sequence[Any]] = None, name: Optional[str] = None) -> None:
        super().__init__(name=name or backend.unique_layer_name("sequential"))
        self._pending: list[Layer] = []
        self.layers = self._pending  # until built; then the layers found in the graph
        self._input: Optional[Tensor] = None
        self._built = False
        for layer in layers or []:
            self.add(layer)

    def add(self, layer: Any) -> None:
        """Append a layer (or, first, an ``Input`` tensor)."""
        if self._built:
            raise GraphError(f"{self.name} is already built; add every layer before compile, "
                             "fit, predict or summary")
        if isinstance(layer, Tensor):
            if self._pending or self._input is not None:
                raise ValueError("Sequential: an Input tensor may only come first")
            self._input = layer
        elif isinstance(layer, Layer):
            self._pending.append(layer)
        else:
            raise TypeError(f"Sequential.add: expected a layer, got {type(layer).__name__}")

    def build(self, input_shape: Optional[Sequence[Optional[int]]] = None) -> None:
        """Build the graph for inputs of ``input_shape`` (with the batch axis)."""
        if self._built:
            return
        if not self._pending:
            raise ValueError(f"{self.name} has no layers")
        x = self._input
        if x is None:
            first = self._pending[0].input_shape_arg
            if first is not None:
                input_shape = (None, *first)
            if input_shape is None:
                raise ValueError(f"{self.name}: the input shape is unknown; give the first "
                                 "layer input_shape=, start with gc.keras.Input(shape), or "
                                 "call fit/predict/build first")
            graph = gc.Graph()
            with graph.as_default():
                x = gc.placeholder(gc.float32, (None, *tuple(input_shape)[1:]), name="input")
        inp = x
        for layer in self._pending:
            x = layer(x)
        self._built = True
        self._init_graph([inp], [x])

    @property
    def inputs(self) -> list[Tensor]:
        self.build()
        return self._inputs

    @property
    def outputs(self) -> list[Tensor]:
        self.build()
        return self._outputs

    def _ensure_built(self, x: Any = None) -> None:
        if not self._built:
            self.build(None if x is None else np.shape(as_list(x)[0]))

    def _can_build(self) -> bool:
        return (self._built or self._input is not None
                or bool(self._pending) and self._pending[0].input_shape_arg is not None)


def _ancestors(outputs: Sequence[Tensor], stop: set = frozenset()) -> set[int]:
    """Node ids of ``outputs`` and everything they depend on (not walking past ``stop``)."""
    seen: set[int] = set()
    stack = [t.node for t in outputs]
    while stack:
        node = stack.pop()
        if node.id in seen:
            continue
        seen.add(node.id)
        if node.id not in stop:
            stack.extend(t.node for t in node.inputs)
    return seen


def _unique(items: Any) -> list:
    out, seen = [], set()
    for item in items:
        if id(item) not in seen:
            seen.add(id(item))
            out.append(item)
    return out
