"""ONNX import: round trips, versioned semantics (checked against onnxruntime), fine-tuning
imported initializers, and malformed or hostile files (clear errors, nothing built)."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphc as gc
import graphc.onnx as gonnx
from graphc.backends.onnx_runtime import make_session
from graphc.frontends.onnx_import import (OnnxImportError, import_model, parse_model,
                                          supported_ops)

ort = pytest.importorskip("onnxruntime")


def _mlp_graph():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 4), name="x")
        y = gc.placeholder(gc.int64, (None,), name="y")
        w = gc.Variable(gc.init.glorot_uniform((4, 8), seed=0), name="W")
        b = gc.Variable(np.full(8, 0.1, np.float32), name="b")
        v = gc.Variable(gc.init.glorot_uniform((8, 3), seed=1), name="V")
        logits = gc.matmul(gc.tanh(x @ w + b), v, name="logits")
    return g, x, y, logits


def test_round_trip_graphc_onnx_graphc_onnx(tmp_path) -> None:
    g, x, _, logits = _mlp_graph()
    path = str(tmp_path / "a.onnx")
    gonnx.export(path, [x], [logits])
    g2, ins, outs = gonnx.load(path)
    assert [t.name for t in ins] == ["x"] and [t.name for t in outs] == ["logits"]
    assert ins[0].shape == (None, 4)
    assert sorted(g2.variables) == ["V", "W", "b"] and all(
        v.trainable for v in g2.variables.values())
    xv = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    want = gc.Session(g, target="reference").run(logits, {x: xv})
    np.testing.assert_allclose(gc.Session(g2, target="reference").run(outs[0], {ins[0]: xv}),
                               want, rtol=1e-6, atol=1e-6)
    again = str(tmp_path / "b.onnx")
    gonnx.export(again, ins, outs)
    got = make_session(onnx.load(again)).run(None, {"x": xv})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_imported_model_fine_tunes_and_exports_again(tmp_path) -> None:
    g, x, _, logits = _mlp_graph()
    path = str(tmp_path / "a.onnx")
    gonnx.export(path, [x], [logits])
    g2, ins, outs = gonnx.load(path)
    rng = np.random.default_rng(1)
    xv = rng.normal(size=(32, 4)).astype(np.float32)
    yv = (xv[:, 0] > 0).astype(np.int64) + (xv[:, 1] > 0)
    with g2.as_default():
        labels = gc.placeholder(gc.int64, (None,), name="labels")
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels, outs[0]))
        grads = gc.gradients(loss, list(g2.variables.values()))
        assert all(gr is not None for gr in grads)
        train = gc.train.AdamOptimizer(0.05).minimize(loss)
    sess = gc.Session(g2, target="reference")
    losses = [sess.run([loss, train], {ins[0]: xv, labels: yv})[0] for _ in range(20)]
    assert losses[-1] < 0.7 * losses[0]
    out = str(tmp_path / "tuned.onnx")
    gonnx.export(out, ins, outs, session=sess)
    got = make_session(onnx.load(out)).run(None, {"x": xv})[0]
    np.testing.assert_allclose(got, sess.run(outs[0], {ins[0]: xv}), rtol=1e-5, atol=1e-5)


def _model(nodes, inputs, outputs, opset, inits=()):
    graph = helper.make_graph(nodes, "t", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    return model


def _vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def _const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


# (opset, nodes, initializers): the same computation spelled as each opset wants it.
VERSIONED = {
    "squeeze_axes_attr_11": (11, [helper.make_node("Squeeze", ["x"], ["y"], axes=[1])], []),
    "squeeze_axes_input_13": (13, [helper.make_node("Squeeze", ["x", "ax"], ["y"])],
                              [_const("ax", np.array([1], np.int64))]),
    "unsqueeze_attr_11": (11, [helper.make_node("Unsqueeze", ["x"], ["y"], axes=[0, 3])], []),
    "unsqueeze_input_13": (13, [helper.make_node("Unsqueeze", ["x", "ax"], ["y"])],
                           [_const("ax", np.array([3, 0], np.int64))]),
    "reduce_sum_attr_11": (11, [helper.make_node("ReduceSum", ["x"], ["y"], axes=[0, 2],
                                                 keepdims=0)], []),
    "reduce_sum_input_13": (13, [helper.make_node("ReduceSum", ["x", "ax"], ["y"], keepdims=0)],
                            [_const("ax", np.array([0, 2], np.int64))]),
    "reduce_mean_attr_13": (13, [helper.make_node("ReduceMean", ["x"], ["y"], axes=[-1])], []),
    "reduce_mean_input_18": (18, [helper.make_node("ReduceMean", ["x", "ax"], ["y"])],
                             [_const("ax", np.array([-1], np.int64))]),
    "split_attr_11": (11, [helper.make_node("Split", ["x"], ["y", "z"], axis=2, split=[1, 3])],
                      []),
    "split_input_13": (13, [helper.make_node("Split", ["x", "s"], ["y", "z"], axis=2)],
                       [_const("s", np.array([1, 3], np.int64))]),
    "split_num_outputs_18": (18, [helper.make_node("Split", ["x"], ["y", "z"], axis=2,
                                                   num_outputs=2)], []),
    "clip_attrs_6": (6, [helper.make_node("Clip", ["x"], ["y"], min=-0.2, max=0.3)], []),
    "clip_inputs_11": (11, [helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
                       [_const("lo", np.float32(-0.2)), _const("hi", np.float32(0.3))]),
    "pad_attrs_2": (2, [helper.make_node("Pad", ["x"], ["y"], pads=[0, 1, 0, 0, 2, 1],
                                         value=0.5)], []),
    "pad_inputs_11": (11, [helper.make_node("Pad", ["x", "p", "v"], ["y"], mode="reflect")],
                      [_const("p", np.array([0, 1, 1, 0, 1, 2], np.int64)),
                       _const("v", np.float32(0))]),
    "pad_axes_18": (18, [helper.make_node("Pad", ["x", "p", "", "ax"], ["y"])],
                    [_const("p", np.array([1, 2], np.int64)), _const("ax", np.array([-1], np.int64))]),
    "softmax_flattening_11": (11, [helper.make_node("Softmax", ["x"], ["y"], axis=1)], []),
    "softmax_axis_13": (13, [helper.make_node("Softmax", ["x"], ["y"], axis=1)], []),
    "logsoftmax_11": (11, [helper.make_node("LogSoftmax", ["x"], ["y"])], []),
    "reshape_zero_copies_5": (5, [helper.make_node("Reshape", ["x", "s"], ["y"])],
                              [_const("s", np.array([0, -1], np.int64))]),
    "slice_attrs_9": (9, [helper.make_node("Slice", ["x"], ["y"], starts=[1, -1], ends=[9, 0],
                                           axes=[0, 2])], []),
    "slice_inputs_13": (13, [helper.make_node("Slice", ["x", "b", "e", "a", "s"], ["y"])],
                        [_const("b", np.array([-1, 0], np.int64)),
                         _const("e", np.array([-(2 ** 63), 9], np.int64)),
                         _const("a", np.array([2, 0], np.int64)),
                         _const("s", np.array([-2, 1], np.int64))]),
    "gemm_transposed_13": (13, [helper.make_node("Gemm", ["m", "w", "c"], ["y"], transB=1,
                                                 alpha=0.5, beta=2.0)],
                           [_const("w", np.arange(12, dtype=np.float32).reshape(3, 4) / 10),
                            _const("c", np.ones(3, np.float32))]),
    "div_int_truncates_13": (13, [helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT64),
                                  helper.make_node("Div", ["xi", "d"], ["y"])],
                             [_const("d", np.array(-3, np.int64))]),
}


@pytest.mark.parametrize("name", sorted(VERSIONED))
def test_versioned_semantics_agree_with_onnxruntime(name: str) -> None:
    opset, nodes, inits = VERSIONED[name]
    x = (np.random.default_rng(0).normal(size=(2, 3, 4)) * 5).astype(np.float32)
    feeds = {"x": x}
    ins = [_vi("x", list(x.shape))]
    if name.startswith("squeeze"):
        feeds["x"] = x[:, :1]
        ins = [_vi("x", [2, 1, 4])]
    if name.startswith("gemm"):
        nodes = [helper.make_node("Reshape", ["x", "shape"], ["m"])] + nodes
        inits = inits + [_const("shape", np.array([6, 4], np.int64))]
    out_type = TensorProto.INT64 if name.startswith("div_int") else TensorProto.FLOAT
    outs = [helper.make_tensor_value_info(o, out_type, None) for n in nodes[-1:] for o in n.output]
    model = _model(nodes, ins, outs, opset, inits)
    want = make_session(model).run(None, feeds)
    graph, inputs, outputs = import_model(model)
    got = gc.Session(graph, target="reference").run(outputs, {inputs[0]: feeds["x"]})
    for g_, w_ in zip(got, want):
        assert g_.dtype == w_.dtype
        np.testing.assert_allclose(g_, w_, rtol=1e-5, atol=1e-6)


def test_unsupported_op_and_domain_name_op_version_and_node() -> None:
    model = _model([helper.make_node("NonMaxSuppression", ["x"], ["y"], name="nms1")],
                   [_vi("x", [2])], [_vi("y", [2])], 13)
    with pytest.raises(OnnxImportError, match=r"'nms1'.*NonMaxSuppression.*opset 13"):
        import_model(model)
    model = _model([helper.make_node("Relu", ["x"], ["y"], name="r", domain="com.example")],
                   [_vi("x", [2])], [_vi("y", [2])], 13)
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(OnnxImportError, match="domain 'com.example'"):
        import_model(model)
    assert "Conv" in supported_ops() and "Reshape" in supported_ops()


def _write(path, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def test_wrong_magic_and_truncated_files(tmp_path) -> None:
    with pytest.raises(gc.FileFormatError, match="not an ONNX model"):
        gonnx.load(_write(tmp_path / "a.onnx", b"\x89PNG\r\n\x1a\n" + os.urandom(64)))
    with pytest.raises(gc.FileFormatError):
        gonnx.load(_write(tmp_path / "e.onnx", b""))
    g, x, _, logits = _mlp_graph()
    data = gonnx.to_model([x], [logits], graph=g).SerializeToString()
    for cut in (len(data) // 2, len(data) - 3, 10):
        with pytest.raises(gc.FileFormatError):
            gonnx.load(_write(tmp_path / f"t{cut}.onnx", data[:cut]))
    with pytest.raises(gc.FileFormatError, match="cannot read"):
        gonnx.load(str(tmp_path / "missing.onnx"))


def test_missing_initializer_is_refused_before_building() -> None:
    model = _model([helper.make_node("MatMul", ["x", "W"], ["y"])], [_vi("x", [1, 2])],
                   [_vi("y", [1, 2])], 13)
    with pytest.raises(gc.FileFormatError, match="not a valid ONNX model"):
        parse_model(model.SerializeToString())


def _external_model(tmp_path, location: str) -> str:
    w = numpy_helper.from_array(np.ones((2, 2), np.float32), "W")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "16")):
        w.external_data.add(key=k, value=v)
    model = _model([helper.make_node("MatMul", ["x", "W"], ["y"])], [_vi("x", [1, 2])],
                   [_vi("y", [1, 2])], 13, [w])
    return _write(tmp_path / "m.onnx", model.SerializeToString())


def test_external_data_inside_the_folder_loads(tmp_path) -> None:
    _write(tmp_path / "w.bin", np.full((2, 2), 2.0, np.float32).tobytes())
    g, ins, outs = gonnx.load(_external_model(tmp_path, "w.bin"))
    np.testing.assert_array_equal(
        gc.Session(g, target="reference").run(outs[0], {ins[0]: np.ones((1, 2), np.float32)}),
        [[4.0, 4.0]])


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin",
                                      "link.bin"])
def test_external_data_escaping_the_folder_is_refused(tmp_path, location: str) -> None:
    outside = tmp_path / "secret.bin"
    _write(outside, b"\0" * 16)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    os.symlink(outside, model_dir / "link.bin")
    with pytest.raises(gc.FileFormatError, match="outside the model's folder|refused"):
        gonnx.load(_external_model(model_dir, location))


def test_external_data_past_the_end_is_refused(tmp_path) -> None:
    _write(tmp_path / "w.bin", b"\0" * 8)
    with pytest.raises(gc.FileFormatError, match="beyond the end"):
        gonnx.load(_external_model(tmp_path, "w.bin"))


# -- models exported by PyTorch ------------------------------------------------------------------

def _torch_models():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class CNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.fc = nn.Linear(4 * 4 * 4, 5)

        def forward(self, x):
            x = nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
            return self.fc(torch.flatten(x, 1))

    class LSTMNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(3, 6)
            self.fc = nn.Linear(6, 2)

        def forward(self, x):
            y, _ = self.lstm(x)
            return self.fc(y[-1])

    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3), nn.LogSoftmax(-1))
    cnn = CNN()
    with torch.no_grad():  # non-trivial running statistics for the inference-mode BN
        cnn.bn.running_mean.uniform_(-0.5, 0.5)
        cnn.bn.running_var.uniform_(0.5, 2.0)
    return torch, {
        "mlp": (mlp.eval(), torch.randn(5, 4), {0: "batch"}),
        "cnn": (cnn.eval(), torch.randn(3, 1, 8, 8), {0: "batch"}),
        "lstm": (LSTMNet().eval(), torch.randn(7, 2, 3), {1: "batch"}),
    }


def _torch_export(torch, net, x, dyn, path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), path, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": dyn}, dynamo=False, opset_version=17)


@pytest.mark.parametrize("name", ["mlp", "cnn", "lstm"])
def test_pytorch_models_import_and_agree(tmp_path, name: str) -> None:
    torch, models = _torch_models()
    net, x, dyn = models[name]
    path = str(tmp_path / f"{name}.onnx")
    _torch_export(torch, net, x, dyn, path)
    g, ins, outs = gonnx.load(path)
    sess = gc.Session(g, target="reference")
    axis = next(iter(dyn))
    for batch in (x, torch.cat([x, x.flip(axis)], axis)):  # two batch sizes
        want = net(batch).detach().numpy()
        got = sess.run(outs[0], {ins[0]: batch.numpy()})
        assert np.abs(want).max() > 1e-3
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["cnn", "lstm"])
def test_pytorch_model_fine_tunes_in_graphc_and_exports(tmp_path, name: str) -> None:
    torch, models = _torch_models()
    net, x, dyn = models[name]
    path = str(tmp_path / f"{name}.onnx")
    _torch_export(torch, net, x, dyn, path)
    g, ins, outs = gonnx.load(path)
    rng = np.random.default_rng(0)
    shape = (16, 1, 8, 8) if name == "cnn" else (7, 16, 3)
    xv = rng.normal(size=shape).astype(np.float32)
    yv = rng.integers(0, outs[0].shape[-1], size=16)
    with g.as_default():
        labels = gc.placeholder(gc.int64, (None,), name="labels")
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels, outs[0]))
        train = gc.train.MomentumOptimizer(0.05, 0.9).minimize(loss)
    sess = gc.Session(g, target="reference")
    losses = [sess.run([loss, train], {ins[0]: xv, labels: yv})[0] for _ in range(8)]
    assert losses[-1] < losses[0]
    out = str(tmp_path / "tuned.onnx")
    gonnx.export(out, ins, outs, session=sess)
    got = make_session(onnx.load(out)).run(None, {"x": xv})[0]
    np.testing.assert_allclose(got, sess.run(outs[0], {ins[0]: xv}), rtol=1e-4, atol=1e-5)


def test_hostile_sizes_are_not_materialized() -> None:
    # A ConstantOfShape of 10**12 elements: importing must not try to allocate it.
    model = _model([helper.make_node("ConstantOfShape", ["s"], ["y"])], [],
                   [_vi("y", [10 ** 6, 10 ** 6])], 13,
                   [_const("s", np.array([10 ** 6, 10 ** 6], np.int64))])
    graph, _, outputs = import_model(model)
    assert outputs[0].shape == (10 ** 6, 10 ** 6)  # built, not run
    bad = numpy_helper.from_array(np.ones(4, np.float32), "W")
    bad.dims[:] = [1000, 1000]  # dims that the data does not hold
    model = _model([helper.make_node("Identity", ["W"], ["y"])], [], [_vi("y", [1000, 1000])],
                   13, [bad])
    with pytest.raises(gc.FileFormatError):
        import_model(parse_model(model.SerializeToString()))


def test_an_opset_newer_than_onnx_knows_is_refused() -> None:
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [2])], [_vi("y", [2])],
                   onnx.defs.onnx_opset_version() + 1)
    with pytest.raises(OnnxImportError, match="opset .* is not supported"):
        import_model(model)
