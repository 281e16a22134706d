"""The merge_scans pass: what it must merge (a scan and its copy with more outputs) and
what it must not (other inputs, direction, body graph, outputs that are not a prefix)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ops.control import Body, scan_op
from graphc.passes import (DEFAULT_PIPELINE, eliminate_common, eliminate_dead, from_program,
                           merge_scans, run_pipeline)
from graphc.program import build_program

RNG = np.random.default_rng(11)


def _body(graph: gc.Graph = None) -> tuple:
    """A body graph ``(c, x, k) -> (c * k + x, tanh(c), x * 2)`` and its tensors."""
    graph = graph or gc.Graph()
    with graph.as_default():
        c, x = gc.placeholder(gc.float64, (2,)), gc.placeholder(gc.float64, (2,))
        k = gc.placeholder(gc.float64, (2,))
        new, y, extra = c * k + x, gc.tanh(c), x * 2.0
    return graph, [c, x, k], new, y, extra


def _scans(graph: gc.Graph, specs: list, reverse: tuple = (False, False), xs2: bool = False
           ) -> tuple:
    """Two scans of the bodies ``specs`` ((graph, inputs, outputs) each) over the same
    inputs (or other xs when ``xs2``); returns the fetches and feeds."""
    with graph.as_default():
        c0, k = gc.placeholder(gc.float64, (2,)), gc.placeholder(gc.float64, (2,))
        xs = [gc.placeholder(gc.float64, (None, 2)) for _ in range(2 if xs2 else 1)]
        fetches = []
        for n, ((bgraph, ins, outs), rev) in enumerate(zip(specs, reverse)):
            body = Body(bgraph, ins, outs, 1, 1)
            finals, ys = scan_op(body, [c0], [xs[min(n, len(xs) - 1)]], [k], reverse=rev)
            fetches += [*finals, *ys]
    feeds = {c0: RNG.normal(size=2), k: RNG.normal(size=2) * 0.5}
    feeds.update({x: RNG.normal(size=(4, 2)) for x in xs})
    return fetches, feeds


def _merge(fetches: list, feeds: dict) -> tuple:
    ir = from_program(build_program(fetches[0].graph, fetches, list(feeds)))
    reports = run_pipeline(ir, [eliminate_common, merge_scans, eliminate_dead], check=True,
                           explain=False)
    return ir, reports[1]


def _scan_count(ir) -> int:
    return sum(n.op == "scan" for n in ir.nodes)


def _same_results(fetches: list, feeds: dict) -> None:
    """Pipeline on (merged) and off (two scans) agree with the reference."""
    expected = gc.Session(target="reference", graph=fetches[0].graph).run(fetches, feeds)
    for options in ({}, {"optimize": False}):
        got = gc.Session(fetches[0].graph, "cpu", compile_options=options).run(fetches, feeds)
        for e, r in zip(expected, got):
            np.testing.assert_allclose(r, e, rtol=1e-12)


def test_merges_a_scan_into_its_copy_with_more_outputs() -> None:
    graph, ins, new, y, extra = _body()
    g = gc.Graph()
    fetches, feeds = _scans(g, [(graph, ins, [new, y]), (graph, ins, [new, y, extra])])
    ir, report = _merge(fetches, feeds)
    assert _scan_count(ir) == 1
    assert len(report.changes) == 1 and "1 more output" in report.changes[0]
    # the small scan's consumers now read the big one's outputs, at the same positions
    (big,) = [n for n in ir.nodes if n.op == "scan"]
    assert [r[0] for r in ir.fetches] == [big] * 5
    assert [r[1] for r in ir.fetches] == [0, 1, 0, 1, 2]
    _same_results(fetches, feeds)


def test_chains_merge_into_the_biggest() -> None:
    graph, ins, new, y, extra = _body()
    g = gc.Graph()
    with g.as_default():
        c0, k = gc.placeholder(gc.float64, (2,)), gc.placeholder(gc.float64, (2,))
        xs = gc.placeholder(gc.float64, (None, 2))
        fetches = []
        for outs in ([new], [new, y, extra], [new, y]):
            finals, ys = scan_op(Body(graph, ins, outs, 1, 1), [c0], [xs], [k])
            fetches += [*finals, *ys]
    feeds = {c0: RNG.normal(size=2), k: RNG.normal(size=2), xs: RNG.normal(size=(3, 2))}
    ir, report = _merge(fetches, feeds)
    assert _scan_count(ir) == 1 and len(report.changes) == 2
    _same_results(fetches, feeds)


@pytest.mark.parametrize("case", ["other_inputs", "other_direction", "other_graph",
                                  "not_a_prefix", "other_placeholders"])
def test_does_not_merge_different_scans(case: str) -> None:
    graph, ins, new, y, extra = _body()
    small, big = (graph, ins, [new, y]), (graph, ins, [new, y, extra])
    reverse, xs2 = (False, False), False
    if case == "other_inputs":
        xs2 = True
    elif case == "other_direction":
        reverse = (False, True)
    elif case == "other_graph":  # an equal body, but built on another graph
        graph2, ins2, new2, y2, extra2 = _body()
        big = (graph2, ins2, [new2, y2, extra2])
    elif case == "not_a_prefix":
        big = (graph, ins, [new, extra, y])
    elif case == "other_placeholders":  # the same graph, its inputs in another role
        big = (graph, [ins[0], ins[2], ins[1]], [new, y, extra])
    g = gc.Graph()
    fetches, feeds = _scans(g, [small, big], reverse, xs2)
    ir, report = _merge(fetches, feeds)
    assert _scan_count(ir) == 2 and report.changes == []
    _same_results(fetches, feeds)


def test_is_in_the_default_pipeline_after_cse() -> None:
    names = [p.__name__ for p in DEFAULT_PIPELINE]
    at = names.index("merge_scans")
    assert "eliminate_common" in names[:at] and "eliminate_dead" in names[at:]


def _lstm_graph() -> tuple:
    from graphc.ops.rnn import lstm

    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, None, 3), name="x")
        W = gc.Variable(RNG.normal(size=(3, 16)).astype(np.float32) * 0.5, name="W")
        R = gc.Variable(RNG.normal(size=(4, 16)).astype(np.float32) * 0.5, name="R")
        out, _ = lstm(x, W, R)
        grads = gc.gradients(gc.reduce_sum(out * out), [x, W, R])
    return g, x, [out, *grads]


def test_the_lstm_forward_runs_once_with_the_pipeline(capsys) -> None:
    g, x, fetches = _lstm_graph()
    feed = RNG.normal(size=(5, 2, 3)).astype(np.float32)
    exe = gc.compile(fetches, [x], target="cpu", graph=g, explain=True)
    got = exe(feed)
    assert "[merge_scans] 1 change(s)" in capsys.readouterr().err
    plan = exe.session._program(exe._elements, exe.inputs)[1].plan
    assert sum(s.node.op == "scan" for s in plan.steps) == 2  # saving forward + backward
    off = gc.Session(g, "cpu", compile_options={"optimize": False})
    ir_off = off._program([g.as_graph_element(f) for f in fetches], [x])[1].plan.steps
    assert sum(s.node.op == "scan" for s in ir_off) == 3  # the forward computed twice
    for a, b in zip(got, off.run(fetches, {x: feed})):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
