"""The generic per-op tests, driven by the case table in op_cases.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphc as gc
from graphc.op import REGISTRY, Kind
from op_cases import CASES, NOT_IN_TABLE, Case

CASE_IDS = [c.name for c in CASES]
FD_EPS = 1e-6  # PyTorch gradcheck's defaults: eps 1e-6, atol 1e-5, rtol 1e-3


def _inputs(case: Case, dtype: str) -> list[np.ndarray]:
    return [a.astype(dtype) if a.dtype.kind == "f" else a for a in case.inputs]


def _build(case: Case, arrays: list[np.ndarray], unknown: bool = False):
    graph = gc.Graph()
    with graph.as_default():
        phs = [gc.placeholder(a.dtype, (None,) * a.ndim if unknown else a.shape, name=f"in{i}")
               for i, a in enumerate(arrays)]
        out = case.build(*phs)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    return graph, phs, outs


def _run(graph, phs, outs, arrays, target="reference"):
    return gc.Session(graph, target=target).run(outs, dict(zip(phs, arrays)))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_infer_agrees_with_reference(case: Case) -> None:
    for dtype in case.dtypes:
        arrays = _inputs(case, dtype)
        graph, phs, outs = _build(case, arrays)
        for t, value in zip(outs, _run(graph, phs, outs, arrays)):
            if case.value_dependent_shape:
                _assert_compatible(t, value)
            else:
                assert t.shape == value.shape, f"{t.name}: inferred {t.shape}, got {value.shape}"
            assert t.dtype.np == value.dtype, f"{t.name}: inferred {t.dtype}, got {value.dtype}"
        if case.unknown_dims:
            graph, phs, outs = _build(case, arrays, unknown=True)
            for t, value in zip(outs, _run(graph, phs, outs, arrays)):
                _assert_compatible(t, value)


def _assert_compatible(t, value: np.ndarray) -> None:
    assert t.ndim == value.ndim, f"{t.name}: inferred rank {t.ndim}, got {value.ndim}"
    assert all(d is None or d == n for d, n in zip(t.shape, value.shape)), \
        f"{t.name}: inferred {t.shape}, got {value.shape}"


def _fd_check(case: Case, f, arrays: list[np.ndarray], analytic: list, what: str) -> None:
    """Compare analytic gradients of the scalar function f(arrays) with central differences."""
    for i in _grad_inputs(case, arrays):
        x = arrays[i]
        numeric = np.zeros_like(x)
        for j in np.ndindex(x.shape):
            saved = x[j]
            x[j] = saved + FD_EPS
            up = f(arrays)
            x[j] = saved - FD_EPS
            down = f(arrays)
            x[j] = saved
            numeric[j] = (up - down) / (2 * FD_EPS)
        got = np.zeros_like(x) if analytic[i] is None else analytic[i]
        np.testing.assert_allclose(got, numeric, rtol=case.rtol, atol=case.atol,
                                   err_msg=f"{what} of input {i} in case {case.name}")


def _weighted_sum_dynamic(outs):
    """A scalar over every float output, for graphs whose shapes are unknown."""
    terms = [gc.reduce_mean(t) for t in outs if t.dtype.is_floating]
    return sum(terms[1:], terms[0]) if terms else None


def _grad_inputs(case: Case, arrays: list[np.ndarray]) -> list[int]:
    floats = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    return [i for i in floats if case.grad_inputs is None or i in case.grad_inputs]


def _weighted_sum(outs, rng):
    """A scalar that depends on every float output, with random weights."""
    total = None
    for t in outs:
        if t.dtype.is_floating:
            term = gc.reduce_sum(t * rng.uniform(0.5, 1.5, size=t.shape).astype(t.dtype.np))
            total = term if total is None else total + term
    return total


GRAD_CASES = [c for c in CASES if c.grad]


@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.name for c in GRAD_CASES])
def test_gradient_matches_finite_differences(case: Case) -> None:
    arrays = _inputs(case, "float64")
    graph, phs, outs = _build(case, arrays)
    loss = _weighted_sum(outs, np.random.default_rng(0))
    idx = _grad_inputs(case, arrays)
    if loss is None or not idx:
        pytest.skip("no float output or input to differentiate")
    with graph.as_default():
        grads = gc.gradients(loss, [phs[i] for i in idx])
        fetch_grads = [g for g in grads if g is not None]
    sess = gc.Session(graph, target="reference")
    f = lambda arrs: float(sess.run(loss, dict(zip(phs, arrs))))  # noqa: E731
    values = iter(sess.run(fetch_grads, dict(zip(phs, arrays))) if fetch_grads else [])
    analytic = [None] * len(arrays)
    for i, g in zip(idx, grads):
        analytic[i] = next(values) if g is not None else None
    _fd_check(case, f, arrays, analytic, "gradient")


SECOND = [c for c in CASES if c.second_order]


@pytest.mark.parametrize("case", SECOND, ids=[c.name for c in SECOND])
def test_second_order_gradient(case: Case) -> None:
    arrays = _inputs(case, "float64")
    graph, phs, outs = _build(case, arrays)
    with graph.as_default():
        loss = _weighted_sum(outs, np.random.default_rng(0))
        idx = _grad_inputs(case, arrays)
        first = gc.gradients(loss, [phs[i] for i in idx])
        inner = _weighted_sum([g for g in first if g is not None], np.random.default_rng(1))
        second = gc.gradients(inner, [phs[i] for i in idx])
    sess = gc.Session(graph, target="reference")
    f = lambda arrs: float(sess.run(inner, dict(zip(phs, arrs))))  # noqa: E731
    fetch = [g for g in second if g is not None]
    values = iter(sess.run(fetch, dict(zip(phs, arrays))) if fetch else [])
    analytic = [None] * len(arrays)
    for i, g in zip(idx, second):
        analytic[i] = next(values) if g is not None else None
    _fd_check(case, f, arrays, analytic, "second-order gradient")


def test_every_op_is_in_the_table() -> None:
    covered = set()
    for case in CASES:
        arrays = _inputs(case, case.dtypes[0])
        # Gradient ops count too (sum_to_like...), and some appear only with unknown dims (size).
        for unknown in (False, True) if case.unknown_dims else (False,):
            graph, phs, outs = _build(case, arrays, unknown)
            loss = _weighted_sum(outs, np.random.default_rng(0)) if case.grad and not unknown \
                else _weighted_sum_dynamic(outs) if case.grad else None
            if loss is not None:
                with graph.as_default():
                    gc.gradients(loss, [p for p in phs if p.dtype.is_floating])
            covered.update(node.op for node in graph.nodes)
    missing = sorted(set(REGISTRY) - covered - set(NOT_IN_TABLE))
    assert not missing, f"ops without a case in op_cases.py: {missing}"


ELEMENTWISE = sorted(name for name, op in REGISTRY.items()
                     if op.kind in (Kind.ELEMENTWISE, Kind.BROADCAST) and op.formula)


@pytest.mark.parametrize("op_name", ELEMENTWISE)
def test_scalar_formula_matches_reference(op_name: str) -> None:
    """The formula the Numba backends generate code from agrees with the NumPy reference."""
    opdef = REGISTRY[op_name]
    cases = [c for c in CASES if _ops_of(c) and op_name in _ops_of(c)]
    assert cases, f"{op_name} has a formula but no case"
    checked = 0
    for case in cases:
        arrays = _inputs(case, "float64")
        graph, phs, outs = _build(case, arrays)
        for node in graph.nodes:
            if node.op != op_name:
                continue
            ins = gc.Session(graph, target="reference").run(list(node.inputs), dict(zip(phs, arrays)))
            expected = opdef.ref(*ins, **node.attrs)
            ins = np.broadcast_arrays(*ins)
            attrs = {k: v for k, v in node.attrs.items()}
            expr = opdef.formula.format(*[f"_a[{i}][_j]" for i in range(len(ins))], **attrs)
            env = {"math": math, "np": np}
            got = np.array([eval(expr, env, {"_a": ins, "_j": j})  # noqa: S307 - our own formula
                            for j in np.ndindex(ins[0].shape)]).reshape(ins[0].shape)
            np.testing.assert_allclose(got.astype(expected.dtype), expected, rtol=1e-12,
                                       err_msg=f"formula of {op_name} in case {case.name}")
            checked += 1
    assert checked


def _ops_of(case: Case) -> set:
    graph, _, _ = _build(case, _inputs(case, case.dtypes[0]))
    return {n.op for n in graph.nodes}


@pytest.mark.parametrize("target", [t for t in gc.available_targets() if t != "reference"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_target_agrees_with_reference(case: Case, target: str) -> None:
    arrays = _inputs(case, "float32")
    graph, phs, outs = _build(case, arrays)
    if target == "onnx":  # ops ONNX cannot express are listed, with reasons, in onnx_export
        from graphc.backends.onnx_export import unexportable

        if unexportable(graph):
            pytest.skip(f"not expressible in ONNX: {unexportable(graph)}")
    expected = _run(graph, phs, outs, arrays)
    got = _run(graph, phs, outs, arrays, target=target)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


# On cpu the backward graphs compile ~3.5 min of Numba kernels in a fresh CI (an empty
# kernel cache): that variant is in the slow set; the cuda one (the simulator compiles
# nothing) runs by default.
@pytest.mark.parametrize("target", [pytest.param(t, marks=pytest.mark.slow) if t == "cpu" else t
                                    for t in gc.available_targets()
                                    if t not in ("reference", "onnx")])
@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.name for c in GRAD_CASES])
def test_target_gradients_agree_with_reference(case: Case, target: str) -> None:
    """The backward graph (the gradient ops: conv and pool backprops, slice and pad
    gradients, scatters, the reverse scans) on each compiled target. (onnx exports forward
    graphs for inference; its gradient ops are covered by test_onnx_export.py.)"""
    for e, g in zip(*gradients_on(case, target)):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(e).max(
            initial=0.0)))


def gradients_on(case: Case, target: str) -> tuple[list, list]:
    """The gradients of a weighted sum of the case's outputs in its float inputs (float32),
    on the reference and on ``target``; skips when nothing is differentiable."""
    arrays = _inputs(case, "float32")
    graph, phs, outs = _build(case, arrays)
    idx = _grad_inputs(case, arrays)
    with graph.as_default():
        loss = _weighted_sum(outs, np.random.default_rng(0))
        if loss is None or not idx:
            pytest.skip("no float output or input to differentiate")
        grads = [g for g in gc.gradients(loss, [phs[i] for i in idx]) if g is not None]
    if not grads:
        pytest.skip("no gradient reaches an input")
    return _run(graph, phs, grads, arrays), _run(graph, phs, grads, arrays, target=target)
