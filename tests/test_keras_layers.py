"""gc.keras layers: output shapes, parameter counts, gradients (finite differences, float64)
and the errors for bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.errors import ShapeError
from graphc.frontends import keras
from graphc.frontends.keras import layers as L

from test_keras_helpers import check_gradients, layer_model

RNG = np.random.default_rng(0)


def _x(*shape):
    return RNG.normal(size=shape)


# (layer factory, input shape without batch, expected output shape without batch, params)
CASES = {
    "dense": (lambda: L.Dense(3, activation="tanh", dtype="float64"), (4,), (3,), 4 * 3 + 3),
    "dense_3d": (lambda: L.Dense(2, use_bias=False, dtype="float64"), (5, 4), (5, 2), 8),
    "activation": (lambda: L.Activation("softmax", dtype="float64"), (4,), (4,), 0),
    "flatten": (lambda: L.Flatten(), (2, 3, 2), (12,), 0),
    "reshape": (lambda: L.Reshape((3, 4)), (12,), (3, 4), 0),
    "conv2d": (lambda: L.Conv2D(2, 3, padding="same", activation="relu", dtype="float64"),
               (3, 5, 5), (2, 5, 5), 2 * 3 * 9 + 2),
    "conv2d_strided": (lambda: L.Conv2D(2, (2, 3), strides=2, dtype="float64"), (1, 6, 7),
                       (2, 3, 3), 2 * 6 + 2),
    "conv2d_transpose": (lambda: L.Conv2DTranspose(2, 3, strides=2, padding="same",
                                                   dtype="float64"), (3, 3, 3), (2, 6, 6),
                         3 * 2 * 9 + 2),
    "max_pool": (lambda: L.MaxPooling2D(2), (2, 4, 4), (2, 2, 2), 0),
    "avg_pool": (lambda: L.AveragePooling2D(2, padding="same"), (2, 5, 5), (2, 3, 3), 0),
    "global_avg_pool": (lambda: L.GlobalAveragePooling2D(), (3, 4, 4), (3,), 0),
    "batch_norm": (lambda: L.BatchNormalization(dtype="float64"), (3, 2, 2), (3, 2, 2), 12),
    "layer_norm": (lambda: L.LayerNormalization(dtype="float64"), (3, 4), (3, 4), 8),
    "simple_rnn": (lambda: L.SimpleRNN(3, dtype="float64"), (4, 2), (3,), 2 * 3 + 9 + 3),
    "lstm_seq": (lambda: L.LSTM(2, return_sequences=True, dtype="float64"), (3, 2), (3, 2),
                 4 * (2 * 2 + 2 * 2 + 2)),
    "gru": (lambda: L.GRU(2, dtype="float64"), (3, 2), (2,), 3 * (2 * 2 + 2 * 2 + 2 + 2)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_shape_and_parameter_count(name):
    make, in_shape, out_shape, params = CASES[name]
    layer = make()
    model, _ = layer_model(layer, in_shape)
    assert model.outputs[0].shape == (None, *out_shape)
    assert layer.count_params() == params
    assert model.count_params() == params
    y = model.predict(_x(2, *in_shape))
    assert y.shape == (2, *out_shape)


@pytest.mark.parametrize("name", sorted(set(CASES) - {"flatten", "reshape"}))
def test_gradients_match_finite_differences(name):
    make, in_shape, _, _ = CASES[name]
    model, _ = layer_model(make(), in_shape)
    x = _x(3, *in_shape)
    if name == "max_pool":  # keep ties and near-ties away from the kinks
        x = RNG.permutation(np.arange(x.size, dtype=np.float64)).reshape(x.shape) * 0.1
    check_gradients(model, x)


def test_batch_norm_gradients_in_training_mode():
    layer = L.BatchNormalization(dtype="float64")
    model, _ = layer_model(layer, (3, 2, 2))
    flag = model.training_flag
    assert flag is not None
    check_gradients(model, _x(4, 3, 2, 2), feeds={flag: True}, tol=1e-5)


def test_embedding_shape_params_and_gradient():
    layer = L.Embedding(7, 3, dtype="float64")
    model, x = layer_model(layer, (4,), dtype=gc.int64)
    assert model.outputs[0].shape == (None, 4, 3)
    assert layer.count_params() == 21
    ids = np.array([[0, 6, 2, 2], [1, 1, 5, 3]])
    out = model.predict(ids)
    table = model.get_weights()[0]
    np.testing.assert_allclose(out, table[ids])
    assert np.all(np.abs(table) <= 0.05)  # Keras's uniform(-0.05, 0.05)
    check_gradients(model, ids, wrt_input=False)


def test_add_and_concatenate():
    graph = gc.Graph()
    with graph.as_default():
        a, b = keras.Input((3,), dtype="float64"), keras.Input((3,), dtype="float64")
        s = L.Add()([a, b])
        c = L.Concatenate()([a, s])
    model = keras.Model([a, b], [s, c])
    av, bv = _x(2, 3), _x(2, 3)
    sv, cv = model.predict([av, bv])
    np.testing.assert_allclose(sv, av + bv)
    np.testing.assert_allclose(cv, np.concatenate([av, av + bv], 1))
    with graph.as_default():
        with pytest.raises(ShapeError, match="one shape"):
            L.Add()([a, keras.Input((4,), dtype="float64")])


def test_lstm_return_state_and_forget_bias():
    graph = gc.Graph()
    with graph.as_default():
        x = keras.Input((5, 2))
        layer = L.LSTM(3, return_state=True)
        out, h, c = layer(x)
    assert out.shape == h.shape == c.shape == (None, 3)
    model = keras.Model(x, [out, h, c])
    o, hv, _ = model.predict(_x(2, 5, 2).astype(np.float32))
    np.testing.assert_allclose(o, hv)  # the last output is the final hidden state
    bias = model.get_weights()[2]
    np.testing.assert_array_equal(bias[3:6], 1.0)  # forget gate (i, f, c, o)
    np.testing.assert_array_equal(np.delete(bias, range(3, 6)), 0.0)


def test_dropout_switches_with_the_training_flag():
    layer = L.Dropout(0.5, seed=3)
    model, x = layer_model(layer, (1000,), dtype=gc.float32)
    flag = model.training_flag
    ones = np.ones((4, 1000), np.float32)
    np.testing.assert_array_equal(model.predict(ones), ones)  # inference: identity
    trained = model.session.run(model.outputs[0], {x: ones, flag: True})
    assert set(np.unique(trained)) <= {0.0, 2.0}
    assert 0.4 < (trained == 0).mean() < 0.6


def test_regularizer_penalty_is_a_layer_loss():
    layer = L.Dense(2, kernel_regularizer=gc.regularizers.l2(0.5), dtype="float64")
    model, _ = layer_model(layer, (3,))
    (penalty,) = model.losses
    kernel = model.get_weights()[0]
    np.testing.assert_allclose(model.session.run(penalty), 0.5 * np.sum(kernel ** 2))
    named = L.Dense(2, kernel_regularizer="l1", dtype="float64")
    m2, _ = layer_model(named, (3,))
    np.testing.assert_allclose(m2.session.run(m2.losses[0]), 0.01 * np.abs(m2.get_weights()[0]).sum())


def test_initializers_by_name_and_callable():
    seen = {}

    def custom(shape, dtype=gc.float32, seed=None):
        seen["shape"] = shape
        return np.full(shape, 0.25, dtype=gc.as_dtype(dtype).np)

    model, _ = layer_model(L.Dense(2, kernel_initializer=custom, bias_initializer="ones"), (3,),
                           dtype=gc.float32)
    kernel, bias = model.get_weights()
    assert seen["shape"] == (3, 2)
    np.testing.assert_array_equal(kernel, 0.25)
    np.testing.assert_array_equal(bias, 1.0)
    layer_model(L.Dense(2, kernel_initializer="GlorotNormal"), (3,), dtype=gc.float32)
    with pytest.raises(ValueError, match="unknown initializer"):
        layer_model(L.Dense(2, kernel_initializer="nope"), (3,), dtype=gc.float32)


def test_bad_inputs_fail_when_the_graph_is_built():
    with pytest.raises(ShapeError, match="Dense"):
        layer_model(L.Dense(2), (None,), dtype=gc.float32)
    with pytest.raises(ShapeError, match="rank 4"):
        layer_model(L.Conv2D(2, 3), (8, 8), dtype=gc.float32)
    with pytest.raises(ShapeError, match="sizes differ"):
        layer_model(L.Reshape((5,)), (2, 3), dtype=gc.float32)
    with pytest.raises(ValueError, match="channels-first"):
        L.Conv2D(2, 3, data_format="channels_last")
    with pytest.raises(ValueError, match="unknown activation"):
        L.Dense(2, activation="swishy")
    with pytest.raises(ValueError, match="rate"):
        L.Dropout(1.5)
    with pytest.raises(TypeError, match="unexpected arguments"):
        L.Dense(2, kernel_initialiser="zeros")


def test_shared_layer_reuses_its_weights():
    graph = gc.Graph()
    with graph.as_default():
        a, b = keras.Input((3,)), keras.Input((3,))
        shared = L.Dense(2)
        out = L.Add()([shared(a), shared(b)])
    model = keras.Model([a, b], out)
    assert len(model.weights) == 2 and model.layers[0] is shared
    av, bv = _x(2, 3).astype(np.float32), _x(2, 3).astype(np.float32)
    k, bias = model.get_weights()
    np.testing.assert_allclose(model.predict([av, bv]), av @ k + bv @ k + 2 * bias, rtol=1e-5)
