"""The benchmark models, built the same way in graphc and in PyTorch (same weights)."""

from __future__ import annotations

from typing import Any

import numpy as np

import graphc as gc

MLP_SIZES = (784, 512, 512, 10)


def mlp_weights(seed: int = 0) -> list[np.ndarray]:
    """Glorot weights and zero biases for the 784-512-512-10 MLP."""
    out = []
    for k, (m, n) in enumerate(zip(MLP_SIZES[:-1], MLP_SIZES[1:])):
        out += [gc.init.glorot_uniform((m, n), seed=seed + k), np.zeros(n, np.float32)]
    return out


def graphc_mlp(weights: list[np.ndarray], optimizer: Any = None) -> dict:
    """The MLP as a graphc graph: placeholders, logits, loss and (optionally) a train op."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, MLP_SIZES[0]), name="x")
        y = gc.placeholder(gc.int64, (None,), name="y")
        h = x
        params = [gc.Variable(w, name=f"p{k}") for k, w in enumerate(weights)]
        for k in range(0, len(params), 2):
            h = h @ params[k] + params[k + 1]
            if k + 2 < len(params):
                h = gc.nn.relu(h)
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=h))
        train = optimizer.minimize(loss) if optimizer is not None else None
    return {"graph": g, "x": x, "y": y, "logits": h, "loss": loss, "train": train}


def torch_mlp(weights: list[np.ndarray]) -> Any:
    """The same MLP in PyTorch (nn.Linear stores W transposed)."""
    import torch

    layers: list[Any] = []
    for k in range(0, len(weights), 2):
        lin = torch.nn.Linear(*weights[k].shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(weights[k].T.copy()))
            lin.bias.copy_(torch.from_numpy(weights[k + 1]))
        layers.append(lin)
        if k + 2 < len(weights):
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def graphc_lenet(optimizer: Any = None, seed: int = 0) -> dict:
    """LeNet-5 on 1x28x28 (conv5x5 6 pad 2 -> maxpool -> conv5x5 16 -> maxpool -> fc 120 ->
    fc 84 -> fc 10), NCHW / OIHW."""
    from graphc.ops.conv import conv2d
    from graphc.ops.pool import max_pool2d

    g = gc.Graph()
    init = gc.init.glorot_uniform
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 1, 28, 28), name="x")
        y = gc.placeholder(gc.int64, (None,), name="y")
        c1 = gc.Variable(init((6, 1, 5, 5), seed=seed), name="c1")
        c1b = gc.Variable(np.zeros((6, 1, 1), np.float32), name="c1b")
        c2 = gc.Variable(init((16, 6, 5, 5), seed=seed + 1), name="c2")
        c2b = gc.Variable(np.zeros((16, 1, 1), np.float32), name="c2b")
        fcs = [(gc.Variable(init((m, n), seed=seed + 2 + k), name=f"f{k}"),
                gc.Variable(np.zeros(n, np.float32), name=f"f{k}b"))
               for k, (m, n) in enumerate([(400, 120), (120, 84), (84, 10)])]
        h = max_pool2d(gc.nn.relu(conv2d(x, c1, padding=2) + c1b), 2)
        h = max_pool2d(gc.nn.relu(conv2d(h, c2) + c2b), 2)
        h = gc.reshape(h, (-1, 400))
        for k, (w, b) in enumerate(fcs):
            h = h @ w + b
            if k < 2:
                h = gc.nn.relu(h)
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=h))
        train = optimizer.minimize(loss) if optimizer is not None else None
    return {"graph": g, "x": x, "y": y, "logits": h, "loss": loss, "train": train}


def torch_lenet() -> Any:
    """LeNet-5 in PyTorch."""
    import torch
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10)).to(torch.float32)


def graphc_lstm(optimizer: Any, seed: int = 0, inp: int = 32, hidden: int = 128) -> dict:
    """LSTM (time-major) -> last hidden state -> linear 10, softmax cross-entropy."""
    from graphc.ops.rnn import lstm

    g = gc.Graph()
    init = gc.init.glorot_uniform
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, None, inp), name="x")
        y = gc.placeholder(gc.int64, (None,), name="y")
        W = gc.Variable(init((inp, 4 * hidden), seed=seed), name="W")
        R = gc.Variable(init((hidden, 4 * hidden), seed=seed + 1), name="R")
        b = gc.Variable(np.zeros(4 * hidden, np.float32), name="b")
        wo = gc.Variable(init((hidden, 10), seed=seed + 2), name="wo")
        bo = gc.Variable(np.zeros(10, np.float32), name="bo")
        _, (h_t, _c) = lstm(x, W, R, b)
        logits = h_t @ wo + bo
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y,
                                                                            logits=logits))
        train = optimizer.minimize(loss)
    return {"graph": g, "x": x, "y": y, "logits": logits, "loss": loss, "train": train}


class TorchLSTM:
    """PyTorch's nn.LSTM + linear, the peer of :func:`graphc_lstm`."""

    def __init__(self, inp: int = 32, hidden: int = 128) -> None:
        import torch

        self.lstm = torch.nn.LSTM(inp, hidden)
        self.out = torch.nn.Linear(hidden, 10)
        self.params = list(self.lstm.parameters()) + list(self.out.parameters())

    def to(self, device: str) -> "TorchLSTM":
        """Move the layers (in place, as ``nn.Module.to`` does) to ``device``."""
        self.lstm.to(device)
        self.out.to(device)
        return self

    def __call__(self, x: Any) -> Any:
        _, (h, _c) = self.lstm(x)
        return self.out(h[-1])
