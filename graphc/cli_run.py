"""``graphc run``: run a ``.graphc`` bundle or an ``.onnx`` file on ``.npy``/``.npz`` inputs.

Inputs are read with ``allow_pickle=False``; ``.onnx`` files run in onnxruntime (with the
CUDA provider only where a GPU and the provider really load, as the onnx target does).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from graphc.cli_commands import UsageError, _say
from graphc.errors import GraphcError

__all__ = ["parse_inputs", "run_onnx", "cmd_run"]


def parse_inputs(specs: list[str]) -> dict[str, np.ndarray]:
    """``NAME=file.npy``, ``NAME=file.npz`` (its only array, or its array NAME) or
    ``file.npz`` (every array, by key) -> name -> array. Read without pickle."""
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = "", spec
            if not path.endswith(".npz"):
                raise UsageError(f"--input {spec!r}: write NAME=file.npy (or give an .npz "
                                 "whose keys are the input names)")
        if not os.path.exists(path):
            raise UsageError(f"--input {spec!r}: no such file {path}")
        try:
            data = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise GraphcError(f"--input {spec!r}: cannot read {path} as .npy/.npz "
                              f"without pickle: {err}") from None
        if isinstance(data, np.ndarray):
            if not name:
                raise UsageError(f"--input {spec!r}: name the input: NAME={path}")
            new = {name: data}
        else:
            with data:
                arrays = {k: data[k] for k in data.files}
            if name:
                if name in arrays:
                    new = {name: arrays[name]}
                elif len(arrays) == 1:
                    new = {name: next(iter(arrays.values()))}
                else:
                    raise GraphcError(f"--input {spec!r}: {path} holds several arrays "
                                      f"({', '.join(arrays)}) and none is called {name!r}")
            else:
                new = arrays
        for key in new:
            if key in feeds:
                raise UsageError(f"input {key!r} is given twice")
        feeds.update(new)
    return feeds


def _print_array(name: str, value: np.ndarray) -> None:
    value = np.asarray(value)
    _say(f"{name}: {value.dtype}{list(value.shape)}")
    body = np.array2string(value, precision=6, threshold=200, edgeitems=3, max_line_width=100)
    _say("  " + body.replace("\n", "\n  "))


def cmd_run(args: argparse.Namespace) -> int:
    """``graphc run``: run a bundle or an ``.onnx`` file on ``.npy``/``.npz`` inputs."""
    from graphc.serialization import atomic_output

    if not os.path.exists(args.artifact):
        raise UsageError(f"no such file: {args.artifact}")
    feeds = parse_inputs(args.input or [])
    if args.artifact.endswith(".onnx"):
        outputs = run_onnx(args.artifact, feeds)
    else:
        from graphc.bundle import load

        exe = load(args.artifact)
        outputs = exe.train_step(feeds) if args.train else exe.run(feeds)
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
        for name, value in outputs.items():
            path = os.path.join(args.output_dir, name.replace("/", "_").replace(":", "_") + ".npy")
            with atomic_output(path) as f:
                np.lib.format.write_array(f, np.asarray(value), allow_pickle=False)
            _say(f"wrote {path}: {np.asarray(value).dtype}{list(np.shape(value))}")
    else:
        for name, value in outputs.items():
            _print_array(name, value)
    return 0


_ORT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
              "tensor(float16)": np.float16, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
              "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


def run_onnx(path: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the ONNX model ``path`` with onnxruntime (CUDA when available, else CPU),
    checking ``feeds`` against its inputs first."""
    import onnxruntime as ort

    try:
        from graphc.backends.onnx_runtime import providers
        chosen = list(providers())  # CUDA only where a GPU and its provider really load
    except ImportError:
        chosen = ["CPUExecutionProvider"]
    try:
        sess = ort.InferenceSession(path, providers=chosen)
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        raise GraphcError(f"{path}: onnxruntime cannot load it: {err}") from None
    inputs = sess.get_inputs()

    def listing() -> str:
        return "inputs:\n" + "\n".join(
            f"  {i.name}: {i.type.removeprefix('tensor(').rstrip(')')}"
            f"[{', '.join('None' if not isinstance(d, int) else str(d) for d in i.shape)}]"
            for i in inputs)
    names = [i.name for i in inputs]
    unknown = [k for k in feeds if k not in names]
    missing = [n for n in names if n not in feeds]
    if unknown or missing:
        what = (f"unknown input {', '.join(map(repr, unknown))}" if unknown else
                f"missing input {', '.join(map(repr, missing))}")
        raise GraphcError(f"{what}\n{listing()}")
    arrays = {}
    for i in inputs:
        value, want = np.asarray(feeds[i.name]), _ORT_TYPES.get(i.type)
        if want is not None and value.dtype != want:
            if not np.can_cast(value.dtype, want, "same_kind"):
                raise GraphcError(f"input {i.name!r}: expected {i.type}, got {value.dtype}"
                                  f"\n{listing()}")
            value = value.astype(want)
        dims = list(i.shape)
        if len(dims) != value.ndim or any(isinstance(d, int) and d != n
                                          for d, n in zip(dims, value.shape)):
            raise GraphcError(f"input {i.name!r}: expected shape {dims}, got "
                              f"{list(value.shape)}\n{listing()}")
        arrays[i.name] = value
    results = sess.run(None, arrays)
    return {o.name: r for o, r in zip(sess.get_outputs(), results)}
