"""ONNX export: every op of the case table round-trips graphc -> ONNX -> onnxruntime and
agrees with the reference target, with unknown (symbolic) dims, at two batch sizes where
the case allows, at opsets 13, 17 and the newest; models pass the full checker."""

from __future__ import annotations

import functools
import os

import numpy as np
import onnx
import pytest

import graphc as gc
import graphc.onnx as gonnx
from graphc.backends import onnx_export as ox
from graphc.backends.onnx_runtime import make_session
from graphc.op import REGISTRY
from op_cases import CASES, Case

ort = pytest.importorskip("onnxruntime")


@functools.lru_cache(maxsize=1)
def runnable_newest() -> int:
    """The newest opset onnxruntime can run (onnx may know newer ones)."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (2,), name="x")
        y = gc.exp(x)
    for opset in range(ox.newest_opset(), ox.DEFAULT_OPSET, -1):
        try:
            make_session(gonnx.to_model([x], [y], opset=opset, graph=g))
            return opset
        except Exception:  # noqa: BLE001 - onnxruntime refuses opsets it does not know
            continue
    return ox.DEFAULT_OPSET


def test_every_op_is_exported_or_listed_unsupported() -> None:
    table = ox.load_table()
    state = {"variable", "placeholder"}  # handled by the driver (initializers, inputs)
    missing = sorted(set(REGISTRY) - set(table) - set(ox.UNSUPPORTED) - state)
    assert not missing, f"ops without an ONNX exporter or a documented reason: {missing}"
    assert all(isinstance(r, str) and r for r in ox.UNSUPPORTED.values())


def _build(case: Case, arrays: list, dynamic: bool):
    graph = gc.Graph()
    with graph.as_default():
        phs = [gc.placeholder(a.dtype, (None,) * a.ndim if dynamic else a.shape, name=f"in{i}")
               for i, a in enumerate(arrays)]
        out = case.build(*phs)
    return graph, phs, list(out) if isinstance(out, (list, tuple)) else [out]


def _doubled(arrays: list) -> list:
    return [np.concatenate([a, a[::-1]], 0) if a.ndim else a for a in arrays]


def _check_and_run(model: onnx.ModelProto, phs: list, arrays: list) -> list:
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    sess = make_session(model)
    names = [i.name for i in model.graph.input]
    return sess.run(None, {n: a for n, a in zip(names, arrays)})


EXPORTABLE = [c for c in CASES]


@pytest.mark.parametrize("case", EXPORTABLE, ids=[c.name for c in EXPORTABLE])
def test_case_round_trips_through_onnxruntime(case: Case) -> None:
    arrays = [a.astype("float32") if a.dtype.kind == "f" else a for a in case.inputs]
    dynamic = case.unknown_dims and not case.value_dependent_shape
    graph, phs, outs = _build(case, arrays, dynamic)
    reasons = ox.unexportable(graph)
    if reasons:
        with pytest.raises(ox.OnnxExportError, match="cannot export node"):
            gonnx.to_model(phs, outs, graph=graph)
        pytest.skip(f"not expressible in ONNX: {reasons}")
    ref = gc.Session(graph, target="reference")
    sizes = [arrays]
    if dynamic:
        try:
            ref.run(outs, dict(zip(phs, _doubled(arrays))))
            sizes.append(_doubled(arrays))
        except (ValueError, IndexError, TypeError):
            pass  # the case's inputs do not allow another leading size
    for opset in sorted({13, ox.DEFAULT_OPSET, runnable_newest()}):
        try:
            model = gonnx.to_model(phs, outs, opset=opset, graph=graph)
        except ox.OnnxExportError as err:
            assert opset < 16 and "opset >= 16" in str(err)
            continue
        for feed in sizes:
            expected = ref.run(outs, dict(zip(phs, feed)))
            got = _check_and_run(model, phs, feed)
            for e, g in zip(expected, got):
                assert g.dtype == e.dtype and g.shape == e.shape
                np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6,
                                           err_msg=f"{case.name} at opset {opset}")


def test_newest_opset_passes_the_checker() -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 4), name="x")
        y = gc.reduce_max(gc.nn.softmax(x), axis=1) + gc.squeeze(gc.split(x, 2, axis=1)[0][:, :1])
    model = gonnx.to_model([x], [y], opset=ox.newest_opset(), graph=g)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == ox.newest_opset()


@pytest.fixture
def mlp():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 4), name="x")
        y = gc.placeholder(gc.int64, (None,), name="labels")
        w1 = gc.Variable(gc.init.glorot_uniform((4, 8), seed=0), name="dense/W")
        b1 = gc.Variable(np.zeros(8, np.float32), name="dense/b")
        w2 = gc.Variable(gc.init.glorot_uniform((8, 3), seed=1), name="out/W")
        h = gc.nn.relu(x @ w1 + b1)
        logits = gc.matmul(h, w2, name="logits")
        probs = gc.nn.softmax(logits, name="probs")
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
    return g, x, y, logits, probs, loss, [w1, b1, w2]


def test_export_writes_values_names_and_symbolic_dims(tmp_path, mlp) -> None:
    g, x, _, logits, probs, _, (w1, b1, w2) = mlp
    sess = gc.Session(g, target="reference")
    sess.run(gc.assign(b1, np.full(8, 0.5, np.float32)))
    path = str(tmp_path / "mlp.onnx")
    gonnx.export(path, [x], [logits, probs], session=sess)
    model = onnx.load(path)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    np.testing.assert_array_equal(inits["dense/b"], np.full(8, 0.5, np.float32))
    assert [i.name for i in model.graph.input] == ["x"]
    assert [o.name for o in model.graph.output] == ["logits", "probs"]
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param and not dim.HasField("dim_value")
    ops = [n.op_type for n in model.graph.node]
    assert "Gemm" in ops and "Softmax" in ops
    for batch in (1, 7):
        xv = np.random.default_rng(batch).normal(size=(batch, 4)).astype(np.float32)
        got = make_session(model).run(None, {"x": xv})
        want = sess.run([logits, probs], {x: xv})
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # without a session: the initial values
    model0 = gonnx.to_model([x], [logits], graph=g)
    inits0 = {i.name: onnx.numpy_helper.to_array(i) for i in model0.graph.initializer}
    np.testing.assert_array_equal(inits0["dense/b"], np.zeros(8, np.float32))


def test_backward_graph_exports(mlp) -> None:
    g, x, y, _, _, loss, params = mlp
    with g.as_default():
        grads = gc.gradients(loss, params)
    model = gonnx.to_model([x, y], [loss, *grads], graph=g)
    rng = np.random.default_rng(0)
    for batch in (3, 10):
        xv = rng.normal(size=(batch, 4)).astype(np.float32)
        yv = rng.integers(0, 3, size=batch)
        got = _check_and_run(model, [x, y], [xv, yv])
        want = gc.Session(g, target="reference").run([loss, *grads], {x: xv, y: yv})
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_unsupported_op_names_op_and_node(tmp_path) -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3), name="x")
        y = x * gc.random_uniform((3,), seed=1, name="noise")
    path = tmp_path / "r.onnx"
    with pytest.raises(gc.GraphcError, match=r"node noise \(op random_uniform\).*Philox"):
        gonnx.export(str(path), [x], [y])
    assert not path.exists() and not os.listdir(tmp_path)  # nothing half-written


def test_bad_opset_and_state_updates_are_refused(mlp) -> None:
    g, x, _, logits, _, _, (w1, _, _) = mlp
    with pytest.raises(gc.GraphcError, match="opset 11 is not supported"):
        gonnx.to_model([x], [logits], opset=11, graph=g)
    with g.as_default():
        upd = gc.assign(w1, w1 * 2.0)
    with pytest.raises(gc.GraphcError, match="assign variables"):
        gonnx.to_model([], [upd], graph=g)


def test_fetching_an_input_or_a_variable_twice(mlp) -> None:
    g, x, _, logits, _, _, (w1, _, _) = mlp
    model = gonnx.to_model([x], [x, w1, logits, logits], graph=g)
    xv = np.ones((2, 4), np.float32)
    got = _check_and_run(model, [x], [xv])
    np.testing.assert_array_equal(got[0], xv)
    np.testing.assert_array_equal(got[1], gc.Session(g, target="reference").run(w1))
    np.testing.assert_array_equal(got[2], got[3])


def test_normalizations_map_to_their_onnx_ops() -> None:
    norm = pytest.importorskip("graphc.ops.normalization")
    rng = np.random.default_rng(0)
    p = lambda n, lo=0.0: (rng.uniform(size=n) + lo).astype(np.float32)  # noqa: E731
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3, 4, 4), name="x")
        z = gc.placeholder(gc.float32, (None, 5, 6), name="z")
        bn = norm.batch_norm(x, gc.Variable(p(3)), gc.Variable(p(3)), gc.Variable(p(3)),
                             gc.Variable(p(3, 0.5)), False, axis=1)
        ln = norm.layer_norm(z, gc.Variable(p(6)), gc.Variable(p(6)))
        ln_no_beta = norm.layer_norm(z, gc.Variable(p(6)), None, eps=1e-3)
    feeds = [rng.normal(size=(2, 3, 4, 4)).astype(np.float32),
             rng.normal(size=(2, 5, 6)).astype(np.float32)]
    want = gc.Session(g, target="reference").run([bn, ln, ln_no_beta], dict(zip([x, z], feeds)))
    for opset, expected in ((13, {"BatchNormalization"}),
                            (17, {"BatchNormalization", "LayerNormalization"})):
        model = gonnx.to_model([x, z], [bn, ln, ln_no_beta], opset=opset, graph=g)
        assert expected <= {n.op_type for n in model.graph.node}
        for got, w in zip(_check_and_run(model, [x, z], feeds), want):
            np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-5)


def test_export_writes_atomically_with_the_usual_file_mode(tmp_path) -> None:
    import os
    import stat

    import graphc as gc

    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, 2), name="x")
        y = gc.identity(x * 2.0, name="y")
        path = tmp_path / "m.onnx"
        (tmp_path / "m.onnx").write_bytes(b"previous")
        gc.onnx.export(str(path), [x], [y])
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary left
