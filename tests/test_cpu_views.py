"""Layout ops run as views on cpu (backends/numba_cpu/view_kernels.py): results must be
those of the reference target, which copies, whatever the plan overwrites in place."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

RNG = np.random.default_rng(11)


def _both(build, feeds_list):
    """Run ``build() -> (fetches, feeds placeholders)`` on reference and cpu, several runs;
    the per-run results of both targets (the fetched arrays are kept across runs)."""
    out = {}
    for target in ("reference", "cpu"):
        with gc.Graph().as_default():
            fetches, phs = build()
            sess = gc.Session(target=target)
            out[target] = [sess.run(fetches, dict(zip(phs, feeds))) for feeds in feeds_list]
    return out["reference"], out["cpu"]


@pytest.mark.parametrize("view", [
    lambda w: gc.reshape(w, (-1,)),
    lambda w: gc.expand_dims(w, 0),
    lambda w: gc.squeeze(gc.expand_dims(w, 0), [0]),
])
def test_a_view_of_a_weight_sees_its_value_before_the_update(view) -> None:
    w0 = RNG.normal(size=(4, 3)).astype(np.float32)

    def build():
        x = gc.placeholder(gc.float32, (None, 4))
        w = gc.Variable(w0, name="w")
        wv = view(w)  # read early (the forward needs it), so w may be updated in place...
        loss = gc.reduce_sum(gc.square(x @ gc.reshape(wv, (4, 3))))
        train = gc.train.GradientDescentOptimizer(0.1).minimize(loss)
        # ...before this reads the view: it must still see the old value
        late = wv * 2.0 + gc.reduce_sum(gc.gradients(loss, [w])[0])
        return [late, wv, train], [x]

    feeds = [[RNG.normal(size=(5, 4)).astype(np.float32)] for _ in range(3)]
    want, got = _both(build, feeds)
    for (wl, wv, _), (gl, gv, _) in zip(want, got):
        np.testing.assert_allclose(gl, wl, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(gv, wv)


def test_views_of_kernel_buffers_fetched_stay_as_they_were() -> None:
    w = RNG.normal(size=(6, 8)).astype(np.float32)

    def build():
        x = gc.placeholder(gc.float32, (None, 6))
        h = gc.nn.relu(x @ gc.constant(w) + 1.0)
        r = gc.reshape(h, (-1, 2, 4))
        z = gc.exp(r) - 1.0  # a group reading the view (never in place on it)
        return [r, gc.squeeze(gc.expand_dims(h, 1), [1]), z, h * 3.0], [x]

    feeds = [[RNG.normal(size=(3, 6)).astype(np.float32)] for _ in range(3)]
    want, got = _both(build, feeds)
    for w_run, g_run in zip(want, got):  # earlier runs' arrays compared after the last run
        for w, g in zip(w_run, g_run):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_reshape_size_mismatch_at_run_time_is_a_clear_error() -> None:
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, None))
        y = gc.reshape(x, (-1, 4)) * 2.0
        with pytest.raises(Exception) as err:
            gc.Session(target="cpu").run(y, {x: np.ones((3, 3), np.float32)})
    assert "reshape" in str(err.value) and "Numba" not in str(err.value)
