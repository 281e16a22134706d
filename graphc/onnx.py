"""``gc.onnx``: export graphs to ONNX files and load ONNX models as graphc graphs.

``export(path, inputs, outputs, session=None, opset=None)`` writes the model computing
``outputs`` from the placeholders ``inputs``, with the variables' current values (from
``session`` if given, else their initial values) as initializers; the file is checked
(``onnx.checker`` full check, shape inference) before it is written, atomically.

``load(path)`` -> ``(graph, inputs, outputs)``: the model as a new graph whose initializers
are trainable variables, ready to run, differentiate, fine-tune and export again.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

__all__ = ["export", "load", "to_model", "DEFAULT_OPSET"]

DEFAULT_OPSET = 17


def _as_list(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def to_model(inputs: Any, outputs: Any, session: Any = None, opset: Optional[int] = None,
             graph: Any = None) -> Any:
    """The checked ``onnx.ModelProto`` that :func:`export` would write."""
    import onnx

    from graphc.backends.onnx_export import export_model
    from graphc.graph import get_default_graph
    from graphc.program import build_program

    ins, outs = _as_list(inputs), _as_list(outputs)
    first = next((t for t in ins + outs if not isinstance(t, str)), None)
    graph = graph or (session.graph if session is not None else
                      first.graph if first is not None else get_default_graph())
    ins = [graph.as_graph_element(t) for t in ins]
    outs = [graph.as_graph_element(t) for t in outs]
    program = build_program(graph, outs, ins)
    values = _variable_values(graph, program.reads, session)
    exported = export_model(graph, ins, outs, opset=opset, values=values, program=program)
    model = exported.model
    onnx.checker.check_model(model, full_check=True)
    return model


def _variable_values(graph: Any, names: Sequence[str], session: Any) -> dict[str, np.ndarray]:
    from graphc.session import Session

    if session is None:
        session = Session(graph, target="reference")
    session._initialize(list(names))  # uninitialized variables get their initial values
    return {n: session.state[n] for n in names}


def export(path: str, inputs: Any, outputs: Any, session: Any = None,
           opset: Optional[int] = None) -> Any:
    """Write the ONNX model computing ``outputs`` from ``inputs`` to ``path`` (atomically)
    and return it. ``opset``: 17 by default; 13 up to the newest onnx knows."""
    from graphc.serialization import atomic_output

    model = to_model(inputs, outputs, session, opset)
    data = model.SerializeToString()
    with atomic_output(path) as f:
        f.write(data)
    return model


def load(path: str) -> tuple[Any, list, list]:
    """The ONNX model at ``path`` as ``(graph, input tensors, output tensors)``."""
    from graphc.frontends.onnx_import import load_model

    return load_model(path)
