"""Recurrent layers over a time axis, built on :func:`graphc.ops.control.scan`.

``lstm``, ``gru`` and ``simple_rnn`` are composites: the input projection ``x @ W`` of all
steps is one batched matmul outside the loop, and the loop body (one ``scan`` node, so the
graph does not grow with the sequence length) does the rest: the bias, added to each
step's slice where its gates are computed (outside, it was one more pass over the whole
``(T, N, G*H)`` projection: 0.2 ms of an LSTM training step of 6.4 ms on the cpu target),
and the recurrent part.

Layouts (the same for the three):

* ``x``: time-major ``(T, N, I)`` as ONNX and PyTorch; ``time_major=False`` takes and
  returns batch-major ``(N, T, I)`` / ``(N, T, H)`` (Keras, TF's ``dynamic_rnn``).
* ``W``: ``(I, G*H)``, ``R``: ``(H, G*H)`` (right-multiplied: ``x @ W``, as Keras kernels),
  biases ``(G*H,)``, the ``G`` gates side by side in the order below. ``T`` and ``N`` may
  be unknown; ``I`` and ``H`` may be too.
* LSTM, gate order **i, f, g, o** (input, forget, cell candidate, output; Keras and PyTorch
  order); one bias ``b`` (PyTorch's ``b_ih + b_hh``; ONNX's ``Wb + Rb``)::

      i, f, g, o = split(x_t @ W + b + h @ R)
      c' = sigmoid(f) * c + sigmoid(i) * tanh(g);   h' = sigmoid(o) * tanh(c')

  With ``peepholes`` ``[p_i, p_f, p_o]`` (ONNX's ``P``; PyTorch and Keras have none), as
  the ONNX spec: ``i += p_i * c``, ``f += p_f * c`` (the previous cell state) and
  ``o += p_o * c'`` (the new one) before the sigmoids.

* GRU, gate order **z, r, h** (update, reset, candidate; Keras and ONNX order), input bias
  ``b`` and recurrent bias ``rb`` (kept apart: the candidate needs them apart)::

      z = sigmoid(x_t Wz + bz + h Rz + rbz);   r = sigmoid(x_t Wr + br + h Rr + rbr)
      linear_before_reset=True (default; PyTorch, ONNX linear_before_reset=1, Keras reset_after):
          n = tanh(x_t Wh + bh + r * (h Rh + rbh))
      linear_before_reset=False (ONNX's default, the 2014 paper):
          n = tanh(x_t Wh + bh + (r * h) Rh + rbh)
      h' = (1 - z) * n + z * h

* simple RNN: ``h' = activation(x_t @ W + b + h @ R)`` (``"tanh"``, ``"relu"`` or a callable).

Initial states default to zeros. ``sequence_lengths`` (int, shape ``(N,)``): past its
length a sequence's state is carried unchanged and its outputs are zero, so the final
states are the states at each sequence's last valid step (as PyTorch's packed sequences
and ONNX's ``sequence_lens``).

Converters to and from the ONNX weight layouts (``W[iofc]``/``W[zrh]`` of shape
``(num_directions, G*H, I)``, ``R`` ``(num_directions, G*H, H)``, ``B = [Wb, Rb]`` of shape
``(num_directions, 2*G*H)``) are pure NumPy: :func:`lstm_weights_to_onnx`,
:func:`lstm_weights_from_onnx` and the ``gru_``/``rnn_`` pairs.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Union

import numpy as np

from graphc import dtypes
from graphc.errors import ShapeError
from graphc.graph import Tensor, get_default_graph
from graphc.ops.args import fail
from graphc.ops.control import scan_with_finals
from graphc.ops.creation import zeros_like
from graphc.ops.elementwise import cast, less, sigmoid, tanh
from graphc.ops.linalg import matmul
from graphc.ops.reduce import reduce_sum
from graphc.ops.shape import expand_dims, shape, split, transpose
from graphc.ops.state import convert_to_tensor

__all__ = ["lstm", "gru", "simple_rnn", "lstm_weights_to_onnx", "lstm_weights_from_onnx",
           "gru_weights_to_onnx", "gru_weights_from_onnx", "rnn_weights_to_onnx",
           "rnn_weights_from_onnx"]


def _scoped(default: str) -> Callable[[Callable], Callable]:
    """Build the layer's nodes inside the name scope ``name`` (default: the layer's)."""
    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def build(x: Any, *args: Any, name: Optional[str] = None, **kwargs: Any) -> Any:
            graph = x.graph if isinstance(x, Tensor) else get_default_graph()
            with graph.name_scope(name or default):
                return fn(x, *args, **kwargs)
        return build
    return wrap


def _prepare(op: str, x: Any, W: Any, R: Any, gates: int, time_major: bool,
             biases: tuple = ()) -> tuple:
    """Tensors, checked: x time-major, W, R and the biases (None stays None)."""
    x = convert_to_tensor(x)
    W, R = (convert_to_tensor(v, x.dtype, graph=x.graph) for v in (W, R))
    biases = tuple(None if b is None else convert_to_tensor(b, x.dtype, graph=x.graph)
                   for b in biases)
    present = [x, W, R, *(b for b in biases if b is not None)]
    if not x.dtype.is_floating:
        raise fail(ShapeError(f"x must be a float tensor, got {x.dtype}"), op, *present)
    ranks = [(x, 3, "x (T, N, I)" if time_major else "x (N, T, I)"), (W, 2, "W (I, G*H)"),
             (R, 2, "R (H, G*H)")] + [(b, 1, "a bias (G*H,)") for b in biases if b is not None]
    for t, rank, what in ranks:
        if t.ndim is not None and t.ndim != rank:
            raise fail(ShapeError(f"{what} must have rank {rank}, got {t.shape}"), op, *present)
    hidden = R.shape[0] if R.ndim else None
    width = [d for d in [W.shape[1] if W.ndim else None, R.shape[1] if R.ndim else None,
                         *(b.shape[0] for b in biases if b is not None and b.ndim)]
             if d is not None]
    if hidden is not None:
        width.append(gates * hidden)
    if len(set(width)) > 1:
        raise fail(ShapeError(f"the gate widths of W, R and the biases must all be {gates}*H "
                              f"(H = R.shape[0] = {hidden}), got W {W.shape}, R {R.shape}"
                              + "".join(f", bias {b.shape}" for b in biases if b is not None)),
                   op, *present)
    if x.ndim and W.ndim and None not in (x.shape[2], W.shape[0]) and x.shape[2] != W.shape[0]:
        raise fail(ShapeError(f"x has {x.shape[2]} features but W has {W.shape[0]} rows"),
                   op, *present)
    if not time_major:
        x = transpose(x, [1, 0, 2])
    return (x, W, R, *biases)


def _zero_state(x: Tensor, R: Tensor, gates: int) -> Tensor:
    """Zeros of shape (N, H), from run-time shapes (N and H may be unknown)."""
    batch = reduce_sum(zeros_like(x[:, :, :1]), axis=0)  # (N, 1), also for T = 0
    size = None if R.shape is None else R.shape[0]
    # (1, H): one row of R when H is known (splitting all of R cost a copy of it per run)
    hidden = zeros_like(R[:1, :size] if size is not None else split(R, gates, axis=1)[0][:1])
    return batch + hidden


def _mask(x: Tensor, sequence_lengths: Any) -> Optional[Tensor]:
    """(T, N, 1) of x's dtype: 1 where step t < the sequence's length, else 0."""
    if sequence_lengths is None:
        return None
    lengths = convert_to_tensor(sequence_lengths, graph=x.graph)
    if not lengths.dtype.is_integer or lengths.ndim not in (None, 1):
        raise fail(ShapeError(f"sequence_lengths must be an int vector (N,), got "
                              f"{lengths.describe()}"), "rnn", lengths)
    lengths = cast(lengths, dtypes.int64)
    from graphc.ops.creation import range as gc_range

    steps = gc_range(0, shape(x, out_type=dtypes.int64)[0])
    valid = less(expand_dims(steps, 1), expand_dims(lengths, 0))  # (T, N)
    return expand_dims(cast(valid, x.dtype), -1)


def _keep(mask: Optional[Tensor], new: Tensor, old: Tensor) -> Tensor:
    """The new state where the step is valid, the old one past the sequence's end."""
    return new if mask is None else old + mask * (new - old)


def _run(step: Callable, xw: Tensor, b: Optional[Tensor], mask: Optional[Tensor],
         init: tuple, time_major: bool) -> tuple:
    """Scan ``step(states, x_t @ W + b, mask_t)`` over time (``xw``: the projections of
    all steps); returns (outputs, final states)."""
    elems = xw if mask is None else (xw, mask)

    def body(states: tuple, elem: Any) -> tuple:
        x_t, m_t = (elem, None) if mask is None else elem
        return step(states, x_t if b is None else x_t + b, m_t)

    # The scan's final carries, not stacked[-1]: also right for a sequence of 0 steps.
    finals, stacked = scan_with_finals(body, elems, initializer=init)
    outputs = stacked[0] if mask is None else stacked[0] * mask
    finals = tuple(finals)
    if not time_major:
        outputs = transpose(outputs, [1, 0, 2])
    return outputs, finals


@_scoped("lstm")
def lstm(x: Any, W: Any, R: Any, b: Any = None, initial_state: Any = None,
         sequence_lengths: Any = None, time_major: bool = True, peepholes: Any = None,
         name: Optional[str] = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """An LSTM over the time axis (layouts, gate order i, f, g, o, and equations: see the
    module docstring). ``initial_state``: ``(h0, c0)``, each ``(N, H)``. ``peepholes``:
    optional ``(3H,)`` weights ``[p_i, p_f, p_o]`` (ONNX's ``P``, reordered from its
    i, o, f): see the module docstring.

    Returns ``(outputs, (h_T, c_T))``: all hidden states ``(T, N, H)`` (``(N, T, H)`` if
    not ``time_major``; zero past each sequence's length) and the final states.
    """
    x, W, R, b = _prepare("lstm", x, W, R, 4, time_major, (b,))
    h0, c0 = initial_state if initial_state is not None else (None, None)
    h0 = _zero_state(x, R, 4) if h0 is None else convert_to_tensor(h0, x.dtype)
    c0 = _zero_state(x, R, 4) if c0 is None else convert_to_tensor(c0, x.dtype)

    p = None if peepholes is None else _peepholes(x, R, peepholes)

    def step(states: tuple, x_t: Tensor, m_t: Optional[Tensor]) -> tuple:
        h, c = states
        i, f, g, o = split(x_t + matmul(h, R), 4, axis=-1)
        if p is not None:  # the input and forget gates see c, the output gate c'
            i, f = i + p[0] * c, f + p[1] * c
        c_new = sigmoid(f) * c + sigmoid(i) * tanh(g)
        h_new = sigmoid(o if p is None else o + p[2] * c_new) * tanh(c_new)
        return _keep(m_t, h_new, h), _keep(m_t, c_new, c)

    outputs, (h_t, c_t) = _run(step, matmul(x, W), b, _mask(x, sequence_lengths),
                               (h0, c0), time_major)
    return outputs, (h_t, c_t)


def _peepholes(x: Tensor, R: Tensor, peepholes: Any) -> tuple:
    """The (3H,) peephole weights as (p_i, p_f, p_o), each (H,), checked against R."""
    p = convert_to_tensor(peepholes, x.dtype, graph=x.graph)
    hidden = None if R.shape is None else R.shape[0]
    if p.ndim is not None and (p.ndim != 1 or None not in (hidden, p.shape[0])
                               and p.shape[0] != 3 * hidden):
        want = "3*H" if hidden is None else 3 * hidden
        raise fail(ShapeError(f"peepholes must have shape ({want},) = (3*H,), got "
                              f"{list(p.shape)}"), "lstm", p, R)
    return tuple(split(p, 3, axis=0))


@_scoped("gru")
def gru(x: Any, W: Any, R: Any, b: Any = None, rb: Any = None, initial_state: Any = None,
        sequence_lengths: Any = None, time_major: bool = True,
        linear_before_reset: bool = True, name: Optional[str] = None) -> tuple[Tensor, Tensor]:
    """A GRU over the time axis (gate order z, r, h; ``b`` input bias, ``rb`` recurrent
    bias; ``linear_before_reset`` as ONNX, True = PyTorch's variant: see the module
    docstring). ``initial_state``: ``h0`` ``(N, H)``.

    Returns ``(outputs, h_T)``: all hidden states (zero past each sequence's length) and
    the final one.
    """
    x, W, R, b, rb = _prepare("gru", x, W, R, 3, time_major, (b, rb))
    h0 = _zero_state(x, R, 3) if initial_state is None else convert_to_tensor(initial_state,
                                                                               x.dtype)
    r_z, r_r, r_h = split(R, 3, axis=1)
    rb_parts = [None] * 3 if rb is None else split(rb, 3, axis=0)

    def add(v: Tensor, bias: Optional[Tensor]) -> Tensor:
        return v if bias is None else v + bias

    def step(states: tuple, x_t: Tensor, m_t: Optional[Tensor]) -> tuple:
        (h,) = states
        x_z, x_r, x_h = split(x_t, 3, axis=-1)
        if linear_before_reset:
            h_z, h_r, h_h = split(add(matmul(h, R), rb), 3, axis=-1)
            z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
            n = tanh(x_h + r * h_h)
        else:
            z = sigmoid(x_z + add(matmul(h, r_z), rb_parts[0]))
            r = sigmoid(x_r + add(matmul(h, r_r), rb_parts[1]))
            n = tanh(x_h + add(matmul(r * h, r_h), rb_parts[2]))
        h_new = (1.0 - z) * n + z * h
        return (_keep(m_t, h_new, h),)

    outputs, (h_t,) = _run(step, matmul(x, W), b, _mask(x, sequence_lengths), (h0,),
                           time_major)
    return outputs, h_t


_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"tanh": tanh, "sigmoid": sigmoid}


@_scoped("simple_rnn")
def simple_rnn(x: Any, W: Any, R: Any, b: Any = None, initial_state: Any = None,
               sequence_lengths: Any = None, activation: Union[str, Callable] = "tanh",
               time_major: bool = True, name: Optional[str] = None) -> tuple[Tensor, Tensor]:
    """An Elman RNN, ``h' = activation(x_t @ W + b + h @ R)`` (``activation``: "tanh",
    "relu", "sigmoid" or a callable). Returns ``(outputs, h_T)`` like :func:`gru`."""
    if isinstance(activation, str):
        if activation == "relu":
            from graphc.ops.nn import relu as act
        elif activation in _ACTIVATIONS:
            act = _ACTIVATIONS[activation]
        else:
            raise ValueError(f"simple_rnn: unknown activation {activation!r}; use 'tanh', "
                             "'relu', 'sigmoid' or a callable")
    else:
        act = activation
    x, W, R, b = _prepare("simple_rnn", x, W, R, 1, time_major, (b,))
    h0 = _zero_state(x, R, 1) if initial_state is None else convert_to_tensor(initial_state,
                                                                               x.dtype)

    def step(states: tuple, x_t: Tensor, m_t: Optional[Tensor]) -> tuple:
        (h,) = states
        return (_keep(m_t, act(x_t + matmul(h, R)), h),)

    outputs, (h_t,) = _run(step, matmul(x, W), b, _mask(x, sequence_lengths), (h0,),
                           time_major)
    return outputs, h_t


# -- ONNX weight layouts (pure NumPy) --------------------------------------------------------

_LSTM_TO_ONNX = [0, 3, 1, 2]    # ONNX gate k (i, o, f, c) is our gate _LSTM_TO_ONNX[k]
_LSTM_FROM_ONNX = [0, 2, 3, 1]  # our gate k (i, f, g, o) is ONNX gate _LSTM_FROM_ONNX[k]


def _gates_rows(m: np.ndarray, gates: int, order: list[int]) -> np.ndarray:
    """Reorder the gate blocks along axis 0 of ``m`` (G*H, ...)."""
    blocks = np.split(np.asarray(m), gates, axis=0)
    return np.concatenate([blocks[k] for k in order], axis=0)


def _to_onnx(W: Any, R: Any, b: Any, rb: Any, gates: int, order: list[int]) -> tuple:
    W, R = np.asarray(W), np.asarray(R)
    wb = np.zeros(W.shape[1], W.dtype) if b is None else np.asarray(b, W.dtype)
    rbias = np.zeros(W.shape[1], W.dtype) if rb is None else np.asarray(rb, W.dtype)
    B = np.concatenate([_gates_rows(wb, gates, order), _gates_rows(rbias, gates, order)])
    return (_gates_rows(W.T, gates, order)[None], _gates_rows(R.T, gates, order)[None], B[None])


def _from_onnx(W: Any, R: Any, B: Any, gates: int, order: list[int], direction: int) -> tuple:
    def one(a: Any, rank: int) -> np.ndarray:
        a = np.asarray(a)
        return a[direction] if a.ndim == rank + 1 else a
    W, R = one(W, 2), one(R, 2)
    ours_w = _gates_rows(W, gates, order).T.copy()
    ours_r = _gates_rows(R, gates, order).T.copy()
    if B is None:
        zero = np.zeros(W.shape[0], W.dtype)
        return ours_w, ours_r, zero, zero.copy()
    wb, rb = np.split(one(B, 1), 2)
    return ours_w, ours_r, _gates_rows(wb, gates, order), _gates_rows(rb, gates, order)


def lstm_weights_to_onnx(W: Any, R: Any, b: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Our LSTM weights (W (I, 4H), R (H, 4H), b (4H,); gates i, f, g, o) as ONNX LSTM's
    ``W`` (1, 4H, I), ``R`` (1, 4H, H), ``B`` (1, 8H) (gates i, o, f, c; ``Rb`` zero)."""
    return _to_onnx(W, R, b, None, 4, _LSTM_TO_ONNX)


def lstm_weights_from_onnx(W: Any, R: Any, B: Any = None,
                           direction: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX LSTM's ``W``, ``R``, ``B`` (with or without the num_directions axis; pick one
    direction) as our ``(W, R, b)``, with ``b = Wb + Rb``."""
    w, r, wb, rb = _from_onnx(W, R, B, 4, _LSTM_FROM_ONNX, direction)
    return w, r, wb + rb


def gru_weights_to_onnx(W: Any, R: Any, b: Any = None, rb: Any = None) -> tuple:
    """Our GRU weights (W (I, 3H), R (H, 3H), b, rb (3H,); gates z, r, h) as ONNX GRU's
    ``W`` (1, 3H, I), ``R`` (1, 3H, H), ``B`` = [Wb, Rb] (1, 6H) (same gate order)."""
    return _to_onnx(W, R, b, rb, 3, [0, 1, 2])


def gru_weights_from_onnx(W: Any, R: Any, B: Any = None, direction: int = 0) -> tuple:
    """ONNX GRU's ``W``, ``R``, ``B`` as our ``(W, R, b, rb)``."""
    return _from_onnx(W, R, B, 3, [0, 1, 2], direction)


def rnn_weights_to_onnx(W: Any, R: Any, b: Any = None) -> tuple:
    """Our simple RNN's (W (I, H), R (H, H), b (H,)) as ONNX RNN's ``W``, ``R``, ``B``."""
    return _to_onnx(W, R, b, None, 1, [0])


def rnn_weights_from_onnx(W: Any, R: Any, B: Any = None, direction: int = 0) -> tuple:
    """ONNX RNN's ``W``, ``R``, ``B`` as our ``(W, R, b)``, with ``b = Wb + Rb``."""
    w, r, wb, rb = _from_onnx(W, R, B, 1, [0], direction)
    return w, r, wb + rb
