"""dropout: inverted scaling, reproducible seeded masks, keep fraction, masked gradient,
the training switch and argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphc as gc
from graphc.ops.dropout import dropout


def _graph(rate=0.3, seed=42, shape=(64, 50), training=True):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None,) + shape[1:], name="x")
        y = dropout(x, rate, training=training, seed=seed)
    return g, x, y


def test_kept_values_are_scaled_and_the_rest_are_zero() -> None:
    g, x, y = _graph(rate=0.25)
    xv = np.random.default_rng(0).uniform(1, 2, (64, 50)).astype(np.float32)
    out = gc.Session(g, target="reference").run(y, {x: xv})
    kept = out != 0
    np.testing.assert_allclose(out[kept], xv[kept] / 0.75, rtol=1e-6)
    assert 0 < kept.sum() < kept.size


def test_same_seed_same_mask_in_a_new_session_and_new_masks_per_step() -> None:
    xv = np.ones((64, 50), np.float32)
    masks = []
    for _ in range(2):  # two graphs built alike, each in a fresh session
        g, x, y = _graph()
        sess = gc.Session(g, target="reference")
        masks.append([sess.run(y, {x: xv}) != 0 for _ in range(2)])
    np.testing.assert_array_equal(masks[0][0], masks[1][0])  # step 0 in both sessions
    np.testing.assert_array_equal(masks[0][1], masks[1][1])  # step 1 in both sessions
    assert not np.array_equal(masks[0][0], masks[0][1])      # a new step draws a new mask
    g, x, y = _graph(seed=43)
    other = gc.Session(g, target="reference").run(y, {x: xv}) != 0
    assert not np.array_equal(other, masks[0][0])            # another seed, another mask


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_keep_fraction_is_within_five_sigma(rate: float) -> None:
    n = 200_000
    g, x, y = _graph(rate=rate, seed=7, shape=(n // 100, 100))
    out = gc.Session(g, target="reference").run(y, {x: np.ones((n // 100, 100), np.float32)})
    p = 1.0 - rate
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs((out != 0).mean() - p) < 5 * sigma
    # Inverted scaling keeps the expectation: mean(y) ~ 1 within 5 sigma of its own spread.
    assert abs(out.mean() - 1.0) < 5 * math.sqrt((1 - p) / (p * n))


def test_gradient_is_masked_and_scaled_like_the_forward() -> None:
    g, x, y = _graph(rate=0.4)
    with g.as_default():
        w = np.random.default_rng(1).normal(size=(64, 50)).astype(np.float32)
        (grad,) = gc.gradients(gc.reduce_sum(y * w), [x])
    xv = np.random.default_rng(2).uniform(1, 2, (64, 50)).astype(np.float32)
    out, gv = gc.Session(g, target="reference").run([y, grad], {x: xv})  # one run: one mask
    np.testing.assert_allclose(gv, np.where(out != 0, w / 0.6, 0.0), rtol=1e-6)


def test_not_training_is_the_identity() -> None:
    xv = np.random.default_rng(3).normal(size=(8, 50)).astype(np.float32)
    g, x, y = _graph(training=False)
    assert y is x
    np.testing.assert_array_equal(gc.Session(g, target="reference").run(y, {x: xv}), xv)
    g = gc.Graph()
    with g.as_default():
        training = gc.placeholder(gc.bool, ())
        x = gc.placeholder(gc.float32, (None, 50))
        y = dropout(x, 0.5, training=training, seed=1)
    sess = gc.Session(g, target="reference")
    np.testing.assert_array_equal(sess.run(y, {x: xv, training: False}), xv)
    on = sess.run(y, {x: xv, training: True})
    assert (on == 0).any() and np.allclose(on[on != 0], 2 * xv[on != 0])


def test_rate_zero_is_the_identity_and_bad_arguments_are_refused() -> None:
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, 4))
        assert dropout(x, 0.0) is x
        for bad in (1.0, -0.1, 1.5, "0.5", True, float("nan")):
            with pytest.raises(ValueError, match=r"rate must be a number in \[0, 1\)"):
                dropout(x, bad)
        with pytest.raises(TypeError, match="float"):
            dropout(gc.placeholder(gc.int32, (3,)), 0.5)
        with pytest.raises(TypeError, match="training"):
            dropout(x, 0.5, training=1)
        with pytest.raises(gc.GraphError, match="bool scalar"):
            dropout(x, 0.5, training=gc.placeholder(gc.bool, (3,)))


@pytest.mark.parametrize("target", [t for t in gc.available_targets() if t != "reference"])
def test_every_target_draws_the_reference_mask(target: str) -> None:
    g, x, y = _graph(rate=0.3, seed=5)
    xv = np.random.default_rng(4).uniform(1, 2, (64, 50)).astype(np.float32)
    want = gc.Session(g, target="reference").run(y, {x: xv})
    got = gc.Session(g, target=target).run(y, {x: xv})
    np.testing.assert_array_equal(got != 0, want != 0)
    np.testing.assert_allclose(got, want, rtol=1e-6)
