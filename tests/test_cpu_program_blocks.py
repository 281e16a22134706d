"""Row-wise inference plans run as row blocks on several threads (sample_rows.py,
block_threads.py, program_runtime.py): which plans are row-wise, the blocks' results
against the unsplit program and the reference, odd batch sizes, run-time errors, two
callers at once, and the BLAS thread count left as it was."""

from __future__ import annotations

import threading

import numba
import numpy as np
import pytest
from graphc.backends.numba_cpu import block_threads, loop_blas, program_runtime
from graphc.backends.numba_cpu.sample_rows import sample_rows

import graphc as gc
from graphc.ops.conv import conv2d
from graphc.ops.pool import max_pool2d

RNG = np.random.default_rng(31)


def _rand(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape).astype(np.float32)


def _cnn(head=None, batch=None) -> dict:
    """conv -> relu -> max pool -> flatten -> dense; ``head(g, x, logits, labels)`` adds
    what a test fetches (default: the logits)."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (batch, 2, 8, 8), name="x")
        y = gc.placeholder(gc.int64, (batch,), name="y")
        w = gc.Variable(_rand(4, 2, 3, 3) * 0.3, name="w")
        h = max_pool2d(gc.nn.relu(conv2d(x, w, padding=1)), 2)
        d = gc.Variable(_rand(64, 5) * 0.2, name="d")
        logits = gc.reshape(h, (-1, 64)) @ d
        out = head(x, h, logits, y) if head else logits
    return {"graph": g, "x": x, "y": y, "out": out}


def _plan(m: dict, feeds: list) -> object:
    sess = gc.Session(m["graph"], target="cpu")
    run = sess.make_callable(m["out"], feeds)
    return run._entry[1].plan


def _rows(head=None, with_labels: bool = False, batch=None):
    m = _cnn(head, batch)
    return sample_rows(_plan(m, [m["x"], m["y"]] if with_labels else [m["x"]]))


def test_a_cnn_classifier_is_row_wise_and_counts_its_window_work() -> None:
    rows = _rows()
    # conv: 4 channels x 8x8 cells x 2x3x3 taps; pool: 4 x 4x4 cells x 2x2 window
    assert rows is not None and rows.feeds == (0,)
    assert rows.work == 4 * 64 * 18 + 4 * 16 * 4
    per_example = _rows(lambda x, h, lg, y: gc.nn.sparse_softmax_cross_entropy_with_logits(
        labels=y, logits=lg), with_labels=True)
    assert per_example is not None and per_example.feeds == (0, 1)
    for head in (lambda x, h, lg, y: gc.argmax(lg, 1),
                 lambda x, h, lg, y: gc.nn.softmax(lg),
                 lambda x, h, lg, y: gc.concat([lg, lg * 2.0], 1),
                 lambda x, h, lg, y: lg[:, 1:3],
                 lambda x, h, lg, y: gc.reduce_mean(h, [2, 3]) + gc.reduce_max(lg, 1,
                                                                               keepdims=True)):
        assert _rows(head) is not None


@pytest.mark.parametrize("head", [
    lambda x, h, lg, y: gc.reduce_mean(lg),                       # a mean over the batch
    lambda x, h, lg, y: lg - gc.reduce_mean(lg, 0),               # batch statistics
    lambda x, h, lg, y: gc.reshape(h, (2, -1)),                   # rows regrouped
    lambda x, h, lg, y: lg[1:],                                   # rows shifted
    lambda x, h, lg, y: gc.concat([lg, lg], 0),                   # rows appended
    lambda x, h, lg, y: gc.matmul(lg, lg, transpose_a=True),      # rows contracted
    lambda x, h, lg, y: gc.transpose(lg),                         # batch axis moved
], ids=["mean", "batch_stats", "regroup", "shift", "concat0", "contract", "transpose"])
def test_plans_mixing_rows_are_not_row_wise(head) -> None:
    assert _rows(head) is None


def test_a_fixed_batch_or_a_batch_long_weight_is_not_row_wise() -> None:
    assert _rows(batch=6) is None  # no feed of unknown batch size to cut
    # a weight as long as the batch, added row by row
    assert _rows(lambda x, h, lg, y: lg + gc.Variable(_rand(6, 5), name="v"), batch=6) is None


def test_a_plan_without_window_ops_has_nothing_to_share_out() -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 6), name="x")
        out = gc.nn.relu(x @ gc.Variable(_rand(6, 3), name="w"))
    run = gc.Session(g, target="cpu").make_callable(out, [x])
    assert sample_rows(run._entry[1].plan) is None


@pytest.fixture
def blocks(monkeypatch: pytest.MonkeyPatch):
    """Row blocks for any batch, on 3 threads (more than this machine's cores: the
    blocks' count does not depend on them)."""
    if loop_blas.blas_threads() is None:
        pytest.skip("not NumPy's OpenBLAS: its thread count cannot be set, no blocks")
    monkeypatch.setattr(program_runtime, "BLOCK_MIN_WORK", 1)
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 3)


def _unsplit(run: gc.Executable, *feeds: np.ndarray) -> list:
    """The same run as one call of the program (the block path is off)."""
    program = run._entry[1].program
    rows, program._rows = program._rows, None
    try:
        return run(*feeds)
    finally:
        program._rows = rows


HEADS = {
    "logits_argmax_pooled": lambda x, h, lg, y: [lg, gc.argmax(lg, 1), h],
    "softmax_strided": lambda x, h, lg, y: [gc.nn.softmax(lg)[:, ::2], gc.expand_dims(lg, 1)],
    "channel_scale_mean": lambda x, h, lg, y: [
        gc.reduce_mean(h * gc.constant(np.arange(1, 5, dtype=np.float32).reshape(1, 4, 1, 1)),
                       [1, 2, 3]),
        gc.squeeze(gc.expand_dims(lg, 2), 2) - gc.reduce_max(lg, 1, keepdims=True)],
}


@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("batch", [7, 3, 30, 2, 1, 0])
def test_blocks_agree_with_the_unsplit_program_and_the_reference(blocks, batch: int,
                                                                 head: str) -> None:
    m = _cnn(HEADS[head])
    run = gc.Session(m["graph"], target="cpu").make_callable(m["out"], [m["x"]])
    ref = gc.Session(m["graph"], target="reference")
    x = _rand(batch, 2, 8, 8)
    before = dict(program_runtime.COUNTERS)
    got = run(x)
    assert program_runtime.COUNTERS["blocks"] == before["blocks"] + (batch >= 2)
    assert program_runtime.COUNTERS["runs"] == before["runs"] + 1
    for a, b, r in zip(got, _unsplit(run, x), ref.run(m["out"], {m["x"]: x})):
        assert a.shape == b.shape == r.shape and a.dtype == r.dtype
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-5)


def test_blocks_too_big_for_one_thread_run_as_smaller_blocks(blocks, monkeypatch) -> None:
    # A block whose convolution the kernel would run on Numba's pool is refused by the
    # program's layout: its thread runs it as halves (and so on) one after the other.
    from graphc.backends.numba_cpu import conv_kernels

    monkeypatch.setattr(conv_kernels, "PARALLEL_MIN_MACS", 3 * 4 * 64 * 18)  # 3 rows
    m = _cnn(HEADS["logits_argmax_pooled"])
    run = gc.Session(m["graph"], target="cpu").make_callable(m["out"], [m["x"]])
    x = _rand(31, 2, 8, 8)
    before = program_runtime.COUNTERS["blocks"]
    got = run(x)
    assert program_runtime.COUNTERS["blocks"] == before + 1
    for a, r in zip(got, gc.Session(m["graph"], target="reference").run(m["out"], {m["x"]: x})):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-5)


def test_a_bad_label_in_any_block_raises_the_references_error(blocks) -> None:
    m = _cnn(lambda x, h, lg, y: gc.nn.sparse_softmax_cross_entropy_with_logits(
        labels=y, logits=lg))
    run = gc.Session(m["graph"], target="cpu").make_callable(m["out"], [m["x"], m["y"]])
    x, y = _rand(9, 2, 8, 8), RNG.integers(0, 5, 9)
    before = program_runtime.COUNTERS["blocks"]
    np.testing.assert_allclose(run(x, y), _unsplit(run, x, y), rtol=1e-6)
    assert program_runtime.COUNTERS["blocks"] == before + 1
    y[8] = 5  # in the last block
    with pytest.raises(gc.FeedError, match="label 5 is outside"):
        run(x, y)


def test_feeds_of_different_batch_sizes_get_the_unsplit_error(blocks) -> None:
    m = _cnn(lambda x, h, lg, y: gc.nn.sparse_softmax_cross_entropy_with_logits(
        labels=y, logits=lg))
    run = gc.Session(m["graph"], target="cpu").make_callable(m["out"], [m["x"], m["y"]])
    with pytest.raises(gc.ShapeError, match="labels"):
        run(_rand(6, 2, 8, 8), RNG.integers(0, 5, 4))


def test_two_callers_at_once_both_get_their_results(blocks) -> None:
    # Two sessions (one session serializes its runs): while one runs its blocks, the
    # other finds the workers busy and runs unsplit, or waits for nothing.
    m = _cnn()
    runs = [gc.Session(m["graph"], target="cpu").make_callable(m["out"], [m["x"]])
            for _ in range(2)]
    xs = [_rand(12, 2, 8, 8) for _ in range(2)]
    want = [_unsplit(run, x) for run, x in zip(runs, xs)]
    got: dict = {}

    def call(k: int) -> None:
        got[k] = [runs[k](xs[k]) for _ in range(30)]
    threads = [threading.Thread(target=call, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(2):
        for r in got[k]:
            np.testing.assert_allclose(r, want[k], rtol=1e-6, atol=1e-6)


def test_run_blocks_raises_a_jobs_error_and_restores_the_blas_threads(blocks) -> None:
    threads = loop_blas.blas_threads()
    assert block_threads.run_blocks([lambda: 1, lambda: 2, lambda: 3]) == [1, 2, 3]

    def fail() -> None:
        raise ValueError("in a worker")
    with pytest.raises(ValueError, match="in a worker"):
        block_threads.run_blocks([lambda: 1, fail])
    assert loop_blas.blas_threads() == threads
    assert block_threads.run_blocks([lambda: 1, lambda: 2]) == [1, 2]


def test_explain_plan_says_how_the_cpu_target_runs_a_plan() -> None:
    from graphc.backends.numba_cpu import explain_plan

    m = _cnn()
    (line,) = explain_plan(_plan(m, [m["x"]]))
    assert "one compiled function, in blocks of the batch's rows" in line
    assert f"{4 * 64 * 18 + 4 * 16 * 4:,} multiply-adds" in line
    m = _cnn(lambda x, h, lg, y: gc.reduce_mean(lg))
    assert explain_plan(_plan(m, [m["x"]])) == ["runs as one compiled function"]
    m = _cnn(lambda x, h, lg, y: gc.nn.dropout(lg, rate=0.5))
    assert explain_plan(_plan(m, [m["x"]])) == ["runs step by step (a random op)"]
