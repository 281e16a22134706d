"""A session run from several threads: runs are serialized, so compiled programs (whose
buffers are reused from run to run) never mix two runs' values."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import graphc as gc


@pytest.mark.parametrize("target", ["reference", "cpu"])
def test_concurrent_runs_of_one_executable_give_each_caller_its_own_result(target) -> None:
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(16, 32)), rng.normal(size=(32, 4))
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float64, (None, 16))
        hidden = gc.nn.relu(gc.matmul(x, gc.constant(w1)) + 1.0)
        y = gc.nn.softmax(gc.matmul(hidden, gc.constant(w2)))
        session = gc.Session(target=target)
        run = session.make_callable(y, [x])
    feeds = [rng.normal(size=(8, 16)) for _ in range(4)]
    want = [run(f) for f in feeds]
    wrong: list[int] = []

    def worker(k: int) -> None:
        for _ in range(150):
            if not np.array_equal(run(feeds[k]), want[k]):
                wrong.append(k)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show at once
    try:
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(feeds))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not wrong
    assert session.step == len(feeds) * 151  # every run counted once
