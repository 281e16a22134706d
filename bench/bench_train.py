"""Training-step benchmarks: graphc ``cpu`` vs PyTorch eager on CPU, 2 threads each.

    python bench/bench_train.py [mlp_sgd mlp_adam lenet lstm]

Each row: one full step (forward, backward, update) on the same batch, median over rounds
after warm-up, with the interquartile range; ratio = graphc / PyTorch (below 1: faster).
"""

from __future__ import annotations

import sys

import common  # noqa: F401  (pins the thread pools first)
import numpy as np

import graphc as gc
import models


def _torch_step(model, params, opt, loss_fn, xt, yt):
    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        return loss
    return step


def mlp(kind: str) -> common.Result:
    import torch

    rng = np.random.default_rng(0)
    xb = rng.normal(size=(128, 784)).astype(np.float32)
    yb = rng.integers(0, 10, 128)
    weights = models.mlp_weights()
    opt = gc.train.MomentumOptimizer(0.01, 0.9) if kind == "sgd" else gc.train.AdamOptimizer(1e-3)
    m = models.graphc_mlp(weights, opt)
    sess = gc.Session(m["graph"], target="cpu")
    ours = sess.make_callable([m["loss"], m["train"]], [m["x"], m["y"]])
    tm = models.torch_mlp(weights)
    topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9) if kind == "sgd" else \
        torch.optim.Adam(tm.parameters(), lr=1e-3)
    theirs = _torch_step(tm, None, topt, torch.nn.functional.cross_entropy,
                         torch.from_numpy(xb), torch.from_numpy(yb))
    return common.compare(f"MLP train b128 {'SGD-mom' if kind == 'sgd' else 'Adam'}",
                          "torch", lambda: ours(xb, yb), theirs)


def lenet() -> common.Result:
    import torch

    rng = np.random.default_rng(0)
    xb = rng.normal(size=(64, 1, 28, 28)).astype(np.float32)
    yb = rng.integers(0, 10, 64)
    m = models.graphc_lenet(gc.train.MomentumOptimizer(0.01, 0.9))
    sess = gc.Session(m["graph"], target="cpu")
    ours = sess.make_callable([m["loss"], m["train"]], [m["x"], m["y"]])
    tm = models.torch_lenet()
    topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
    theirs = _torch_step(tm, None, topt, torch.nn.functional.cross_entropy,
                         torch.from_numpy(xb), torch.from_numpy(yb))
    return common.compare("LeNet-5 train b64 SGD-mom", "torch", lambda: ours(xb, yb), theirs,
                          rounds=10, number=5)


def lstm() -> common.Result:
    import torch

    rng = np.random.default_rng(0)
    xb = rng.normal(size=(32, 32, 32)).astype(np.float32)  # (T, N, I)
    yb = rng.integers(0, 10, 32)
    m = models.graphc_lstm(gc.train.AdamOptimizer(1e-3))
    sess = gc.Session(m["graph"], target="cpu")
    ours = sess.make_callable([m["loss"], m["train"]], [m["x"], m["y"]])
    tm = models.TorchLSTM()
    topt = torch.optim.Adam(tm.params, lr=1e-3)
    theirs = _torch_step(tm, None, topt, torch.nn.functional.cross_entropy,
                         torch.from_numpy(xb), torch.from_numpy(yb))
    return common.compare("LSTM 32x32x32 h128 train Adam", "torch", lambda: ours(xb, yb),
                          theirs, warmup=3, rounds=7, number=3)


BENCHES = {"mlp_sgd": lambda: mlp("sgd"), "mlp_adam": lambda: mlp("adam"), "lenet": lenet,
           "lstm": lstm}


def main(names: list[str]) -> None:
    common.torch_threads()
    rows = []
    for name in names or list(BENCHES):
        rows.append(BENCHES[name]())
        common.print_table(rows[-1:])
    print()
    common.print_table(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
