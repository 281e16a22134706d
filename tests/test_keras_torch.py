"""Parity with PyTorch: the same MLP 784-200-10 from the same initial weights, trained by
SGD (lr 0.005) on the same fixed batches of 128, has the same loss at every step."""

from __future__ import annotations

import numpy as np
import pytest

from graphc.frontends import keras
from graphc.frontends.keras import layers as L

from test_keras_helpers import TARGET

torch = pytest.importorskip("torch")

STEPS, BATCH, LR = 50, 128, 0.005


def test_mlp_sgd_losses_match_pytorch():
    rng = np.random.default_rng(0)
    xs = rng.uniform(0, 1, size=(STEPS, BATCH, 784)).astype(np.float32)
    ys = rng.integers(0, 10, size=(STEPS, BATCH)).astype(np.int64)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([L.Dense(200, activation="relu", input_shape=(784,)),
                              L.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.SGD(LR), "sparse_categorical_crossentropy", target=TARGET)
    w1, b1, w2, b2 = model.get_weights()

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 200), torch.nn.ReLU(), torch.nn.Linear(200, 10))
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(w1.T.copy()))
        net[0].bias.copy_(torch.from_numpy(b1))
        net[2].weight.copy_(torch.from_numpy(w2.T.copy()))
        net[2].bias.copy_(torch.from_numpy(b2))
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()

    ours, theirs = [], []
    for x, y in zip(xs, ys):
        ours.append(model.train_on_batch(x, y))
        opt.zero_grad()
        loss = loss_fn(net(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        opt.step()
        theirs.append(loss.item())
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    assert ours[-1] < ours[0]  # it trained (the batches repeat no pattern, but SGD fits them)
    np.testing.assert_allclose(model.get_weights()[2], net[2].weight.detach().numpy().T,
                               rtol=1e-3, atol=1e-5)
