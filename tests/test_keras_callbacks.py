"""Keras semantics of the callbacks: EarlyStopping (stop epoch, restored weights),
ModelCheckpoint (atomic files, save_best_only), LearningRateScheduler, ReduceLROnPlateau,
CSVLogger."""

from __future__ import annotations

import os

import numpy as np
import pytest

from graphc.frontends import keras
from graphc.frontends.keras import callbacks as C
from graphc.frontends.keras import layers as L

from test_keras_helpers import TARGET


class Scripted(C.Callback):
    """Replaces the monitored value with a scripted sequence, and records the weights
    at the end of every epoch (so tests know what 'the best epoch's weights' were)."""

    def __init__(self, values, key="val_loss"):
        self.values, self.key, self.weights = list(values), key, []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append(self.model.get_weights())


def _model(lr=0.05):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([L.Dense(4, activation="tanh", input_shape=(3,)), L.Dense(1)])
    model.compile(keras.optimizers.SGD(lr), "mse", target=TARGET)
    return model


def _data(n=32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, (x @ np.array([1.0, -2.0, 0.5]))[:, None].astype(np.float32)


def _fit(model, callbacks, epochs=10):
    x, y = _data()
    return model.fit(x, y, batch_size=8, epochs=epochs, callbacks=callbacks, verbose=0)


def test_early_stopping_stops_after_patience_and_restores_best():
    model = _model()
    script = Scripted([1.0, 0.8, 0.5, 0.6, 0.55, 0.7, 0.4, 0.3])
    stop = C.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    history = _fit(model, [script, stop])
    # best at epoch 2; epochs 3, 4, 5 do not improve -> stop at the end of epoch 5
    assert history.epoch == [0, 1, 2, 3, 4, 5]
    assert stop.stopped_epoch == 5 and stop.best_epoch == 2 and stop.best == 0.5
    for restored, best in zip(model.get_weights(), script.weights[2]):
        np.testing.assert_array_equal(restored, best)


def test_early_stopping_min_delta_mode_and_no_restore():
    model = _model()
    # improvements smaller than min_delta do not count; patience 1
    script = Scripted([0.5, 0.65, 0.7, 0.9], key="val_acc")
    stop = C.EarlyStopping(monitor="val_acc", patience=1, min_delta=0.1)  # mode auto -> max
    history = _fit(model, [script, stop])
    assert stop.mode == "max"
    assert history.epoch == [0, 1, 2]  # 0.65 > 0.5 + 0.1 improves; 0.7 < 0.65 + 0.1 does not
    assert stop.stopped_epoch == 2 and stop.best == 0.65
    for now, last in zip(model.get_weights(), script.weights[2]):
        np.testing.assert_array_equal(now, last)  # no restore: the last epoch's weights


def test_early_stopping_runs_to_the_end_while_improving():
    model = _model()
    stop = C.EarlyStopping(monitor="loss", patience=0)
    history = _fit(model, [stop], epochs=5)
    assert history.epoch == list(range(5)) and stop.stopped_epoch == 0


def test_early_stopping_warns_for_a_missing_monitor():
    with pytest.warns(UserWarning, match="'val_loss' is not in the logs"):
        _fit(_model(), [C.EarlyStopping()], epochs=1)


def test_model_checkpoint_writes_each_epoch_atomically(tmp_path, monkeypatch):
    model = _model()
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{loss:.3f}.npz")
    history = _fit(model, [C.ModelCheckpoint(pattern, monitor="loss")], epochs=3)
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 3 and names[0].startswith("ckpt-01-")
    assert names[2] == f"ckpt-03-{history.history['loss'][2]:.3f}.npz"
    other = _model()
    other.load_weights(tmp_path / names[2])
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    # a failed write leaves the previous file intact and no temporary file behind
    import zipfile

    before = (tmp_path / names[2]).read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(zipfile.ZipFile, "writestr", broken)
    monkeypatch.setattr(zipfile.ZipFile, "open", broken)
    with pytest.raises(OSError):
        model.save_weights(tmp_path / names[2])
    assert (tmp_path / names[2]).read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == names


def test_model_checkpoint_save_best_only(tmp_path):
    model = _model()
    script = Scripted([0.9, 0.5, 0.7, 0.4])
    path = tmp_path / "best-{epoch}.npz"
    _fit(model, [script, C.ModelCheckpoint(str(path), save_best_only=True)], epochs=4)
    assert sorted(os.listdir(tmp_path)) == ["best-1.npz", "best-2.npz", "best-4.npz"]
    with pytest.raises(NotImplementedError, match="weights only"):
        C.ModelCheckpoint(str(path), save_weights_only=False)


def test_learning_rate_scheduler_changes_the_fed_rate():
    seen = []

    class Probe(C.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(self.model.optimizer.learning_rate)

    model = _model(lr=0.1)
    sched = C.LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    history = _fit(model, [sched, Probe()], epochs=3)
    assert seen == [0.05, 0.025, 0.0125]
    assert history.history["learning_rate"] == [0.05, 0.025, 0.0125]
    compiled_before = len(model.session._compiled)
    _fit(model, [C.LearningRateScheduler(lambda epoch: 0.01)], epochs=2)
    assert model.optimizer.learning_rate == 0.01
    assert len(model.session._compiled) == compiled_before  # a new rate compiles nothing


def test_learning_rate_really_drives_the_update():
    x, y = _data(8)
    a, b = _model(lr=0.1), _model(lr=0.1)
    b.optimizer.learning_rate = 0.0001
    w0 = a.get_weights()[0]
    a.train_on_batch(x, y)
    b.train_on_batch(x, y)
    step_a = np.abs(a.get_weights()[0] - w0).max()
    step_b = np.abs(b.get_weights()[0] - w0).max()
    assert step_a == pytest.approx(1000 * step_b, rel=1e-3)


def test_reduce_lr_on_plateau():
    model = _model(lr=1.0)
    script = Scripted([1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5])
    cb = C.ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.3)
    history = _fit(model, [script, cb], epochs=7)
    # epochs 1, 2 no improvement -> 0.5 after epoch 2; epoch 3 improves; 4, 5 -> 0.3 (min)
    assert history.history["learning_rate"] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.3]
    assert model.optimizer.learning_rate == 0.3


def test_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    history = _fit(_model(), [C.CSVLogger(path)], epochs=3)
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss"
    assert [float(line.split(",")[1]) for line in lines[1:]] == history.history["loss"]
    _fit(_model(), [C.CSVLogger(path, append=True)], epochs=2)
    assert len(path.read_text().splitlines()) == 6
    assert [p.name for p in tmp_path.iterdir()] == ["log.csv"]


def test_callbacks_must_be_callbacks():
    with pytest.raises(TypeError, match="Callback objects"):
        _fit(_model(), [lambda: None], epochs=1)
