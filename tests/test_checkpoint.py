"""gc.train.Saver and the .npz helpers: exact round trips, atomic writes, clear mismatches."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

import graphc as gc
from graphc.checkpoint import Saver, checkpoint_path, load_variables, save_variables
from graphc.errors import CheckpointError, GraphError

TARGET = "reference"


def _model(w_shape=(3, 4), w_dtype=gc.float32, extra=False, drop_b=False):
    """A graph with a few variables and a training-like update; returns (graph, handles)."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, w_shape[0]), name="x")
        w = gc.Variable(gc.random_normal(w_shape, seed=1, dtype=w_dtype), name="W")
        with gc.name_scope("dense"):
            b = None if drop_b else gc.Variable(np.zeros(4, np.float32), name="b")
        step = gc.Variable(np.int64(0), name="step", trainable=False)
        if extra:
            gc.Variable(np.ones(2, np.float64), name="extra")
        y = gc.reduce_sum(gc.cast(gc.matmul(gc.cast(x, w_dtype), w), gc.float32))
        updates = [gc.assign_add(step, 1), gc.assign_sub(w, gc.gradients(y, [w])[0] * 0.1)]
        if b is not None:
            y = y + gc.reduce_sum(b)
            updates.append(gc.assign(b, b + 0.25))
        train = gc.group(updates)
    return g, {"x": x, "W": w, "b": b, "step": step, "y": y, "train": train}


def _trained_session(g, h, steps=3):
    sess = gc.Session(g, target=TARGET)
    for i in range(steps):
        sess.run(h["train"], {h["x"]: np.full((2, 3), i + 1.0, np.float32)})
    return sess


def _values(sess, names=("W", "dense/b", "step")):
    return {n: sess.run(n) for n in names}


def _assert_bit_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and \
            a[k].tobytes() == b[k].tobytes(), k


def test_save_restore_is_bit_exact(tmp_path) -> None:
    g, h = _model()
    sess = _trained_session(g, h)
    before = _values(sess)
    with g.as_default():
        saver = Saver()
    path = saver.save(sess, tmp_path / "ckpt")
    assert path == str(tmp_path / "ckpt.npz") and os.path.exists(path)
    fresh = gc.Session(g, target=TARGET)
    saver.restore(fresh, path)
    _assert_bit_equal(_values(fresh), before)
    # the restored values are the session's own copies, and training goes on from them
    fresh.run(h["train"], {h["x"]: np.ones((2, 3), np.float32)})
    sess.run(h["train"], {h["x"]: np.ones((2, 3), np.float32)})
    _assert_bit_equal(_values(fresh), _values(sess))


def test_checkpoint_is_a_plain_npz(tmp_path) -> None:
    g, h = _model()
    sess = _trained_session(g, h)
    path = Saver(list(g.variables.values())).save(sess, tmp_path / "ckpt.npz")
    assert path == str(tmp_path / "ckpt.npz")
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["W", "dense/b", "step"]
        assert data["step"].dtype == np.int64 and data["step"] == 3
        np.testing.assert_array_equal(data["W"], sess.run("W"))


def test_restore_into_a_rebuilt_graph(tmp_path) -> None:
    g, h = _model()
    sess = _trained_session(g, h)
    before = _values(sess)
    with g.as_default():
        path = Saver().save(sess, tmp_path / "model")
    g2, h2 = _model()
    with g2.as_default():
        saver2 = Saver()
    sess2 = gc.Session(g2, target=TARGET)
    saver2.restore(sess2, tmp_path / "model")  # the suffix is found
    _assert_bit_equal(_values(sess2), before)
    # a Saver of the first graph also serves the rebuilt one, by variable name
    sess3 = gc.Session(g2, target=TARGET)
    Saver(list(g.variables.values())).restore(sess3, path)
    _assert_bit_equal(_values(sess3), before)


def test_save_initializes_unused_variables(tmp_path) -> None:
    g, h = _model()
    sess = gc.Session(g, target=TARGET)
    path = Saver(list(g.variables.values())).save(sess, tmp_path / "init")
    expected = gc.Session(g, target=TARGET).run(["W", "dense/b", "step"])
    arrays = load_variables(path)
    for name, value in zip(["W", "dense/b", "step"], expected):
        assert arrays[name].tobytes() == value.tobytes()


def test_var_list_forms(tmp_path) -> None:
    g, h = _model()
    sess = _trained_session(g, h)
    saver = Saver({"weights": h["W"], "bias": h["b"]})
    path = saver.save(sess, tmp_path / "renamed")
    assert sorted(load_variables(path)) == ["bias", "weights"]
    fresh = gc.Session(g, target=TARGET)
    saver.restore(fresh, path)
    assert fresh.run("W").tobytes() == sess.run("W").tobytes()
    assert "step" not in fresh.state  # not in this Saver's list
    with pytest.raises(GraphError, match="not a gc.Variable"):
        Saver([h["y"]])
    with pytest.raises(GraphError, match="two variables"):
        Saver([h["W"], h["W"]])
    with pytest.raises(GraphError, match="no variables"):
        Saver([])
    empty = gc.Graph()
    with pytest.raises(GraphError, match="has no variables to save"):
        Saver().save(gc.Session(empty, target=TARGET), tmp_path / "empty")
    assert Saver([], allow_empty=True).var_list == {}


def test_saver_without_var_list_uses_the_sessions_graph(tmp_path) -> None:
    # As in the README: the model is built in `with g.as_default():`, the Saver after it.
    g = gc.Graph()
    with g.as_default():
        v = gc.Variable(np.arange(3.0), name="v")
        bump = gc.assign_add(v, [1.0, 1.0, 1.0])
    saver = Saver()
    sess = gc.Session(g, target=TARGET)
    sess.run(bump)
    path = saver.save(sess, tmp_path / "model")
    assert sorted(load_variables(path)) == ["v"]
    fresh = gc.Session(g, target=TARGET)
    saver.restore(fresh, path)
    np.testing.assert_array_equal(fresh.run(v), [1.0, 2.0, 3.0])


def test_paths(tmp_path) -> None:
    assert checkpoint_path("a") == "a.npz"
    assert checkpoint_path("a.npz") == "a.npz"
    assert checkpoint_path("run/a", global_step=10) == "run/a-10.npz"
    assert checkpoint_path("run/a.npz", global_step=10) == "run/a-10.npz"
    g, h = _model()
    sess = _trained_session(g, h, steps=1)
    saver = Saver(list(g.variables.values()))
    path = saver.save(sess, tmp_path / "model", global_step=1)
    assert path == str(tmp_path / "model-1.npz")
    saver.restore(gc.Session(g, target=TARGET), tmp_path / "model-1")
    with pytest.raises(FileNotFoundError):
        saver.restore(gc.Session(g, target=TARGET), tmp_path / "absent")


# -- mismatches -----------------------------------------------------------------------------

def _saved(tmp_path, **model_kwargs):
    g, h = _model(**model_kwargs)
    sess = _trained_session(g, h)
    return Saver(list(g.variables.values())).save(sess, tmp_path / "ckpt")


def _restore_into(path, **model_kwargs):
    g, h = _model(**model_kwargs)
    sess = gc.Session(g, target=TARGET)
    saver = Saver(list(g.variables.values()))
    return saver, sess


@pytest.mark.parametrize("saved, loaded, pattern", [
    ({}, {"extra": True}, r"lacks variables extra"),
    ({"extra": True}, {}, r"entries for no variable of this Saver: extra"),
    ({"drop_b": True}, {}, r"lacks variables dense/b"),
    ({}, {"w_shape": (4, 4)}, r"W: the checkpoint holds shape \[3, 4\], the variable is \[4, 4\]"),
    ({}, {"w_dtype": gc.float64}, r"W: the checkpoint holds dtype float32, the variable is float64"),
], ids=["missing", "unexpected", "missing_b", "shape", "dtype"])
def test_mismatch_is_a_clear_error_and_changes_nothing(tmp_path, saved, loaded, pattern) -> None:
    path = _saved(tmp_path, **saved)
    saver, sess = _restore_into(path, **loaded)
    sess.run(saver.var_list["step"])  # initialize everything
    before = {k: v.copy() for k, v in sess.state.items()}
    with pytest.raises(CheckpointError, match=pattern) as info:
        saver.restore(sess, path)
    assert path in str(info.value)
    _assert_bit_equal(sess.state, before)


def test_all_mismatches_are_listed(tmp_path) -> None:
    g, h = _model()
    sess = _trained_session(g, h)
    arrays = {"W": np.zeros((2, 2), np.float32), "dense/b": np.zeros(4, np.int32),
              "step": np.int64(1)}
    path = save_variables(tmp_path / "x.npz", arrays)
    with pytest.raises(CheckpointError, match=r"(?s)W: .*shape.*dense/b: .*dtype int32"):
        Saver(list(g.variables.values())).restore(sess, path)


# -- bad and interrupted files --------------------------------------------------------------

def test_corrupt_checkpoints_are_checkpoint_errors(tmp_path) -> None:
    g, h = _model()
    sess = _trained_session(g, h)
    saver = Saver(list(g.variables.values()))
    good = saver.save(sess, tmp_path / "good")
    data = open(good, "rb").read()
    bad = {
        "random.npz": np.random.default_rng(0).bytes(500),
        "empty.npz": b"",
        "half.npz": data[:len(data) // 2],
        "tail_cut.npz": data[:-10],
    }
    flipped = bytearray(data)
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("W.npy")
    flipped[info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size - 1] ^= 1
    bad["flipped.npz"] = bytes(flipped)
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
    np.save(tmp_path / "single.npy", np.zeros(3))
    with zipfile.ZipFile(tmp_path / "text.npz", "w") as zf:
        zf.writestr("W.npy", b"not an array")
    import io
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array([None]), allow_pickle=True)
    with zipfile.ZipFile(tmp_path / "pickled.npz", "w") as zf:
        zf.writestr("W.npy", buf.getvalue())
    for name in [*bad, "single.npy", "text.npz", "pickled.npz"]:
        fresh = gc.Session(g, target=TARGET)
        with pytest.raises(CheckpointError) as err:
            saver.restore(fresh, tmp_path / name)
        assert str(tmp_path / name) in str(err.value), name
        assert fresh.state == {}, name


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    g, h = _model()
    sess = _trained_session(g, h, steps=1)
    saver = Saver(list(g.variables.values()))
    path = saver.save(sess, tmp_path / "ckpt")
    before = open(path, "rb").read()
    sess.run(h["train"], {h["x"]: np.ones((2, 3), np.float32)})
    calls = []

    def fail_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return real(*args, **kwargs)

    real = np.lib.format.write_array
    monkeypatch.setattr(np.lib.format, "write_array", fail_on_second)
    with pytest.raises(OSError, match="simulated"):
        saver.save(sess, tmp_path / "ckpt")
    monkeypatch.undo()
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    fresh = gc.Session(g, target=TARGET)
    saver.restore(fresh, path)
    assert fresh.run("step") == 1


def test_save_variables_helpers(tmp_path) -> None:
    arrays = {"file": np.arange(3), "allow_pickle": np.float16(2.5), "a/b/c": np.eye(2),
              "big_endian": np.arange(4, dtype=">i4"), "empty": np.zeros((0, 3), np.bool_)}
    path = save_variables(tmp_path / "v", arrays)
    assert path == str(tmp_path / "v")  # the helper writes exactly the path given
    loaded = load_variables(path)
    assert list(loaded) == list(arrays)
    for k, v in arrays.items():
        assert loaded[k].dtype == np.asarray(v).dtype and loaded[k].tobytes() == np.asarray(v).tobytes()
    first = open(path, "rb").read()
    save_variables(tmp_path / "v", arrays)
    assert open(path, "rb").read() == first  # deterministic bytes
    with pytest.raises(CheckpointError, match="object array"):
        save_variables(tmp_path / "o", {"x": np.array([None])})
    with pytest.raises(CheckpointError, match="non-empty strings"):
        save_variables(tmp_path / "o", {"": np.zeros(1)})
    assert sorted(os.listdir(tmp_path)) == ["v"]


def test_restore_converts_byte_order(tmp_path) -> None:
    g, h = _model()
    sess = _trained_session(g, h)
    arrays = {k: np.asarray(v).astype(np.asarray(v).dtype.newbyteorder(">"))
              for k, v in _values(sess).items()}
    path = save_variables(tmp_path / "be.npz", arrays)
    fresh = gc.Session(g, target=TARGET)
    Saver(list(g.variables.values())).restore(fresh, path)
    _assert_bit_equal(_values(fresh), _values(sess))


def test_new_files_get_ordinary_permissions(tmp_path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    path = save_variables(tmp_path / "v.npz", {"a": np.zeros(2)})
    assert os.stat(path).st_mode == os.stat(plain).st_mode
    os.chmod(path, 0o600)  # replacing a file keeps its permissions
    save_variables(path, {"a": np.ones(2)})
    assert os.stat(path).st_mode & 0o777 == 0o600
