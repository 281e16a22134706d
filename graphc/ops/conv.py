"""2-D convolution in NCHW layout with OIHW weights (as ONNX and PyTorch), its transpose,
and the window arithmetic that pooling shares.

Three primitives, each the adjoint of another, so every gradient is a graph of the same
three ops and can be differentiated again (second order) and exported:

* ``conv2d(x, w)``: ``x`` (N, C, H, W), ``w`` (O, C/groups, kh, kw) -> (N, O, Ho, Wo);
* ``conv2d_backprop_input(g, w[, like])``: the transposed convolution, the gradient of
  ``conv2d`` with respect to ``x``; its spatial output size comes from ``like`` (x itself,
  read at run time), else from the ``size`` attribute, else it is the natural size (below);
* ``conv2d_backprop_filter(x, g, like)``: the gradient with respect to ``w`` (``like`` is
  ``w``, for its kernel size).

Padding attribute: ``"SAME"`` (TF's rule, resolved from the run-time input size so unknown
H/W work: ``total = max((ceil(in/s) - 1)*s + (k-1)*d + 1 - in, 0)`` per axis, the odd cell
at the bottom/right) or explicit ``((top, bottom), (left, right))``; ``"VALID"`` and ints
become explicit pads in the builders.

``conv2d_transpose`` is ``conv2d_backprop_input`` with weights (C_in, C_out/groups, kh, kw),
the layout of PyTorch's ``ConvTranspose2d`` and ONNX's ``ConvTranspose``. For strides > 1
several input sizes give the same convolution output, so the transposed size is ambiguous:
``output_shape`` picks one (TF semantics); without it the natural size is used:
``(in - 1)*s + (k - 1)*d + 1 - pad_total`` for explicit padding (PyTorch with
``output_padding=0``) and ``in * s`` for ``"SAME"`` (TF/Keras).

The reference is im2col without copies (a strided window view) contracted with BLAS
(``np.tensordot``), one group at a time.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from graphc.errors import DTypeError, ShapeError
from graphc.graph import Tensor, TensorSpec
from graphc.op import Kind, apply1, defop
from graphc.ops.args import is_int
from graphc.ops.elementwise import promote

__all__ = ["conv2d", "conv2d_transpose", "conv2d_backprop_input", "conv2d_backprop_filter",
           "pair_attr", "padding_attr", "resolve_pads", "out_dim", "windows"]

Pair = tuple[int, int]
Pads = tuple[Pair, Pair]


# -- argument normalization (builders) ------------------------------------------------------

def pair_attr(value: Any, what: str, op: str) -> Pair:
    """An int or a pair of ints as a pair (checked for positivity by ``infer``)."""
    if isinstance(value, Tensor):
        raise TypeError(f"{op}: {what} must be static Python ints, not the tensor {value.name}")
    items = (value, value) if is_int(value) else tuple(value) if isinstance(
        value, (list, tuple)) else None
    if items is None or len(items) != 2 or not all(is_int(v) for v in items):
        raise TypeError(f"{op}: {what} must be an int or a pair of ints, got {value!r}")
    return int(items[0]), int(items[1])


def padding_attr(padding: Any, op: str) -> Any:
    """``"SAME"``, or explicit ``((top, bottom), (left, right))`` from "VALID", an int, a
    pair (symmetric per axis) or a pair of pairs."""
    if isinstance(padding, str):
        if padding.upper() == "SAME":
            return "SAME"
        if padding.upper() == "VALID":
            return ((0, 0), (0, 0))
        raise ValueError(f"{op}: padding must be 'VALID', 'SAME', an int or "
                         f"((top, bottom), (left, right)), got {padding!r}")
    if is_int(padding):
        return ((int(padding),) * 2,) * 2
    if isinstance(padding, (list, tuple)) and len(padding) == 2:
        if all(is_int(p) for p in padding):
            return tuple((int(p), int(p)) for p in padding)
        if all(isinstance(p, (list, tuple)) and len(p) == 2 and all(is_int(v) for v in p)
               for p in padding):
            return tuple((int(p[0]), int(p[1])) for p in padding)
    raise ValueError(f"{op}: padding must be 'VALID', 'SAME', an int or "
                     f"((top, bottom), (left, right)), got {padding!r}")


# -- window arithmetic (shared with pool.py) ------------------------------------------------

def _same_pads(size: int, k: int, s: int, d: int) -> Pair:
    total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2  # the odd cell goes to the bottom/right, as TF


def resolve_pads(padding: Any, size: Sequence[int], k: Sequence[int], s: Sequence[int],
                 d: Sequence[int]) -> Pads:
    """Explicit pads for run-time sizes (``"SAME"`` resolved by TF's rule), one pair per
    spatial axis (any number of them: pooling is N-d)."""
    if padding == "SAME":
        return tuple(_same_pads(size[i], k[i], s[i], d[i]) for i in range(len(k)))  # type: ignore
    return padding


def out_dim(size: Optional[int], k: Optional[int], s: int, d: int, padding: Any,
            axis: int) -> Optional[int]:
    """The output length of a window op along spatial ``axis`` (None when unknown); a
    ShapeError when the (dilated) window does not fit in the padded input."""
    if size is None:
        return None
    if padding == "SAME":
        return math.ceil(size / s)
    if k is None:
        return None
    lo, hi = padding[axis]
    span = (k - 1) * d + 1
    if size + lo + hi < span:
        raise ShapeError(f"the {'dilated ' if d > 1 else ''}window ({span}) is larger than the "
                         f"padded input ({size} + {lo + hi}) along {_axis_name(axis, padding)}")
    return (size + lo + hi - span) // s + 1


def _axis_name(axis: int, padding: Any) -> str:
    return ("height", "width")[axis] if len(padding) == 2 else f"spatial axis {axis}"


def windows(xp: np.ndarray, out: Sequence[int], k: Sequence[int], s: Sequence[int],
            d: Sequence[int]) -> np.ndarray:
    """The (N, C, *out, *k) view of padded ``xp`` (N, C, *spatial) whose
    [..., i, j, a, b] (2-D) is ``xp[..., i*s0 + a*d0, j*s1 + b*d1]`` (no copy); any number
    of spatial axes."""
    sp = xp.strides[2:]
    return np.lib.stride_tricks.as_strided(
        xp, tuple(xp.shape[:2]) + tuple(out) + tuple(k),
        tuple(xp.strides[:2]) + tuple(st * si for st, si in zip(sp, s))
        + tuple(st * di for st, di in zip(sp, d)), writeable=False)


def _check_window_attrs(strides: Pair, dilations: Pair, groups: int, padding: Any) -> None:
    if min(strides) < 1 or min(dilations) < 1:
        raise ShapeError(f"strides {strides} and dilations {dilations} must be positive")
    if not is_int(groups) or groups < 1:
        raise ShapeError(f"groups must be a positive int, got {groups!r}")
    if padding != "SAME" and min(min(p) for p in padding) < 0:
        raise ShapeError(f"padding {padding} must be non-negative")


def _dims(spec: TensorSpec, what: str) -> tuple:
    if spec.shape is None:
        return (None,) * 4
    if len(spec.shape) != 4:
        raise ShapeError(f"{what} must have rank 4 (NCHW / OIHW), got shape "
                         f"{list(spec.shape)}")
    return spec.shape


def _float_dtype(*specs: TensorSpec) -> Any:
    if any(s.dtype != specs[0].dtype for s in specs) or not specs[0].dtype.is_floating:
        raise DTypeError("inputs must be floats of one dtype, got "
                         + ", ".join(str(s.dtype) for s in specs))
    return specs[0].dtype


def _check_channels(c: Optional[int], o: Optional[int], i: Optional[int], groups: int) -> None:
    if c is not None and i is not None and c != i * groups:
        raise ShapeError(f"the input has {c} channels, but the weights expect {i * groups} "
                         f"({i} per group x {groups} groups)")
    if o is not None and o % groups:
        raise ShapeError(f"{o} output channels cannot be split into {groups} groups")


def _conv_out(h: Any, w: Any, k: Any, attrs: dict) -> tuple:
    return tuple(out_dim((h, w)[a], k[a], attrs["strides"][a], attrs["dilations"][a],
                         attrs["padding"], a) for a in range(2))


# -- conv2d -----------------------------------------------------------------------------------

def _infer_conv(x: TensorSpec, w: TensorSpec, **attrs: Any) -> TensorSpec:
    dtype = _float_dtype(x, w)
    _check_window_attrs(attrs["strides"], attrs["dilations"], attrs["groups"], attrs["padding"])
    n, c, h, wd = _dims(x, "the input")
    o, i, kh, kw = _dims(w, "the weights")
    _check_channels(c, o, i, attrs["groups"])
    return TensorSpec((n, o) + _conv_out(h, wd, (kh, kw), attrs), dtype)


def _checked_at_run(op: str, infer: Any, arrays: Sequence[np.ndarray], **attrs: Any) -> TensorSpec:
    """Re-run inference on the run-time shapes: sizes unknown when the graph was built are
    checked here, with the same messages."""
    from graphc import dtypes

    try:
        return infer(*(TensorSpec(a.shape, dtypes.as_dtype(a.dtype)) for a in arrays), **attrs)
    except ShapeError as err:
        raise err.with_context(op) from None


def _conv_ref(x: np.ndarray, w: np.ndarray, **attrs: Any) -> np.ndarray:
    # Checked with the 2-D rule (its messages name height and width), computed by the N-d
    # reference, which is the one implementation of the arithmetic.
    from graphc.ops.conv_nd import conv_ref

    _checked_at_run("conv2d", _infer_conv, (x, w), **attrs)
    return conv_ref(x, w, **attrs)


def _conv_attrs(node: Any) -> dict:
    return {k: node.attrs[k] for k in ("strides", "padding", "dilations", "groups")}


def _vjp_conv(node: Any, g: Tensor) -> list:
    x, w = node.inputs
    attrs = _conv_attrs(node)
    return [apply1("conv2d_backprop_input", [g, w, x], dict(attrs, size=None)),
            apply1("conv2d_backprop_filter", [x, g, w], attrs)]


defop("conv2d", kind=Kind.OPAQUE, infer=_infer_conv, ref=_conv_ref, vjp=_vjp_conv,
      input_names=("x", "w"),
      doc="2-D cross-correlation, NCHW input and OIHW weights, with strides, padding, "
          "dilations and groups")


# -- the transposed convolution (input gradient) ---------------------------------------------

def _natural(size: Optional[int], k: Optional[int], s: int, d: int, padding: Any,
             axis: int) -> Optional[int]:
    if size is None:
        return None
    if padding == "SAME":
        return size * s
    if k is None:
        return None
    lo, hi = padding[axis]
    out = (size - 1) * s + (k - 1) * d + 1 - lo - hi
    if out < 1:
        raise ShapeError(f"padding {padding} leaves no output along "
                         f"{('height', 'width')[axis]}")
    return out


def _infer_bp_input(g: TensorSpec, w: TensorSpec, *like: TensorSpec, size: Optional[Pair],
                    **attrs: Any) -> TensorSpec:
    dtype = _float_dtype(g, w)
    _check_window_attrs(attrs["strides"], attrs["dilations"], attrs["groups"], attrs["padding"])
    n, o, ho, wo = _dims(g, "the gradient (or transposed-convolution input)")
    o2, i, kh, kw = _dims(w, "the weights")
    groups = attrs["groups"]
    if o is not None and o2 is not None and o != o2:
        raise ShapeError(f"the input has {o} channels, but the weights have {o2} (their "
                         "first axis)")
    if o2 is not None and o2 % groups:
        raise ShapeError(f"{o2} channels cannot be split into {groups} groups")
    c = None if i is None else i * groups
    if like:
        out = _dims(like[0], "like")
        hw = out[2:]
        n = n if n is not None else out[0]
        c = c if c is not None else out[1]
    elif size is not None:
        hw = size
    else:
        hw = tuple(_natural((ho, wo)[a], (kh, kw)[a], attrs["strides"][a],
                            attrs["dilations"][a], attrs["padding"], a) for a in range(2))
    # The convolution of the result must give back the gradient's spatial size.
    back = _conv_out(hw[0], hw[1], (kh, kw), attrs)
    for a in range(2):
        if back[a] is not None and (ho, wo)[a] is not None and back[a] != (ho, wo)[a]:
            raise ShapeError(f"an output {('height', 'width')[a]} of {hw[a]} does not match: "
                             f"convolving it gives {back[a]}, not {(ho, wo)[a]}")
    return TensorSpec((n, c) + tuple(hw), dtype)


def _bp_input_ref(g: np.ndarray, w: np.ndarray, *like: np.ndarray, size: Optional[Pair],
                  **attrs: Any) -> np.ndarray:
    from graphc.ops.conv_nd import bp_input_ref

    _checked_at_run("conv2d_backprop_input", _infer_bp_input, (g, w) + like, size=size, **attrs)
    return bp_input_ref(g, w, *like, size=size, **attrs)


def _vjp_bp_input(node: Any, h: Tensor) -> list:
    g, w = node.inputs[:2]
    attrs = _conv_attrs(node)
    grads = [apply1("conv2d", [h, w], attrs), apply1("conv2d_backprop_filter", [h, g, w], attrs)]
    return grads + [None] * (len(node.inputs) - 2)


defop("conv2d_backprop_input", kind=Kind.OPAQUE, infer=_infer_bp_input, ref=_bp_input_ref,
      vjp=_vjp_bp_input, input_names=("g", "w", "like"),
      doc="the transposed convolution: the gradient of conv2d with respect to its input; the "
          "spatial size is like's, else `size`, else the natural one")


# -- the filter gradient ------------------------------------------------------------------------

def _infer_bp_filter(x: TensorSpec, g: TensorSpec, like: TensorSpec, **attrs: Any) -> TensorSpec:
    dtype = _float_dtype(x, g)
    _check_window_attrs(attrs["strides"], attrs["dilations"], attrs["groups"], attrs["padding"])
    n, c, h, wd = _dims(x, "the input")
    n2, o, ho, wo = _dims(g, "the gradient")
    o2, i, kh, kw = _dims(like, "like (the weights)")
    groups = attrs["groups"]
    _check_channels(c, o, None if c is None else c // groups, groups)
    back = _conv_out(h, wd, (kh, kw), attrs)
    for a in range(2):
        if back[a] is not None and (ho, wo)[a] is not None and back[a] != (ho, wo)[a]:
            raise ShapeError(f"the gradient's {('height', 'width')[a]} is {(ho, wo)[a]}, but "
                             f"the convolution gives {back[a]}")
    return TensorSpec((o if o is not None else o2, i if i is not None else
                       (None if c is None else c // groups), kh, kw), dtype)


def _bp_filter_ref(x: np.ndarray, g: np.ndarray, like: np.ndarray, **attrs: Any) -> np.ndarray:
    from graphc.ops.conv_nd import bp_filter_ref

    _checked_at_run("conv2d_backprop_filter", _infer_bp_filter, (x, g, like), **attrs)
    return bp_filter_ref(x, g, like, **attrs)


def _vjp_bp_filter(node: Any, h: Tensor) -> list:
    x, g, _ = node.inputs
    attrs = _conv_attrs(node)
    return [apply1("conv2d_backprop_input", [g, h, x], dict(attrs, size=None)),
            apply1("conv2d", [x, h], attrs), None]


defop("conv2d_backprop_filter", kind=Kind.OPAQUE, infer=_infer_bp_filter, ref=_bp_filter_ref,
      vjp=_vjp_bp_filter, input_names=("x", "g", "like"),
      doc="the gradient of conv2d with respect to its weights (like: the weights)")


# -- builders -------------------------------------------------------------------------------------

def _attrs(op: str, strides: Any, padding: Any, dilations: Any, groups: Any) -> dict:
    if not is_int(groups):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    return {"strides": pair_attr(strides, "strides", op), "padding": padding_attr(padding, op),
            "dilations": pair_attr(dilations, "dilations", op), "groups": int(groups)}


def _check_format(op: str, data_format: str) -> None:
    if data_format != "NCHW":
        raise ValueError(f"{op}: only data_format='NCHW' is supported (input N, C, H, W; "
                         f"weights O, I, kh, kw), got {data_format!r}; transpose NHWC input "
                         "with gc.transpose(x, [0, 3, 1, 2])")


def conv2d(x: Any, w: Any, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1,
           groups: int = 1, data_format: str = "NCHW", name: Optional[str] = None) -> Tensor:
    """2-D convolution (cross-correlation, as TF/PyTorch) of ``x`` (N, C, H, W) with ``w``
    (O, C/groups, kh, kw) -> (N, O, Ho, Wo).

    ``strides``/``dilations``: an int or (h, w). ``padding``: ``"VALID"``, ``"SAME"`` (TF's
    rule, the odd cell at the bottom/right; resolved at run time when H/W are unknown), an
    int, (ph, pw) or ((top, bottom), (left, right)). ``groups`` splits the channels as
    PyTorch (``groups == C`` is a depthwise convolution). Only ``data_format="NCHW"``.
    """
    _check_format("conv2d", data_format)
    attrs = _attrs("conv2d", strides, padding, dilations, groups)
    x, w = promote(x, w)
    return apply1("conv2d", [x, w], attrs, name=name)


def conv2d_transpose(x: Any, w: Any, output_shape: Any = None, strides: Any = 1,
                     padding: Any = "VALID", dilations: Any = 1, groups: int = 1,
                     data_format: str = "NCHW", name: Optional[str] = None) -> Tensor:
    """The transposed convolution ("deconvolution") of ``x`` (N, C_in, H, W) with ``w`` in
    **(C_in, C_out/groups, kh, kw)** layout — PyTorch's ``ConvTranspose2d`` / ONNX's
    ``ConvTranspose`` — i.e. the gradient of ``conv2d`` with those weights read as OIHW.

    ``output_shape``: (N, C_out, H, W) (N may be None/-1) or (H, W), choosing among the
    sizes that convolve back to (H_in, W_in) when strides > 1 (TF semantics). Without it:
    ``(in-1)*s + (k-1)*d + 1 - pad_total`` for explicit padding (PyTorch's size with
    ``output_padding=0``), ``in*s`` for ``"SAME"``.
    """
    _check_format("conv2d_transpose", data_format)
    attrs = _attrs("conv2d_transpose", strides, padding, dilations, groups)
    x, w = promote(x, w)
    size = None
    if output_shape is not None:
        if isinstance(output_shape, Tensor):
            raise TypeError("conv2d_transpose: output_shape must be static ints, not the "
                            f"tensor {output_shape.name}")
        dims = [None if d is None or d == -1 else d for d in output_shape]
        if len(dims) not in (2, 4) or not all(is_int(d) for d in dims[-2:]):
            raise TypeError("conv2d_transpose: output_shape must be (N, C, H, W) or (H, W) "
                            f"with static H and W, got {output_shape!r}")
        if len(dims) == 4 and dims[1] is not None and w.ndim == 4 and w.shape[1] is not None \
                and dims[1] != w.shape[1] * groups:
            from graphc.ops.args import fail

            raise fail(ShapeError(f"output_shape has {dims[1]} channels, but the weights give "
                                  f"{w.shape[1] * groups}"), "conv2d_transpose", x, w)
        size = (int(dims[-2]), int(dims[-1]))
    return apply1("conv2d_backprop_input", [x, w], dict(attrs, size=size), name=name)


def conv2d_backprop_input(g: Tensor, w: Tensor, like: Tensor, strides: Any = 1,
                          padding: Any = "VALID", dilations: Any = 1, groups: int = 1) -> Tensor:
    """The gradient of ``conv2d(like, w, ...)`` with respect to its input, for output
    gradient ``g`` (a transposed convolution to ``like``'s run-time shape)."""
    attrs = _attrs("conv2d_backprop_input", strides, padding, dilations, groups)
    return apply1("conv2d_backprop_input", [g, w, like], dict(attrs, size=None))


def conv2d_backprop_filter(x: Tensor, g: Tensor, like: Tensor, strides: Any = 1,
                           padding: Any = "VALID", dilations: Any = 1, groups: int = 1) -> Tensor:
    """The gradient of ``conv2d(x, like, ...)`` with respect to its weights ``like``."""
    attrs = _attrs("conv2d_backprop_filter", strides, padding, dilations, groups)
    return apply1("conv2d_backprop_filter", [x, g, like], attrs)
