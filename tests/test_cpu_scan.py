"""The cpu target's compiled scan loops (backends/numba_cpu/scan_loop.py): the path is
taken for RNN bodies and their gradients, matches the reference, and falls back to the
Python loop (the reference semantics, errors included) whenever it cannot run."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc as gc
from graphc.backends.numba_cpu import loop_emit, scan_loop
from graphc.ops import rnn
from graphc.ops.control import scan

RNG = np.random.default_rng(3)


def _rand(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape).astype(np.float32)


def _scan_bodies(graph: gc.Graph) -> list:
    return [n.attrs["body"] for n in graph.nodes if n.op == "scan"]


def _all_compiled(graph: gc.Graph) -> bool:
    """Every scan body the cpu target compiled runs as a compiled loop (a forward scan
    merged into the scan that saves its residuals is not compiled at all)."""
    bodies = [b for b in _scan_bodies(graph) if "cpu" in b.cache]
    return bool(bodies) and all(b.cache["cpu"].loop is not None for b in bodies)


def _tanh_rnn() -> tuple:
    """(graph, xs, R, out): ``h = tanh(x + h @ R)`` over xs (T, 2, 3) from zeros."""
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (None, 2, 3))
        R = gc.placeholder(gc.float32, (3, 3))
        out = scan(lambda h, x: gc.tanh(x + h @ R), xs, gc.zeros((2, 3)))
    return g, xs, R, out


def _compare(graph: gc.Graph, fetches: list, feeds: dict) -> list:
    """Run on both targets, assert they agree, and return the cpu results."""
    expected = gc.Session(graph, target="reference").run(fetches, feeds)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback warning expected
        got = gc.Session(graph, target="cpu").run(fetches, feeds)
    for e, g in zip(expected, got):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=2e-5, atol=2e-6)
    return got


def _rnn_graph(layer: str) -> tuple:
    g = gc.Graph()
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[layer]
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, None, 3), name="x")
        W = gc.Variable(_rand(3, gates * 4) * 0.5, name="W")
        R = gc.Variable(_rand(4, gates * 4) * 0.5, name="R")
        b = gc.Variable(_rand(gates * 4), name="b")
        if layer == "gru":
            out, h = rnn.gru(x, W, R, b, gc.Variable(_rand(12), name="rb"))
        else:
            out, h = getattr(rnn, layer)(x, W, R, b)
            h = h[0] if layer == "lstm" else h
        loss = gc.reduce_sum(out * out) + gc.reduce_sum(gc.tanh(h))
        grads = gc.gradients(loss, [x, W, R, b])
    return g, x, [out, h, *grads]


@pytest.mark.parametrize("layer", ["lstm", "gru", "simple_rnn"])
def test_rnn_bodies_and_their_gradients_run_as_compiled_loops(layer: str) -> None:
    g, x, fetches = _rnn_graph(layer)
    before, skipped = scan_loop.COUNTERS["runs"], loop_emit.COUNTERS["shape_only"]
    for steps, batch in [(5, 2), (1, 3), (4, 2)]:  # new sizes reuse the compiled loop
        _compare(g, fetches, {x: _rand(steps, batch, 3)})
    # the gradient loop compiled no code for the donor of h @ R's shape (batch unknown)
    assert loop_emit.COUNTERS["shape_only"] > skipped
    bodies = _scan_bodies(g)
    if layer == "simple_rnn":  # its gradient reads h (stacked anyway) and a shape donor
        running = bodies     # for h @ R (not a residual): no scan that saves more
        assert len(bodies) == 2
    else:
        forward, saving, backward = bodies  # the saving scan extends the forward one
        assert saving.graph is forward.graph and len(saving.outputs) > len(forward.outputs)
        # merge_scans runs the forward scan as the saving one
        assert "cpu" not in forward.cache
        running = [saving, backward]
    # two loops per run, both compiled
    assert all(b.cache["cpu"].loop is not None for b in running)
    assert scan_loop.COUNTERS["runs"] - before == 2 * 3


def test_zero_steps_and_a_zero_batch() -> None:
    g, x, fetches = _rnn_graph("lstm")
    _compare(g, fetches, {x: np.zeros((3, 0, 3), np.float32)})
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (None, 2))
        w = gc.placeholder(gc.float32, (2,))
        out = scan(lambda a, x: gc.tanh(a * w + x), xs, initializer=gc.ones((2,)))
        grads = gc.gradients(gc.reduce_sum(out), [xs, w])
    for steps in (0, 2):
        _compare(g, [out, *grads], {xs: _rand(steps, 2), w: _rand(2)})


def test_second_order_gradient_through_a_compiled_loop() -> None:
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (None, 3))
        w = gc.placeholder(gc.float32, (3,))
        acc = scan(lambda a, x: gc.tanh(a * w + x), xs, gc.zeros((3,)))
        (gw,) = gc.gradients(gc.reduce_sum(acc * acc), [w])
        (ggw,) = gc.gradients(gc.reduce_sum(gw * gw), [w])
    _compare(g, [acc, gw, ggw], {xs: _rand(4, 3), w: _rand(3)})
    assert _all_compiled(g)


def test_reverse_scans_permuted_carries_and_scalars() -> None:
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (None,))
        ms = gc.placeholder(gc.float32, (None, 2, 2))
        # carries that swap places, a scalar carry, a new carry that is the input slice
        out = scan(lambda c, e: (c[1], c[0] + e[0], e[1] @ c[3], e[1], c[4] * 0.5 + e[0]),
                   (xs, ms), initializer=(gc.zeros(()), gc.ones(()), gc.zeros((2, 2)),
                                          gc.constant(np.eye(2, dtype=np.float32)), gc.zeros(())),
                   reverse=True)
        grads = gc.gradients(gc.reduce_sum(out[2]) + gc.reduce_sum(out[1]), [xs, ms])
    _compare(g, [*out, *grads], {xs: _rand(4), ms: _rand(4, 2, 2)})
    assert _all_compiled(g)


def test_slices_in_a_body_run_in_the_compiled_loop() -> None:
    """strided_slice (ints, steps, newaxis, ellipsis) as views in the generated code."""
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (None, None, 5))
        out = scan(lambda a, x: gc.tanh(a + x[:, 1:4:2] * x[0, :2] + x[..., None, 4]),
                   xs, gc.zeros((3, 2)))
    before = scan_loop.COUNTERS["runs"]
    _compare(g, [out], {xs: _rand(4, 3, 5)})
    (body,) = _scan_bodies(g)
    assert body.cache["cpu"].loop is not None and scan_loop.COUNTERS["runs"] == before + 1
    # a batch of 0 fails the int index's bounds check: the reference raises its error
    with pytest.raises(gc.GraphcError):
        gc.Session(g, target="cpu").run(out, {xs: np.zeros((4, 0, 5), np.float32)})


def test_an_unsupported_op_keeps_the_python_loop() -> None:
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (None, 3))
        out = scan(lambda a, x: a + gc.reduce_prod(x) * x, xs, gc.zeros((3,)))
    _compare(g, [out], {xs: _rand(4, 3)})
    (body,) = _scan_bodies(g)
    assert body.cache["cpu"].loop is None


def test_run_time_shapes_the_loop_does_not_handle_get_the_reference_errors() -> None:
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (None, None))
        ys = gc.placeholder(gc.float32, (None, None))
        a0 = gc.placeholder(gc.float32, (None,))
        grow = scan(lambda a, x: a + x, xs, a0)
        pair = scan(lambda a, e: a + e[0] * e[1], (xs, ys), a0)
    sess = gc.Session(g, target="cpu")
    with pytest.raises(gc.ShapeError, match="changed the shape of carry 0 from"):
        sess.run(grow, {xs: np.ones((2, 3), np.float32), a0: np.ones(1, np.float32)})
    with pytest.raises(gc.ShapeError, match="differ in length at run time"):
        sess.run(pair, {xs: np.ones((2, 2), np.float32), ys: np.ones((3, 2), np.float32),
                        a0: np.ones(2, np.float32)})
    # a broadcast the compiled loop does not assume: the Python loop computes it
    _compare(g, [pair], {xs: np.ones((2, 1), np.float32), ys: _rand(2, 3), a0: _rand(3)})


def test_results_are_fresh_arrays_at_every_run() -> None:
    g, x, fetches = _rnn_graph("lstm")
    sess = gc.Session(g, target="cpu")
    feed = {x: _rand(3, 2, 3)}
    first = sess.run(fetches, feed)
    kept = [a.copy() for a in first]
    sess.run(fetches, {x: _rand(3, 2, 3)})
    for a, b in zip(first, kept):
        np.testing.assert_array_equal(a, b)


def test_a_loop_numba_cannot_run_falls_back_with_a_warning(monkeypatch) -> None:
    from numba.core.errors import TypingError

    g, x, fetches = _rnn_graph("simple_rnn")
    sess = gc.Session(g, target="cpu")
    sess.run(fetches, {x: _rand(3, 2, 3)})  # compiles the bodies and their loops
    for body in _scan_bodies(g):
        if "cpu" not in body.cache:
            continue  # merged into the scan that saves its residuals (merge_scans)
        module = body.cache["cpu"].loop.module

        class Broken:
            shapes = staticmethod(module.shapes)

            @staticmethod
            def loop(*args):
                raise TypingError("Failed in nopython mode pipeline")
        monkeypatch.setattr(body.cache["cpu"].loop, "module", Broken)
    feed = {x: _rand(3, 2, 3)}
    expected = gc.Session(g, target="reference").run(fetches, feed)
    with pytest.warns(RuntimeWarning, match="compiled scan loop failed"):
        got = sess.run(fetches, feed)
    for e, r in zip(expected, got):
        np.testing.assert_allclose(r, e, rtol=2e-5, atol=2e-6)


# -- GEMM forms (loop_gemm.py, loop_blas.py) and merged elementwise loops (loop_emit.py) --

def _gemm_counts() -> dict:
    from graphc.backends.numba_cpu import loop_emit, loop_gemm

    return {**loop_gemm.COUNTERS, **loop_emit.COUNTERS}


def _delta(before: dict) -> dict:
    return {k: v - before[k] for k, v in _gemm_counts().items()}


@pytest.mark.parametrize("reverse", [False, True])
def test_weight_gradients_accumulate_after_the_loop_and_input_gemms_are_batched(
        reverse: bool) -> None:
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (None, None, 4))
        R = gc.placeholder(gc.float32, (4, 4))
        W = gc.placeholder(gc.float32, (4, 4))
        # x_t @ W^T: a batched GEMM with a transposed const; h @ R: the recurrence
        out = scan(lambda h, x: gc.tanh(gc.matmul(x, W, transpose_b=True) + h @ R), xs,
                   gc.zeros_like(xs[0]), reverse=reverse)
        grads = gc.gradients(gc.reduce_sum(out * out), [xs, R, W])
    before = _gemm_counts()
    _compare(g, [out, *grads], {xs: _rand(5, 2, 4), R: _rand(4, 4) * 0.5,
                                W: _rand(4, 4) * 0.5})
    moved = _delta(before)
    # forward: x@W^T batched; gradient: dR and dW accumulated after the loop (it reads the
    # saved tanh instead of recomputing x@W^T and h@R)
    assert moved["hoisted"] >= 1 and moved["accumulated"] >= 2
    assert _all_compiled(g)
    _compare(g, [out, *grads], {xs: np.zeros((3, 0, 4), np.float32), R: _rand(4, 4),
                                W: _rand(4, 4)})  # a zero batch: the GEMMs add nothing


def test_lstm_gradient_elementwise_maps_share_loops() -> None:
    g, x, fetches = _rnn_graph("lstm")
    before = _gemm_counts()
    _compare(g, fetches, {x: _rand(4, 3, 3)})
    moved = _delta(before)
    # (no GEMM left to batch: the gradient reads the saved gates instead of recomputing
    # h @ R from the carry history)
    assert moved["merged"] >= 5 and moved["accumulated"] >= 1


def test_second_order_through_accumulated_weight_gradients() -> None:
    g, xs, R, out = _tanh_rnn()
    with g.as_default():
        (gR,) = gc.gradients(gc.reduce_sum(out * out), [R])
        (ggR,) = gc.gradients(gc.reduce_sum(gR * gR), [R])
    before = _gemm_counts()
    _compare(g, [out, gR, ggR], {xs: _rand(4, 2, 3), R: _rand(3, 3) * 0.5})
    assert _delta(before)["accumulated"] >= 1
    assert _all_compiled(g)


def test_gemm_accumulators_the_pattern_does_not_cover_run_per_step() -> None:
    from graphc.ops.control import Body, scan_op

    body_graph = gc.Graph()
    with body_graph.as_default():
        read, const = gc.placeholder(gc.float32, (3, 3)), gc.placeholder(gc.float32, (3, 3))
        x, k = gc.placeholder(gc.float32, (2, 3)), gc.placeholder(gc.float32, (2, 3))
        news = [read + gc.matmul(x, x, transpose_a=True),   # its carry is also read below
                const + gc.matmul(k, x, transpose_a=True)]  # an invariant operand
        body = Body(body_graph, [read, const, x, k], [*news, read * 2.0], 2, 1)
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (None, 2, 3))
        K = gc.placeholder(gc.float32, (2, 3))
        finals, ys = scan_op(body, [gc.zeros((3, 3)), gc.ones((3, 3))], [xs], [K])
    before = _gemm_counts()
    _compare(g, [*finals, *ys], {xs: _rand(4, 2, 3), K: _rand(2, 3)})
    moved = _delta(before)
    assert moved["accumulated"] == 0 and moved["hoisted"] == 0
    assert body.cache["cpu"].loop is not None


@pytest.mark.filterwarnings("ignore::numba.core.errors.NumbaPerformanceWarning")  # strided
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loop_gemm_matches_numpy(dtype) -> None:
    import numba
    from graphc.backends.numba_cpu.loop_blas import gemm

    @numba.njit
    def call(a, b, out, ta, tb):
        gemm(a, b, out, ta, tb)

    for ta in (False, True):
        for tb in (False, True):
            # one row or one column: the GEMV path; (1, 3, 1): a dot product
            for m, k, n in [(4, 3, 5), (2, 0, 3), (0, 3, 2), (1, 3, 5), (4, 3, 1), (1, 3, 1)]:
                a = RNG.normal(size=(k, m) if ta else (m, k)).astype(dtype)
                b = RNG.normal(size=(n, k) if tb else (k, n)).astype(dtype)
                out = np.full((m, n), np.nan, dtype)
                call(a, b, out, ta, tb)
                want = (a.T if ta else a) @ (b.T if tb else b)
                np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    # operands that are not C-ordered are copied, results go through a temporary
    a = RNG.normal(size=(4, 6)).astype(dtype)[:, ::2]  # strided
    b = RNG.normal(size=(3, 2)).astype(dtype)
    for out in (np.empty((4, 2), dtype), np.empty((4, 4), dtype)[:, ::2],  # strided
                np.empty((2, 4), dtype).T):  # F-ordered
        call(a, b, out, False, False)
        np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-6)
    row, out = RNG.normal(size=(1, 6)).astype(dtype)[:, ::2], np.empty((2, 1), dtype).T
    call(row, b, out, False, False)  # a GEMV from strided and F-ordered arrays
    np.testing.assert_allclose(out, row @ b, rtol=1e-5, atol=1e-6)


def test_outputs_nobody_holds_are_reused_across_runs() -> None:
    g, xs, R, out = _tanh_rnn()
    with g.as_default():
        loss = gc.reduce_sum(out * out)
        (gR,) = gc.gradients(loss, [R])
    sess = gc.Session(g, target="cpu")
    feeds = [{xs: _rand(4, 2, 3), R: _rand(3, 3) * 0.5} for _ in range(3)]
    ref = gc.Session(g, target="reference")
    sess.run([loss, gR], feeds[0])
    loops = [b.cache["cpu"].loop for b in _scan_bodies(g) if "cpu" in b.cache]
    before = [{id(a) for a in lp._last if a is not None} for lp in loops]
    for feed in feeds[1:]:  # the scans' outputs are internal: their arrays are reused
        for got, want in zip(sess.run([loss, gR], feed), ref.run([loss, gR], feed)):
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    after = [{id(a) for a in lp._last if a is not None} for lp in loops]
    assert all(b & a for b, a in zip(before, after))
    kept = sess.run(out, feeds[0])  # handed to the user: never overwritten
    copy = kept.copy()
    sess.run([out, loss, gR], feeds[1])
    np.testing.assert_array_equal(kept, copy)


def test_stacked_outputs_are_written_in_place_even_when_shared_or_carried() -> None:
    g = gc.Graph()
    with g.as_default():
        xs = gc.placeholder(gc.float32, (None, 2, 3))
        R = gc.placeholder(gc.float32, (3, 3))

        def body(c, x):
            h = c[0]
            z = gc.sigmoid(x + h @ R)
            new = gc.tanh(z) * h
            # the new carry (swapped with the carry's buffer), a value stacked twice, the
            # old carry and an input slice: each stack holds its own step's value
            return new, z, z, h, x
        zero = gc.zeros((2, 3))
        out = scan(body, xs, (gc.ones((2, 3)), zero, zero, zero, zero))
        grads = gc.gradients(gc.reduce_sum(out[0] * out[1]) + gc.reduce_sum(out[3]), [xs, R])
    _compare(g, [*out, *grads], {xs: _rand(5, 2, 3), R: _rand(3, 3) * 0.5})
    sources = [b.cache["cpu"].loop.source.source for b in _scan_bodies(g)
               if "cpu" in b.cache and b.cache["cpu"].loop is not None]
    assert any(" = ys0[t]\n" in s for s in sources)
