"""The cpu target's convolution schemes (backends/numba_cpu/conv_kernels.py): conv2d and
both gradients against the reference, through the blocked GEMMs in both column layouts
(full-width at strides 1, compact otherwise; one block and several, the last one partial)
and through the direct loops (few input taps: conv_direct.py)."""

from __future__ import annotations

import numpy as np
import pytest
from graphc.backends.numba_cpu import conv_kernels

import graphc as gc
from graphc.ops.conv import conv2d

RNG = np.random.default_rng(11)

# (x shape, w shape, conv2d keyword arguments)
CASES = {
    "batch1_pad_full": ((1, 1, 7, 7), (3, 1, 3, 3), {"padding": 2}),
    "nonsquare_full": ((3, 2, 6, 9), (4, 2, 3, 2), {"padding": ((1, 0), (2, 1))}),
    "stride2_compact": ((2, 3, 9, 7), (2, 3, 3, 3), {"strides": 2, "padding": 1}),
    "stride_h_only_k1": ((2, 2, 7, 5), (3, 2, 1, 1), {"strides": (2, 1)}),
    "dilated_same_full": ((2, 2, 8, 6), (2, 2, 3, 3), {"dilations": 2, "padding": "SAME"}),
    "groups_strided": ((2, 4, 7, 8), (6, 2, 3, 3), {"groups": 2, "strides": (2, 3)}),
    "lenet_conv2": ((3, 6, 14, 14), (16, 6, 5, 5), {}),
    # direct when allowed: C*kh*kw <= DIRECT_MAX_TAPS, strides 1, one group
    "direct_lenet_conv1_b1": ((1, 1, 12, 12), (6, 1, 5, 5), {"padding": 2}),
    "direct_k4_odd_o_nonsquare": ((2, 2, 7, 9), (7, 2, 2, 4), {"padding": ((0, 1), (2, 0))}),
    "direct_dilated_3x3": ((3, 3, 9, 8), (5, 3, 3, 3), {"dilations": (2, 1), "padding": "SAME"}),
    "direct_dilated_w_k5": ((2, 2, 9, 13), (4, 2, 3, 5), {"dilations": (1, 2)}),
}
DIRECT = [name for name in CASES if name.startswith("direct")]


def _grads(target: str, x: np.ndarray, w: np.ndarray, v: np.ndarray, kwargs: dict) -> list:
    g = gc.Graph()
    with g.as_default():
        xt = gc.placeholder(gc.as_dtype(x.dtype), x.shape, name="x")
        wt = gc.constant(w)
        y = conv2d(xt, wt, **kwargs)
        dx, dw = gc.gradients(gc.reduce_sum(y * gc.constant(v)), [xt, wt])
    return gc.Session(g, target=target).run([y, dx, dw], {xt: x})


def _check(name: str, dtype: type, tol: float) -> None:
    xs, ws, kwargs = CASES[name]
    x, w = RNG.normal(size=xs).astype(dtype), RNG.normal(size=ws).astype(dtype)
    with gc.Graph().as_default():
        shape = conv2d(gc.constant(x), gc.constant(w), **kwargs).shape
    v = RNG.normal(size=shape).astype(dtype)
    want = _grads("reference", x, w, v, kwargs)
    got = _grads("cpu", x, w, v, kwargs)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(CASES))
def test_conv_and_its_gradients_agree_with_the_reference(name: str) -> None:
    _check(name, np.float64, 1e-10)


@pytest.mark.parametrize("name", DIRECT + ["batch1_pad_full"])
def test_the_blocked_gemms_where_the_direct_loops_would_run(name: str, monkeypatch) -> None:
    monkeypatch.setattr(conv_kernels, "DIRECT_MAX_TAPS", 0)
    _check(name, np.float64, 1e-10)


def test_which_convolutions_run_the_direct_loops() -> None:
    assert conv_kernels.use_direct(25, (1, 1), 1)  # LeNet's conv1
    assert not conv_kernels.use_direct(150, (1, 1), 1)  # LeNet's conv2
    assert not conv_kernels.use_direct(9, (2, 2), 1) and not conv_kernels.use_direct(9, (1, 1), 3)


@pytest.mark.parametrize("name", ["batch1_pad_full", "stride2_compact", "lenet_conv2",
                                  "direct_lenet_conv1_b1", "direct_k4_odd_o_nonsquare"])
def test_float32(name: str) -> None:
    _check(name, np.float32, 2e-4)


@pytest.mark.parametrize("name", ["nonsquare_full", "stride2_compact", "groups_strided"])
def test_several_blocks_with_a_partial_last_one(name: str, monkeypatch) -> None:
    monkeypatch.setattr(conv_kernels, "BLOCK_ELEMENTS", 1)  # one sample per block
    _check(name, np.float64, 1e-10)


def test_layout_is_full_width_only_at_strides_1() -> None:
    full, pitch, span, block = conv_kernels.layout(64, 25, 32, 28, 28, (1, 1))
    assert full and pitch == 32 and span == 27 * 32 + 28 and 1 <= block <= 64
    full, pitch, span, _ = conv_kernels.layout(64, 25, 7, 5, 7, (2, 1))
    assert not full and pitch == 7 and span == 35


@pytest.mark.parametrize("name", [n for n in DIRECT if CASES[n][0][0] > 1])
def test_direct_loops_on_several_threads(name: str, monkeypatch) -> None:
    monkeypatch.setattr(conv_kernels, "PARALLEL_MIN_MACS", 0)
    _check(name, np.float64, 1e-10)


@pytest.mark.parametrize("o, kw, dilations", [(6, 5, (1, 1)), (7, 4, (1, 2)), (3, 7, (2, 3)),
                                              (1, 1, (1, 1)), (2, 3, (1, 1))])
def test_direct_forward_pairs_channels_for_any_taps_and_dilations(o, kw, dilations) -> None:
    """Output channels run in pairs (an odd last one alone), each kernel row's taps in
    passes of 5, 3 and 1 at the dilated offsets."""
    from graphc.backends.numba_cpu import conv_direct as cd
    from graphc.op import get_op

    x, w = RNG.normal(size=(3, 2, 13, 19)), RNG.normal(size=(o, 2, 3, kw))
    dh, dw = dilations
    ho, wo = 13 - dh * 2, 19 - dw * (kw - 1)
    y = np.empty((3, o, ho, wo))
    cd.direct_forward(x, w, y, np.empty(2 * ((ho - 1) * 19 + wo)), dh, dw)
    want = get_op("conv2d").ref(x, w, strides=(1, 1), padding=((0, 0), (0, 0)),
                                dilations=dilations, groups=1)
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-10)


def test_parallel_direct_kernels_equal_the_serial_ones_for_any_chunk_count() -> None:
    from graphc.backends.numba_cpu import conv_direct as cd

    xp, w = RNG.normal(size=(5, 2, 9, 8)), RNG.normal(size=(7, 2, 3, 4))
    y, g = np.empty((5, 7, 7, 5)), RNG.normal(size=(5, 7, 7, 5))
    span = 6 * 8 + 5
    cd.direct_forward(xp, w, y, np.empty(2 * span), 1, 1)
    dw = np.empty_like(w)
    cd.direct_filter_grad(xp, g, dw, np.empty((7, span)), 1, 1)
    for t in (1, 2, 3, 5):  # more chunks than threads, uneven chunks, one sample each
        y2, dw2 = np.empty_like(y), np.empty_like(w)
        # launched as the kernels launch them (workqueue layer, under PARALLEL_LOCK)
        conv_kernels._parallel(cd.direct_forward_par, xp, w, y2, np.empty((t, 2 * span)), 1, 1)
        conv_kernels._parallel(cd.direct_filter_grad_par, xp, g, dw2, np.empty((t, 7, span)),
                               np.empty((t,) + w.shape), 1, 1)
        np.testing.assert_allclose(y2, y, rtol=1e-12)
        np.testing.assert_allclose(dw2, dw, rtol=1e-12)
