"""ONNX conformance: ONNX's own backend node tests run through graphc's importer.

onnx >= 1.16 no longer ships the node tests as files; ``onnx.backend.test.case.node
.collect_testcases()`` builds them (models + input/output arrays). This script selects the
tests of the *core op set* (the ops of issue 5), with standard dtypes (float32/64,
int32/64, bool) and outputs that do not depend on random numbers, imports each model with
``gc.onnx`` machinery, runs it on each target and compares with ONNX's expected outputs at
ONNX's tolerances (rtol 1e-3, atol 1e-7) and dtypes.

    python bench/onnx_conformance.py [--target reference --target cpu] [--op Relu ...]

prints passed/total per op and the failures by op. ``tests/test_onnx_conformance.py`` uses
:func:`run` (a slow test guards the pass rate; a fast one runs a few ops).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np

CORE_OPS = (
    "Add Sub Mul Div Pow Exp Log Sqrt Neg Abs Max Min Sum Clip Erf MatMul Gemm Conv "
    "ConvTranspose MaxPool AveragePool GlobalAveragePool GlobalMaxPool BatchNormalization "
    "Dropout LSTM GRU RNN Relu LeakyRelu Sigmoid Tanh Softmax LogSoftmax Gelu ReduceSum "
    "ReduceMean ReduceMax ReduceMin ArgMax Where Equal Greater Less Reshape Flatten Transpose "
    "Concat Split Slice Gather GatherElements Squeeze Unsqueeze Shape Expand Pad Identity "
    "Constant ConstantOfShape Cast CastLike SoftmaxCrossEntropyLoss NegativeLogLikelihoodLoss"
).split()
STANDARD = {np.dtype(d) for d in ("float32", "float64", "int32", "int64", "bool")}
RTOL, ATOL = 1e-3, 1e-7


@dataclass
class Result:
    """Per-op counts and failure messages of one target."""

    passed: dict = field(default_factory=lambda: defaultdict(int))
    total: dict = field(default_factory=lambda: defaultdict(int))
    failures: dict = field(default_factory=lambda: defaultdict(list))

    def rate(self) -> tuple[int, int]:
        return sum(self.passed.values()), sum(self.total.values())


def tested_op(case) -> Optional[str]:
    """The core op a node test is about, or None (expanded/function tests, other ops)."""
    if "_expanded" in case.name:
        return None
    ops = {n.op_type for n in case.model.graph.node} - {"Constant"}
    if not ops:
        ops = {"Constant"}
    if len(ops) != 1:
        return None
    op = ops.pop()
    return op if op in CORE_OPS else None


def selected(cases: Iterable, ops: Optional[set] = None) -> list:
    """(op, case) for the core-op tests with standard dtypes and no randomness."""
    out = []
    for case in cases:
        op = tested_op(case)
        if op is None or (ops and op not in ops):
            continue
        if "training" in case.name or "random" in case.name:  # random outputs (Dropout)
            continue
        data = _as_arrays(case.data_sets)
        arrays = [a for inputs, outputs in data or () for a in (*inputs, *outputs)]
        if data is None or not all(isinstance(a, np.ndarray) and a.dtype in STANDARD
                                   for a in arrays):
            continue
        out.append((op, case, data))
    return out


def _as_arrays(data_sets) -> Optional[list]:
    """The data sets with TensorProtos (Cast's tests store those) as arrays."""
    from onnx import numpy_helper

    try:
        return [([numpy_helper.to_array(a) if not isinstance(a, np.ndarray) else a
                  for a in inputs],
                 [numpy_helper.to_array(a) if not isinstance(a, np.ndarray) else a
                  for a in outputs]) for inputs, outputs in data_sets]
    except Exception:  # noqa: BLE001 - sequences, optionals, exotic types: not selected
        return None


def collect(ops: Optional[set] = None) -> list:
    """The selected node tests (building them takes ~20 s for all ops)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if ops and len(ops) <= 3:
            cases = [c for op in ops for c in _op_cases(op)]
        else:
            cases = _all_cases()
    return selected(cases, ops)


_ALL: list = []


def _all_cases() -> list:
    # collect_testcases() imports every test module (each adds its cases to one module-level
    # list when first imported) and returns that list; called once, unfiltered.
    if not _ALL:
        from onnx.backend.test.case.node import collect_testcases

        _ALL.extend(collect_testcases())
    return _ALL


def _op_cases(op: str) -> list:
    """The node tests of one op, built by importing only its module (fast): onnx runs a
    test module's ``export*`` functions when the module is imported, appending to one list."""
    import importlib

    import onnx.backend.test.case.node as node_cases

    importlib.import_module(f"onnx.backend.test.case.node.{op.lower()}")
    return [c for c in node_cases._NodeTestCases
            if op in {n.op_type for n in c.model.graph.node}]


def run_case(case, target: str, data: Optional[list] = None) -> Optional[str]:
    """None if the test passes on ``target``, else the reason."""
    import graphc as gc
    from graphc.frontends.onnx_import import import_model, parse_model

    try:
        model = parse_model(case.model.SerializeToString())
        names = [vi.name for vi in model.graph.input
                 if vi.name not in {t.name for t in model.graph.initializer}]
        static = static_argument_inputs(model)
        for feeds, expected in (case.data_sets if data is None else data):
            values = dict(zip(names, feeds))
            graph, inputs, outputs = import_model(
                model, static_inputs={n: values[n] for n in static if n in values})
            sess = gc.Session(graph, target=target)
            got = sess.run(outputs, {t: values[t.name] for t in inputs})
            for g, e in zip(got, expected):
                if g.dtype != e.dtype:
                    return f"dtype {g.dtype} != expected {e.dtype}"
                np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)
    except AssertionError as err:
        return "values differ: " + str(err).strip().splitlines()[-1][:120]
    except Exception as err:  # noqa: BLE001 - a conformance failure, reported by op
        return f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
    return None


# Inputs that are shape arguments (static in graphc): (op_type, input positions).
STATIC_ARGS = {"Reshape": (1,), "Slice": (1, 2, 3, 4), "Squeeze": (1,), "Unsqueeze": (1,),
               "Split": (1,), "Expand": (1,), "Tile": (1,), "Pad": (1, 2, 3),
               "ConstantOfShape": (0,), "ReduceSum": (1,), "ReduceMean": (1,),
               "ReduceMax": (1,), "ReduceMin": (1,), "ReduceProd": (1,)}


def static_argument_inputs(model) -> set:
    """Graph inputs a node uses as a shape argument: the runner specializes the import on
    their values (``import_model(static_inputs=...)``), as graphc's shape arguments are
    static. Every other input stays a placeholder fed at run time."""
    out = set()
    for node in model.graph.node:
        for i in STATIC_ARGS.get(node.op_type, ()):
            if i < len(node.input) and node.input[i]:
                out.add(node.input[i])
    return out


def run(targets: Iterable[str] = ("reference",), ops: Optional[set] = None) -> dict[str, Result]:
    """Run the selected tests on each target."""
    cases = collect(ops)
    results = {}
    for target in targets:
        res = Result()
        for op, case, data in cases:
            res.total[op] += 1
            failure = run_case(case, target, data)
            if failure is None:
                res.passed[op] += 1
            else:
                res.failures[op].append(f"{case.name}: {failure}")
        results[target] = res
    return results


def report(results: dict[str, Result], out=sys.stdout, ops_asked: Optional[set] = None) -> None:
    """Print the per-op table and the failures by op."""
    targets = list(results)
    ops = sorted({op for r in results.values() for op in r.total})
    print(f"{'op':28s}" + "".join(f"{t:>14s}" for t in targets), file=out)
    for op in ops:
        print(f"{op:28s}" + "".join(f"{r.passed[op]:>8d}/{r.total[op]:<5d}"
                                    for r in results.values()), file=out)
    for t, r in results.items():
        p, n = r.rate()
        print(f"\n{t}: {p}/{n} passed ({100.0 * p / max(n, 1):.1f} %)", file=out)
        for op in sorted(r.failures):
            print(f"  {op}:", file=out)
            for f in r.failures[op]:
                print(f"    {f}", file=out)
    missing = sorted((ops_asked or set(CORE_OPS)) - set(ops))
    if missing:
        print(f"\ncore ops with no selected test: {', '.join(missing)}", file=out)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", help="graphc target(s); default reference")
    parser.add_argument("--op", action="append", help="only these ONNX ops")
    args = parser.parse_args(argv)
    ops = set(args.op) if args.op else None
    report(run(args.target or ["reference"], ops), ops_asked=ops)
    return 0


if __name__ == "__main__":
    sys.exit(main())
