"""Checkpoints of variable values: ``gc.train.Saver`` and the ``.npz`` helpers under it.

A checkpoint is an ``.npz`` file (a zip of ``.npy`` arrays, readable by ``np.load``) whose
keys are variable names. It is written atomically: a temporary file in the same folder,
fsynced, then ``os.replace``d onto the path, so a failed save leaves the previous checkpoint
intact and no temporary file behind. It is read with ``allow_pickle=False``: loading never
runs code from the file.

:func:`save_variables` / :func:`load_variables` are the file layer alone (name -> array);
:class:`Saver` adds the link to a session's variables and the checks: every variable must
be present with its shape and dtype, and a restore changes no state unless all of it fits.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from typing import Any, Mapping, Optional

import numpy as np

from graphc.errors import CheckpointError, GraphError
from graphc.graph import get_default_graph
from graphc.serialization import atomic_output, write_npy_entry
from graphc.shapes import format_shape

__all__ = ["Saver", "save_variables", "load_variables"]

SUFFIX = ".npz"
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError,
                struct.error)


def save_variables(path: Any, arrays: Mapping[str, Any]) -> str:
    """Write ``arrays`` (name -> array) to the ``.npz`` file ``path`` atomically (no suffix is
    added); returns the path. ``np.load(path)`` reads it back."""
    path = os.fspath(path)
    items = []
    for name, value in arrays.items():
        if not isinstance(name, str) or not name:
            raise CheckpointError(f"checkpoint keys must be non-empty strings, got {name!r}")
        if hasattr(value, "copy_to_host"):  # a device array
            value = value.copy_to_host()
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise CheckpointError(f"{name}: cannot save an object array (it would need pickle)")
        items.append((name, array))
    with atomic_output(path) as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, array in items:
                write_npy_entry(zf, name + ".npy", array)
    return path


def load_variables(path: Any) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` file ``path`` (name -> array), read without pickle.

    A missing file raises FileNotFoundError; anything else unreadable (not an .npz archive,
    truncated, corrupt) raises :class:`graphc.CheckpointError` naming the path.
    """
    path = os.fspath(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except _READ_ERRORS as err:
        raise CheckpointError(f"{path}: not a checkpoint (.npz) file, or corrupt or truncated "
                              f"({type(err).__name__}: {err})") from None
    if not hasattr(data, "files"):
        raise CheckpointError(f"{path}: holds a single .npy array, not a checkpoint (.npz)")
    try:
        arrays = {}
        for key in data.files:
            value = data[key]
            if not isinstance(value, np.ndarray):
                raise CheckpointError(f"{path}: entry {key!r} is not a .npy array")
            arrays[key] = value
        return arrays
    except CheckpointError:
        raise
    except _READ_ERRORS as err:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint "
                              f"({type(err).__name__}: {err})") from None
    finally:
        data.close()


class Saver:
    """Saves and restores variables' values (TF1's ``tf.train.Saver``).

    ``var_list``: None (every variable of the session's graph, looked up when saving or
    restoring), a list of Variables (saved under their names), or a dict
    ``checkpoint key -> Variable``.
    A Saver may serve a session of another graph built the same way: its variables are then
    found there by name (and must have the same shapes and dtypes).
    """

    def __init__(self, var_list: Any = None, allow_empty: bool = False) -> None:
        from graphc.variables import Variable

        # No var_list: all variables of the session's graph, found when saving or restoring,
        # so a Saver made outside `with graph.as_default():` still sees the model's variables.
        self._whole_graph = var_list is None
        self._allow_empty = allow_empty
        if var_list is None:
            var_list = []
        if isinstance(var_list, Mapping):
            pairs = list(var_list.items())
        elif isinstance(var_list, (list, tuple)):
            pairs = [(getattr(v, "name", None), v) for v in var_list]
        else:
            raise GraphError(f"Saver: var_list must be None, a list of Variables or a dict "
                             f"name -> Variable, got {type(var_list).__name__}")
        self._vars: dict[str, Variable] = {}
        for key, var in pairs:
            if not isinstance(var, Variable):
                raise GraphError(f"Saver: {var!r} is not a gc.Variable")
            if not isinstance(key, str) or not key:
                raise GraphError(f"Saver: checkpoint keys must be non-empty strings, got {key!r}")
            if key in self._vars:
                raise GraphError(f"Saver: two variables under the name {key!r}")
            self._vars[key] = var
        if not self._vars and not allow_empty and not self._whole_graph:
            raise GraphError("Saver: no variables to save (pass allow_empty=True to allow it)")

    @property
    def var_list(self) -> dict[str, Any]:
        """The variables this Saver handles, by checkpoint key (without a var_list: those of
        the default graph now; a session's graph when saving or restoring)."""
        if self._whole_graph:
            return dict(get_default_graph().variables)
        return dict(self._vars)

    def save(self, sess: Any, save_path: Any, global_step: Optional[int] = None) -> str:
        """Write the variables' current values in ``sess`` to ``save_path`` (``.npz`` is
        appended when missing; ``global_step`` adds ``-<step>`` before it); returns the path
        written. Variables the session has not used yet are initialized first."""
        pairs = self._resolve(sess)
        sess._initialize([var.node.name for _, var in pairs])
        arrays = {key: sess.state[var.node.name] for key, var in pairs}
        return save_variables(checkpoint_path(save_path, global_step), arrays)

    def restore(self, sess: Any, save_path: Any) -> None:
        """Set the variables in ``sess`` to the values in the checkpoint ``save_path``.

        Every variable must be in the checkpoint, with its shape and dtype, and nothing
        else may be; otherwise :class:`graphc.CheckpointError` says what differs and the
        session's state is left unchanged.
        """
        path = os.fspath(save_path)
        if not os.path.exists(path) and not path.endswith(SUFFIX) and \
                os.path.exists(path + SUFFIX):
            path += SUFFIX
        arrays = load_variables(path)
        pairs = self._resolve(sess)
        missing = [key for key, _ in pairs if key not in arrays]
        expected = {key for key, _ in pairs}
        unexpected = [key for key in arrays if key not in expected]
        if missing or unexpected:
            parts = []
            if missing:
                parts.append("it lacks variables " + ", ".join(missing))
            if unexpected:
                parts.append("it has entries for no variable of this Saver: "
                             + ", ".join(unexpected))
            raise CheckpointError(f"{path} does not match the variables: " + "; ".join(parts))
        values, problems = {}, []
        for key, var in pairs:
            array = arrays[key]
            want = var.dtype.np
            if array.dtype != want and array.dtype.newbyteorder("=") == want:
                array = array.astype(want)  # the same type in the other byte order
            label = key if key == var.node.name else f"{key} (variable {var.node.name})"
            if array.dtype != want:
                problems.append(f"{label}: the checkpoint holds dtype {array.dtype}, the "
                                f"variable is {var.dtype.name}")
            elif tuple(array.shape) != tuple(var.shape):
                problems.append(f"{label}: the checkpoint holds shape {list(array.shape)}, "
                                f"the variable is {format_shape(var.shape)}")
            else:
                values[var.node.name] = np.array(array, copy=True, order="C")
        if problems:
            raise CheckpointError(f"{path} does not fit the variables:\n  "
                                  + "\n  ".join(problems))
        sess.state.update(values)

    def _resolve(self, sess: Any) -> list[tuple[str, Any]]:
        """(key, variable of the session's graph) pairs."""
        graph = sess.graph
        if self._whole_graph:
            if not graph.variables and not self._allow_empty:
                raise GraphError("Saver: the session's graph has no variables to save "
                                 "(pass allow_empty=True to allow it)")
            return list(graph.variables.items())
        pairs = []
        for key, var in self._vars.items():
            if var.graph is not graph:
                other = graph.variables.get(var.node.name)
                if other is None:
                    raise GraphError(f"Saver: the session's graph has no variable "
                                     f"{var.node.name} (the Saver was built in another graph)")
                if other.shape != var.shape or other.dtype != var.dtype:
                    raise GraphError(f"Saver: variable {var.node.name} is {var.spec} in the "
                                     f"Saver's graph but {other.spec} in the session's")
                var = other
            pairs.append((key, var))
        return pairs


def checkpoint_path(save_path: Any, global_step: Optional[int] = None) -> str:
    """``save_path`` with ``-<global_step>`` (if given) and the ``.npz`` suffix."""
    path = os.fspath(save_path)
    stem = path[:-len(SUFFIX)] if path.endswith(SUFFIX) else path
    if global_step is not None:
        stem = f"{stem}-{int(global_step)}"
    return stem + SUFFIX
