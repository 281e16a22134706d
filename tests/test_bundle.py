"""The .graphc bundle: write, read, verify, refuse tampering, load as a callable."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc import bundle as bundle_mod
from graphc import bundle_run
from graphc.bundle import BundleError, load, read_bundle, write_bundle
from graphc.cli_commands import initial_weights
from graphc.errors import FeedError, TargetError
from graphc.frontends.script import load_model_file

MODELS = Path(__file__).parent / "models"


def _compile(tmp_path: Path, model: str = "mlp.py", sources: dict | None = None,
             target: str = "reference") -> tuple[str, object]:
    loaded = load_model_file(str(MODELS / model))
    weights, _ = initial_weights(loaded.graph)
    path = str(tmp_path / "model.graphc")
    write_bundle(path, loaded.signature, target, weights, sources, model=model)
    return path, loaded


def _rewrite(path: str, edit) -> None:
    """Rewrite the archive at ``path`` with ``edit(name, data) -> data | None`` (None drops)."""
    with zipfile.ZipFile(path) as zf:
        items = [(n, zf.read(n)) for n in zf.namelist()]
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in items:
            new = edit(name, data)
            if new is not None:
                zf.writestr(name, new)


def _expected(loaded, feeds: dict) -> list:
    sess = gc.Session(loaded.graph, "reference")
    sig = loaded.signature
    return sess.run(list(sig.outputs.values()), {sig.inputs[k]: v for k, v in feeds.items()})


FEEDS = {"x": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
         "y": np.array([0, 2, 1])}


def test_round_trip_matches_python(tmp_path):
    path, loaded = _compile(tmp_path)
    exe = load(path)
    probs, loss = exe(**FEEDS)
    want = _expected(loaded, FEEDS)
    np.testing.assert_allclose(probs, want[0], rtol=1e-6)
    np.testing.assert_allclose(loss, want[1], rtol=1e-6)
    assert set(exe.run(FEEDS)) == {"probs", "loss"}
    assert exe.has_updates and "x: float32[None, 4]" in repr(exe)


def test_train_step_changes_weights(tmp_path):
    path, _ = _compile(tmp_path)
    exe = load(path)
    before = exe.state["W1"].copy()
    first = exe.train_step(FEEDS)["loss"]
    for _ in range(20):
        last = exe.train_step(FEEDS)["loss"]
    assert not np.array_equal(before, exe.state["W1"]) and last < first


def test_manifest_describes_the_signature(tmp_path):
    path, _ = _compile(tmp_path)
    manifest = read_bundle(path).manifest
    assert manifest["format"] == "graphc.bundle" and manifest["target"] == "reference"
    assert manifest["signature"]["inputs"][0] == {"name": "x", "tensor": "x",
                                                  "dtype": "float32", "shape": [None, 4]}
    assert set(manifest["members"]) == {"graph.graphc", "weights.npz"}


def test_same_model_same_bytes(tmp_path):
    a, _ = _compile(tmp_path)
    data = Path(a).read_bytes()
    b, _ = _compile(tmp_path)
    assert Path(b).read_bytes() == data


@pytest.mark.parametrize("member", ["graph.graphc", "weights.npz"])
def test_edited_member_is_refused(tmp_path, member):
    path, _ = _compile(tmp_path)

    def flip(name, data):
        if name != member:
            return data
        return data[:-30] + bytes([data[-30] ^ 1]) + data[-29:]
    _rewrite(path, flip)
    with pytest.raises(BundleError, match=f"refused: {member} does not match the hash"):
        load(path)


def test_edited_kernel_source_is_refused(tmp_path):
    path, _ = _compile(tmp_path, sources={"forward/k0.py": "def k0(a):\n    return a\n"})
    _rewrite(path, lambda n, d: d.replace(b"return a", b"return __import__('os')") if
             n.startswith("kernels/") else d)
    with pytest.raises(BundleError, match="kernels/forward/k0.py does not match"):
        read_bundle(path)


def test_consistently_rehashed_kernel_is_still_refused(tmp_path, monkeypatch):
    # An attacker who also fixes the manifest: the sources must equal what graphc generates.
    from graphc.backends import reference

    monkeypatch.setattr(reference, "export_sources",
                        lambda program: {"k0.py": f"# {len(program.nodes)} nodes\n"},
                        raising=False)
    loaded = load_model_file(str(MODELS / "affine.py"))
    sources = bundle_mod.export_sources(reference, loaded.signature)
    weights, _ = initial_weights(loaded.graph)
    path = str(tmp_path / "a.graphc")
    write_bundle(path, loaded.signature, "reference", weights, sources)
    load(path)  # the genuine bundle loads
    write_bundle(path, loaded.signature, "reference", weights,
                 {"forward/k0.py": "import os  # injected\n"})
    with pytest.raises(BundleError, match="kernel sources differ"):
        load(path)


def test_extra_member_and_edited_manifest_are_refused(tmp_path):
    path, _ = _compile(tmp_path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("kernels/evil.py", "print('hi')")
    with pytest.raises(BundleError, match="does not list.*evil.py"):
        read_bundle(path)
    path, _ = _compile(tmp_path)

    def edit(name, data):
        if name != "manifest.json":
            return data
        doc = json.loads(data)
        doc["members"]["graph.graphc"]["size"] += 1
        return json.dumps(doc).encode()
    _rewrite(path, edit)
    with pytest.raises(BundleError, match="does not match its content hash"):
        read_bundle(path)


def test_not_a_bundle(tmp_path):
    junk = tmp_path / "junk.graphc"
    junk.write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="not a graphc bundle"):
        read_bundle(str(junk))
    with pytest.raises(FileNotFoundError):
        read_bundle(str(tmp_path / "missing.graphc"))


def test_newer_format_is_refused(tmp_path):
    path, _ = _compile(tmp_path)
    _rewrite(path, lambda n, d: d.replace(b'"version": 1', b'"version": 99')
             if n == "manifest.json" else d)
    with pytest.raises(BundleError, match="upgrade graphc"):
        read_bundle(path)


def test_bad_feeds_list_the_signature(tmp_path):
    path, _ = _compile(tmp_path)
    exe = load(path)
    with pytest.raises(FeedError, match=r"(?s)unknown input 'z'.*x: float32\[None, 4\]"):
        exe(z=1)
    with pytest.raises(FeedError, match="missing input 'y'"):
        exe(x=FEEDS["x"])
    with pytest.raises(FeedError, match=r"(?s)input 'x'.*expected shape.*inputs:"):
        exe(x=np.zeros((3, 5), np.float32), y=FEEDS["y"])
    with pytest.raises(FeedError, match="input 'y'"):
        exe(x=FEEDS["x"], y=np.zeros(3, np.float32))


def test_cuda_bundle_without_gpu(tmp_path, monkeypatch):
    loaded = load_model_file(str(MODELS / "affine.py"))
    weights, _ = initial_weights(loaded.graph)
    path = str(tmp_path / "c.graphc")
    write_bundle(path, loaded.signature, "cuda", weights)
    monkeypatch.setattr(bundle_run, "gpu_available", lambda: False)
    with pytest.raises(TargetError, match="no CUDA GPU is available"):
        load(path)


def test_weights_must_fit(tmp_path):
    loaded = load_model_file(str(MODELS / "affine.py"))
    weights, _ = initial_weights(loaded.graph)
    weights["W"] = weights["W"].astype(np.float32)
    path = str(tmp_path / "w.graphc")
    write_bundle(path, loaded.signature, "reference", weights)
    with pytest.raises(BundleError, match="weights do not fit.*W is float32"):
        read_bundle(path)


def test_checkpoint_weights_are_used(tmp_path):
    from graphc.checkpoint import save_variables

    loaded = load_model_file(str(MODELS / "affine.py"))
    ckpt = save_variables(str(tmp_path / "c.npz"), {"b": np.array([1.0, 2.0])})
    weights, fresh = initial_weights(loaded.graph, ckpt)
    assert fresh == ["W"] and weights["b"].tolist() == [1.0, 2.0]
    bad = save_variables(str(tmp_path / "bad.npz"), {"nope": np.zeros(2)})
    with pytest.raises(gc.CheckpointError, match="no variable of the model: nope"):
        initial_weights(loaded.graph, bad)
    # A file keyed the model's own way (Keras's save_weights) through checkpoint_keys.
    weights, fresh = initial_weights(loaded.graph, bad, {"nope": "b"})
    assert fresh == ["W"] and weights["b"].tolist() == [0.0, 0.0]
    sig = loaded.signature
    with pytest.raises(gc.GraphError, match="checkpoint_keys name no variable: zz"):
        gc.Signature(sig.inputs, sig.outputs, checkpoint_keys={"k": "zz"})
