"""PyTorch parity of gc.nn.lstm and gc.nn.gru: forward values and gradients of the inputs,
initial states and weights, in float32, with the weights mapped between the layouts.

PyTorch keeps ``weight_ih`` (G*H, I) and ``weight_hh`` (G*H, H) with LSTM gates i, f, g, o
(ours too) and GRU gates r, z, n (ours: z, r, h), and two biases; ours are right-multiplied
(I, G*H) / (H, G*H), LSTM with one bias (b_ih + b_hh), GRU with b and rb.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ops import rnn

torch = pytest.importorskip("torch")

T, N, I, H = 5, 3, 4, 6
TOL = 1e-5


def _swap_rz(m: np.ndarray) -> np.ndarray:
    """GRU gate blocks along axis 0: PyTorch's r, z, n <-> our z, r, h (its own inverse)."""
    r, z, n = np.split(m, 3, axis=0)
    return np.concatenate([z, r, n], axis=0)


def _check(got: np.ndarray, want, what: str) -> float:
    want = want.detach().numpy() if hasattr(want, "detach") else want
    err = float(np.abs(got - want).max())
    assert err <= TOL * max(1.0, float(np.abs(want).max())), f"{what}: max error {err}"
    return err


def _graph(kind: str, x: np.ndarray, weights: list, states: list, lengths, batch_first: bool):
    g = gc.Graph()
    with g.as_default():
        xp = gc.placeholder(gc.float32, (None, None, I), name="x")
        vs = [gc.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
        ss = [gc.placeholder(gc.float32, (None, H), name=f"s{i}") for i in range(len(states))]
        kwargs = dict(sequence_lengths=lengths, time_major=not batch_first)
        if kind == "lstm":
            out, (h, c) = rnn.lstm(xp, *vs, initial_state=tuple(ss), **kwargs)
            finals = [h, c]
        else:
            out, h = rnn.gru(xp, *vs, initial_state=ss[0], **kwargs)
            finals = [h]
        rng = np.random.default_rng(3)
        w_out = rng.uniform(0.5, 1.5, size=x.shape[:2] + (H,)).astype(np.float32)
        w_fin = rng.uniform(0.5, 1.5, size=(N, H)).astype(np.float32)
        loss = gc.reduce_sum(out * w_out) + sum(gc.reduce_sum(f * w_fin) for f in finals)
        grads = gc.gradients(loss, [xp, *vs, *ss])
    sess = gc.Session(g, target="reference")
    feeds = {xp: x, **dict(zip(ss, states))}
    values = sess.run([out, *finals, *grads], feeds)
    return values, w_out, w_fin


@pytest.mark.parametrize("batch_first,packed", [(False, False), (True, False), (False, True)])
def test_lstm_parity(batch_first: bool, packed: bool) -> None:
    torch.manual_seed(0)
    layer = torch.nn.LSTM(I, H, batch_first=batch_first).float()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, T, I) if batch_first else (T, N, I)).astype(np.float32)
    h0, c0 = (rng.normal(size=(N, H)).astype(np.float32) for _ in range(2))
    lengths = np.array([5, 2, 4]) if packed else None
    p = dict(layer.named_parameters())
    weights = [p["weight_ih_l0"].detach().numpy().T.copy(),
               p["weight_hh_l0"].detach().numpy().T.copy(),
               (p["bias_ih_l0"] + p["bias_hh_l0"]).detach().numpy()]
    (out, h, c, gx, gW, gR, gb, gh0, gc0), w_out, w_fin = _graph(
        "lstm", x, weights, [h0, c0], lengths, batch_first)

    xt = torch.tensor(x, requires_grad=True)
    h0t, c0t = (torch.tensor(s[None], requires_grad=True) for s in (h0, c0))
    if packed:
        seq = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths),
                                                      enforce_sorted=False)
        yt, (ht, ct) = layer(seq, (h0t, c0t))
        yt, _ = torch.nn.utils.rnn.pad_packed_sequence(yt, total_length=T)
    else:
        yt, (ht, ct) = layer(xt, (h0t, c0t))
    loss = (yt * torch.tensor(w_out)).sum() + ((ht[0] + ct[0]) * torch.tensor(w_fin)).sum()
    loss.backward()
    errors = [_check(out, yt, "outputs"), _check(h, ht[0], "h_T"), _check(c, ct[0], "c_T"),
              _check(gx, xt.grad, "d x"), _check(gh0, h0t.grad[0], "d h0"),
              _check(gc0, c0t.grad[0], "d c0"),
              _check(gW, p["weight_ih_l0"].grad.T, "d W"),
              _check(gR, p["weight_hh_l0"].grad.T, "d R"),
              _check(gb, p["bias_ih_l0"].grad, "d b"), _check(gb, p["bias_hh_l0"].grad, "d b")]
    print(f"lstm batch_first={batch_first} packed={packed}: max error {max(errors):.2e}")


@pytest.mark.parametrize("batch_first", [False, True])
def test_gru_parity(batch_first: bool) -> None:
    torch.manual_seed(0)
    layer = torch.nn.GRU(I, H, batch_first=batch_first).float()
    rng = np.random.default_rng(2)
    x = rng.normal(size=(N, T, I) if batch_first else (T, N, I)).astype(np.float32)
    h0 = rng.normal(size=(N, H)).astype(np.float32)
    p = dict(layer.named_parameters())
    weights = [_swap_rz(p["weight_ih_l0"].detach().numpy()).T.copy(),
               _swap_rz(p["weight_hh_l0"].detach().numpy()).T.copy(),
               _swap_rz(p["bias_ih_l0"].detach().numpy()),
               _swap_rz(p["bias_hh_l0"].detach().numpy())]
    (out, h, gx, gW, gR, gb, grb, gh0), w_out, w_fin = _graph(
        "gru", x, weights, [h0], None, batch_first)

    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    yt, ht = layer(xt, h0t)
    loss = (yt * torch.tensor(w_out)).sum() + (ht[0] * torch.tensor(w_fin)).sum()
    loss.backward()
    errors = [_check(out, yt, "outputs"), _check(h, ht[0], "h_T"), _check(gx, xt.grad, "d x"),
              _check(gh0, h0t.grad[0], "d h0"),
              _check(_swap_rz(gW.T), p["weight_ih_l0"].grad, "d W"),
              _check(_swap_rz(gR.T), p["weight_hh_l0"].grad, "d R"),
              _check(_swap_rz(gb), p["bias_ih_l0"].grad, "d b"),
              _check(_swap_rz(grb), p["bias_hh_l0"].grad, "d rb")]
    print(f"gru batch_first={batch_first}: max error {max(errors):.2e}")
