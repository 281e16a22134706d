"""gc.keras models: compile/fit/evaluate/predict, losses and metrics against NumPy, the
optimizer mapping, weights files, summary and the errors users see."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.errors import CheckpointError
from graphc.frontends import keras
from graphc.frontends.keras import layers as L

from test_keras_helpers import TARGET

RNG = np.random.default_rng(0)


def blobs(n=300, d=6, classes=3, seed=0):
    """Separable Gaussian blobs: (x float32, y int64)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(classes, d))
    y = rng.integers(0, classes, n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y.astype(np.int64)


def mlp(d=6, classes=3, activation="softmax"):
    return keras.Sequential([L.Dense(16, activation="relu", input_shape=(d,)),
                             L.Dense(classes, activation=activation)])


def test_fit_learns_and_history_has_keras_keys():
    keras.utils.set_random_seed(1)
    x, y = blobs()
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], target=TARGET)
    history = model.fit(x, y, batch_size=32, epochs=15, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.epoch == list(range(15))
    assert history.history["loss"][-1] < history.history["loss"][0] / 3
    loss, acc = model.evaluate(x, y)
    assert acc > 0.95
    assert model.predict(x[:5]).shape == (5, 3)
    np.testing.assert_allclose(model.predict(x[:5]).sum(1), 1.0, rtol=1e-5)


def test_train_on_batch_returns_the_loss_before_the_step():
    x, y = blobs(64)
    model = mlp()
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy"], target=TARGET)
    before = model.evaluate(x, y, batch_size=64)
    first = model.train_on_batch(x, y)
    np.testing.assert_allclose(first, before, rtol=1e-5)
    after = model.test_on_batch(x, y)
    assert after[0] < first[0]
    assert model.metrics_names == ["loss", "sparse_categorical_accuracy"]


def _losses_case(loss, y_true, y_pred):
    graph = gc.Graph()
    with graph.as_default():
        x = keras.Input(y_pred.shape[1:], dtype="float64")
        out = L.Activation("linear", dtype="float64")(x)
    model = keras.Model(x, out)
    model.compile("sgd", loss, target="reference")
    return model.evaluate(y_pred, y_true, batch_size=len(y_pred))


def test_losses_match_numpy():
    p = RNG.uniform(0.05, 0.95, size=(8, 4))
    t = RNG.normal(size=(8, 4))
    assert _losses_case("mse", t, p) == pytest.approx(np.mean((p - t) ** 2))
    assert _losses_case("mae", t, p) == pytest.approx(np.mean(np.abs(p - t)))
    e = np.abs(p - t)
    huber = np.where(e <= 1, 0.5 * e ** 2, e - 0.5)
    assert _losses_case("huber", t, p) == pytest.approx(huber.mean())
    z = (RNG.uniform(size=(8, 4)) > 0.5).astype(np.float64)
    bce = -(z * np.log(p) + (1 - z) * np.log(1 - p))
    assert _losses_case("binary_crossentropy", z, p) == pytest.approx(bce.mean())
    probs = p / p.sum(1, keepdims=True)
    labels = RNG.integers(0, 4, 8)
    onehot = np.eye(4)[labels]
    cce = -np.log(probs[np.arange(8), labels]).mean()
    assert _losses_case("categorical_crossentropy", onehot, probs) == pytest.approx(cce)
    assert _losses_case("sparse_categorical_crossentropy", labels, probs) == pytest.approx(cce)
    logits = RNG.normal(size=(8, 4))
    lse = np.log(np.exp(logits).sum(1))
    expected = (lse - logits[np.arange(8), labels]).mean()
    from_logits = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert _losses_case(from_logits, labels, logits) == pytest.approx(expected)


def test_softmax_output_uses_the_logits():
    # A saturated softmax: clipped probabilities would give log(1e-7) = 16.1; the logits
    # give the exact cross-entropy.
    graph = gc.Graph()
    with graph.as_default():
        x = keras.Input((2,), dtype="float64")
        out = L.Activation("softmax", dtype="float64")(x)
    model = keras.Model(x, out)
    model.compile("sgd", "sparse_categorical_crossentropy", target="reference")
    loss = model.evaluate(np.array([[0.0, 40.0]]), np.array([0]), batch_size=1)
    assert loss == pytest.approx(40.0)


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy",
                                  "categorical_crossentropy", "binary_crossentropy"])
def test_a_cross_entropy_of_a_linear_output_warns_at_the_users_line(loss):
    import inspect
    import warnings
    graph = gc.Graph()
    with graph.as_default():
        x = keras.Input((4,))
        logits = L.Dense(3)(x)
        probs = L.Dense(3, activation="softmax")(x)
    line = inspect.currentframe().f_lineno + 2
    with pytest.warns(UserWarning, match="from_logits=False reads it as probabilities") as got:
        keras.Model(x, logits).compile("sgd", loss, target="reference")
    assert got[0].filename == __file__ and got[0].lineno == line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keras.Model(x, probs).compile("sgd", loss, target="reference")
        keras.Model(x, logits).compile(
            "sgd", keras.losses.get(loss).__class__(from_logits=True), target="reference")


def test_metrics_resolve_like_keras():
    x, y = blobs(60)
    for loss, labels, key, out_units in (
            ("categorical_crossentropy", np.eye(3)[y], "accuracy", 3),
            ("binary_crossentropy", (y > 0).astype(np.float32), "acc", 1)):
        model = mlp(classes=out_units, activation="softmax" if out_units > 1 else "sigmoid")
        model.compile("adam", loss, metrics=[key, "mae"], target=TARGET)
        values = model.evaluate(x, labels, return_dict=True, batch_size=16)
        preds = model.predict(x)
        if out_units > 1:
            expected = np.mean(preds.argmax(1) == y)
        else:
            expected = np.mean((preds[:, 0] > 0.5) == (y > 0))
        assert values[key] == pytest.approx(expected, abs=1e-6)
        assert values["mae"] == pytest.approx(np.mean(np.abs(preds - labels.reshape(preds.shape))),
                                              rel=1e-5)


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop", "adagrad"])
def test_optimizers_by_name_train(name):
    keras.utils.set_random_seed(2)
    x, y = blobs(120)
    model = mlp()
    model.compile(name, "sparse_categorical_crossentropy", target=TARGET)
    first = model.evaluate(x, y)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert model.evaluate(x, y) < first


def test_rmsprop_and_adagrad_follow_keras_equations():
    w0 = np.array([[0.5], [-1.0]])
    x = np.array([[1.0, 2.0], [0.5, -1.0]])
    y = np.array([[1.0], [0.0]])

    def one_step(opt):
        graph = gc.Graph()
        with graph.as_default():
            inp = keras.Input((2,), dtype="float64")
            out = L.Dense(1, use_bias=False, dtype="float64")(inp)
        model = keras.Model(inp, out)
        model.set_weights([w0])
        model.compile(opt, "mse", target="reference")
        model.train_on_batch(x, y)
        return model.get_weights()[0]

    g = 2 * x.T @ (x @ w0 - y) / len(x)
    lr, rho, eps = 0.01, 0.9, 1e-7
    v = (1 - rho) * g * g  # Keras starts the mean square at zero
    np.testing.assert_allclose(one_step(keras.optimizers.RMSprop(lr)),
                               w0 - lr * g / np.sqrt(v + eps), rtol=1e-10)
    acc = 0.1 + g * g
    np.testing.assert_allclose(one_step(keras.optimizers.Adagrad(lr)),
                               w0 - lr * g / (np.sqrt(acc) + eps), rtol=1e-10)
    m_hat, v_hat = g, g * g  # Adam's first step, bias-corrected
    np.testing.assert_allclose(one_step(keras.optimizers.Adam(lr)),
                               w0 - lr * m_hat / (np.sqrt(v_hat) + eps / np.sqrt(1 - 0.999)),
                               rtol=1e-8)
    sgd = one_step(keras.optimizers.SGD(lr, momentum=0.9))
    np.testing.assert_allclose(sgd, w0 - lr * g, rtol=1e-10)


def test_unknown_names_list_the_valid_ones():
    model = mlp()
    with pytest.raises(ValueError, match="use one of sgd, adam, rmsprop, adagrad"):
        model.compile("adamw", "mse")
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        model.compile("adam", "cross_entropy")
    with pytest.raises(ValueError, match="unknown metric"):
        model.compile("adam", "mse", metrics=["f1"])
    with pytest.raises(RuntimeError, match="compile the model first"):
        mlp().fit(*blobs(10))


def test_fit_checks_data_shapes():
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy", target=TARGET)
    x, y = blobs(20)
    with pytest.raises(ValueError, match="20 samples but y has 19"):
        model.fit(x, y[:-1], verbose=0)
    with pytest.raises(gc.FeedError, match="expected shape"):
        model.fit(x[:, :4], y, verbose=0)


def test_training_flag_switches_without_recompiling():
    keras.utils.set_random_seed(3)
    x, y = blobs(64)
    model = keras.Sequential([L.Dense(8, activation="relu", input_shape=(6,)), L.Dropout(0.5),
                              L.BatchNormalization(), L.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", target=TARGET)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    compiled = len(model.session._compiled)
    for _ in range(2):
        model.fit(x, y, epochs=1, batch_size=7, verbose=0, validation_data=(x, y))
        model.predict(x, batch_size=5)
        model.evaluate(x, y, batch_size=9)
    # predict and evaluate compile once each; new batch sizes and modes compile nothing
    assert len(model.session._compiled) <= compiled + 2
    p1, p2 = model.predict(x), model.predict(x)
    np.testing.assert_array_equal(p1, p2)  # inference is deterministic (no dropout)
    moving_mean = model.get_layer(model.layers[2].name).moving_mean
    assert np.any(model.session.state[moving_mean.node.name] != 0.0)  # updated by fit


def test_predict_runs_without_the_training_branches():
    # predict fetches the inference outputs (dropout the identity, batch norm's moving
    # statistics), so no random op or batch statistics stays in its plan: on cpu the plan
    # is one compiled function (a plan with random ops runs step by step).
    from graphc.backends.numba_cpu import program_runtime

    keras.utils.set_random_seed(5)
    x = RNG.random((12, 1, 8, 8), dtype=np.float32)
    y = RNG.integers(0, 3, 12)
    layers = [L.Conv2D(4, 3, activation="relu", input_shape=(1, 8, 8)), L.Dropout(0.5),
              L.BatchNormalization(), L.MaxPooling2D(2), L.Flatten(), L.Dense(3)]
    model = keras.Sequential(layers)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  target="cpu")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    before = program_runtime.COUNTERS["runs"]
    got = model.predict(x, batch_size=5)
    assert program_runtime.COUNTERS["runs"] - before == 3
    flag = model.training_flag
    want = gc.Session(model.graph, "reference")
    want.state.update(model.session.state)
    expected = want.run(model.outputs[0], {model.inputs[0]: x, flag: False})
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_save_and_load_weights_round_trip(tmp_path):
    keras.utils.set_random_seed(4)
    model = mlp()
    path = model.save_weights(tmp_path / "w.npz")
    other = mlp()
    assert not np.allclose(other.get_weights()[0], model.get_weights()[0])
    other.load_weights(path)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    data = np.load(path, allow_pickle=False)
    assert sorted(data.files) == ["0/bias", "0/kernel", "1/bias", "1/kernel"]
    with pytest.raises(CheckpointError, match="shape"):
        mlp(classes=4).load_weights(path)
    assert list(tmp_path.iterdir()) == [tmp_path / "w.npz"]  # no temporary file left


def test_summary_lists_layers_shapes_and_counts():
    model = mlp()
    lines = []
    text = model.summary(print_fn=lines.append)
    assert lines == [text]
    assert "(Dense)" in text and "[None, 16]" in text and "112" in text
    assert "Total params: 163" in text and "Trainable params: 163" in text


def test_functional_model_multi_input_and_replay():
    keras.utils.set_random_seed(5)
    graph = gc.Graph()
    with graph.as_default():
        a, b = keras.Input((3,)), keras.Input((2,))
        h = L.Concatenate()([L.Dense(4, activation="relu")(a), b])
        out = L.Dense(1)(h)
        model = keras.Model([a, b], out)
        a2, b2 = keras.Input((3,)), keras.Input((2,))
        again = model([a2, b2])
    twin = keras.Model([a2, b2], again)
    av, bv = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 2))
    np.testing.assert_allclose(model.predict([av, bv]), twin.predict([av, bv]), rtol=1e-6)
    assert len(twin.weights) == 4
    model.compile("sgd", "mse", target=TARGET)
    model.fit([av, bv], RNG.normal(size=5), epochs=2, verbose=0)


def test_sequential_builds_from_data_and_refuses_late_layers():
    model = keras.Sequential()
    model.add(L.Dense(4))
    model.add(L.Dense(2))
    with pytest.raises(ValueError, match="input shape is unknown"):
        model.summary()
    out = model.predict(np.ones((3, 5), np.float32))
    assert out.shape == (3, 2) and model.inputs[0].shape == (None, 5)
    with pytest.raises(gc.GraphError, match="already built"):
        model.add(L.Dense(1))


def test_compile_before_the_input_shape_is_known_builds_at_the_first_fit():
    """Keras's deferred build: compile a Sequential with no input shape, train on data."""
    x, y = blobs(96)
    runs, models = [], []
    for built_first in (False, True):  # the same seeds, drawn at build time
        keras.utils.set_random_seed(3)
        model = keras.Sequential([L.Dense(16, activation="relu"),
                                  L.Dense(3, activation="softmax")])
        if built_first:
            model.build((None, 6))
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"],
                      target=TARGET)
        runs.append(model.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0).history)
        models.append(model)
    late, early = models
    assert set(runs[0]) == {"loss", "accuracy"} and late.metrics_names == early.metrics_names
    np.testing.assert_allclose(runs[0]["loss"], runs[1]["loss"], rtol=1e-5)
    np.testing.assert_allclose(late.evaluate(x, y), early.evaluate(x, y), rtol=1e-5)
    assert late.inputs[0].shape == (None, 6)

    via_batch = keras.Sequential([L.Dense(1)])  # train_on_batch builds it as well
    via_batch.compile("sgd", "mse", target=TARGET)
    loss = via_batch.train_on_batch(x[:8], y[:8].astype(np.float32))
    assert np.isfinite(loss) and via_batch.inputs[0].shape == (None, 6)
    with pytest.raises(ValueError, match="unknown metric 'acuracy'"):  # still at compile
        keras.Sequential([L.Dense(1)]).compile("sgd", "mse", metrics=["acuracy"])


def test_compile_cpu_falls_back_with_a_warning(monkeypatch):
    from graphc.frontends.keras import training

    monkeypatch.setattr(gc, "available_targets", lambda: ["reference"])
    with pytest.warns(UserWarning, match="target 'cpu' is not built"):
        assert training.resolve_target("cpu") in ("reference", "cpu")


def test_fit_verbose_modes(capsys):
    x, y = blobs(40)
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], target=TARGET)
    model.fit(x, y, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and "loss:" in out and "accuracy:" in out
    model.fit(x, y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""
    model.fit(x, y, epochs=1, verbose=1, batch_size=8)
    assert "5/5" in capsys.readouterr().out  # the tqdm bar


def test_export_onnx_delegates_or_says_why(tmp_path):
    model = mlp()
    try:
        from graphc import onnx as gc_onnx  # noqa: F401
        have = hasattr(gc_onnx, "export")
    except ImportError:
        have = False
    if not have:
        with pytest.raises(NotImplementedError, match="gc.onnx.export"):
            model.export_onnx(tmp_path / "m.onnx")
        return
    model.export_onnx(tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").stat().st_size > 0


def test_export_onnx_in_inference_mode_matches_predict(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    try:
        from graphc import onnx as gc_onnx
        gc_onnx.export  # noqa: B018
    except (ImportError, AttributeError):
        pytest.skip("gc.onnx.export is not in this build")
    keras.utils.set_random_seed(6)
    x, y = blobs(64)
    model = keras.Sequential([L.Dense(8, activation="relu", input_shape=(6,)), L.Dropout(0.5),
                              L.BatchNormalization(), L.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", target=TARGET)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)  # moving statistics move
    assert model.training_flag is not None
    model.export_onnx(tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-4, atol=1e-6)
    assert len(model.updates) == 2  # the moving mean and variance


def test_plot_history_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = blobs(40)
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], target=TARGET)
    history = model.fit(x, y, epochs=2, validation_split=0.25, verbose=0)
    path = keras.utils.plot_history(history, tmp_path / "curves.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_plot_history_without_matplotlib(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_mpl(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        keras.utils.plot_history({"loss": [1.0, 0.5]}, tmp_path / "c.png")


def test_regularization_is_part_of_the_loss():
    graph = gc.Graph()
    with graph.as_default():
        x = keras.Input((3,), dtype="float64")
        out = L.Dense(2, kernel_regularizer=gc.regularizers.l2(0.1), dtype="float64")(x)
    model = keras.Model(x, out)
    model.compile("sgd", "mse", target="reference")
    xv, yv = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 2))
    kernel, bias = model.get_weights()
    expected = np.mean((xv @ kernel + bias - yv) ** 2) + 0.1 * np.sum(kernel ** 2)
    assert model.evaluate(xv, yv, batch_size=4) == pytest.approx(expected)


def test_frozen_layers_keep_their_weights_in_a_combined_model():
    keras.utils.set_random_seed(7)
    graph = gc.Graph()
    with graph.as_default():
        z = keras.Input((2,))
        generator = keras.Model(z, L.Dense(3)(z))
        image = keras.Input((3,))
        critic = keras.Model(image, L.Dense(1, activation="sigmoid")(image))
        critic.compile("adam", "binary_crossentropy", target=TARGET)
        for layer in critic.layers:
            layer.trainable = False
        combined = keras.Model(z, critic(generator.outputs[0]))
        combined.compile("adam", "binary_crossentropy", target=TARGET)
    assert combined.session is critic.session  # one graph, one session: shared weights
    assert [w.name for w in combined.trainable_weights] == [w.name for w in generator.weights]
    c0, g0 = critic.get_weights(), generator.get_weights()
    combined.train_on_batch(RNG.normal(size=(8, 2)), np.ones((8, 1)))
    for before, after in zip(c0, critic.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert not np.allclose(g0[0], generator.get_weights()[0])
    critic.train_on_batch(RNG.normal(size=(8, 3)), np.ones((8, 1)))  # compiled before freezing
    assert not np.allclose(c0[0], critic.get_weights()[0])


def test_evaluate_runs_without_the_training_branches():
    # evaluate's loss and metrics are built on the inference outputs, as predict's outputs:
    # the training flag is not fed and the values are the flag-False ones, penalties included
    keras.utils.set_random_seed(6)
    x, y = blobs(40)
    model = keras.Sequential([L.Dense(8, activation="relu", input_shape=(6,),
                                      kernel_regularizer=keras.regularizers.l2(0.01)),
                              L.Dropout(0.5), L.BatchNormalization(), L.Dense(3)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], target=TARGET)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    loss, acc = model.evaluate(x, y, batch_size=40)
    _, uses_flag = model._executable("test")
    assert not uses_flag
    flag = model.training_flag
    want = gc.Session(model.graph, "reference")
    want.state.update(model.session.state)
    expected = want.run(model._fetch_metrics, {model.inputs[0]: x, model._y: y, flag: False})
    np.testing.assert_allclose([loss, acc], expected, rtol=1e-5, atol=1e-6)
    assert model.evaluate(x, y, batch_size=40) == [loss, acc]  # deterministic
