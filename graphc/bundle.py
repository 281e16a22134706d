"""The ``.graphc`` bundle: one file holding a compiled model, and :func:`load` to run it.

A bundle is a zip archive (written atomically, with fixed timestamps so equal models give
equal bytes)::

    manifest.json      what the bundle is, and the SHA-256 of every other member
    graph.graphc       the optimized graph, in graphc's lossless graph format
                       (:mod:`graphc.serialization`)
    weights.npz        the variables' values (:mod:`graphc.checkpoint`; no pickle)
    kernels/<path>     generated kernel sources, when the target's backend exports them

``manifest.json``::

    {"format": "graphc.bundle", "version": 1, "graphc_version": "0.1.0",
     "target": "reference" | "cpu" | "cuda",
     "model": "model.py",                      # the file it was compiled from (informative)
     "signature": {"inputs":  [{"name": "x", "tensor": "x", "dtype": "float32",
                                "shape": [null, 784]}, ...],      # null: any size
                   "outputs": [{"name": "probs", "tensor": "Softmax", ...}, ...],
                   "updates": ["Adam"],        # train ops (node or tensor names), may be []
                   "fixed": [{"tensor": "keras_learning_phase", "value": false}]},
     "passes": [{"name": "fold_constants", "changes": ["..."]}, ...] | null,
     "members": {"graph.graphc": {"sha256": "...", "size": 1234}, ...},
     "content_sha256": "..."}   # SHA-256 of the rest of the manifest (canonical JSON)

Loading (:func:`read_bundle`, :func:`load`) checks, before using anything: the format and
version; that the archive holds exactly the manifest's members, each with its hash; that
the graph loads (which re-infers every node) and matches the signature; that the weights
fit the graph's variables. Running it is :mod:`graphc.bundle_run`'s job. Loading never
runs code from the bundle: the graph and weights
are plain data, and kernel sources are *not* executed; instead, when the target's backend
can export sources, it regenerates them from the verified graph and they must equal the
stored ones, and the executable runs what the local backend generates.

The optional backend hook (for backend authors)::

    def export_sources(program: graphc.program.Program) -> dict[str, str]:
        '''relative file name -> generated source of every kernel compile(program) uses'''

It must be deterministic (same program, same graphc: same text). A backend without it
simply stores no ``kernels/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np

from graphc._version import __version__
from graphc.checkpoint import load_variables, save_variables
from graphc.errors import FileFormatError, GraphcError
from graphc.graph import Graph, Tensor
from graphc.serialization import atomic_output, load_graph, save_graph, zip_info
from graphc.shapes import format_shape
from graphc.signature import Signature

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "BundleError", "Bundle", "write_bundle",
           "read_bundle", "load", "program_of", "feed_tensors", "export_sources"]

FORMAT_NAME = "graphc.bundle"
FORMAT_VERSION = 1
SUFFIX = ".graphc"
MANIFEST = "manifest.json"
GRAPH = "graph.graphc"
WEIGHTS = "weights.npz"
KERNELS = "kernels/"


class BundleError(FileFormatError):
    """A bundle that is not one, is corrupt, was tampered with or does not fit together."""


@dataclass
class Bundle:
    """A verified bundle's contents."""

    path: str
    manifest: dict
    graph: Graph
    signature: Signature
    weights: dict[str, np.ndarray]
    sources: dict[str, str]

    @property
    def target(self) -> str:
        """The target the bundle was compiled for."""
        return self.manifest["target"]


# -- writing --------------------------------------------------------------------------------

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tensor_record(name: str, t: Tensor) -> dict:
    shape = None if t.shape is None else [None if d is None else int(d) for d in t.shape]
    return {"name": name, "tensor": t.name, "dtype": t.dtype.name, "shape": shape}


def signature_record(signature: Signature) -> dict:
    """The manifest's description of ``signature``."""
    return {"inputs": [_tensor_record(n, t) for n, t in signature.inputs.items()],
            "outputs": [_tensor_record(n, t) for n, t in signature.outputs.items()],
            "updates": [u.name for u in signature.updates],
            "fixed": [{"tensor": t.name, "value": v.tolist()} for t, v in signature.fixed.items()]}


def program_of(signature: Signature, train: bool = False) -> Any:
    """The :class:`~graphc.program.Program` of the forward run (or of the training step)."""
    from graphc.program import build_program

    fetches: list[Any] = list(signature.outputs.values())
    if train:
        fetches += signature.updates
    return build_program(signature.graph, fetches, feed_tensors(signature))


def feed_tensors(signature: Signature) -> list[Tensor]:
    """What a run feeds: the inputs, then the placeholders with fixed values."""
    return [*signature.inputs.values(), *signature.fixed]


def export_sources(backend: Any, signature: Signature) -> dict[str, str]:
    """The kernel sources ``backend`` generates for the forward run (``forward/``) and the
    training step (``train/``); empty when the backend has no ``export_sources`` hook."""
    hook = getattr(backend, "export_sources", None)
    if hook is None:
        return {}
    sources = {f"forward/{k}": v for k, v in hook(program_of(signature)).items()}
    if signature.updates:
        sources.update({f"train/{k}": v for k, v in hook(program_of(signature, True)).items()})
    return sources


def write_bundle(path: str, signature: Signature, target: str, weights: Mapping[str, Any],
                 sources: Optional[Mapping[str, str]] = None, model: Optional[str] = None,
                 passes: Optional[list] = None) -> dict:
    """Write the bundle ``path`` atomically and return its manifest.

    ``signature`` names the graph to store (``signature.graph``, already optimized);
    ``weights`` maps every variable's name to its value.
    """
    members: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="graphc-bundle-") as tmp:
        members[GRAPH] = _file_bytes(save_graph(os.path.join(tmp, "g"), signature.graph))
        members[WEIGHTS] = _file_bytes(save_variables(os.path.join(tmp, "w.npz"), weights))
    for name, text in sorted((sources or {}).items()):
        if name.startswith("/") or ".." in name.split("/"):
            raise GraphcError(f"bad kernel source name {name!r} (must be a relative path)")
        members[KERNELS + name] = text.encode("utf-8")
    hashes = {name: {"sha256": _sha256(data), "size": len(data)} for name, data in members.items()}
    manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "graphc_version": __version__,
                "target": target, "model": model, "signature": signature_record(signature),
                "passes": passes, "members": hashes}
    manifest["content_sha256"] = _content_hash(manifest)
    with atomic_output(path) as f:
        with zipfile.ZipFile(f, "w", allowZip64=True) as zf:
            zf.writestr(zip_info(MANIFEST, zipfile.ZIP_DEFLATED),
                        json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"))
            for name, data in members.items():
                zf.writestr(zip_info(name, zipfile.ZIP_DEFLATED), data)
    return manifest


def _file_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _content_hash(manifest: Mapping[str, Any]) -> str:
    """SHA-256 of the manifest's canonical JSON without this field: it covers the member
    hashes, so it identifies the whole bundle, and any edit of the manifest shows."""
    rest = {k: v for k, v in manifest.items() if k != "content_sha256"}
    return _sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode("utf-8"))


# -- reading --------------------------------------------------------------------------------

def read_bundle(path: str) -> Bundle:
    """Read and verify the bundle ``path`` (see the module docstring for the checks)."""
    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if MANIFEST not in names:
                raise BundleError(f"{path}: not a graphc bundle (no {MANIFEST} in the archive)")
            manifest = _parse_manifest(zf.read(MANIFEST), path)
            data = _verified_members(zf, names, manifest, path)
    except (BundleError, FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as err:
        raise BundleError(f"{path}: not a graphc bundle, or corrupt or truncated "
                          f"({type(err).__name__}: {err})") from None
    with tempfile.TemporaryDirectory(prefix="graphc-bundle-") as tmp:
        graph_path, weights_path = os.path.join(tmp, GRAPH), os.path.join(tmp, WEIGHTS)
        for p, name in ((graph_path, GRAPH), (weights_path, WEIGHTS)):
            with open(p, "wb") as f:
                f.write(data[name])
        try:
            graph = load_graph(graph_path)
            weights = load_variables(weights_path)
        except FileFormatError as err:
            raise BundleError(f"{path}: {str(err).replace(tmp + os.sep, '')}") from None
    signature = _signature_from(manifest, graph, path)
    _check_weights(graph, weights, path)
    sources = {name[len(KERNELS):]: blob.decode("utf-8") for name, blob in data.items()
               if name.startswith(KERNELS)}
    return Bundle(path, manifest, graph, signature, weights, sources)


def _parse_manifest(raw: bytes, path: str) -> dict:
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except ValueError as err:
        raise BundleError(f"{path}: {MANIFEST} is not valid JSON: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise BundleError(f"{path}: not a graphc bundle (manifest format "
                          f"{manifest.get('format') if isinstance(manifest, dict) else None!r})")
    version = manifest.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleError(f"{path}: bad bundle version {version!r}")
    if version > FORMAT_VERSION:
        raise BundleError(f"{path}: bundle format version {version} (written by graphc "
                          f"{manifest.get('graphc_version', '?')}); this graphc ({__version__}) "
                          f"reads up to version {FORMAT_VERSION}: upgrade graphc")
    for key, kind in (("target", str), ("signature", dict), ("members", dict)):
        if not isinstance(manifest.get(key), kind):
            raise BundleError(f"{path}: malformed manifest: {key!r} is missing or not a "
                              f"{kind.__name__}")
    return manifest


def _verified_members(zf: zipfile.ZipFile, names: list[str], manifest: dict,
                      path: str) -> dict[str, bytes]:
    if manifest.get("content_sha256") != _content_hash(manifest):
        raise BundleError(f"{path}: refused: the manifest does not match its content hash "
                          "(it was edited after graphc wrote it)")
    members = manifest["members"]
    listed, present = set(members), set(names) - {MANIFEST}
    if len(names) != len(set(names)):
        raise BundleError(f"{path}: the archive holds a member twice (tampered)")
    if present - listed:
        raise BundleError(f"{path}: refused: the archive holds files the manifest does not "
                          f"list ({', '.join(sorted(present - listed))}); it was altered "
                          "after graphc wrote it")
    if listed - present:
        raise BundleError(f"{path}: the archive lacks {', '.join(sorted(listed - present))}")
    for required in (GRAPH, WEIGHTS):
        if required not in listed:
            raise BundleError(f"{path}: malformed bundle: no {required}")
    data = {}
    for name in sorted(listed):
        entry = members[name]
        blob = zf.read(name)
        if not isinstance(entry, dict) or _sha256(blob) != entry.get("sha256") \
                or len(blob) != entry.get("size"):
            raise BundleError(f"{path}: refused: {name} does not match the hash in the manifest "
                              "(the bundle was modified or corrupted after graphc wrote it); "
                              "recompile it with `graphc compile`")
        data[name] = blob
    return data


def _signature_from(manifest: dict, graph: Graph, path: str) -> Signature:
    rec = manifest["signature"]
    try:
        inputs = {r["name"]: _lookup(graph, r, path) for r in rec["inputs"]}
        outputs = {r["name"]: _lookup(graph, r, path) for r in rec["outputs"]}
        updates = [graph.as_graph_element(name) for name in rec.get("updates", [])]
        fixed = {graph.get_tensor_by_name(r["tensor"]): r["value"] for r in rec.get("fixed", [])}
        return Signature(inputs, outputs, updates, fixed)
    except BundleError:
        raise
    except (GraphcError, KeyError, TypeError) as err:
        raise BundleError(f"{path}: the manifest's signature does not fit the graph: {err}") \
            from None


def _lookup(graph: Graph, rec: dict, path: str) -> Tensor:
    t = graph.get_tensor_by_name(rec["tensor"])
    shape = None if t.shape is None else [d for d in t.shape]
    if t.dtype.name != rec["dtype"] or shape != rec["shape"]:
        raise BundleError(f"{path}: signature entry {rec['name']!r} says {rec['dtype']}"
                          f"{rec['shape']}, the graph has {t.dtype.name}{format_shape(t.shape)}")
    return t


def _check_weights(graph: Graph, weights: dict[str, np.ndarray], path: str) -> None:
    problems = [f"missing {name}" for name in graph.variables if name not in weights]
    problems += [f"extra {name}" for name in weights if name not in graph.variables]
    for name, var in graph.variables.items():
        w = weights.get(name)
        if w is not None and (w.dtype != var.dtype.np or tuple(w.shape) != tuple(var.shape)):
            problems.append(f"{name} is {w.dtype}{list(w.shape)}, the variable is {var.spec}")
    if problems:
        raise BundleError(f"{path}: the weights do not fit the graph: " + "; ".join(problems))


# -- running ------------------------------------------------------------------------------

def load(path: str) -> Any:
    """Load the bundle ``path`` as a callable (``gc.load``): a
    :class:`graphc.bundle_run.BundleExecutable`."""
    from graphc.bundle_run import BundleExecutable

    return BundleExecutable(read_bundle(path))
