"""N-d convolution, channels first (N, C, *spatial) with (O, C/groups, *k) weights: ``conv``,
its transpose ``conv_transpose`` and their gradient ops, for any number of spatial axes
(1-D, 2-D, 3-D: ONNX ``Conv``/``ConvTranspose`` on volumes).

The semantics are those of :mod:`graphc.ops.conv`'s 2-D ops, axis for axis (strides,
dilations, groups, ``"SAME"`` by TF's rule or explicit ``((begin, end), ...)`` pads, the
transposed size from ``like``, ``size`` or the natural one); the 2-D ops keep their names
and code because the cpu target has im2col kernels for them. Three primitives, each the
adjoint of another, so gradients are graphs of the same three ops (second order works):

* ``conv(x, w)`` -> (N, O, *out);
* ``conv_backprop_input(g, w[, like])``: the transposed convolution (gradient in x);
* ``conv_backprop_filter(x, g, like)``: the gradient in w (``like`` is w, for its size).

The reference is im2col through a strided window view contracted with ``np.tensordot``
(BLAS), one group at a time; the transpose adds each kernel cell's contribution back.
"""

from __future__ import annotations

import itertools
from typing import Any, Optional, Sequence

import numpy as np

from graphc.errors import ShapeError
from graphc.graph import Tensor, TensorSpec
from graphc.op import Kind, apply1, defop
from graphc.ops.args import fail, is_int
from graphc.ops.conv import (_check_channels, _checked_at_run, _float_dtype, out_dim,
                             resolve_pads, windows)
from graphc.ops.elementwise import promote

__all__ = ["conv", "conv_transpose", "tuple_attr", "nd_padding_attr"]


def _check_attrs(nd: int, strides: tuple, dilations: tuple, groups: int, padding: Any) -> None:
    if len(strides) != nd or len(dilations) != nd or (padding != "SAME" and len(padding) != nd):
        raise ShapeError(f"strides {strides}, dilations {dilations} and padding {padding} "
                         f"must have one entry per spatial axis ({nd})")
    if min(strides) < 1 or min(dilations) < 1:
        raise ShapeError(f"strides {strides} and dilations {dilations} must be positive")
    if not is_int(groups) or groups < 1:
        raise ShapeError(f"groups must be a positive int, got {groups!r}")
    if padding != "SAME" and min(min(p) for p in padding) < 0:
        raise ShapeError(f"padding {padding} must be non-negative")


def _dims(spec: TensorSpec, nd: int, what: str) -> tuple:
    if spec.shape is None:
        return (None,) * (nd + 2)
    if len(spec.shape) != nd + 2:
        raise ShapeError(f"{what} must have rank {nd + 2} for {nd} spatial axes, got shape "
                         f"{list(spec.shape)}")
    return tuple(spec.shape)


def _out(sizes: Sequence, k: Sequence, attrs: dict) -> tuple:
    return tuple(out_dim(sizes[a], k[a], attrs["strides"][a], attrs["dilations"][a],
                         attrs["padding"], a) for a in range(len(sizes)))


def _attrs(node_or_attrs: Any) -> dict:
    a = getattr(node_or_attrs, "attrs", node_or_attrs)
    return {k: a[k] for k in ("strides", "padding", "dilations", "groups")}


# -- conv ---------------------------------------------------------------------------------------

def infer_conv(x: TensorSpec, w: TensorSpec, **attrs: Any) -> TensorSpec:
    """(N, O, *out) from x (N, C, *spatial) and w (O, C/groups, *k)."""
    dtype = _float_dtype(x, w)
    nd = len(attrs["strides"])
    _check_attrs(nd, attrs["strides"], attrs["dilations"], attrs["groups"], attrs["padding"])
    xs, ws = _dims(x, nd, "the input"), _dims(w, nd, "the weights")
    _check_channels(xs[1], ws[0], ws[1], attrs["groups"])
    return TensorSpec((xs[0], ws[0]) + _out(xs[2:], ws[2:], attrs), dtype)


def conv_ref(x: np.ndarray, w: np.ndarray, **attrs: Any) -> np.ndarray:
    """Cross-correlation: im2col view + tensordot per group."""
    _checked_at_run("conv", infer_conv, (x, w), **attrs)
    nd, k = len(attrs["strides"]), w.shape[2:]
    pads = resolve_pads(attrs["padding"], x.shape[2:], k, attrs["strides"], attrs["dilations"])
    out = _out(x.shape[2:], k, dict(attrs, padding=pads))
    cols = windows(np.pad(x, ((0, 0), (0, 0)) + tuple(pads)), out, k, attrs["strides"],
                   attrs["dilations"])                               # (N, C, *out, *k)
    groups, o, cg = attrs["groups"], w.shape[0], w.shape[1]
    og = o // groups
    y = np.empty((x.shape[0], o) + tuple(out), x.dtype)
    win = list(range(2 + nd, 2 + 2 * nd))
    for g in range(groups):
        part = np.tensordot(cols[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og],
                            axes=([1] + win, [1] + list(range(2, 2 + nd))))  # (N, *out, O/G)
        y[:, g * og:(g + 1) * og] = np.moveaxis(part, -1, 1)
    return y


def _vjp_conv(node: Any, g: Tensor) -> list:
    x, w = node.inputs
    attrs = _attrs(node)
    return [apply1("conv_backprop_input", [g, w, x], dict(attrs, size=None)),
            apply1("conv_backprop_filter", [x, g, w], attrs)]


defop("conv", kind=Kind.OPAQUE, infer=infer_conv, ref=conv_ref, vjp=_vjp_conv,
      input_names=("x", "w"),
      doc="N-d cross-correlation, (N, C, *spatial) input and (O, C/groups, *k) weights")


# -- the transposed convolution (input gradient) ------------------------------------------------

def _natural(size: Optional[int], k: Optional[int], s: int, d: int, padding: Any,
             axis: int) -> Optional[int]:
    if size is None:
        return None
    if padding == "SAME":
        return size * s
    if k is None:
        return None
    out = (size - 1) * s + (k - 1) * d + 1 - sum(padding[axis])
    if out < 1:
        raise ShapeError(f"padding {padding} leaves no output along spatial axis {axis}")
    return out


def infer_bp_input(g: TensorSpec, w: TensorSpec, *like: TensorSpec, size: Optional[tuple],
                   **attrs: Any) -> TensorSpec:
    """(N, C, *spatial) of the transposed convolution of g (N, O, *out) with w."""
    dtype = _float_dtype(g, w)
    nd, groups = len(attrs["strides"]), attrs["groups"]
    _check_attrs(nd, attrs["strides"], attrs["dilations"], groups, attrs["padding"])
    gs = _dims(g, nd, "the gradient (or transposed-convolution input)")
    ws = _dims(w, nd, "the weights")
    n, o, o2 = gs[0], gs[1], ws[0]
    if o is not None and o2 is not None and o != o2:
        raise ShapeError(f"the input has {o} channels, but the weights have {o2} (their "
                         "first axis)")
    if o2 is not None and o2 % groups:
        raise ShapeError(f"{o2} channels cannot be split into {groups} groups")
    c = None if ws[1] is None else ws[1] * groups
    if like:
        ls = _dims(like[0], nd, "like")
        sp = ls[2:]
        n = n if n is not None else ls[0]
        c = c if c is not None else ls[1]
    elif size is not None:
        if len(size) != nd:
            raise ShapeError(f"size {size} must have one entry per spatial axis ({nd})")
        sp = tuple(size)
    else:
        sp = tuple(_natural(gs[2 + a], ws[2 + a], attrs["strides"][a], attrs["dilations"][a],
                            attrs["padding"], a) for a in range(nd))
    back = _out(sp, ws[2:], attrs)  # convolving the result must give g's size back
    for a in range(nd):
        if back[a] is not None and gs[2 + a] is not None and back[a] != gs[2 + a]:
            raise ShapeError(f"an output size of {sp[a]} along spatial axis {a} does not "
                             f"match: convolving it gives {back[a]}, not {gs[2 + a]}")
    return TensorSpec((n, c) + tuple(sp), dtype)


def bp_input_ref(g: np.ndarray, w: np.ndarray, *like: np.ndarray, size: Optional[tuple],
                 **attrs: Any) -> np.ndarray:
    """Each kernel cell's contribution added back at its strided window positions."""
    spec = _checked_at_run("conv_backprop_input", infer_bp_input, (g, w) + like, size=size,
                           **attrs)
    sp, k = spec.shape[2:], w.shape[2:]
    strides, dil, groups = attrs["strides"], attrs["dilations"], attrs["groups"]
    nd = len(k)
    pads = resolve_pads(attrs["padding"], sp, k, strides, dil)
    out = g.shape[2:]
    og, cg = g.shape[1] // groups, w.shape[1]
    xp = np.zeros((g.shape[0], cg * groups) + tuple(sp[a] + sum(pads[a]) for a in range(nd)),
                  g.dtype)
    for gi in range(groups):
        # contrib[n, c, *out, *k] = sum_o g[n, o, *out] w[o, c, *k]
        contrib = np.moveaxis(np.tensordot(g[:, gi * og:(gi + 1) * og],
                                           w[gi * og:(gi + 1) * og], axes=([1], [0])),
                              1 + nd, 1)
        target = xp[:, gi * cg:(gi + 1) * cg]
        for cell in itertools.product(*(range(kk) for kk in k)):
            index = tuple(slice(cell[a] * dil[a], cell[a] * dil[a] + strides[a] * (out[a] - 1)
                                + 1, strides[a]) for a in range(nd))
            target[(slice(None), slice(None)) + index] += contrib[(Ellipsis,) + cell]
    crop = tuple(slice(pads[a][0], pads[a][0] + sp[a]) for a in range(nd))
    return np.ascontiguousarray(xp[(slice(None), slice(None)) + crop])


def _vjp_bp_input(node: Any, h: Tensor) -> list:
    g, w = node.inputs[:2]
    attrs = _attrs(node)
    grads = [apply1("conv", [h, w], attrs), apply1("conv_backprop_filter", [h, g, w], attrs)]
    return grads + [None] * (len(node.inputs) - 2)


defop("conv_backprop_input", kind=Kind.OPAQUE, infer=infer_bp_input, ref=bp_input_ref,
      vjp=_vjp_bp_input, input_names=("g", "w", "like"),
      doc="the N-d transposed convolution: the gradient of conv with respect to its input")


# -- the filter gradient --------------------------------------------------------------------------

def infer_bp_filter(x: TensorSpec, g: TensorSpec, like: TensorSpec, **attrs: Any) -> TensorSpec:
    """like's (O, C/groups, *k) spec, once x and g are checked to fit."""
    dtype = _float_dtype(x, g)
    nd, groups = len(attrs["strides"]), attrs["groups"]
    _check_attrs(nd, attrs["strides"], attrs["dilations"], groups, attrs["padding"])
    xs, gs = _dims(x, nd, "the input"), _dims(g, nd, "the gradient")
    ls = _dims(like, nd, "like (the weights)")
    c, o = xs[1], gs[1]
    _check_channels(c, o, None if c is None else c // groups, groups)
    back = _out(xs[2:], ls[2:], attrs)
    for a in range(nd):
        if back[a] is not None and gs[2 + a] is not None and back[a] != gs[2 + a]:
            raise ShapeError(f"the gradient's size along spatial axis {a} is {gs[2 + a]}, but "
                             f"the convolution gives {back[a]}")
    return TensorSpec((o if o is not None else ls[0],
                       ls[1] if ls[1] is not None else None if c is None else c // groups)
                      + tuple(ls[2:]), dtype)


def bp_filter_ref(x: np.ndarray, g: np.ndarray, like: np.ndarray, **attrs: Any) -> np.ndarray:
    """g contracted with the im2col view of x, per group."""
    _checked_at_run("conv_backprop_filter", infer_bp_filter, (x, g, like), **attrs)
    k, groups = like.shape[2:], attrs["groups"]
    nd = len(k)
    pads = resolve_pads(attrs["padding"], x.shape[2:], k, attrs["strides"], attrs["dilations"])
    cols = windows(np.pad(x, ((0, 0), (0, 0)) + tuple(pads)), g.shape[2:], k, attrs["strides"],
                   attrs["dilations"])
    o, cg = g.shape[1], x.shape[1] // groups
    og = o // groups
    dw = np.empty((o, cg) + tuple(k), x.dtype)
    axes = [0] + list(range(2, 2 + nd))
    for gi in range(groups):
        dw[gi * og:(gi + 1) * og] = np.tensordot(g[:, gi * og:(gi + 1) * og],
                                                 cols[:, gi * cg:(gi + 1) * cg],
                                                 axes=(axes, axes))
    return dw


def _vjp_bp_filter(node: Any, h: Tensor) -> list:
    x, g, _ = node.inputs
    attrs = _attrs(node)
    return [apply1("conv_backprop_input", [g, h, x], dict(attrs, size=None)),
            apply1("conv", [x, h], attrs), None]


defop("conv_backprop_filter", kind=Kind.OPAQUE, infer=infer_bp_filter, ref=bp_filter_ref,
      vjp=_vjp_bp_filter, input_names=("x", "g", "like"),
      doc="the gradient of the N-d conv with respect to its weights (like: the weights)")


# -- builders -------------------------------------------------------------------------------------

def tuple_attr(value: Any, nd: int, what: str, op: str) -> tuple:
    """An int or ``nd`` ints as a tuple of ``nd`` ints (positivity is checked by infer)."""
    if isinstance(value, Tensor):
        raise TypeError(f"{op}: {what} must be static Python ints, not the tensor {value.name}")
    items = (value,) * nd if is_int(value) else tuple(value) if isinstance(
        value, (list, tuple)) else None
    if items is None or len(items) != nd or not all(is_int(v) for v in items):
        raise TypeError(f"{op}: {what} must be an int or {nd} ints, got {value!r}")
    return tuple(int(v) for v in items)


def nd_padding_attr(padding: Any, nd: int, op: str) -> Any:
    """``"SAME"``, or one explicit (begin, end) pair per spatial axis from "VALID", an int,
    ``nd`` ints (symmetric) or ``nd`` pairs."""
    if isinstance(padding, str) and padding.upper() in ("SAME", "VALID"):
        return "SAME" if padding.upper() == "SAME" else ((0, 0),) * nd
    if is_int(padding):
        return ((int(padding),) * 2,) * nd
    if isinstance(padding, (list, tuple)) and len(padding) == nd:
        if all(is_int(p) for p in padding):
            return tuple((int(p), int(p)) for p in padding)
        if all(isinstance(p, (list, tuple)) and len(p) == 2 and all(is_int(v) for v in p)
               for p in padding):
            return tuple((int(p[0]), int(p[1])) for p in padding)
    raise ValueError(f"{op}: padding must be 'VALID', 'SAME', an int, {nd} ints or {nd} "
                     f"(begin, end) pairs, got {padding!r}")


def _builder_attrs(op: str, x: Tensor, strides: Any, padding: Any, dilations: Any,
                   groups: Any) -> dict:
    if x.ndim is None or x.ndim < 3:
        raise fail(ShapeError(f"needs an input of known rank >= 3 (N, C, *spatial), got "
                              f"{'unknown rank' if x.ndim is None else x.ndim}"), op, x)
    if not is_int(groups):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    nd = x.ndim - 2
    return {"strides": tuple_attr(strides, nd, "strides", op),
            "padding": nd_padding_attr(padding, nd, op),
            "dilations": tuple_attr(dilations, nd, "dilations", op), "groups": int(groups)}


def conv(x: Any, w: Any, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1,
         groups: int = 1, name: Optional[str] = None) -> Tensor:
    """N-d convolution (cross-correlation) of ``x`` (N, C, *spatial) with ``w``
    (O, C/groups, *k); arguments as :func:`graphc.ops.conv.conv2d`, one entry per axis."""
    x, w = promote(x, w)
    return apply1("conv", [x, w], _builder_attrs("conv", x, strides, padding, dilations,
                                                 groups), name=name)


def conv_transpose(x: Any, w: Any, output_shape: Any = None, strides: Any = 1,
                   padding: Any = "VALID", dilations: Any = 1, groups: int = 1,
                   name: Optional[str] = None) -> Tensor:
    """The N-d transposed convolution of ``x`` (N, C_in, *spatial) with ``w`` in
    (C_in, C_out/groups, *k) layout (ONNX ``ConvTranspose``). ``output_shape``: the output's
    spatial sizes (or the full shape); without it the natural size, as
    :func:`graphc.ops.conv.conv2d_transpose`."""
    x, w = promote(x, w)
    attrs = _builder_attrs("conv_transpose", x, strides, padding, dilations, groups)
    size = None
    if output_shape is not None:
        nd = len(attrs["strides"])
        dims = list(output_shape)[-nd:]
        if len(dims) != nd or not all(is_int(d) for d in dims):
            raise TypeError(f"conv_transpose: output_shape must end with {nd} static "
                            f"spatial sizes, got {output_shape!r}")
        size = tuple(int(d) for d in dims)
    return apply1("conv_backprop_input", [x, w], dict(attrs, size=size), name=name)
