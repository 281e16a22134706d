"""Saving and loading whole graphs, losslessly: :func:`save_graph` and :func:`load_graph`.

A loaded graph has the same nodes (ids, ops, inputs, attributes, names, specs, source
locations, serials), the same variables, seed and collections as the saved one; saving it
again writes the same bytes, and running it gives the same numbers. Loading never runs
code from the file: there is no pickle anywhere, arrays are read with
``np.lib.format.read_array(..., allow_pickle=False)`` and the JSON is plain data.

The file is one zip archive (written atomically: a temporary file in the same folder,
fsync, then ``os.replace``; on any error the temporary file is removed and a previous file
at the path is left as it was)::

    graph.json        deflated; the document below
    arrays/<k>.npy    stored; one per distinct Literal attribute (NumPy's .npy format)

``graph.json``::

    {"format": "graphc.graph", "version": 1, "graphc_version": "0.1.0",
     "seed": null | int,
     "files": [source file paths that locations index],
     "nodes": [{"id": 0, "op": "placeholder", "name": "x",
                "inputs": [[node_id, output_index], ...],
                "attrs": {"name": VALUE, ...},          # in the node's own order
                "specs": [{"shape": [null, 3] | null, "dtype": "float32"}, ...],
                "location": [file_index, line] | null,
                "serial": int | null,
                "aliases": ["other_name", ...]},       # only when there are some
               ...],
     "variables": [{"name": "W", "node": 3, "trainable": true,
                    "initial_value": [node_id, output_index]}, ...],
     "collections": {"key": [VALUE, ...], ...}}

A VALUE is ``{"type": TAG}`` or ``{"type": TAG, "value": PAYLOAD}`` with the tags of
:data:`CODECS` (``none bool int float str tuple list dict dtype literal slice ellipsis
tensor node``); floats that JSON cannot hold are the strings ``"nan" "-nan" "inf"
"-inf"``. New attribute kinds (scan's subgraphs) are one :func:`register_codec` call.

An alias is a name given to a build that hash-consing merged into an existing node: it
still resolves to that node with ``get_operation_by_name``.

After loading, every node's ``infer`` is run again on its restored inputs and must give
the stored specs, so a file from a graphc whose ops changed is refused rather than run.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import numpy as np

from graphc import dtypes
from graphc._version import __version__
from graphc.errors import FileFormatError, GraphError
from graphc.graph import Graph, Literal, Location, Node, Tensor, TensorSpec, get_default_graph

__all__ = ["save_graph", "load_graph", "register_codec", "CODECS", "FORMAT_NAME",
           "FORMAT_VERSION", "atomic_output"]

FORMAT_NAME = "graphc.graph"
FORMAT_VERSION = 1
GRAPH_ENTRY = "graph.json"

# A fixed timestamp makes the archive depend only on the graph (byte-identical re-saves).
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


# -- the value codecs ---------------------------------------------------------------------

class _Unencodable(Exception):
    """A value the format cannot hold (the caller adds which node or collection)."""


@dataclass(frozen=True)
class Codec:
    """How one Python type is written: ``encode(value, enc) -> JSON payload`` (None: no
    payload) and ``decode(payload, dec) -> value``. ``subclasses``: also used for
    subclasses (otherwise only the exact type matches, so a subclass cannot silently come
    back as its base)."""

    type: type
    tag: str
    encode: Callable[[Any, "_Encoder"], Any]
    decode: Callable[[Any, "_Decoder"], Any]
    subclasses: bool = False


CODECS: list[Codec] = []
_BY_TYPE: dict[type, Codec] = {}
_BY_TAG: dict[str, Codec] = {}


def register_codec(type_: type, tag: str, encode: Callable[[Any, "_Encoder"], Any],
                   decode: Callable[[Any, "_Decoder"], Any], subclasses: bool = False) -> Codec:
    """Teach the graph format a new attribute or collection value type."""
    if tag in _BY_TAG or type_ in _BY_TYPE:
        raise ValueError(f"a codec for {type_.__name__} or tag {tag!r} already exists")
    codec = Codec(type_, tag, encode, decode, subclasses)
    CODECS.append(codec)
    _BY_TYPE[type_] = codec
    _BY_TAG[tag] = codec
    return codec


def _expect(payload: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """``payload`` if it is a ``kind`` (a JSON true/false is no number), else ValueError."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(payload, kinds) or (isinstance(payload, bool) and bool not in kinds):
        raise ValueError(f"bad {what} {payload!r:.80}")
    return payload


_NONFINITE = {"nan": math.nan, "-nan": -math.nan, "inf": math.inf, "-inf": -math.inf}


def _encode_float(value: float, enc: "_Encoder") -> Any:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "-nan" if math.copysign(1.0, value) < 0 else "nan"
    return "inf" if value > 0 else "-inf"


def _decode_float(payload: Any, dec: "_Decoder") -> float:
    if isinstance(payload, str):
        if payload not in _NONFINITE:
            raise ValueError(f"bad float payload {payload!r}")
        return _NONFINITE[payload]
    return float(_expect(payload, (int, float), "float"))


def _encode_dtype(value: dtypes.DType, enc: "_Encoder") -> str:
    return value.name


def _decode_dtype(payload: Any, dec: "_Decoder") -> dtypes.DType:
    name = _expect(payload, str, "dtype")
    try:
        return dtypes.as_dtype(name)
    except TypeError as err:
        raise ValueError(str(err)) from None


def _encode_dict(value: dict, enc: "_Encoder") -> dict:
    for k in value:
        if not isinstance(k, str):
            raise _Unencodable(f"a dict with a non-string key {k!r}")
    return {k: enc.value(v) for k, v in value.items()}


register_codec(type(None), "none", lambda v, e: None, lambda p, d: None)
register_codec(bool, "bool", lambda v, e: v, lambda p, d: _expect(p, bool, "bool"))
register_codec(int, "int", lambda v, e: v, lambda p, d: _expect(p, int, "int"))
register_codec(float, "float", _encode_float, _decode_float)
register_codec(str, "str", lambda v, e: v, lambda p, d: _expect(p, str, "str"))
register_codec(tuple, "tuple", lambda v, e: [e.value(x) for x in v],
               lambda p, d: tuple(d.value(x) for x in _expect(p, list, "tuple")))
register_codec(list, "list", lambda v, e: [e.value(x) for x in v],
               lambda p, d: [d.value(x) for x in _expect(p, list, "list")])
register_codec(dict, "dict", _encode_dict,
               lambda p, d: {k: d.value(v) for k, v in _expect(p, dict, "dict").items()})
register_codec(dtypes.DType, "dtype", _encode_dtype, _decode_dtype)
register_codec(Literal, "literal", lambda v, e: e.array(v),
               lambda p, d: d.literal(_expect(p, str, "literal")))
register_codec(slice, "slice", lambda v, e: [e.value(v.start), e.value(v.stop), e.value(v.step)],
               lambda p, d: slice(*(d.value(x) for x in _expect_len(p, 3, "slice"))))
register_codec(type(Ellipsis), "ellipsis", lambda v, e: None, lambda p, d: Ellipsis)
register_codec(Tensor, "tensor", lambda v, e: e.ref(v), lambda p, d: d.tensor(p),
               subclasses=True)
register_codec(Node, "node", lambda v, e: e.node_id(v), lambda p, d: d.node(p))


def _expect_len(payload: Any, n: int, what: str) -> list:
    if not isinstance(payload, list) or len(payload) != n:
        raise ValueError(f"bad {what} payload {payload!r}")
    return payload


# -- encoding -------------------------------------------------------------------------------

class _Encoder:
    """Turns one graph's values into JSON, collecting the arrays to write beside it."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.arrays: dict[Literal, str] = {}  # distinct Literals -> entry names, in order

    def value(self, value: Any) -> dict:
        codec = _BY_TYPE.get(type(value))
        if codec is None:
            codec = next((c for c in CODECS if c.subclasses and isinstance(value, c.type)), None)
        if codec is None:
            supported = ", ".join(c.type.__name__ for c in CODECS)
            raise _Unencodable(f"a value of type {type(value).__module__}."
                               f"{type(value).__qualname__} ({value!r:.80}), which the graph "
                               f"file format cannot store (it stores: {supported})")
        payload = codec.encode(value, self)
        return {"type": codec.tag} if payload is None else {"type": codec.tag, "value": payload}

    def array(self, literal: Literal) -> str:
        name = self.arrays.get(literal)
        if name is None:
            if literal.array.dtype.hasobject:
                raise _Unencodable(f"a Literal of dtype {literal.array.dtype} (object arrays "
                                   "would need pickle)")
            name = self.arrays[literal] = f"arrays/{len(self.arrays)}.npy"
        return name

    def node_id(self, node: Node) -> int:
        if node.graph is not self.graph:
            raise _Unencodable(f"node {node.name} of another graph")
        return node.id

    def ref(self, tensor: Tensor) -> list[int]:
        if tensor.graph is not self.graph:
            raise _Unencodable(f"tensor {tensor.name} of another graph")
        return [tensor.node.id, tensor.index]


def _encode_spec(spec: TensorSpec) -> dict:
    shape = None if spec.shape is None else [None if d is None else int(d) for d in spec.shape]
    return {"shape": shape, "dtype": spec.dtype.name}


def _encode_graph(graph: Graph, arrays: Optional[dict] = None
                  ) -> tuple[dict, list[tuple[str, np.ndarray]]]:
    # ``arrays``: an enclosing encoder's table, so a subgraph (a scan body) stored inside
    # an attribute shares the archive's array entries.
    enc = _Encoder(graph)
    if arrays is not None:
        enc.arrays = arrays
    files: dict[str, int] = {}
    aliases: dict[int, list[str]] = {}
    for name, node in graph._by_name.items():
        if name != node.name:
            aliases.setdefault(node.id, []).append(name)
    nodes = []
    for i, node in enumerate(graph.nodes):
        if node.id != i or node.graph is not graph:
            raise GraphError(f"save_graph: node {node.name} has id {node.id} at position {i} "
                             "of the graph's node list (a corrupted graph)")
        for t in node.inputs:
            if t.graph is not graph or t.node.id >= i:
                raise GraphError(f"save_graph: node {node.name}: input {t.name} is not an "
                                 "earlier node of this graph")
        attrs = {}
        for key, value in node.attrs.items():
            try:
                attrs[key] = enc.value(value)
            except _Unencodable as err:
                raise GraphError(f"save_graph: node {node.name!r} (op {node.op}), attribute "
                                 f"{key!r} holds {err}") from None
        location = None
        if node.location is not None:
            index = files.setdefault(str(node.location.file), len(files))
            line = node.location.line
            location = [index, line if line is None else int(line)]
        record = {"id": i, "op": node.op, "name": node.name,
                  "inputs": [[t.node.id, t.index] for t in node.inputs], "attrs": attrs,
                  "specs": [_encode_spec(s) for s in node.specs], "location": location,
                  "serial": node.serial}
        if i in aliases:
            record["aliases"] = aliases[i]
        nodes.append(record)
    variables = []
    for name, var in graph.variables.items():
        if not (isinstance(var, Tensor) and var.graph is graph and var.node.op == "variable"
                and hasattr(var, "initial_value")):
            raise GraphError(f"save_graph: graph.variables[{name!r}] is not a variable of "
                             "this graph")
        try:
            init = enc.ref(var.initial_value)
        except _Unencodable as err:
            raise GraphError(f"save_graph: variable {name!r}: its initial value is {err}") from None
        variables.append({"name": name, "node": var.node.id, "trainable": bool(var.trainable),
                          "initial_value": init})
    collections = {}
    for key, items in graph.collections.items():
        if not isinstance(key, str) or not isinstance(items, list):
            raise GraphError(f"save_graph: collection {key!r} must be a list under a string key")
        encoded = []
        for j, item in enumerate(items):
            try:
                encoded.append(enc.value(item))
            except _Unencodable as err:
                raise GraphError(f"save_graph: collection {key!r}, item {j} is {err}") from None
        collections[key] = encoded
    seed = graph.seed if graph.seed is None else int(graph.seed)
    doc = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "graphc_version": __version__,
           "seed": seed, "files": list(files), "nodes": nodes, "variables": variables,
           "collections": collections}
    arrays = [(name, literal.array) for literal, name in enc.arrays.items()]
    return doc, arrays


# -- writing --------------------------------------------------------------------------------

def zip_info(name: str, compress: int = zipfile.ZIP_STORED) -> zipfile.ZipInfo:
    """A zip entry header with a fixed date, so archives depend only on their contents."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = compress
    info.external_attr = 0o644 << 16
    return info


def write_npy_entry(zf: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    """One ``.npy`` entry, written without pickle (as ``np.savez`` does)."""
    with zf.open(zip_info(name), "w", force_zip64=True) as out:
        np.lib.format.write_array(out, np.asanyarray(array), allow_pickle=False)


def _create_temp(path: str) -> tuple[int, str]:
    """A new file beside ``path``, created with the mode a plain ``open(path, "w")`` would
    give (0o666 less the umask), unlike ``mkstemp``'s 0o600."""
    directory, base = os.path.split(os.path.abspath(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {path}")


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[Any]:
    """A binary file that replaces ``path`` only when the ``with`` block succeeds: it is a
    temporary file in the same folder, fsynced and then ``os.replace``d onto ``path``. On
    any error the temporary file is removed and a previous file at ``path`` is untouched."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):  # replacing a file keeps its permissions
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def save_graph(path: Any, graph: Optional[Graph] = None) -> str:
    """Write ``graph`` (default: the default graph) to ``path``, losslessly; returns the path.

    Raises GraphError, naming the node or collection, for a value the format cannot hold.
    """
    graph = graph if graph is not None else get_default_graph()
    doc, arrays = _encode_graph(graph)  # every encoding error comes before any writing
    data = json.dumps(doc, allow_nan=False, separators=(",", ":")).encode("ascii")
    path = os.fspath(path)
    with atomic_output(path) as f:
        with zipfile.ZipFile(f, "w", allowZip64=True) as zf:
            zf.writestr(zip_info(GRAPH_ENTRY, zipfile.ZIP_DEFLATED), data)
            for name, array in arrays:
                write_npy_entry(zf, name, array)
    return path


# -- decoding -------------------------------------------------------------------------------

class _Decoder:
    """Rebuilds values of one graph file; ``where`` names the record being decoded."""

    def __init__(self, graph: Graph, zf: zipfile.ZipFile, path: str) -> None:
        self.graph = graph
        self.zf = zf
        self.path = path
        self.names = set(zf.namelist())
        self.literals: dict[str, Literal] = {}

    def value(self, encoded: Any) -> Any:
        if not isinstance(encoded, dict) or not isinstance(encoded.get("type"), str):
            raise ValueError(f"bad encoded value {encoded!r:.80}")
        codec = _BY_TAG.get(encoded["type"])
        if codec is None:
            raise ValueError(f"unknown value type {encoded['type']!r} (written by a newer graphc?)")
        return codec.decode(encoded.get("value"), self)

    def node(self, node_id: Any) -> Node:
        if isinstance(node_id, bool) or not isinstance(node_id, int) or \
                not 0 <= node_id < len(self.graph.nodes):
            raise ValueError(f"reference to node {node_id!r}, which is not an earlier node")
        return self.graph.nodes[node_id]

    def tensor(self, ref: Any) -> Tensor:
        node_id, index = _expect_len(ref, 2, "tensor reference")
        node = self.node(node_id)
        if isinstance(index, bool) or not isinstance(index, int) or \
                not 0 <= index < len(node.outputs):
            raise ValueError(f"reference to output {index!r} of {node.name}, which has "
                             f"{len(node.outputs)} outputs")
        return node.outputs[index]

    def literal(self, name: str) -> Literal:
        literal = self.literals.get(name)
        if literal is None:
            if name not in self.names:
                raise FileFormatError(f"{self.path}: the archive lacks the array entry {name!r}")
            try:
                with self.zf.open(name) as f:
                    array = np.lib.format.read_array(f, allow_pickle=False)
            except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error,
                    struct.error) as err:
                raise FileFormatError(f"{self.path}: array entry {name!r} is corrupt or "
                                      f"truncated: {err}") from None
            literal = self.literals[name] = Literal(array)
        return literal


def _decode_spec(record: Any) -> TensorSpec:
    shape = record["shape"]
    if shape is not None:
        for d in _expect(shape, list, "shape"):
            if d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 0):
                raise ValueError(f"bad dimension {d!r}")
        shape = tuple(shape)
    return TensorSpec(shape, _decode_dtype(record["dtype"], None))  # type: ignore[arg-type]


def _check_header(doc: Any, path: str) -> None:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise FileFormatError(f"{path}: not a graphc graph file (format {found!r}, expected "
                              f"{FORMAT_NAME!r})")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise FileFormatError(f"{path}: bad format version {version!r}")
    if version > FORMAT_VERSION:
        raise FileFormatError(f"{path}: written in graph format version {version} by graphc "
                              f"{doc.get('graphc_version', '?')}; this graphc ({__version__}) "
                              f"reads versions up to {FORMAT_VERSION}: upgrade graphc")


def _restore_nodes(graph: Graph, doc: dict, dec: _Decoder, path: str) -> dict[int, Any]:
    """Append the nodes; returns the Variables made for the variables' nodes, by node id
    (a variable's node must be a Variable before later nodes take it as an input)."""
    from graphc.op import REGISTRY
    from graphc.variables import Variable

    files = _expect(doc["files"], list, "files")
    var_records, made = {}, {}
    for rec in _expect(doc["variables"], list, "variables"):
        var_records[_expect(rec["node"], int, "variable node")] = rec
    for i, rec in enumerate(_expect(doc["nodes"], list, "nodes")):
        label = f"node {i}"
        try:
            label = f"node {i} ({rec['name']!r})"
            if rec["id"] != i:
                raise ValueError(f"id {rec['id']!r} at position {i}")
            op, name = _expect(rec["op"], str, "op"), _expect(rec["name"], str, "name")
            opdef = REGISTRY.get(op)
            if opdef is None:
                raise FileFormatError(f"{path}: {label} uses op {op!r}, which this graphc "
                                      f"({__version__}) does not define")
            inputs = tuple(dec.tensor(ref) for ref in _expect(rec["inputs"], list, "inputs"))
            attrs = {_expect(k, str, "attribute name"): dec.value(v)
                     for k, v in _expect(rec["attrs"], dict, "attrs").items()}
            specs = tuple(_decode_spec(s) for s in _expect(rec["specs"], list, "specs"))
            location = rec["location"]
            if location is not None:
                file_index, line = _expect_len(location, 2, "location")
                if not 0 <= _expect(file_index, int, "file index") < len(files):
                    raise ValueError(f"file index {file_index} out of range")
                location = Location(_expect(files[file_index], str, "file"),
                                    line if line is None else _expect(line, int, "line"))
            serial = rec["serial"]
            if serial is not None:
                _expect(serial, int, "serial")
            if opdef.stateful != (serial is not None):
                raise FileFormatError(f"{path}: {label}: op {op} is "
                                      f"{'' if opdef.stateful else 'not '}stateful in this "
                                      f"graphc, but the file gives it serial {serial!r}")
            _check_infer(opdef, inputs, attrs, specs, f"{path}: {label}, op {op}")
            aliases = [_expect(a, str, "alias") for a in rec.get("aliases", [])]
            node = graph._restore_node(op, inputs, attrs, specs, name, location, serial, aliases)
            var_rec = var_records.get(i)
            if var_rec is not None:
                if op != "variable" or len(specs) != 1:
                    raise ValueError(f"variable record points at a {op} node")
                trainable = _expect(var_rec["trainable"], bool, "trainable")
                made[i] = Variable.restore(node, None, trainable)
        except FileFormatError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, GraphError) as err:
            raise FileFormatError(f"{path}: {label}: malformed record: {err}") from None
    return made


def _check_infer(opdef: Any, inputs: tuple, attrs: dict, specs: tuple, where: str) -> None:
    try:
        out = opdef.infer(*(t.spec for t in inputs), **attrs)
    except Exception as err:  # noqa: BLE001 - any failure here means the file does not fit
        raise FileFormatError(f"{where}: shape inference fails on the stored inputs and "
                              f"attributes ({type(err).__name__}: {err}); the file was "
                              "probably written by another version of graphc") from None
    inferred = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    if inferred != specs:
        raise FileFormatError(
            f"{where}: the stored output types ({', '.join(map(str, specs))}) differ from "
            f"what this graphc infers ({', '.join(map(str, inferred))}); the file was "
            "probably written by another version of graphc")


def _decode_graph(doc: Any, zf: zipfile.ZipFile, path: str) -> Graph:
    _check_header(doc, path)
    graph = Graph()
    dec = _Decoder(graph, zf, path)
    try:
        seed = doc["seed"]
        if seed is not None:
            _expect(seed, int, "seed")
        graph.seed = seed
        _expect(doc["collections"], dict, "collections")
    except (KeyError, TypeError, ValueError) as err:
        raise FileFormatError(f"{path}: malformed graph.json: {err!r}") from None
    made = _restore_nodes(graph, doc, dec, path)
    for rec in doc["variables"]:
        try:
            name = _expect(rec["name"], str, "variable name")
            var = made.get(rec["node"])
            if var is None:
                raise ValueError("it points at no variable node")
            if name != var.node.name or name in graph.variables:
                raise ValueError(f"variable name {name!r} does not match its node "
                                 f"{var.node.name!r} or repeats")
            var.initial_value = dec.tensor(rec["initial_value"])
            graph.variables[name] = var
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise FileFormatError(f"{path}: variable record {rec!r:.80}: {err}") from None
    for key, items in doc["collections"].items():
        try:
            graph.collections[key] = [dec.value(v) for v in _expect(items, list, "collection")]
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise FileFormatError(f"{path}: collection {key!r}: malformed: {err}") from None
    return graph


def load_graph(path: Any) -> Graph:
    """Read a graph written by :func:`save_graph` into a new :class:`Graph`.

    A missing file raises FileNotFoundError; a file that is not a graph file, is corrupt or
    truncated, was written by a newer format version, or uses ops or types this graphc does
    not know raises :class:`graphc.FileFormatError` naming the path and the problem.
    """
    import graphc  # noqa: F401  (every op module registers its ops on import)

    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as zf:
            try:
                data = zf.read(GRAPH_ENTRY)
            except KeyError:
                raise FileFormatError(f"{path}: not a graphc graph file (the archive has no "
                                      f"{GRAPH_ENTRY})") from None
            try:
                doc = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
            except ValueError as err:
                raise FileFormatError(f"{path}: {GRAPH_ENTRY} is not valid JSON: {err}") from None
            try:
                return _decode_graph(doc, zf, path)
            except FileFormatError:
                raise
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
                raise FileFormatError(f"{path}: malformed {GRAPH_ENTRY} "
                                      f"({type(err).__name__}: {err})") from None
    except (FileFormatError, FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, struct.error, ValueError) as err:
        raise FileFormatError(f"{path}: not a graphc graph file, or corrupt or truncated "
                              f"({type(err).__name__}: {err})") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")
