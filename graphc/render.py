"""Pictures of graphs: DOT (Graphviz) and an indented text rendering.

:func:`graph_view` picks what to draw from a signature: the *forward* part (what the
outputs need) and, optionally, the *backward* part (what the training step needs beyond
it: gradients and optimizer updates). Fusion groups, when a backend provides them, are
drawn as clusters (DOT) or headings (text).

:func:`write_rendering` writes ``.dot`` and ``.txt`` itself and ``.svg``/``.png``/``.pdf``
through Graphviz's ``dot`` program when it is installed; without it, it writes the DOT
file beside the requested path and says how to turn it into a picture. Every file is
written atomically.

The optional backend hook for fusion groups (for backend authors)::

    def fusion_groups(program: graphc.program.Program) -> dict[str, list[str]]:
        '''kernel name -> names of the graph nodes it computes'''
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Optional

from graphc.graph import Node
from graphc.serialization import atomic_output
from graphc.shapes import format_shape
from graphc.signature import Signature

__all__ = ["GraphView", "graph_view", "to_dot", "to_text", "write_rendering",
           "PICTURE_FORMATS", "TEXT_FORMATS", "have_graphviz"]

PICTURE_FORMATS = ("svg", "png", "pdf")
TEXT_FORMATS = ("dot", "txt")

# Fill colours by role; backward nodes are tinted so the two halves read apart.
_STYLE = {
    "placeholder": 'shape=ellipse, style=filled, fillcolor="#cfe2ff"',
    "variable": 'shape=box3d, style=filled, fillcolor="#fff3bf"',
    "constant": 'shape=box, style="rounded,filled", fillcolor="#eeeeee", fontsize=9',
    "forward": 'shape=box, style="rounded,filled", fillcolor="#ffffff"',
    "backward": 'shape=box, style="rounded,filled", fillcolor="#ffe3e3"',
}


@dataclass
class GraphView:
    """The nodes to draw, which of them are backward nodes and outputs, and the groups."""

    nodes: list[Node]
    backward: set[int] = field(default_factory=set)
    outputs: dict[int, str] = field(default_factory=dict)  # node id -> public output name
    groups: dict[str, list[int]] = field(default_factory=dict)  # kernel -> node ids
    title: str = ""


def graph_view(signature: Signature, backward: bool = False,
               groups: Optional[dict[str, list[str]]] = None, title: str = "") -> GraphView:
    """The view of ``signature``'s forward run (plus its training step if ``backward``)."""
    from graphc.bundle import program_of

    forward_nodes = program_of(signature).nodes
    nodes, back = list(forward_nodes), set()
    if backward and signature.updates:
        ids = {n.id for n in forward_nodes}
        extra = [n for n in program_of(signature, train=True).nodes if n.id not in ids]
        back = {n.id for n in extra}
        nodes = sorted(nodes + extra, key=lambda n: n.id)
    outputs = {t.node.id: name for name, t in signature.outputs.items()}
    by_name = {n.name: n.id for n in nodes}
    kernel_ids = {k: [by_name[m] for m in members if m in by_name]
                  for k, members in (groups or {}).items()}
    return GraphView(nodes, back, outputs, {k: v for k, v in kernel_ids.items() if v}, title)


def _label(node: Node) -> str:
    specs = ", ".join(f"{s.dtype.name}{format_shape(s.shape)}" for s in node.specs)
    # "add_1" says its op already; "probs" does not.
    says_op = re.fullmatch(re.escape(node.op) + r"(_\d+)?", node.name.rsplit("/", 1)[-1])
    return node.name + ("" if says_op else f"\\n{node.op}") + (f"\\n{specs}" if specs else "")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\\\\n", "\\n") + '"'


def _role(node: Node, view: GraphView) -> str:
    if node.op in ("placeholder", "variable", "constant"):
        return node.op
    return "backward" if node.id in view.backward else "forward"


def to_dot(view: GraphView) -> str:
    """The view as a Graphviz DOT document (top to bottom, fusion groups as clusters)."""
    lines = ["digraph graphc {", "  rankdir=TB;",
             '  node [fontname="Helvetica", fontsize=10];', '  edge [color="#555555"];']
    if view.title:
        lines.append(f"  label={_quote(view.title)}; labelloc=t;")
    grouped = {i for ids in view.groups.values() for i in ids}

    def node_line(node: Node, indent: str) -> str:
        style = _STYLE[_role(node, view)]
        if node.id in view.outputs:
            style += ", penwidth=2.5"
            label = _label(node) + f"\\n=> output {view.outputs[node.id]}"
        else:
            label = _label(node)
        return f"{indent}n{node.id} [label={_quote(label)}, {style}];"

    by_id = {n.id: n for n in view.nodes}
    for k, (kernel, ids) in enumerate(view.groups.items()):
        lines += [f"  subgraph cluster_{k} {{", f"    label={_quote(kernel)};",
                  '    style="dashed,rounded"; color="#1c7ed6";']
        lines += [node_line(by_id[i], "    ") for i in ids]
        lines.append("  }")
    lines += [node_line(n, "  ") for n in view.nodes if n.id not in grouped]
    shown = set(by_id)
    for node in view.nodes:
        for t in node.inputs:
            if t.node.id in shown:
                attrs = ' [style=dashed, color="#c92a2a"]' if node.id in view.backward else ""
                lines.append(f"  n{t.node.id} -> n{node.id}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_text(view: GraphView) -> str:
    """The view as indented text: sections (forward, backward), then each node in order
    with its op, type and inputs; nodes of a fusion group are indented under it."""
    group_of = {i: k for k, ids in view.groups.items() for i in ids}
    out = [view.title] if view.title else []
    width = min(max((len(n.name) for n in view.nodes), default=4), 32) + 1
    op_width = min(max((len(n.op) for n in view.nodes), default=4), 20) + 1
    for section, members in (("forward", [n for n in view.nodes if n.id not in view.backward]),
                             ("backward", [n for n in view.nodes if n.id in view.backward])):
        if not members:
            continue
        out.append(f"{section} ({len(members)} nodes)")
        current = None
        for node in members:
            kernel = group_of.get(node.id)
            if kernel != current and kernel is not None:
                out.append(f"  [kernel {kernel}]")
            current = kernel
            indent = "      " if kernel is not None else "  "
            specs = ", ".join(f"{s.dtype.name}{format_shape(s.shape)}" for s in node.specs)
            ins = ", ".join(t.name for t in node.inputs)
            line = f"{indent}{node.name:<{width}} {node.op:<{op_width}} {specs or '-'}"
            if ins:
                line += f"  <- {ins}"
            if node.id in view.outputs:
                line += f"   => output {view.outputs[node.id]}"
            out.append(line)
    return "\n".join(out) + "\n"


def have_graphviz() -> bool:
    """True when Graphviz's ``dot`` program is on PATH."""
    return shutil.which("dot") is not None


def _write_text(path: str, text: str) -> None:
    with atomic_output(path) as f:
        f.write(text.encode("utf-8"))


def write_rendering(view: GraphView, path: str) -> tuple[str, str]:
    """Write ``view`` to ``path`` in the format its suffix names; returns (the path written,
    a note for the user). Without Graphviz, a picture format writes ``<stem>.dot`` instead
    and the note says how to get the picture."""
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt == "txt":
        _write_text(path, to_text(view))
        return path, ""
    dot = to_dot(view)
    if fmt == "dot":
        _write_text(path, dot)
        return path, f"render it with Graphviz: dot -Tsvg {path} -o {os.path.splitext(path)[0]}.svg"
    if fmt not in PICTURE_FORMATS:
        raise ValueError(f"unknown picture format .{fmt}: use one of "
                         + ", ".join("." + f for f in (*PICTURE_FORMATS, *TEXT_FORMATS)))
    if not have_graphviz():
        dot_path = os.path.splitext(path)[0] + ".dot"
        _write_text(dot_path, dot)
        return dot_path, (f"Graphviz's `dot` program is not installed, so {dot_path} was "
                          f"written instead of {path}. Install Graphviz (apt install graphviz, "
                          f"brew install graphviz, or conda install graphviz), then run:\n"
                          f"  dot -T{fmt} {dot_path} -o {path}")
    result = subprocess.run(["dot", f"-T{fmt}"], input=dot.encode("utf-8"),
                            capture_output=True, timeout=300)
    if result.returncode != 0 or not result.stdout:
        raise RuntimeError(f"Graphviz's dot failed ({result.returncode}): "
                           + result.stderr.decode("utf-8", "replace").strip()[:2000])
    with atomic_output(path) as f:
        f.write(result.stdout)
    return path, ""
