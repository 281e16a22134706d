"""Loading a user's ``model.py`` for the command line: :func:`load_model_file`.

The model-file convention. graphc runs the file as a module named ``graphc_model`` (not
``__main__``, so an ``if __name__ == "__main__":`` block does not run) in a fresh default
graph, with the file's folder first on ``sys.path`` (so it can import its neighbours), and
then takes what to compile from, in this order:

1. a function ``build()`` that returns a ``gc.Signature(inputs=..., outputs=...,
   updates=...)`` or a Keras-like model;
2. a module-level ``gc.Signature`` or Keras-like model (exactly one);
3. otherwise the placeholders of the default graph that the outputs depend on, as inputs,
   and the tensors named by ``--output NAME`` (``outputs=`` here) as outputs.

``--output NAME`` given together with 1. or 2. replaces that signature's outputs.

A Keras-like model is any object with ``.inputs`` and ``.outputs`` lists of graphc tensors
(see :func:`graphc.signature.is_keras_like`); ``gc.keras.Model`` is one.

A model file that does not compile or raises is reported as a :class:`ModelFileError`
carrying the user's own traceback: the frames of graphc's packages and of this loader are
left out, since they say nothing about what to fix in the model file.
"""

from __future__ import annotations

import os
import sys
import traceback
import types
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from graphc import graph as graph_mod
from graphc.errors import GraphcError, GraphError
from graphc.graph import Graph, placeholders_needed
from graphc.signature import Signature, as_signature, is_keras_like

__all__ = ["ModelFileError", "LoadedModel", "load_model_file", "HOW_TO"]

MODULE_NAME = "graphc_model"

HOW_TO = """\
graphc looks, in order, for:
  1. a function build() that returns gc.Signature(inputs=[x], outputs=[y]) or a Keras model,
  2. one module-level gc.Signature or Keras model (e.g. `signature = gc.Signature(...)`),
  3. else the placeholders of the default graph as inputs, and the tensors you name
     with --output NAME as outputs."""


class ModelFileError(GraphcError):
    """A model file that fails to load, or in which graphc finds nothing (or too much) to
    compile. The message carries the user's traceback or says what to write."""


@dataclass
class LoadedModel:
    """A model file's graph and signature, and where the signature came from."""

    path: str
    graph: Graph
    signature: Signature
    source: str  # "build()", "module-level NAME" or "placeholders + --output"


def load_model_file(path: str, outputs: Sequence[str] = ()) -> LoadedModel:
    """Run the model file ``path`` and find what to compile (see the module docstring).

    Raises FileNotFoundError for a missing file and :class:`ModelFileError` for a file
    that fails or offers nothing to compile; the default graph is restored afterwards.
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file {path}")
    with open(path, "rb") as f:
        source = f.read()
    # A fresh global default graph, put back afterwards: the file may call
    # gc.reset_default_graph() itself, which an as_default() block would forbid.
    saved_graph = graph_mod._GLOBAL_DEFAULT[0]
    graph_mod._GLOBAL_DEFAULT[0] = Graph()
    try:
        module = _run_module(path, source)
        default_graph = graph_mod.get_default_graph()
        signature, where = _find_signature(module, path)
        if signature is None:
            if not outputs:
                raise ModelFileError(f"{_short(path)}: nothing to compile was found.\n{HOW_TO}")
            signature = _from_placeholders(default_graph, outputs, path)
            where = "the default graph's placeholders + --output"
        elif outputs:
            try:
                signature = signature.with_outputs(list(outputs))
            except GraphError as err:
                raise ModelFileError(f"{_short(path)}: --output: {err}") from None
        return LoadedModel(path, signature.graph, signature, where)
    finally:
        graph_mod._GLOBAL_DEFAULT[0] = saved_graph


def _run_module(path: str, source: bytes) -> types.ModuleType:
    module = types.ModuleType(MODULE_NAME)
    module.__file__ = path
    folder = os.path.dirname(path)
    try:
        code = compile(source, path, "exec")
    except SyntaxError as err:
        lines = traceback.format_exception_only(type(err), err)
        raise ModelFileError(f"{_short(path)} is not valid Python:\n" + "".join(lines).rstrip()) \
            from None
    sys.path.insert(0, folder)
    saved_module = sys.modules.get(MODULE_NAME)
    sys.modules[MODULE_NAME] = module  # dataclasses and pickle-free helpers look it up
    try:
        _call_user(lambda: exec(code, module.__dict__), path, "running")
    finally:
        if saved_module is None:
            sys.modules.pop(MODULE_NAME, None)
        else:
            sys.modules[MODULE_NAME] = saved_module
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    return module


def _call_user(fn: Callable[[], Any], path: str, doing: str) -> Any:
    """``fn()``, turning an exception into a ModelFileError with the user's frames."""
    try:
        return fn()
    except SystemExit as exc:
        raise ModelFileError(f"{_short(path)} called sys.exit({exc.code!r}) while {doing}; "
                             "a model file must only build the graph") from None
    except Exception as exc:  # noqa: BLE001 - any user error is reported, not crashed on
        raise ModelFileError(f"{_short(path)} failed while {doing}:\n"
                             + user_traceback(exc)) from exc


def user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` without graphc's own frames (and without this loader's)."""
    dirs = graph_mod._package_dirs()
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(dirs) and not f.filename.startswith("<frozen")]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def _find_signature(module: types.ModuleType, path: str) -> tuple[Optional[Signature], str]:
    namespace = module.__dict__
    build = namespace.get("build")
    if isinstance(build, types.FunctionType):
        result = _call_user(build, path, "calling build()")
        try:
            signature = as_signature(result)
        except GraphError as err:
            raise ModelFileError(f"{_short(path)}: build() returned a bad signature: {err}") \
                from None
        if signature is None:
            raise ModelFileError(f"{_short(path)}: build() returned {type(result).__name__}, "
                                 f"not a gc.Signature or a Keras model.\n{HOW_TO}")
        return signature, "build()"
    found: dict[int, tuple[str, Any]] = {}
    for name, value in namespace.items():
        if name.startswith("__") or isinstance(value, types.ModuleType):
            continue
        if isinstance(value, Signature) or is_keras_like(value):
            found.setdefault(id(value), (name, value))
    if len(found) > 1:
        names = ", ".join(name for name, _ in found.values())
        raise ModelFileError(f"{_short(path)}: several things could be compiled ({names}); "
                             "keep one at module level, or add a build() function that "
                             f"returns the one to compile.\n{HOW_TO}")
    if found:
        name, value = next(iter(found.values()))
        try:
            return as_signature(value), f"module-level {name}"
        except GraphError as err:
            raise ModelFileError(f"{_short(path)}: {name}: {err}") from None
    return None, ""


def _from_placeholders(graph: Graph, outputs: Sequence[str], path: str) -> Signature:
    try:
        fetched = {name: graph.get_tensor_by_name(name) for name in outputs}
    except GraphError as err:
        raise ModelFileError(f"{_short(path)}: --output: {err}") from None
    needed = placeholders_needed(list(fetched.values()))
    return Signature(needed, fetched)


def _short(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel
