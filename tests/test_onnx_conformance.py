"""ONNX's backend node tests (core op set) through graphc's importer: a fast smoke test of a
few ops, and a slow guard on the pass rate reached (bench/onnx_conformance.py prints the
table and the failures by op)."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

pytest.importorskip("onnx")

_PATH = os.path.join(os.path.dirname(__file__), os.pardir, "bench", "onnx_conformance.py")


def _bench():
    spec = importlib.util.spec_from_file_location("onnx_conformance", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["onnx_conformance"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_smoke_a_few_ops_pass() -> None:
    bench = _bench()
    results = bench.run(["reference"], {"Relu", "Gemm"})
    passed, total = results["reference"].rate()
    assert total >= 3 and passed == total, dict(results["reference"].failures)


# Reached on the reference target when this test was written (see the report in the PR):
# 315 of 332 selected core-op tests; the failures are 3-D pooling/convolution (graphc's ops
# are 2-D), dilated pooling, MaxPool's Indices output, LSTM peepholes and one ceil_mode case.
PASSED_AT_LEAST = 315


@pytest.mark.slow
def test_conformance_pass_rate_does_not_regress() -> None:
    bench = _bench()
    results = bench.run(["reference"])
    passed, total = results["reference"].rate()
    assert passed >= PASSED_AT_LEAST, (passed, total, dict(results["reference"].failures))
