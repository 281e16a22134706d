"""The cuda target's layout copies, gathers/scatters and index reductions (copy_kernels.py,
pad_kernels.py, index_kernels.py) against the reference target: forward values, gradients
through ``gc.gradients``, the awkward cases (reversed and empty slices, new and shrunk axes,
repeated indices, ties and NaN) and the reference's errors for bad run-time input. Every
checked node must have run as a device kernel, not as the host fallback.

Tiny shapes: in CI this runs in Numba's CUDA simulator (tests/conftest.py), where a CUDA
thread is a Python thread. The tests marked ``cuda`` at the end repeat the checks on bigger
shapes on a real GPU (``pytest -m cuda``).
"""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.bundle_run import gpu_available

pytest.importorskip("graphc.backends.numba_cuda")
from graphc.backends.numba_cuda.device import simulated  # noqa: E402

needs_sim = pytest.mark.skipif(not simulated(), reason="the simulator run (tests/conftest.py)")
needs_gpu = pytest.mark.skipif(simulated() or not gpu_available(),
                               reason="needs a real CUDA GPU (run: pytest -m cuda)")
RNG = np.random.default_rng(11)
OURS = {"concat", "split", "split_like", "strided_slice", "strided_slice_grad", "pad",
        "pad_grad", "tile", "tile_grad", "gather", "scatter_add_like", "argmax", "argmin"}


def _graph(build, arrays, shapes=None, grad=False):
    """(graph, placeholders, fetches): ``build``'s outputs and, with ``grad``, the gradients
    of a weighted sum of its float outputs in its float inputs (weights tell positions
    apart)."""
    g = gc.Graph()
    with g.as_default():
        phs = [gc.placeholder(a.dtype, a.shape if shapes is None else shapes[i], name=f"in{i}")
               for i, a in enumerate(arrays)]
        out = build(*phs)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        if grad:
            rng = np.random.default_rng(0)
            loss = sum(gc.reduce_sum(t * rng.uniform(0.5, 2.0, a.shape).astype(a.dtype))
                       for t, a in zip(outs, gc.Session(g, target="reference").run(
                           outs, dict(zip(phs, arrays)))) if t.dtype.is_floating)
            xs = [p for p, a in zip(phs, arrays) if a.dtype.kind == "f"]
            outs = outs + [d for d in gc.gradients(loss, xs) if d is not None]
    return g, phs, outs


def _agree(build, *arrays, grad=False, shapes=None, exact=True, expect=()):
    """Run on the reference and on cuda; compare; check that every node of the ops tested
    here ran as a kernel, and that the ops in ``expect`` were among them. Returns the cuda
    values."""
    g, phs, outs = _graph(build, arrays, shapes, grad)
    feeds = dict(zip(phs, arrays))
    want = gc.Session(g, target="reference").run(outs, feeds)
    sess = gc.Session(g, target="cuda")
    got = sess.run(outs, feeds)
    for w, v in zip(want, got):
        assert v.dtype == w.dtype and v.shape == w.shape
        if exact:
            np.testing.assert_array_equal(v, w)
        else:
            np.testing.assert_allclose(v, w, rtol=1e-6, atol=1e-6)
    exe = next(e for _, e in sess._compiled.values())
    ops = {s.node.name: s.node.op for s in exe.plan.steps}
    ours = {name: exe.ran.get(name) for name, op in ops.items() if op in OURS}
    assert all(how == "kernel" for how in ours.values()), ours
    assert set(expect) <= {ops[name] for name in ours}, (expect, ours)
    return got


def _f32(*shape):
    return RNG.normal(size=shape).astype(np.float32)


# -- strided_slice and its gradient ------------------------------------------------------------

@needs_sim
@pytest.mark.parametrize("index", [
    (slice(None, None, -1), slice(3, 0, -2)),  # reversed, stepped
    (None, Ellipsis, slice(None, None, -2), None),  # new axes around an ellipsis
    (1, -1),  # every axis shrunk: a 0-d result
    (slice(-2, None), 1),  # a shrunk last axis
    (slice(2, 1), slice(None)),  # an empty slice
], ids=["reversed", "newaxis_ellipsis", "all_ints", "shrink", "empty"])
def test_strided_slice_and_its_gradient(index) -> None:
    _agree(lambda x: x[index], _f32(3, 5), grad=True,
           expect={"strided_slice", "strided_slice_grad"})


@needs_sim
def test_strided_slice_copies_integers_and_checks_bounds_at_run_time() -> None:
    _agree(lambda x: x[::-2, 1:], np.arange(12).reshape(4, 3), expect={"strided_slice"})
    x = np.zeros((3, 4), np.float32)
    for target in ("reference", "cuda"):  # x[5] on an axis known only at run time
        g, phs, outs = _graph(lambda t: t[5], [x], shapes=[(None, 4)])
        with pytest.raises(gc.ShapeError, match="index 5 is out of bounds"):
            gc.Session(g, target=target).run(outs, {phs[0]: x})


# -- concat, split, split_like ------------------------------------------------------------------

@needs_sim
@pytest.mark.parametrize("axis", [0, -1])
def test_concat_along_the_first_and_last_axis_and_its_gradient(axis) -> None:
    shapes = [(2, 3), (1, 3), (0, 3)] if axis == 0 else [(3, 2), (3, 1), (3, 0)]
    _agree(lambda *xs: gc.concat(list(xs), axis), *(_f32(*s) for s in shapes), grad=True,
           expect={"concat", "split_like"})


@needs_sim
def test_concat_of_integers_and_a_run_time_shape_mismatch() -> None:
    a, b = np.arange(6).reshape(2, 3), np.arange(4).reshape(2, 2)
    _agree(lambda x, y: gc.concat([x, y], 1), a, b, expect={"concat"})
    for target in ("reference", "cuda"):  # NumPy's error from the reference on both
        g, phs, outs = _graph(lambda x, y: gc.concat([x, y], 0), [a, b], shapes=[(None, None)] * 2)
        with pytest.raises(ValueError, match="must match exactly"):
            gc.Session(g, target=target).run(outs, dict(zip(phs, [a, b])))


@needs_sim
@pytest.mark.parametrize("axis,sizes", [(0, 3), (1, [1, -1, 2]), (-1, [0, 4, 2])],
                         ids=["views_equal", "copies_sizes", "empty_piece"])
def test_split_and_its_gradient(axis, sizes) -> None:
    x = _f32(6, 6)
    _agree(lambda t: [p * 1.0 for p in gc.split(t, sizes, axis=axis)], x, grad=True,
           expect={"split", "concat"})
    _agree(lambda t: gc.split(t, sizes, axis=axis), x, expect={"split"})  # fetched as is


@needs_sim
def test_split_views_follow_new_feeds_and_sizes_are_checked_at_run_time() -> None:
    g, phs, outs = _graph(lambda t: gc.unstack(t, 3) + [gc.split(t, [1, 2], 0)[1]],
                          [_f32(3, 2)])
    sess = gc.Session(g, target="cuda")
    for _ in range(2):  # the views of a reused input buffer see this run's values
        x = _f32(3, 2)
        for got, want in zip(sess.run(outs, {phs[0]: x}), [*x, x[1:]]):
            np.testing.assert_array_equal(got, want)
    for target in ("reference", "cuda"):
        g, phs, outs = _graph(lambda t: gc.split(t, [1, 2], 0), [_f32(4, 2)],
                              shapes=[(None, 2)])
        with pytest.raises(gc.ShapeError, match="do not add up"):
            gc.Session(g, target=target).run(outs, {phs[0]: _f32(4, 2)})


# -- pad and pad_grad ------------------------------------------------------------------------

@needs_sim
@pytest.mark.parametrize("mode,paddings", [
    ("CONSTANT", [[1, 0], [2, 3]]), ("REFLECT", [[1, 2], [2, 1]]),
    ("SYMMETRIC", [[2, 3], [0, 1]]), ("SYMMETRIC", [[1, 1], [0, 0]])])
def test_pad_and_its_gradient_bit_for_bit(mode, paddings) -> None:
    x = _f32(1, 4) if paddings == [[1, 1], [0, 0]] else _f32(3, 4)  # size 1: 3 cells fold
    _agree(lambda t: gc.pad(t, paddings, mode, constant_values=0.5), x, grad=True,
           expect={"pad"} | ({"pad_grad"} if mode != "CONSTANT" else {"strided_slice"}))


@needs_sim
def test_pad_of_integers_empty_inputs_and_a_too_wide_mirror() -> None:
    _agree(lambda t: gc.pad(t, [[1, 1], [0, 2]], constant_values=7), np.arange(6).reshape(2, 3),
           expect={"pad"})
    _agree(lambda t: gc.pad(t, [[1, 1], [0, 0]], constant_values=-1.5),
           np.zeros((0, 2), np.float32), expect={"pad"})
    x = _f32(2, 3)
    for target in ("reference", "cuda"):  # REFLECT by 2 on an axis of run-time size 2
        g, phs, outs = _graph(lambda t: gc.pad(t, [[2, 0], [0, 0]], "REFLECT"), [x],
                              shapes=[(None, 3)])
        with pytest.raises(gc.ShapeError, match="must be at most 1"):
            gc.Session(g, target=target).run(outs, {phs[0]: x})


# -- tile and tile_grad --------------------------------------------------------------------

@needs_sim
@pytest.mark.parametrize("shape,multiples", [((2, 3, 2), (2, 1, 3)), ((2, 2), (1, 1)),
                                             ((3,), (0,))])
def test_tile_and_its_gradient(shape, multiples) -> None:
    expect = {"tile"} | ({"tile_grad"} if any(m > 1 for m in multiples) else set())
    _agree(lambda t: gc.tile(t, multiples), RNG.normal(size=shape), grad=True, exact=False,
           expect=expect)
    _agree(lambda t: gc.tile(t, multiples), np.arange(np.prod(shape)).reshape(shape),
           expect={"tile"})


# -- gather and scatter_add_like -------------------------------------------------------------

@needs_sim
@pytest.mark.parametrize("axis,indices", [
    (0, np.array([[3, 0], [3, 3]])), (1, np.array([1, 1, 0], np.int32)), (-1, np.array(2)),
    (0, np.zeros((0,), np.int64))], ids=["axis0_repeats", "axis1_int32", "scalar_index", "empty"])
def test_gather_and_its_scatter_gradient_bit_for_bit(axis, indices) -> None:
    _agree(lambda p, i: gc.gather(p, i, axis=axis), _f32(4, 3, 3), indices, grad=True,
           expect={"gather"} | ({"scatter_add_like"} if indices.size else set()))


@needs_sim
def test_embedding_gradient_accumulates_many_repeats_in_index_order() -> None:
    ids = np.array([[0, 4, 4, 1], [4, 0, 4, 4]])
    table = RNG.normal(size=(6, 3)).astype(np.float32) * 1e3  # rounding shows the order
    _agree(lambda p, i: gc.nn.embedding_lookup(p, i), table, ids, grad=True,
           expect={"gather", "scatter_add_like"})


@needs_sim
@pytest.mark.parametrize("bad", [3, -1])
def test_a_bad_index_raises_the_reference_error_and_the_next_run_works(bad) -> None:
    p = _f32(3, 2)
    for target in ("reference", "cuda"):
        g, phs, outs = _graph(lambda t, i: gc.gradients(gc.reduce_sum(gc.gather(t, i)), [t])
                              + [gc.gather(t, i)], [p, np.array([0, 1])])
        sess = gc.Session(g, target=target)
        with pytest.raises(IndexError, match=rf"gather: index {bad} is out of range \[0, 3\)"):
            sess.run(outs, {phs[0]: p, phs[1]: np.array([0, bad])})
        got = sess.run(outs, {phs[0]: p, phs[1]: np.array([2, 2])})
        np.testing.assert_array_equal(got[1], p[[2, 2]])
        np.testing.assert_array_equal(got[0], [[0, 0], [0, 0], [2, 2]])
        if target == "cuda":  # the flag was cleared: the kernels ran again
            exe = next(e for _, e in sess._compiled.values())
            assert {s.node.op: exe.ran[s.node.name] for s in exe.plan.steps
                    if s.node.op in OURS} == {"gather": "kernel", "scatter_add_like": "kernel"}


# -- argmax and argmin ------------------------------------------------------------------------

@needs_sim
def test_argmax_argmin_ties_nan_and_long_axes() -> None:
    x = np.array([[1.0, 3.0, 3.0, -2.0], [np.nan, 1.0, np.nan, 5.0], [-np.inf] * 4,
                  [2.0, 0.0, 0.0, np.nan]], np.float32)
    _agree(lambda t: [gc.argmax(t, 1), gc.argmin(t, 1), gc.argmax(t, 0),
                      gc.argmin(t, 0, output_type=gc.int32)], x, expect={"argmax", "argmin"})
    # 37 elements: more than a simulated block's 8 threads, ties spread over the partials
    # (a middle axis: strided reads; few outputs, as the simulator's barriers are slow)
    y = np.round(RNG.normal(size=(2, 37, 2)) * 2).astype(np.int64)
    _agree(lambda t: [gc.argmax(t, 1), gc.argmin(t, 1)], y, expect={"argmax", "argmin"})


# -- on a real GPU: bigger shapes (pytest -m cuda) ---------------------------------------------

@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("index", [(slice(None, None, -3), slice(1, None)),
                                   (Ellipsis, slice(400, 7, -2), None, 5)])
def test_big_strided_slices_on_the_gpu(index) -> None:
    _agree(lambda x: x[index], RNG.normal(size=(300, 500, 7)).astype(np.float32), grad=True,
           exact=False, expect={"strided_slice", "strided_slice_grad"})


@pytest.mark.cuda
@needs_gpu
def test_big_concat_split_pad_tile_on_the_gpu() -> None:
    a, b = _f32(500, 300), _f32(500, 129)
    _agree(lambda x, y: [gc.concat([x, y], 1), gc.concat([x, x], 0),
                         *gc.split(x, [100, -1], axis=1),
                         gc.pad(y, [[3, 4], [5, 6]], "SYMMETRIC"), gc.tile(y, [2, 3])],
           a, b, grad=True, exact=False, expect={"concat", "split", "pad", "pad_grad", "tile"})


@pytest.mark.cuda
@needs_gpu
def test_big_gather_scatter_and_argmax_on_the_gpu() -> None:
    table = _f32(5000, 64)
    ids = RNG.integers(0, 50, size=(64, 33))  # many repeats
    _agree(lambda p, i: gc.nn.embedding_lookup(p, i), table, ids, grad=True,
           expect={"gather", "scatter_add_like"})
    x = np.round(RNG.normal(size=(300, 1000)) * 3).astype(np.float32)
    x[7, 500:] = np.nan
    _agree(lambda t: [gc.argmax(t, 1), gc.argmin(t, 0)], x, expect={"argmax", "argmin"})

