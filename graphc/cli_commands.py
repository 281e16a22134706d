"""What ``graphc compile`` and ``graphc show`` do (``run``: :mod:`graphc.cli_run`,
``bench``: :mod:`graphc.cli_bench`); :mod:`graphc.cli` only parses the arguments.

Each ``cmd_*`` takes the parsed ``argparse.Namespace``, prints what a person wants to
see, and returns 0; failures raise (a :class:`UsageError` is exit 2, anything else exit
1 — :func:`graphc.cli.main` does the mapping).

A bundle stores the graph as written, not the passes' output: the passes run over a
per-program copy inside the backend's ``compile`` (:mod:`graphc.lower`), deterministically,
so loading a bundle repeats them; ``--explain`` and the manifest report what they did.

Backend hooks used when a backend has them (all optional):
``export_sources(program) -> {file: source}`` (stored in bundles, see
:mod:`graphc.bundle`), ``fusion_groups(program) -> {kernel: [node names]}`` (``show
--fused``, ``compile --explain``) and ``explain_plan(plan) -> [lines]`` (``compile
--explain``: how the target runs the lowered plan, e.g. as one compiled function).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, Mapping, Optional

import numpy as np

from graphc.errors import CheckpointError, GraphcError, TargetError
from graphc.graph import Graph
from graphc.signature import Signature

__all__ = ["UsageError", "lowered", "fusion_groups", "initial_weights", "cmd_compile",
           "cmd_show"]


class UsageError(GraphcError):
    """A command line that is written wrong (exit status 2)."""


def _say(text: str = "") -> None:
    print(text, flush=True)


def _size(path: str) -> str:
    n = float(os.path.getsize(path))
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


# -- the compile pipeline -------------------------------------------------------------------

def lowered(backend: Any, program: Any) -> Any:
    """The backend's :class:`~graphc.lower.Plan` for ``program`` (the pass pipeline, fused
    groups, library calls), or None for a backend that does not lower through
    :mod:`graphc.lower` (``reference`` interprets the graph as written)."""
    library = getattr(backend, "LIBRARY", None)
    if library is None:
        return None
    from graphc.lower import lower

    return lower(program, library)


def fusion_groups(backend: Any, program: Any) -> Optional[dict[str, list[str]]]:
    """kernel -> names of the graph nodes it computes: the backend's ``fusion_groups``
    hook when it has one, else its lowering's fused steps; None when unknown."""
    hook = getattr(backend, "fusion_groups", None)
    if hook is not None:
        return hook(program)
    plan = lowered(backend, program)
    if plan is None:
        return None
    groups = {}
    for k, step in enumerate(s for s in plan.steps if s.kind == "fused"):
        names = [m.origin.name for m in step.nodes if m.origin is not None]
        if names:
            groups[f"kernel {k}: {step.node.name}"] = names
    return groups


def _planned_memory(plan: Any) -> str:
    """The buffers the memory plan gives kernel results (unknown dims counted as 1)."""
    count = reused = nbytes = 0
    for step in plan.steps:
        if step.kind not in ("fused", "library"):
            continue
        root = step.node
        count += 1
        if root.uid in plan.ir.inplace or root.uid in plan.ir.inplace_var:
            reused += 1
            continue
        for spec in root.specs:
            size = int(np.prod([1 if d is None else d for d in (spec.shape or ())]))
            nbytes += size * spec.dtype.np.itemsize
    return (f"planned memory: {count} kernel results, {reused} of them in place (in an input's "
            f"or a variable's buffer); {nbytes:,} bytes of buffers with unknown dims = 1")


def initial_weights(graph: Graph, checkpoint: Optional[str] = None,
                    keys: Optional[Mapping[str, str]] = None) -> tuple[dict, list[str]]:
    """Every variable's value: from ``checkpoint`` (an ``.npz``, e.g. written by
    ``gc.train.Saver`` or a Keras model's ``save_weights``, whose ``keys`` map to variable
    names) where it has one, else its initial value. Returns the values and the names that
    took their initial value."""
    from graphc.checkpoint import load_variables
    from graphc.session import Session

    sess = Session(graph, "reference")  # the oracle computes initial values on any machine
    given: dict[str, np.ndarray] = {}
    if checkpoint is not None:
        arrays = {(keys or {}).get(k, k): v for k, v in load_variables(checkpoint).items()}
        unknown = [k for k in arrays if k not in graph.variables]
        if unknown:
            raise CheckpointError(f"{checkpoint} has values for no variable of the model: "
                                  f"{', '.join(unknown)}; the model's variables are "
                                  f"{', '.join(graph.variables) or '(none)'}")
        for name, array in arrays.items():
            var = graph.variables[name]
            if array.dtype != var.dtype.np or tuple(array.shape) != tuple(var.shape):
                raise CheckpointError(f"{checkpoint}: {name} is {array.dtype}{list(array.shape)}"
                                      f", the model's variable is {var.spec}")
            given[name] = array
    sess.state.update(given)
    fresh = [n for n in graph.variables if n not in given]
    sess._initialize(fresh)
    return {n: sess.state[n] for n in graph.variables}, fresh


def _hook(backend: Any, name: str, arg: Any) -> Any:
    fn = getattr(backend, name, None)
    return None if fn is None else fn(arg)


def _explain(signature: Signature, backend: Any, target: str, fresh: list[str],
             checkpoint: Optional[str]) -> None:
    from graphc.bundle import program_of
    from graphc.passes import format_reports

    _say("model:\n  " + signature.describe().replace("\n", "\n  "))
    for label, train in (("forward", False), ("training step", True)):
        if train and not signature.updates:
            continue
        program = program_of(signature, train)
        _say(f"{label}: {len(program.nodes)} nodes, {len(program.reads)} variables read, "
             f"{len(program.writes)} written")
        plan = lowered(backend, program)
        if plan is None:
            _say(f"  the {target} target runs the graph as written: no passes, no fusion")
            continue
        _say("  passes:")
        _say("    " + (format_reports(plan.reports) or "no changes").replace("\n", "\n    "))
        groups = fusion_groups(backend, program) or {}
        counts = plan.counts()
        _say(f"  kernels: {counts.get('fused', 0)} fused ({counts.get('fused_nodes', 0)} nodes), "
             f"{counts.get('library', 0)} library calls, {counts.get('fallback', 0)} NumPy "
             "fallbacks")
        for kernel, members in groups.items():
            if len(members) > 1:
                _say(f"    {kernel} <- {', '.join(members)}")
        _say("  " + _planned_memory(plan))
        for line in _hook(backend, "explain_plan", plan) or []:
            _say("  " + line)
    if checkpoint is not None:
        _say(f"weights: from {checkpoint}" + (f"; initial values for {', '.join(fresh)}"
                                              if fresh else ""))


def cmd_compile(args: argparse.Namespace) -> int:
    """``graphc compile``: model file -> ``.graphc`` bundle (or ``.onnx``)."""
    model = _load_model(args.model, args.output)
    target = args.target
    out = args.out or os.path.splitext(os.path.basename(args.model))[0] + (
        ".onnx" if target == "onnx" else ".graphc")
    if target == "onnx":
        return _compile_onnx(model, out, args)
    from graphc.bundle import export_sources, program_of, write_bundle
    from graphc.bundle_run import gpu_available
    from graphc.targets import get_backend, resolve_target

    target = resolve_target(target)
    backend = get_backend(target)
    t0 = time.perf_counter()
    signature = model.signature
    weights, fresh = initial_weights(signature.graph, args.weights,
                                     signature.checkpoint_keys)
    if args.explain:
        _explain(signature, backend, target, fresh, args.weights)
    sources = export_sources(backend, signature)
    plan = lowered(backend, program_of(signature))
    passes = None if plan is None else [{"name": r.name, "changes": list(r.changes)}
                                        for r in plan.reports]
    write_bundle(out, signature, target, weights, sources,
                 model=os.path.basename(args.model), passes=passes)
    _say(f"wrote {out} ({_size(out)}): target {target}, "
         f"{len(signature.inputs)} inputs, {len(signature.outputs)} outputs"
         + (", with a training step" if signature.updates else "")
         + (f", {len(sources)} kernel sources" if hasattr(backend, "export_sources") else "")
         + f" [{time.perf_counter() - t0:.2f} s]")
    if target == "cuda" and not gpu_available():
        _say("note: no CUDA GPU here; the kernels compile when the bundle first runs on a GPU")
    return 0


def _load_model(path: str, outputs: Optional[list[str]]) -> Any:
    from graphc.frontends.script import load_model_file

    if not os.path.exists(path):
        raise UsageError(f"no such model file: {path}")
    if not path.endswith(".py"):
        raise UsageError(f"{path}: expected a Python model file (model.py)")
    return load_model_file(path, outputs or ())


def _compile_onnx(model: Any, out: str, args: argparse.Namespace) -> int:
    try:
        from graphc import onnx as gc_onnx
        from graphc.backends import onnx_export  # noqa: F401 - is the exporter built?
    except ImportError:
        raise TargetError("the onnx target is not built yet in this graphc "
                          "(graphc.backends.onnx_export is missing)") from None
    from graphc.session import Session

    signature = model.signature
    if args.explain:
        _say("model:\n  " + signature.describe().replace("\n", "\n  "))
        _say("passes: none (onnxruntime optimizes the exported model when it loads it)")
    if signature.updates:
        _say("note: the ONNX file holds the forward run only (the updates are not exported)")
    weights, _ = initial_weights(signature.graph, args.weights, signature.checkpoint_keys)
    sess = Session(signature.graph, "reference")
    sess.state.update(weights)
    gc_onnx.export(out, list(signature.inputs.values()), list(signature.outputs.values()),
                   session=sess)  # checked, then written atomically
    _say(f"wrote {out} ({_size(out)}): ONNX, {len(signature.inputs)} inputs, "
         f"{len(signature.outputs)} outputs")
    return 0


# -- show -----------------------------------------------------------------------------------

def cmd_show(args: argparse.Namespace) -> int:
    """``graphc show``: draw a model file's or a bundle's graph."""
    from graphc.bundle import program_of
    from graphc.render import graph_view, to_text, write_rendering
    from graphc.targets import get_backend, resolve_target

    path = args.source
    if not os.path.exists(path):
        raise UsageError(f"no such file: {path}")
    if args.out:
        fmt = os.path.splitext(args.out)[1].lstrip(".").lower()
        if fmt not in ("svg", "png", "pdf", "dot", "txt"):
            raise UsageError(f"-o {args.out}: unknown format; use .svg, .png, .pdf, .dot or .txt")
    if path.endswith(".py"):
        model = _load_model(path, args.output)
        signature, target = model.signature, args.target
    elif path.endswith(".onnx"):
        raise UsageError(f"{path}: show reads model files (.py) and bundles (.graphc); "
                         "open an .onnx file with Netron (https://netron.app)")
    else:
        from graphc.bundle import read_bundle

        bundle = read_bundle(path)
        signature, target = bundle.signature, args.target or bundle.target
    groups = None
    if args.fused:
        target = resolve_target(target)
        backend = get_backend(target)
        groups = fusion_groups(backend, program_of(signature, args.backward))
        if groups is None:
            _say(f"note: the {target} target does not fuse (it runs the graph as written); "
                 "try --target cpu")
    if args.backward and not signature.updates:
        _say("note: this model has no training step (no updates); showing the forward graph")
    view = graph_view(signature, backward=args.backward, groups=groups,
                      title=os.path.basename(path))
    if not args.out:
        _say(to_text(view).rstrip())
        return 0
    written, message = write_rendering(view, args.out)
    _say(f"wrote {written} ({_size(written)}): {len(view.nodes)} nodes"
         + (f", {len(view.backward)} of them backward" if view.backward else ""))
    if message:
        _say(message)
    return 0
