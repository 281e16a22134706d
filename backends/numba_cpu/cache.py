"""The on-disk kernel cache: generated source files, imported, with Numba's cache beside.

Numba cannot cache functions built by ``exec`` or closures, so each generated kernel module
is written as a real ``.py`` file under ``$GRAPHC_CACHE_DIR/kernels`` (default
``~/.cache/graphc``, or ``$XDG_CACHE_HOME/graphc``) and imported from there; its
``@njit(cache=True)`` functions then keep their machine code in the ``__pycache__`` folder
next to it. The file name is a content hash of the source, the graphc, Numba, NumPy and
Python versions; the source carries its own hash on the first line, so a corrupt or
truncated file is detected, rewritten and counted as ``rebuilt``.

:data:`COUNTERS` (``hits``: module found on disk, ``misses``: written, ``rebuilt``,
``compiles``: signatures Numba compiled, ``loads``: signatures Numba loaded from its disk
cache) let tests check caching without timing anything.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import sys
import tempfile
from types import ModuleType

import numba
import numpy as np

from graphc._version import __version__

__all__ = ["COUNTERS", "cache_dir", "load_source", "reset_counters", "key_of"]

COUNTERS: dict[str, int] = {"hits": 0, "misses": 0, "rebuilt": 0, "compiles": 0, "loads": 0}
_MODULES: dict[str, ModuleType] = {}
_HEADER = "# graphc kernel sha256="


def reset_counters() -> None:
    """Zero the counters (tests)."""
    for k in COUNTERS:
        COUNTERS[k] = 0


def cache_dir() -> str:
    """Where kernels are cached: ``$GRAPHC_CACHE_DIR``, else the user's cache folder."""
    explicit = os.environ.get("GRAPHC_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "graphc")


def key_of(source: str) -> str:
    """The content hash naming a kernel module (source + versions that change codegen)."""
    versions = f"{__version__}|{numba.__version__}|{np.__version__}|{sys.version}|" \
               f"{platform.machine()}"
    return hashlib.sha256((versions + "\n" + source).encode()).hexdigest()[:24]


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def load_source(source: str) -> ModuleType:
    """The module of ``source``, imported from the cache folder (written there if absent
    or corrupt). Modules are kept per process, so a second request costs a dict lookup."""
    key = key_of(source)
    module = _MODULES.get(key)
    if module is not None:
        return module
    folder = os.path.join(cache_dir(), "kernels")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"k_{key}.py")
    text = f"{_HEADER}{_digest(source)}\n{source}"
    status = _check(path, text)
    if status != "ok":
        COUNTERS["rebuilt" if status == "corrupt" else "misses"] += 1
        _write_atomic(path, text)
    else:
        COUNTERS["hits"] += 1
    name = f"graphc_kernel_{key}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # Numba's cache locator looks the module up by name
    spec.loader.exec_module(module)
    _MODULES[key] = module
    return module


def _check(path: str, text: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            existing = f.read()
    except FileNotFoundError:
        return "missing"
    except (OSError, UnicodeDecodeError):
        return "corrupt"
    first, _, body = existing.partition("\n")
    if first != f"{_HEADER}{_digest(body)}" or existing != text:
        return "corrupt"
    return "ok"


def _write_atomic(path: str, text: str) -> None:
    # Another process may be reading it: write beside it and rename over it.
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    # A rewritten source invalidates Numba's index (it checks the file's stamp); drop
    # stale entries anyway so a corrupt machine-code file cannot be picked up.
    pycache = os.path.join(os.path.dirname(path), "__pycache__")
    stem = os.path.splitext(os.path.basename(path))[0]
    if os.path.isdir(pycache):
        for f in os.listdir(pycache):
            if f.startswith(stem + "."):
                try:
                    os.unlink(os.path.join(pycache, f))
                except OSError:
                    pass
