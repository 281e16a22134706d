"""Compilation targets, found by name.

The core never imports a backend when it loads: a target names a module under
``graphc.backends`` that is imported on first use. A backend module provides

    compile(program: graphc.program.Program) -> CompiledProgram

where ``CompiledProgram(feeds: list[np.ndarray], state: dict[str, np.ndarray], step: int)``
returns the fetched arrays and applies the program's writes to ``state``.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Optional

from graphc.errors import TargetError

__all__ = ["TARGETS", "get_backend", "available_targets", "resolve_target"]

TARGETS: dict[str, str] = {
    "reference": "graphc.backends.reference",
    "cpu": "graphc.backends.numba_cpu",
    "cuda": "graphc.backends.numba_cuda",
    "onnx": "graphc.backends.onnx_runtime",
}

# The default is the first of these that is built.
DEFAULT_ORDER = ("cpu", "reference")


def _is_built(name: str) -> bool:
    try:
        return importlib.util.find_spec(TARGETS[name]) is not None
    except ModuleNotFoundError:
        return False


def available_targets() -> list[str]:
    """The targets built into this installation of graphc."""
    return [name for name in TARGETS if _is_built(name)]


def resolve_target(target: Optional[str]) -> str:
    """``target`` checked against the known ones; None gives the default (``cpu`` when
    it is built, else ``reference``)."""
    if target is None:
        return next(name for name in DEFAULT_ORDER if _is_built(name))
    if not isinstance(target, str) or target not in TARGETS:
        raise TargetError(f"unknown target {target!r}; available targets: "
                          + ", ".join(available_targets()))
    if not _is_built(target):
        raise TargetError(f"target {target!r} is not built in this version of graphc; "
                          "available targets: " + ", ".join(available_targets()))
    return target


def get_backend(target: Optional[str]) -> ModuleType:
    """The backend module of ``target`` (see :func:`resolve_target`)."""
    return importlib.import_module(TARGETS[resolve_target(target)])
