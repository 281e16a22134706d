"""Convolutional inference plans as one compiled program on the cpu target
(backends/numba_cpu/conv_emit.py, pool_emit.py through program_codegen.py): conv2d and
max_pool2d run inside the generated function, agree with the step-by-step kernels and
the reference at every batch size (one compilation), and what the program does not
handle (avg pooling, weights of unknown shape, shapes refused at run time, convolutions
the kernel would run on several threads) runs step by step with the same results."""

from __future__ import annotations

import warnings

import numba
import numpy as np
import pytest
from graphc.backends.numba_cpu import conv_kernels, program_runtime

import graphc as gc
from graphc.ops.conv import conv2d
from graphc.ops.pool import max_pool2d
from graphc.ops.pool_nd import avg_pool

RNG = np.random.default_rng(23)


def _rand(*shape: int, dtype: type = np.float32) -> np.ndarray:
    return RNG.normal(size=shape).astype(dtype)


def _executable(run: gc.Executable):
    """The cpu Executable behind a session's callable."""
    return run._entry[1]


def _runs() -> int:
    return program_runtime.COUNTERS["runs"]


def _program_and_steps(run: gc.Executable, *feeds: np.ndarray) -> tuple:
    """``run(*feeds)`` through the compiled program (checked to have run) and through the
    step-by-step kernels of the same executable."""
    exe = _executable(run)
    before = _runs()
    got = run(*feeds)
    assert _runs() == before + 1, "the compiled program did not run"
    program, exe.program = exe.program, None
    try:
        steps = run(*feeds)
    finally:
        exe.program = program
    return got, steps


def _lenet(channels: int = 1, size: int = 28, pool: tuple = (2, 2, "VALID")) -> dict:
    """A LeNet-like CNN: conv pad 2 (direct loops: few taps) -> bias, relu -> max pool ->
    conv (blocked GEMM) -> bias, relu -> max pool -> flatten -> dense -> relu -> dense."""
    g = gc.Graph()
    init = gc.init.glorot_uniform
    k, s, padding = pool
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, channels, size, size), name="x")
        c1 = gc.Variable(init((6, channels, 5, 5), seed=1), name="c1")
        c1b = gc.Variable(_rand(6, 1, 1), name="c1b")
        c2 = gc.Variable(init((16, 6, 5, 5), seed=2), name="c2")
        c2b = gc.Variable(_rand(16, 1, 1), name="c2b")
        h = max_pool2d(gc.nn.relu(conv2d(x, c1, padding=2) + c1b), k, s, padding)
        h = max_pool2d(gc.nn.relu(conv2d(h, c2) + c2b), k, s, padding)
        flat = int(np.prod(h.shape[1:]))
        f1 = gc.Variable(init((flat, 32), seed=3), name="f1")
        f2 = gc.Variable(init((32, 10), seed=4), name="f2")
        f1b = gc.Variable(_rand(32), name="f1b")
        logits = gc.nn.relu(gc.reshape(h, (-1, flat)) @ f1 + f1b) @ f2
    return {"graph": g, "x": x, "logits": logits}


@pytest.mark.parametrize("pool", [(2, 2, "VALID"), (3, 2, "SAME"), (3, 1, 1)],
                         ids=["pool2x2", "pool3x3_s2_same", "pool3x3_s1_pad1"])
def test_a_lenet_runs_as_one_program_at_every_batch_size(pool: tuple) -> None:
    m = _lenet(size=20, pool=pool)
    run = gc.Session(m["graph"], target="cpu").make_callable(m["logits"], [m["x"]])
    ref = gc.Session(m["graph"], target="reference")
    program = _executable(run).program
    assert program is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for batch in (1, 3, 1, 40, 0):
            x = _rand(batch, 1, 20, 20)
            got, steps = _program_and_steps(run, x)
            want = ref.run(m["logits"], {m["x"]: x})
            assert got.shape == want.shape == (batch, 10) and got.dtype == np.float32
            np.testing.assert_allclose(got, steps, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # Specialized on dtypes and ranks only: every batch size shared one compilation.
    assert len(program.module.program.signatures) == 1


# (x shape, w shape, conv2d keyword arguments): both schemes (direct loops for few taps at
# strides 1 and one group, blocked GEMMs in the full-width and the compact layouts),
# explicit, asymmetric and SAME pads, strides, dilations and groups.
CONVS = {
    "direct_pad2": ((2, 1, 12, 12), (6, 1, 5, 5), {"padding": 2}),
    "direct_asym_pads": ((2, 2, 7, 9), (7, 2, 2, 4), {"padding": ((0, 1), (2, 0))}),
    "direct_dilated_same": ((3, 3, 9, 8), (5, 3, 3, 3), {"dilations": (2, 1),
                                                         "padding": "SAME"}),
    "blocked_valid": ((3, 6, 14, 14), (16, 6, 5, 5), {}),
    "blocked_same": ((2, 4, 9, 7), (5, 4, 3, 3), {"padding": "SAME"}),
    "blocked_stride2_pad1": ((2, 3, 9, 7), (2, 3, 3, 3), {"strides": 2, "padding": 1}),
    "blocked_stride_h_k1": ((2, 2, 7, 5), (3, 2, 1, 1), {"strides": (2, 1)}),
    "blocked_stride_same": ((2, 5, 10, 11), (4, 5, 3, 3), {"strides": 2, "padding": "SAME"}),
    "groups_strided": ((2, 4, 7, 8), (6, 2, 3, 3), {"groups": 2, "strides": (2, 3)}),
    "groups_dilated": ((2, 6, 9, 9), (6, 2, 3, 3), {"groups": 3, "dilations": 2,
                                                    "padding": 1}),
}


def _conv_graph(xs: tuple, ws: tuple, kwargs: dict, dtype: type, dynamic: bool) -> dict:
    g = gc.Graph()
    shape = (None, xs[1], None, None) if dynamic else (None, *xs[1:])
    with g.as_default():
        x = gc.placeholder(gc.as_dtype(dtype), shape, name="x")
        w = gc.Variable(_rand(*ws, dtype=dtype), name="w")
        y = gc.nn.relu(conv2d(x, w, **kwargs)) * 0.5
    return {"graph": g, "x": x, "y": y}


@pytest.mark.parametrize("name", sorted(CONVS))
def test_conv2d_in_the_program_agrees_with_the_kernels_and_the_reference(name: str) -> None:
    xs, ws, kwargs = CONVS[name]
    m = _conv_graph(xs, ws, kwargs, np.float32, dynamic=False)
    run = gc.Session(m["graph"], target="cpu").make_callable(m["y"], [m["x"]])
    ref = gc.Session(m["graph"], target="reference")
    assert _executable(run).program is not None
    for batch in (1, xs[0], 7):
        x = _rand(batch, *xs[1:])
        got, steps = _program_and_steps(run, x)
        want = ref.run(m["y"], {m["x"]: x})
        assert got.shape == want.shape
        np.testing.assert_allclose(got, steps, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["direct_dilated_same", "blocked_same",
                                  "blocked_stride_same", "blocked_stride2_pad1"])
def test_unknown_plane_sizes_and_float64_compile_once(name: str) -> None:
    xs, ws, kwargs = CONVS[name]
    m = _conv_graph(xs, ws, kwargs, np.float64, dynamic=True)
    run = gc.Session(m["graph"], target="cpu").make_callable(m["y"], [m["x"]])
    ref = gc.Session(m["graph"], target="reference")
    program = _executable(run).program
    assert program is not None
    for h, w in ((xs[2], xs[3]), (xs[2] + 3, xs[3] + 1), (6, 5)):
        x = _rand(2, xs[1], h, w, dtype=np.float64)
        got, steps = _program_and_steps(run, x)
        want = ref.run(m["y"], {m["x"]: x})
        assert got.shape == want.shape and got.dtype == np.float64
        np.testing.assert_allclose(got, steps, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert len(program.module.program.signatures) == 1


@pytest.mark.parametrize("pool", [(2, 2, "SAME"), (3, 2, "SAME"), (2, 1, ((1, 0), (0, 1))),
                                  (3, 3, "VALID")],
                         ids=["2x2_same", "3x3_s2_same", "2x2_s1_asym_pads", "3x3_s3"])
def test_max_pooling_of_unknown_sizes_with_nans(pool: tuple) -> None:
    # 2x2 SAME windows are padded or not depending on the run-time size: the program
    # takes the 2x2 loops or the general ones then, as the kernel does.
    k, s, padding = pool
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 3, None, None), name="x")
        y = max_pool2d(x * 2.0, k, s, padding) + 1.0
    run = gc.Session(g, target="cpu").make_callable(y, [x])
    ref = gc.Session(g, target="reference")
    assert _executable(run).program is not None
    for h, w in ((6, 8), (7, 5), (3, 3)):
        xv = _rand(2, 3, h, w)
        xv[0, 1, 1, 2] = np.nan  # NaN wins its windows, as in the reference
        got, steps = _program_and_steps(run, xv)
        want = ref.run(y, {x: xv})
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, steps)
        np.testing.assert_array_equal(got, want)


def test_what_the_program_does_not_handle_runs_step_by_step() -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 2, 8, 8), name="x")
        w = gc.placeholder(gc.float32, (None, 2, 3, 3), name="w")  # weights of unknown shape
        y = gc.nn.relu(conv2d(x, w, padding=1))
        a = avg_pool(x, 2, dilations=2)  # N-d pooling has no emitter: NumPy's reference
    sess, ref = gc.Session(g, target="cpu"), gc.Session(g, target="reference")
    xv, wv = _rand(2, 2, 8, 8), _rand(4, 2, 3, 3)
    for fetch, feeds in ((y, [x, w]), (a, [x])):
        run = sess.make_callable(fetch, feeds)
        assert _executable(run).program is None
        args = [xv, wv][:len(feeds)]
        np.testing.assert_allclose(run(*args), ref.run(fetch, dict(zip(feeds, args))),
                                   rtol=1e-5, atol=1e-5)


def test_a_window_larger_than_the_input_raises_the_step_by_step_error() -> None:
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 1, None, None), name="x")
        y = conv2d(x, gc.Variable(_rand(2, 1, 5, 5), name="w"))
    run = gc.Session(g, target="cpu").make_callable(y, [x])
    assert _executable(run).program is not None
    before = _runs()
    with pytest.raises(gc.ShapeError, match="larger than the padded input"):
        run(_rand(1, 1, 4, 9))  # shapes() refuses it: the kernel's check raises
    assert _runs() == before
    assert run(_rand(1, 1, 5, 9)).shape == (1, 2, 1, 5)
    assert _runs() == before + 1


def test_a_direct_convolution_for_the_thread_pool_runs_step_by_step(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Where the kernel would run its direct loops on Numba's threads, the program (one
    # thread) steps aside; below that size it runs.
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one Numba thread: the kernel never goes parallel")
    monkeypatch.setattr(conv_kernels, "PARALLEL_MIN_MACS", 5000)
    m = _conv_graph((1, 1, 10, 10), (3, 1, 3, 3), {"padding": 1}, np.float32, dynamic=False)
    run = gc.Session(m["graph"], target="cpu").make_callable(m["y"], [m["x"]])
    ref = gc.Session(m["graph"], target="reference")
    before = _runs()
    small, big = _rand(1, 1, 10, 10), _rand(8, 1, 10, 10)  # 2.7k and 21.6k multiply-adds
    np.testing.assert_allclose(run(small), ref.run(m["y"], {m["x"]: small}), rtol=1e-5,
                               atol=1e-6)
    assert _runs() == before + 1
    np.testing.assert_allclose(run(big), ref.run(m["y"], {m["x"]: big}), rtol=1e-5,
                               atol=1e-6)
    assert _runs() == before + 1
