"""ONNX importers for LSTM, GRU and RNN, onto graphc's scan-based ``gc.nn`` layers.

ONNX stores the weights per direction as ``W`` (D, G*H, I), ``R`` (D, G*H, H) and
``B`` = [Wb, Rb] (D, 2*G*H) with its own gate orders (LSTM i, o, f, c; GRU z, r, h). The
reordering and transposes are graph ops on the imported tensors (not NumPy on the arrays),
so weights that are initializers stay trainable variables. Outputs follow ONNX: ``Y``
(T, D, N, H) (``layout=1``: (N, T, D, H)), ``Y_h``/``Y_c`` (D, N, H) (``layout=1``:
(N, D, H)). Directions forward, reverse and bidirectional; ``sequence_lens`` with the
forward direction; LSTM peepholes ``P`` (reordered to graphc's i, f, o). Refused (error
naming the node): non-default ``activations``, ``clip``, ``input_forget``, a reverse direction with ``sequence_lens``.
"""

from __future__ import annotations

from typing import Any

import graphc as gc
from graphc.frontends.onnx_import import importer
from graphc.frontends.onnx_import_ctx import Context

try:
    from graphc.ops import rnn as _rnn
except ImportError:  # pragma: no cover - the RNN layers are not built in this version
    _rnn = None

_DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"],
                 "RNN": ["Tanh"]}
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_ORDER = {"LSTM": [0, 2, 3, 1], "GRU": [0, 1, 2], "RNN": [0]}  # ours <- ONNX gate blocks


def _reorder(t: Any, gates: int, order: list, axis: int = 0) -> Any:
    if gates == 1:
        return t
    blocks = gc.split(t, gates, axis=axis)
    return gc.concat([blocks[k] for k in order], axis)


def _check(ctx: Context, op: str, ins: list, attrs: dict) -> None:
    acts = attrs.get("activations")
    n_dir = 2 if attrs.get("direction", "forward") == "bidirectional" else 1
    if acts is not None and [a.lower() for a in acts] != \
            [a.lower() for a in _DEFAULT_ACTS[op]] * n_dir and not (
            op == "RNN" and all(a.lower() in ("tanh", "relu", "sigmoid") for a in acts)):
        raise ctx.fail(f"activations {acts} are not supported (only the defaults)")
    if attrs.get("clip") is not None or attrs.get("input_forget", 0):
        raise ctx.fail("clip and input_forget are not supported")


def _recurrent(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    op = node.op_type
    _check(ctx, op, ins, attrs)
    x, W, R = ins[:3]
    B = ins[3] if len(ins) > 3 else None
    seq = ins[4] if len(ins) > 4 else None
    h0 = ins[5] if len(ins) > 5 else None
    c0 = ins[6] if len(ins) > 6 else None
    layout = attrs.get("layout", 0)
    direction = attrs.get("direction", "forward")
    if layout:  # (N, T, I) -> time-major; initial states (N, D, H) -> (D, N, H)
        x = gc.transpose(x, [1, 0, 2])
        h0 = None if h0 is None else gc.transpose(h0, [1, 0, 2])
        c0 = None if c0 is None else gc.transpose(c0, [1, 0, 2])
    dirs = [0, 1] if direction == "bidirectional" else [0]
    if seq is not None and direction != "forward":
        raise ctx.fail("sequence_lens with a reverse direction is not supported")
    gates, order = _GATES[op], _ORDER[op]
    ys, hs, cs = [], [], []
    for d in dirs:
        reverse = direction == "reverse" or d == 1
        w = gc.transpose(_reorder(W[d], gates, order))      # (I, G*H)
        r = gc.transpose(_reorder(R[d], gates, order))      # (H, G*H)
        wb = rb = None
        if B is not None:
            wb, rb = gc.split(B[d], 2, axis=0)
            wb, rb = _reorder(wb, gates, order), _reorder(rb, gates, order)
        xd = x[::-1] if reverse else x
        kw: dict = {"sequence_lengths": seq}
        if op == "LSTM":
            init = None if h0 is None and c0 is None else (
                None if h0 is None else h0[d], None if c0 is None else c0[d])
            b = None if wb is None else wb + rb
            P = ins[7] if len(ins) > 7 else None  # peepholes: ONNX's i, o, f -> ours i, f, o
            kw["peepholes"] = None if P is None else _reorder(P[d], 3, [0, 2, 1])
            y, (h, c) = _rnn.lstm(xd, w, r, b, init, **kw)
            cs.append(c)
        elif op == "GRU":
            y, h = _rnn.gru(xd, w, r, wb, rb, None if h0 is None else h0[d],
                            linear_before_reset=bool(attrs.get("linear_before_reset", 0)), **kw)
        else:
            acts = attrs.get("activations") or ["Tanh"]
            b = None if wb is None else wb + rb
            y, h = _rnn.simple_rnn(xd, w, r, b, None if h0 is None else h0[d],
                                   activation=acts[d % len(acts)].lower(), **kw)
        ys.append(y[::-1] if reverse else y)
        hs.append(h)
    y = gc.stack(ys, axis=1)            # (T, D, N, H)
    h = gc.stack(hs, axis=0)            # (D, N, H)
    c = gc.stack(cs, axis=0) if cs else None
    if layout:
        y = gc.transpose(y, [2, 0, 1, 3])
        h = gc.transpose(h, [1, 0, 2])
        c = None if c is None else gc.transpose(c, [1, 0, 2])
    return [y, h] + ([c] if op == "LSTM" else [])


if _rnn is not None:
    importer("LSTM", "GRU", "RNN", since=7)(_recurrent)
