"""Training-step benchmarks: graphc ``cpu`` vs PyTorch eager on CPU, 2 threads each.

    python bench/bench_train.py [--target cuda] [mlp_sgd mlp_adam lenet lstm]

Each row: one full step (forward, backward, update) on the same batch, median over rounds
after warm-up, with the interquartile range; ratio = graphc / PyTorch (below 1: faster).
Each side runs in its own process (see :mod:`common`). Both sides take the batch from host
memory and hand the loss back to it at every step, as a ``Session.run`` does; with
``--target cuda`` graphc's cuda target runs against PyTorch on the same GPU.
"""

from __future__ import annotations

import sys

import common  # noqa: F401  (pins the thread pools first)
import numpy as np

import graphc as gc
import models


def _torch_step(model, params, make_opt, shape, classes: int = 10):
    """PyTorch's step on the benchmark batch (``make_opt(params)`` builds the optimizer)."""
    import torch

    common.torch_threads()
    device = common.torch_device()
    model.to(device)  # in place: ``params`` stay the model's parameters
    xb, yb = _batch(shape, classes)
    xt, yt = torch.from_numpy(xb), torch.from_numpy(yb)
    opt = make_opt(params)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(xt.to(device)), yt.to(device))
        loss.backward()
        opt.step()
        return loss.item()  # (waits for the GPU, as graphc's fetch of the loss does)
    return step


def _batch(shape: tuple, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    batch = shape[1] if len(shape) == 3 else shape[0]  # the LSTM's input is time-major
    return rng.normal(size=shape).astype(np.float32), rng.integers(0, classes, batch)


def _graphc_step(model: dict, shape: tuple):
    """graphc's step (the benchmark's target): one call runs loss and the train op."""
    sess = gc.Session(model["graph"], target=common.target())
    step = sess.make_callable([model["loss"], model["train"]], [model["x"], model["y"]])
    xb, yb = _batch(shape)
    return lambda: step(xb, yb)


def _sgd(params):
    import torch
    return torch.optim.SGD(params, lr=0.01, momentum=0.9)


def _adam(params):
    import torch
    return torch.optim.Adam(params, lr=1e-3)


def mlp(kind: str) -> common.Case:
    """MLP 784-512-512-10, batch 128, SGD momentum 0.9 or Adam."""
    sgd = kind == "sgd"
    shape = (128, 784)

    def ours():
        opt = gc.train.MomentumOptimizer(0.01, 0.9) if sgd else gc.train.AdamOptimizer(1e-3)
        return _graphc_step(models.graphc_mlp(models.mlp_weights(), opt), shape)

    def theirs():
        tm = models.torch_mlp(models.mlp_weights())
        return _torch_step(tm, tm.parameters(), _sgd if sgd else _adam, shape)
    return common.Case(f"MLP train b128 {'SGD-mom' if sgd else 'Adam'}", common.peer("torch"),
                       ours, theirs)


def lenet() -> common.Case:
    """LeNet-5, batch 64, SGD momentum 0.9."""
    shape = (64, 1, 28, 28)

    def ours():
        return _graphc_step(models.graphc_lenet(gc.train.MomentumOptimizer(0.01, 0.9)), shape)

    def theirs():
        tm = models.torch_lenet()
        return _torch_step(tm, tm.parameters(), _sgd, shape)
    return common.Case("LeNet-5 train b64 SGD-mom", common.peer("torch"), ours, theirs,
                       number=5)


def lstm() -> common.Case:
    """LSTM input 32, hidden 128, 32 steps (time-major), batch 32 -> linear 10, Adam."""
    shape = (32, 32, 32)

    def ours():
        return _graphc_step(models.graphc_lstm(gc.train.AdamOptimizer(1e-3)), shape)

    def theirs():
        tm = models.TorchLSTM()
        return _torch_step(tm, tm.params, _adam, shape)
    return common.Case("LSTM 32x32x32 h128 train Adam", common.peer("torch"), ours, theirs,
                       warmup=3, number=3)


CASES = {"mlp_sgd": lambda: mlp("sgd"), "mlp_adam": lambda: mlp("adam"), "lenet": lenet,
         "lstm": lstm}


if __name__ == "__main__":
    common.run_cases(CASES, sys.argv[1:])
