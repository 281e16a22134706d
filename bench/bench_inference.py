"""Inference benchmarks: graphc ``cpu`` vs onnxruntime (CPU provider, 2 threads) on the same
model, exported from the same graphc graph with ``graphc.backends.onnx_export``.

    python bench/bench_inference.py [--target cuda] [mlp_b1 mlp_b128 lenet-5_b1 lenet-5_b128]

Each side runs in its own process (see :mod:`common`); the onnxruntime side first checks
its logits against graphc's reference target. With ``--target cuda`` graphc's cuda target
runs against PyTorch on the same GPU (the same architecture; both take the batch from host
memory and return the logits to it).
"""

from __future__ import annotations

import sys

import common  # noqa: F401  (pins the thread pools first)
import numpy as np

import graphc as gc
import models


def _ort_session(m: dict, sess: gc.Session):
    import onnxruntime as ort

    from graphc.backends.onnx_export import export_model

    sess.run(m["logits"], {m["x"]: np.zeros((1, *m["x"].shape[1:]), np.float32)})  # init vars
    exported = export_model(m["graph"], [m["x"]], [m["logits"]], values=dict(sess.state))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = common.THREADS
    opts.inter_op_num_threads = 1
    ort_sess = ort.InferenceSession(exported.model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
    return ort_sess, exported.inputs[0]


def case(name: str, build, batch: int) -> common.Case:
    """``build()``'s logits at ``batch``: graphc's cpu target vs onnxruntime on the export."""
    def data(m: dict) -> np.ndarray:
        shape = (batch, *m["x"].shape[1:])
        return np.random.default_rng(batch).normal(size=shape).astype(np.float32)

    def ours():
        m = build()
        run = gc.Session(m["graph"], target=common.target()).make_callable(m["logits"],
                                                                           [m["x"]])
        xb = data(m)
        return lambda: run(xb)

    def theirs():
        m = build()
        sess = gc.Session(m["graph"], target="reference")
        ort_sess, in_name = _ort_session(m, sess)
        xb = data(m)
        np.testing.assert_allclose(ort_sess.run(None, {in_name: xb})[0],
                                   sess.run(m["logits"], {m["x"]: xb}), rtol=1e-3, atol=1e-4)
        return lambda: ort_sess.run(None, {in_name: xb})
    if common.target() == "cuda":
        return common.Case(f"{name} inference b{batch}", common.peer("torch"), ours,
                           lambda: _torch_inference(name, data(build())),
                           number=50 if batch == 1 else 10)
    return common.Case(f"{name} inference b{batch}", "onnxruntime", ours, theirs,
                       number=50 if batch == 1 else 10)


def _torch_inference(name: str, xb: np.ndarray):
    """PyTorch's forward pass of the same architecture on the GPU, host batch in, logits out."""
    import torch

    model = (models.torch_mlp(models.mlp_weights()) if name == "MLP"
             else models.torch_lenet()).to(common.torch_device()).eval()
    xt = torch.from_numpy(xb)

    def infer():
        with torch.no_grad():
            return model(xt.to(common.torch_device())).cpu()
    return infer


def _mlp():
    return models.graphc_mlp(models.mlp_weights())


CASES = {f"{name.lower()}_b{b}": (lambda name=name, build=build, b=b: case(name, build, b))
         for name, build in (("MLP", _mlp), ("LeNet-5", models.graphc_lenet))
         for b in (1, 128)}


if __name__ == "__main__":
    common.run_cases(CASES, sys.argv[1:])
