"""Inference benchmarks: graphc ``cpu`` vs onnxruntime (CPU provider, 2 threads) on the same
model, exported from the same graphc graph with ``graphc.backends.onnx_export``.

    python bench/bench_inference.py
"""

from __future__ import annotations

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


def bench(name: str, m: dict, batches=(1, 128)) -> list[common.Result]:
    sess = gc.Session(m["graph"], target="cpu")
    ours = sess.make_callable(m["logits"], [m["x"]])
    ort_sess, in_name = _ort_session(m, sess)
    rows = []
    for b in batches:
        xb = np.random.default_rng(b).normal(size=(b, *m["x"].shape[1:])).astype(np.float32)
        np.testing.assert_allclose(ours(xb), ort_sess.run(None, {in_name: xb})[0], rtol=1e-3,
                                   atol=1e-4)
        rows.append(common.compare(f"{name} inference b{b}", "onnxruntime", lambda: ours(xb),
                                   lambda: ort_sess.run(None, {in_name: xb}),
                                   number=50 if b == 1 else 10))
        common.print_table(rows[-1:])
    return rows


def main() -> None:
    rows = bench("MLP", models.graphc_mlp(models.mlp_weights()))
    rows += bench("LeNet-5", models.graphc_lenet())
    print()
    common.print_table(rows)


if __name__ == "__main__":
    main()
