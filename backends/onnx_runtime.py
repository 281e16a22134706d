"""The ``onnx`` target: a program exported to ONNX and run by onnxruntime.

A program is a pure step function, and that is what gets exported (see
:func:`graphc.backends.onnx_export.export_model`): its inputs are the feeds, the variables it
reads (weights *and* optimizer slots) and any random draws; its outputs are the fetches and
the variables' new values (``<variable>/new``). graphc keeps the state between runs, so a
training graph (graphc's symbolic backward graph plus the optimizer's updates) trains on
onnxruntime exactly as on the other targets.

Providers: the CUDA provider when onnxruntime offers it *and* a GPU and the CUDA libraries
it needs are present, else the CPU provider. The check is quiet: the device nodes must
exist and the CUDA provider's shared library must load with ``ctypes`` (which fails, without
printing anything, when cuDNN/cuBLAS are missing), instead of letting onnxruntime try and log
a failure. ``GRAPHC_ONNX_PROVIDERS=CPUExecutionProvider`` (comma-separated) overrides.

Random ops: ONNX's RandomUniform/RandomNormal cannot reproduce graphc's Philox numbers, so
the target computes each draw in graphc (:mod:`graphc.random_bits`, keyed by the session's
step as on every target) and feeds it to the model. A draw shaped like a computed tensor
(dropout's mask) takes its size from graphc's shape inference run on the concrete feed and
variable shapes; if that cannot determine it (a value-dependent shape), the run is refused
with the node named.
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import Any, MutableMapping, Sequence

import numpy as np

from graphc.backends.onnx_export import ExportedModel, export_model
from graphc.errors import TargetError
from graphc.graph import TensorSpec
from graphc.op import get_op
from graphc.program import Program

__all__ = ["compile", "OnnxProgram", "providers", "make_session"]


def _device_present() -> bool:
    return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg"))


@functools.lru_cache(maxsize=1)
def _cuda_provider_loads() -> bool:
    import onnxruntime as ort

    capi = os.path.join(os.path.dirname(ort.__file__), "capi")
    shared = os.path.join(capi, "libonnxruntime_providers_shared.so")
    cuda = os.path.join(capi, "libonnxruntime_providers_cuda.so")
    if not os.path.exists(cuda):
        return False
    try:
        if os.path.exists(shared):
            ctypes.CDLL(shared, mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(cuda)
    except OSError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def providers() -> tuple[str, ...]:
    """The onnxruntime execution providers the target uses, best first."""
    import onnxruntime as ort

    forced = os.environ.get("GRAPHC_ONNX_PROVIDERS")
    if forced:
        return tuple(p.strip() for p in forced.split(",") if p.strip())
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" in available and _device_present() and _cuda_provider_loads():
        return ("CUDAExecutionProvider", "CPUExecutionProvider")
    return ("CPUExecutionProvider",)


def make_session(model: Any) -> Any:
    """An onnxruntime InferenceSession for a ModelProto (or serialized bytes), quiet."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no warnings about unused initializers etc.
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=list(providers()))


class OnnxProgram:
    """A compiled program: call with (feeds, state, step) as the backend protocol says."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.exported: ExportedModel = export_model(
            program.graph, program.feeds, program.fetches, program=program,
            variables_as_inputs=True, writes=True, random_as_inputs=True)
        self._outputs = self.exported.outputs + list(self.exported.write_outputs.values())
        self._session = make_session(self.exported.model) if self._outputs else None

    def __call__(self, feeds: Sequence[np.ndarray], state: MutableMapping[str, np.ndarray],
                 step: int) -> list[np.ndarray]:
        if self._session is None:
            return []
        inputs = {name: _contiguous(a) for name, a in zip(self.exported.inputs, feeds)}
        for var, name in self.exported.variable_inputs.items():
            inputs[name] = _contiguous(state[var])
        if self.exported.random_inputs:
            inputs.update(self._draws(feeds, state, step))
        results = self._session.run(self._outputs, inputs)
        n = len(self.exported.outputs)
        for var, value in zip(self.exported.write_outputs, results[n:]):
            state[var] = np.array(value, copy=True)
        return [np.asarray(r) for r in results[:n]]

    def _draws(self, feeds: Sequence[np.ndarray], state: MutableMapping[str, np.ndarray],
               step: int) -> dict[str, np.ndarray]:
        shapes = _concrete_shapes(self.program, feeds, state) if any(
            node.inputs for node, _ in self.exported.random_inputs) else {}
        out = {}
        for node, name in self.exported.random_inputs:
            opdef = get_op(node.op)
            args = []
            if node.inputs:
                t = node.inputs[0]
                shape = shapes.get((t.node.id, t.index))
                if shape is None or None in shape:
                    raise TargetError(f"onnx target: cannot tell the run-time shape of the "
                                      f"random draw {node.name} ({node.op}); graphc computes "
                                      "draws itself and needs shapes that inference can "
                                      "determine from the feeds' shapes")
                args = [np.broadcast_to(np.zeros((), t.dtype.np), shape)]
            out[name] = _contiguous(opdef.ref(*args, **node.attrs, step=step))
        return out


def _contiguous(a: Any) -> np.ndarray:
    # np.ascontiguousarray would turn a 0-d array (Adam's step counter) into shape (1,).
    a = np.asarray(a)
    return a if a.flags.c_contiguous else np.ascontiguousarray(a).reshape(a.shape)


def _concrete_shapes(program: Program, feeds: Sequence[np.ndarray],
                     state: MutableMapping[str, np.ndarray]) -> dict:
    """Shape inference over the program with the actual feed and variable shapes."""
    specs: dict[tuple[int, int], TensorSpec] = {}
    for t, a in zip(program.feeds, feeds):
        specs[(t.node.id, t.index)] = TensorSpec(tuple(a.shape), t.dtype)
    for node in program.nodes:
        if all((node.id, i) in specs for i in range(len(node.outputs))) and node.outputs:
            continue
        if node.op == "variable":
            specs[(node.id, 0)] = TensorSpec(tuple(np.shape(state[node.name])), node.specs[0].dtype)
            continue
        ins = [specs.get((t.node.id, t.index)) for t in node.inputs]
        if any(s is None for s in ins):
            continue
        attrs = {k: v for k, v in node.attrs.items()}
        try:
            result = get_op(node.op).infer(*ins, **attrs)
        except Exception:  # noqa: BLE001 - a failed inference just leaves the shape unknown
            continue
        results = tuple(result) if isinstance(result, (tuple, list)) else (result,)
        for i, spec in enumerate(results):
            specs[(node.id, i)] = spec
    return {k: s.shape for k, s in specs.items()}


def compile(program: Program) -> OnnxProgram:  # noqa: A001 - the backend protocol's name
    """Export ``program`` as a step function and load it into onnxruntime."""
    return OnnxProgram(program)
