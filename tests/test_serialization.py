"""gc.save_graph / gc.load_graph: lossless round trips, byte-identical re-saves, bad files."""

from __future__ import annotations

import json
import math
import os
import zipfile

import numpy as np
import pytest

import graphc as gc
from graphc.errors import FileFormatError, GraphError
from graphc.graph import Literal, Node, Tensor, TensorSpec
from graphc.op import REGISTRY, Kind, OpDef
from graphc.serialization import FORMAT_VERSION, load_graph, save_graph
from graphc.variables import Variable


# -- comparing graphs ---------------------------------------------------------------------

def _same_value(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) ==
                                                     math.copysign(1, b))
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, slice):
        return _same_value((a.start, a.stop, a.step), (b.start, b.stop, b.step))
    if isinstance(a, Tensor):
        return (a.node.id, a.index) == (b.node.id, b.index)
    if isinstance(a, Node):
        return a.id == b.id
    return a == b


def assert_same_graph(g: gc.Graph, h: gc.Graph) -> None:
    assert len(g.nodes) == len(h.nodes)
    for a, b in zip(g.nodes, h.nodes):
        assert b.graph is h
        assert (a.id, a.op, a.name, a.specs, a.location, a.serial) == \
            (b.id, b.op, b.name, b.specs, b.location, b.serial), a.name
        assert [(t.node.id, t.index, type(t)) for t in a.inputs] == \
            [(t.node.id, t.index, type(t)) for t in b.inputs], a.name
        assert all(t.graph is h for t in b.inputs)
        assert list(a.attrs) == list(b.attrs), a.name
        for k in a.attrs:
            assert _same_value(a.attrs[k], b.attrs[k]), (a.name, k, a.attrs[k], b.attrs[k])
        assert [type(t) for t in a.outputs] == [type(t) for t in b.outputs]
        assert a.key() == b.key() or any(isinstance(v, float) and math.isnan(v)
                                         for v in a.attrs.values())
    assert list(g.variables) == list(h.variables)
    for name, v in g.variables.items():
        w = h.variables[name]
        assert isinstance(w, Variable) and w.node is h.nodes[v.node.id] and w.node.outputs == (w,)
        assert w.trainable == v.trainable
        assert (w.initial_value.node.id, w.initial_value.index) == \
            (v.initial_value.node.id, v.initial_value.index)
        assert w.initial_value.graph is h
    assert g.seed == h.seed
    assert list(g.collections) == list(h.collections)
    for key in g.collections:
        assert _same_value(g.collections[key], h.collections[key]), key
    assert {n: node.id for n, node in g._by_name.items()} == \
        {n: node.id for n, node in h._by_name.items()}
    assert g._stateful_counter == h._stateful_counter


def _bits(values):
    return [(v.dtype, v.shape, v.tobytes()) for v in values]


def _entry(path, name="graph.json") -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)


# -- graphs to round-trip -----------------------------------------------------------------
# Each builder returns (fetches, feeds by placeholder name).

def _arith():
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    b = gc.placeholder(gc.float32, (3,), name="b")
    y = (x + b) * 2.0 - x / (b + 4.0) + x ** 2
    z = gc.maximum(x, 0.5) // 0.25 + gc.exp(-gc.abs(x))
    rng = np.random.default_rng(0)
    return [y, z], {"x": rng.standard_normal((4, 3)).astype(np.float32),
                    "b": rng.standard_normal(3).astype(np.float32)}


def _matmul():
    a = gc.placeholder(gc.float64, (2, None, 4), name="a")
    w = gc.constant(np.arange(20, dtype=np.float64).reshape(4, 5) / 7, name="w")
    y = gc.matmul(a, w)
    t = gc.matmul(y, y, transpose_b=True)
    v = gc.matmul(gc.constant(np.ones(4)), a, transpose_a=False, transpose_b=True)
    return [y, t, v], {"a": np.random.default_rng(1).standard_normal((2, 3, 4))}


def _reductions():
    x = gc.placeholder(gc.float32, (2, 3, 4), name="x")
    return [gc.reduce_sum(x, axis=(0, 2), keepdims=True), gc.reduce_mean(x, axis=-1),
            gc.reduce_max(x, axis=(1, 2)), gc.reduce_min(x), gc.reduce_prod(x, 1, True),
            gc.argmax(x, axis=2), gc.argmin(x, axis=1, output_type=gc.int32),
            gc.norm(x, axis=(1,))], \
        {"x": np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float32)}


def _where_cast():
    x = gc.placeholder(gc.float32, (None,), name="x")
    i = gc.cast(x * 10.0, gc.int32)
    c = gc.logical_and(gc.greater(x, 0.0), gc.not_equal(i, 3))
    return [gc.where(c, x, -x), gc.cast(c, gc.float64), i % 4, gc.cast(i, gc.bool)], \
        {"x": np.linspace(-1, 1, 9, dtype=np.float32)}


def _variables():
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    w = gc.Variable(gc.random_normal((3, 3), seed=1), name="W")
    b = gc.Variable(np.arange(3, dtype=np.float32), name="b", trainable=False)
    u = gc.Variable(gc.random_uniform((3,), seed=7) * 2.0 - 1.0, name="u")
    gc.set_random_seed(5)
    noise = gc.random_normal((3,))
    return [x @ w + b + u, noise, w, u], {"x": np.ones((2, 3), np.float32)}


def _scopes_and_collections():
    x = gc.placeholder(gc.float32, (None, 2), name="x")
    with gc.name_scope("layer1"):
        w = gc.Variable(np.eye(2, dtype=np.float32), name="W")
        h = gc.tanh(x @ w, name="act")
        with gc.name_scope("inner"):
            h2 = gc.sigmoid(h)
    with gc.name_scope("layer1"):  # reopened scope: fresh names
        h3 = gc.tanh(h2, name="act")
    g = gc.get_default_graph()
    g.add_to_collection("losses", gc.reduce_sum(h3))
    g.add_to_collection("losses", h3.node)
    g.add_to_collection("meta", {"lr": 0.5, "steps": [1, (2, 3)], "ok": True, "none": None})
    g.add_to_collection("meta", "a string")
    g.add_to_collection("vars", w)
    g.add_to_collection("weird floats", math.inf)
    return [h3, g.get_collection("losses")[0]], {"x": np.full((3, 2), 0.3, np.float32)}


def _nonfinite_constants():
    x = gc.placeholder(gc.float32, (4,), name="x")
    y = gc.clip_by_value(x, -np.inf, np.inf) + gc.constant([np.nan, np.inf, -np.inf, -0.0])
    return [y, gc.fill((2, 2), math.nan), gc.zeros((2,), gc.float16)], \
        {"x": np.array([1, 2, 3, 4], np.float32)}


def _gradients():
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    w = gc.Variable(gc.random_normal((3, 2), seed=3), name="W")
    b = gc.Variable(np.zeros(2, np.float32), name="b")
    logits = x @ w + b
    loss = gc.reduce_mean(gc.square(gc.sigmoid(logits) - 0.5)) + gc.reduce_max(logits)
    gw, gb = gc.gradients(loss, [w, b])
    (ggw,) = gc.gradients(gc.reduce_sum(gw * gw), [w])
    return [loss, gw, gb, ggw], \
        {"x": np.random.default_rng(4).standard_normal((5, 3)).astype(np.float32)}


def _aliases():
    x = gc.placeholder(gc.float32, (2,), name="x")
    a = gc.add(x, 1.0, name="first")
    b = gc.add(x, 1.0, name="second")  # hash-consed into `first`: `second` is an alias
    assert a.node is b.node
    return [a], {"x": np.array([1, 2], np.float32)}


BUILDERS = [_arith, _matmul, _reductions, _where_cast, _variables, _scopes_and_collections,
            _nonfinite_constants, _gradients, _aliases]


def _build(builder):
    g = gc.Graph()
    with g.as_default():
        fetches, feeds = builder()
    return g, fetches, feeds


def _run(graph, fetches, feeds):
    names = [t.name for t in fetches]
    return gc.Session(graph, target="reference").run(names, feeds)


@pytest.mark.parametrize("builder", BUILDERS, ids=[b.__name__[1:] for b in BUILDERS])
def test_round_trip(builder, tmp_path) -> None:
    g, fetches, feeds = _build(builder)
    path = tmp_path / "model.gcg"
    assert save_graph(path, g) == str(path)
    h = load_graph(path)
    assert_same_graph(g, h)
    # saving the loaded graph gives the same bytes, the JSON and the whole archive
    save_graph(tmp_path / "again.gcg", h)
    assert _entry(path) == _entry(tmp_path / "again.gcg")
    assert path.read_bytes() == (tmp_path / "again.gcg").read_bytes()
    # and running it gives the same bits
    assert _bits(_run(g, fetches, feeds)) == _bits(_run(h, fetches, feeds))


def test_default_graph_and_aliases(tmp_path) -> None:
    g, _, _ = _build(_aliases)
    with g.as_default():
        save_graph(tmp_path / "g.gcg")
    h = load_graph(tmp_path / "g.gcg")
    assert h.get_operation_by_name("second") is h.get_operation_by_name("first")


def test_loaded_graph_is_independent_and_extensible(tmp_path) -> None:
    g, fetches, feeds = _build(_variables)
    save_graph(tmp_path / "g.gcg", g)
    h = load_graph(tmp_path / "g.gcg")
    x, w = h.get_tensor_by_name("x"), h.variables["W"]
    assert isinstance(w, Variable) and w.graph is h
    n_nodes, counter = len(h.nodes), h._stateful_counter
    with h.as_default():
        same = gc.matmul(x, w)  # already in the graph: hash-consing finds it
        assert same.node.id < n_nodes
        x2 = gc.placeholder(gc.float32, (None, 3), name="x")
        assert x2.name == "x_1"
        v = gc.Variable(np.ones((3, 3), np.float32), name="W")
        assert v.name == "W_1" and v.node.serial > counter
        out = gc.add(gc.reduce_sum(x2 @ v), gc.reduce_sum(w), name="total")
        fresh = gc.random_normal((3,))  # the graph's seed and stream counter carried over
    assert len(g.nodes) == n_nodes  # the original is untouched
    assert h.seed == 5 and fresh.node.attrs["seed"] == 5
    assert fresh.node.attrs["stream"] == g.collections["_random_streams"][0] + 1
    sess = gc.Session(h, target="reference")
    value = sess.run(out, {"x_1": np.ones((2, 3), np.float32)})
    w0 = gc.Session(g, target="reference").run("W")
    np.testing.assert_allclose(value, 2 * 3 * 3 + w0.sum(), rtol=1e-5)


def test_graph_json_is_plain_json(tmp_path) -> None:
    g, _, _ = _build(_nonfinite_constants)
    save_graph(tmp_path / "g.gcg", g)
    doc = json.loads(_entry(tmp_path / "g.gcg"),
                     parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert doc["format"] == "graphc.graph" and doc["version"] == FORMAT_VERSION
    assert doc["graphc_version"] == gc.__version__
    with zipfile.ZipFile(tmp_path / "g.gcg") as zf:
        names = zf.namelist()
    assert names[0] == "graph.json" and all(n.endswith(".npy") for n in names[1:])


# -- every attribute type, through a test-only op ------------------------------------------

@pytest.fixture
def attr_op(monkeypatch):
    """An op ``test_attrs`` (identity, any attributes), registered only for one test."""
    def infer(x, **attrs):
        return x

    opdef = OpDef("test_attrs", infer, lambda x, **attrs: x, Kind.OPAQUE)
    monkeypatch.setitem(REGISTRY, "test_attrs", opdef)
    return opdef


ALL_KINDS = {
    "none": None, "true": True, "false": False, "zero": 0, "int": -7, "big": 2**70,
    "float": 0.1, "neg_zero": -0.0, "tiny": 5e-324, "huge": 1.7976931348623157e308,
    "nan": math.nan, "neg_nan": -math.nan, "inf": math.inf, "neg_inf": -math.inf,
    "str": "héllo \"quoted\" \n", "empty": (), "tuple": (1, 2.0, "3", None, (True, (4,))),
    "dtype": gc.float16, "dtypes": (gc.int64, gc.bool),
    "literal": Literal(np.array([[1.5, np.nan], [np.inf, -0.0]], np.float32)),
    "literal0d": Literal(np.int8(-3)), "literal_bool": Literal([True, False]),
    "literal_same": Literal(np.array([[1.5, np.nan], [np.inf, -0.0]], np.float32)),
    "ellipsis": Ellipsis, "index": (Ellipsis, None, 3),
}
# Slices are unhashable before Python 3.12, so they cannot be node attributes there (the
# hash-consing key hashes attributes); collections hold them on every version.
SLICES = [slice(1, None, -2), (slice(None), Ellipsis, None, slice(0, 5)), slice(None)]


def test_every_attribute_kind_round_trips(attr_op, tmp_path) -> None:
    from graphc.op import apply1

    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (2,), name="x")
        y = apply1("test_attrs", [x], dict(ALL_KINDS), name="kinds")
        y2 = apply1("test_attrs", [y], {"alpha": math.nan, "beta": -math.inf})
        g.add_to_collection("slices", SLICES)
        g.add_to_collection("kinds", dict(ALL_KINDS))
    save_graph(tmp_path / "g.gcg", g)
    h = load_graph(tmp_path / "g.gcg")
    assert_same_graph(g, h)
    attrs = h.get_operation_by_name("kinds").attrs
    assert math.copysign(1, attrs["neg_nan"]) == -1 and math.copysign(1, attrs["nan"]) == 1
    assert attrs["dtype"] is gc.float16 and attrs["ellipsis"] is Ellipsis
    lit = attrs["literal"].array
    assert lit.dtype == np.float32 and not lit.flags.writeable
    assert lit.tobytes() == ALL_KINDS["literal"].array.tobytes()
    with zipfile.ZipFile(tmp_path / "g.gcg") as zf:  # equal Literals are stored once
        assert len([n for n in zf.namelist() if n.endswith(".npy")]) == 3
    save_graph(tmp_path / "again.gcg", h)
    assert (tmp_path / "g.gcg").read_bytes() == (tmp_path / "again.gcg").read_bytes()
    feed = {"x": np.array([1, 2], np.float32)}
    assert _bits(_run(h, [y2], feed)) == _bits(_run(g, [y2], feed))


def test_unknown_attribute_type_is_refused_at_save(attr_op, tmp_path) -> None:
    from graphc.op import apply1

    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (2,), name="x")
        apply1("test_attrs", [x], {"ok": 1, "bad": frozenset({1})}, name="odd")
    path = tmp_path / "g.gcg"
    with pytest.raises(GraphError, match=r"'odd'.*test_attrs.*'bad'.*frozenset"):
        save_graph(path, g)
    assert os.listdir(tmp_path) == []


def test_unknown_collection_value_is_refused_at_save(tmp_path) -> None:
    g = gc.Graph()
    g.add_to_collection("callbacks", lambda: None)
    with pytest.raises(GraphError, match=r"collection 'callbacks', item 0.*function"):
        save_graph(tmp_path / "g.gcg", g)
    other = gc.Graph()
    with other.as_default():
        t = gc.constant(1.0)
    g.collections.clear()
    g.add_to_collection("foreign", t)
    with pytest.raises(GraphError, match="another graph"):
        save_graph(tmp_path / "g.gcg", g)
    assert os.listdir(tmp_path) == []


# -- atomic writes --------------------------------------------------------------------------

def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch) -> None:
    g, _, _ = _build(_variables)
    path = tmp_path / "g.gcg"
    save_graph(path, g)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(OSError, match="simulated"):
        save_graph(path, g)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["g.gcg"]  # no temporary file left behind
    monkeypatch.undo()
    assert_same_graph(g, load_graph(path))


# -- bad files ------------------------------------------------------------------------------

def _rewrite(src, dst, edit_doc=None, drop=(), extra=()) -> None:
    """A copy of graph file ``src`` with graph.json edited and entries dropped or added."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            if name in drop:
                continue
            data = zin.read(name)
            if name == "graph.json" and edit_doc is not None:
                doc = json.loads(data)
                edit_doc(doc)
                data = json.dumps(doc).encode()
            zout.writestr(name, data)
        for name, data in extra:
            zout.writestr(name, data)


@pytest.fixture
def good_file(tmp_path):
    g, _, _ = _build(_gradients)
    path = tmp_path / "good.gcg"
    save_graph(path, g)
    return path


def _node(doc, op):
    return next(n for n in doc["nodes"] if n["op"] == op)


def _set(doc, key, value):
    doc[key] = value


BAD_EDITS = {
    "wrong_format": (lambda d: _set(d, "format", "something.else"), "not a graphc graph file"),
    "newer_version": (lambda d: _set(d, "version", FORMAT_VERSION + 1),
                      f"format version {FORMAT_VERSION + 1}.*upgrade"),
    "bad_version": (lambda d: _set(d, "version", "one"), "bad format version"),
    "unknown_op": (lambda d: _node(d, "matmul").update(op="fancy_matmul"),
                   "op 'fancy_matmul'.*does not define"),
    "spec_skew": (lambda d: _node(d, "matmul")["specs"][0].update(dtype="float64"),
                  "matmul.*stored output types.*differ"),
    "infer_fails": (lambda d: _node(d, "matmul")["attrs"].update(
        transpose_b={"type": "bool", "value": True}), "matmul.*inference fails"),
    "unknown_tag": (lambda d: _node(d, "reduce_max")["attrs"].update(
        keepdims={"type": "complex", "value": [1, 2]}), "unknown value type 'complex'"),
    "bad_payload": (lambda d: _node(d, "reduce_max")["attrs"].update(
        keepdims={"type": "bool", "value": 1}), "malformed record"),
    "forward_ref": (lambda d: d["nodes"][3].update(inputs=[[10, 0]]), "not an earlier node"),
    "bad_output": (lambda d: _node(d, "matmul").update(inputs=[[0, 0], [0, 5]]), "output 5"),
    "no_nodes": (lambda d: d.pop("nodes"), "malformed"),
    "duplicate_name": (lambda d: d["nodes"][1].update(name=d["nodes"][0]["name"]),
                       "already in the graph"),
    "stateful_skew": (lambda d: _node(d, "matmul").update(serial=99), "serial 99"),
    "not_an_object": (lambda d: d.clear() or d.update({"format": "graphc.graph"}),
                      "bad format version"),
    "bad_variable": (lambda d: d["variables"][0].update(node=0), "variable record"),
    "negative_variable": (lambda d: d["variables"][0].update(node=-1), "no variable node"),
    "bad_collection": (lambda d: d["collections"].update(x=[{"type": "node", "value": 10**6}]),
                       "collection 'x'"),
}


@pytest.mark.parametrize("edit", list(BAD_EDITS), ids=list(BAD_EDITS))
def test_bad_graph_json_is_a_file_format_error(edit, good_file, tmp_path) -> None:
    fn, pattern = BAD_EDITS[edit]
    bad = tmp_path / "bad.gcg"
    _rewrite(good_file, bad, fn)
    with pytest.raises(FileFormatError, match=pattern) as info:
        load_graph(bad)
    assert str(bad) in str(info.value)


def test_bad_archives_are_file_format_errors(good_file, tmp_path) -> None:
    data = good_file.read_bytes()
    cases = {
        "random.gcg": np.random.default_rng(0).bytes(3000),
        "empty.gcg": b"",
        "half.gcg": data[:len(data) // 2],
        "tail_cut.gcg": data[:-30],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    _rewrite(good_file, tmp_path / "no_json.gcg", drop=("graph.json",))
    _rewrite(good_file, tmp_path / "no_array.gcg", drop=("arrays/0.npy",))
    _rewrite(good_file, tmp_path / "bad_json.gcg", drop=("graph.json",),
             extra=[("graph.json", b"{not json")])
    _rewrite(good_file, tmp_path / "nan_json.gcg", drop=("graph.json",),
             extra=[("graph.json", b'{"format": NaN}')])
    _rewrite(good_file, tmp_path / "bad_array.gcg", drop=("arrays/0.npy",),
             extra=[("arrays/0.npy", b"\x93NUMPY garbage")])
    pickled = tmp_path / "pickled.gcg"
    import io
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _rewrite(good_file, pickled, drop=("arrays/0.npy",), extra=[("arrays/0.npy", buf.getvalue())])
    expected = {
        "random.gcg": "not a graphc graph file", "empty.gcg": "not a graphc graph file",
        "half.gcg": "corrupt or truncated", "tail_cut.gcg": "corrupt or truncated",
        "no_json.gcg": "has no graph.json", "no_array.gcg": "lacks the array entry",
        "bad_json.gcg": "not valid JSON", "nan_json.gcg": "not valid JSON",
        "bad_array.gcg": "arrays/0.npy.*corrupt", "pickled.gcg": "arrays/0.npy.*corrupt",
    }
    for name, pattern in expected.items():
        with pytest.raises(FileFormatError, match=pattern) as info:
            load_graph(tmp_path / name)
        assert str(tmp_path / name) in str(info.value), name


def test_corrupt_array_bytes_are_detected(good_file, tmp_path) -> None:
    data = bytearray(good_file.read_bytes())
    with zipfile.ZipFile(good_file) as zf:
        info = zf.getinfo("arrays/0.npy")
    # flip a byte of the (stored, uncompressed) array data: the CRC check must catch it
    offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) \
        + info.file_size - 1
    data[offset] ^= 0xFF
    bad = tmp_path / "flipped.gcg"
    bad.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="arrays/0.npy"):
        load_graph(bad)


def test_missing_file_is_file_not_found(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        load_graph(tmp_path / "nope.gcg")


def test_spec_is_restored_exactly(tmp_path) -> None:
    g = gc.Graph()
    with g.as_default():
        gc.placeholder(gc.int32, None, name="unknown_rank")
        gc.placeholder(gc.uint8, (), name="scalar")
    save_graph(tmp_path / "g.gcg", g)
    h = load_graph(tmp_path / "g.gcg")
    assert h.get_tensor_by_name("unknown_rank").spec == TensorSpec(None, gc.int32)
    assert h.get_tensor_by_name("scalar").spec == TensorSpec((), gc.uint8)


def test_codec_table_is_extensible(attr_op, tmp_path, monkeypatch) -> None:
    from dataclasses import dataclass

    from graphc import serialization
    from graphc.op import apply1

    for name in ("CODECS", "_BY_TYPE", "_BY_TAG"):  # register only for this test
        monkeypatch.setattr(serialization, name, type(getattr(serialization, name))(
            getattr(serialization, name)))

    @dataclass(frozen=True)
    class Frac:
        num: int
        den: int

    serialization.register_codec(Frac, "frac", lambda v, enc: [enc.value(v.num), v.den],
                                 lambda p, dec: Frac(dec.value(p[0]), p[1]))
    with pytest.raises(ValueError, match="already exists"):
        serialization.register_codec(Frac, "frac2", lambda v, e: 0, lambda p, d: 0)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (2,), name="x")
        apply1("test_attrs", [x], {"f": (Frac(1, 3), Frac(-2, 5))}, name="fracs")
    save_graph(tmp_path / "g.gcg", g)
    h = load_graph(tmp_path / "g.gcg")
    assert h.get_operation_by_name("fracs").attrs["f"] == (Frac(1, 3), Frac(-2, 5))
