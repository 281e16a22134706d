"""The exporter of graphc's ``scan`` (loops, and the RNN layers built on it) as ONNX ``Scan``.

graphc's scan node is ``scan(carries..., xs..., consts...; body, reverse)`` with a body
subgraph whose placeholders are the carries, one slice of each scanned input and the
consts. ONNX's ``Scan`` (opset >= 9 semantics) has the same shape: state variables, then
scan inputs sliced along axis 0, a body graph returning the new states and per-step
outputs stacked along axis 0. The consts need no inputs: an ONNX subgraph may read values
of the enclosing graph by name, so the body's const placeholders are bound to the outer
values. ``reverse`` is ``scan_input_directions = scan_output_directions = 1``: ONNX then
prepends each step's output, so ``ys[t]`` is still the output of the step that read
``x[t]``, as graphc's rule says. The gradient of a scan is a scan, so it exports the same
way (nested bodies recurse).
"""

from __future__ import annotations

from onnx import helper

from graphc.backends.onnx_export import (EXPORTERS, UNSUPPORTED, Emitter, _live_nodes,
                                         _named_identity, _run_exporter, _value_info, exporter)
from graphc.graph import Node
from graphc.program import build_program


@exporter("scan")
def _scan(em: Emitter, node: Node, ins: list) -> list:
    from graphc.backends.onnx_patterns import find_rewrites

    body, reverse = node.attrs["body"], node.attrs["reverse"]
    n_carry, n_xs = body.n_carry, body.n_xs
    program = build_program(body.graph, list(body.outputs), list(body.inputs))
    sub = Emitter(em.opset)
    sub._used = em._used  # one namespace: ONNX forbids a subgraph shadowing outer names
    names: dict = {}
    graph_inputs = []
    for k, t in enumerate(body.inputs):
        key = (t.node.id, t.index)
        if k < n_carry + n_xs:
            name = sub.fresh(f"{node.name}/body/{t.name}")
            names[key] = name
            graph_inputs.append(_value_info(name, t, symbolic=False))
        else:  # a const: read the enclosing graph's value by name
            names[key] = ins[k]
    fed = program.fed_keys()
    rewrites = find_rewrites(program, em.opset)
    live = _live_nodes(program, rewrites, fed)
    for inner in program.nodes:
        if inner.id not in live or (inner.outputs and all(
                (inner.id, i) in fed for i in range(len(inner.outputs)))):
            continue
        sub.node = inner
        if inner.op in UNSUPPORTED:
            raise sub.error(UNSUPPORTED[inner.op])
        rewrite = rewrites.get(inner.id)
        fn, leaves = rewrite if rewrite is not None else (EXPORTERS.get(inner.op), inner.inputs)
        if fn is None:
            raise sub.error("graphc has no ONNX exporter for this op")
        outs = _run_exporter(sub, inner, fn, [names[(t.node.id, t.index)] for t in leaves])
        for i, name in enumerate(outs):
            names[(inner.id, i)] = name
    sub.node = None
    outer_or_input = set(ins) | {vi.name for vi in graph_inputs}
    graph_outputs, emitted = [], set()
    for t in body.outputs:
        name = names[(t.node.id, t.index)]
        if name in outer_or_input or name in emitted:  # body outputs must be node outputs
            name = _named_identity(sub, name, f"{node.name}/body/out")
        emitted.add(name)
        graph_outputs.append(_value_info(name, t, symbolic=False))
    graph = helper.make_graph(sub.nodes, f"{node.name}/body", graph_inputs, graph_outputs)
    n_ys = len(body.outputs) - n_carry
    outs = em.op("Scan", ins[:n_carry + n_xs], n_out=len(node.outputs), body=graph,
                 num_scan_inputs=n_xs,
                 scan_input_directions=[1] * n_xs if reverse and n_xs else None,
                 scan_output_directions=[1] * n_ys if reverse and n_ys else None)
    return outs if len(node.outputs) != 1 else [outs]

