"""Exporters for the convolution and pooling ops (NCHW, OIHW: ONNX's own layouts). The
N-d convolutions of ``graphc/ops/conv_nd.py`` share the 2-D ops' attributes and exporters.

* ``conv2d`` -> ``Conv``; ``"SAME"`` padding is TF's rule with the odd cell at the
  bottom/right, which is ONNX's ``auto_pad="SAME_UPPER"`` (dilation included).
* ``conv2d_backprop_input`` (the transposed convolution; ``conv2d_transpose``) ->
  ``ConvTranspose`` (its weights are (C_in, C_out/g, kh, kw), as ONNX wants) without pads,
  then a ``Slice`` to the wanted size (like's, ``size``, or natural) at the forward pads
  (SAME resolved at run time), so dynamic sizes work.
* ``max_pool2d`` -> ``MaxPool``; ``avg_pool2d`` -> ``AveragePool(count_include_pad=0)``
  (graphc never counts padded cells).
* ``max_pool2d_grad`` -> ``MaxPool``'s ``Indices`` output (the first maximum per window, as
  graphc's rule) and a ``ScatterElements(reduction="add")`` of g into zeros.

* ``conv2d_backprop_filter`` -> ``Conv`` of the transposed input with the transposed
  gradient as weights (strides and dilations swapped), cut to the kernel size, per group.

* ``avg_pool2d_grad`` -> ``g / counts`` (counts from an ``AveragePool`` of ones that
  counts padding, times the window size) spread by a ones-kernel ``ConvTranspose``.

* N-d pooling (``max_pool``, ``avg_pool``, ``max_pool_argmax``, ``max_pool_grad``) the
  same way with ``dilations``; ``max_pool_argmax`` is ``MaxPool``'s ``Indices``; a dilated
  ``avg_pool`` is a ones-kernel ``Conv`` of sums over a ``Conv`` of real-cell counts
  (``AveragePool`` has dilations only from opset 19).

``avg_pool_grad`` as ``avg_pool2d_grad`` below, with real-cell counts from a ones-kernel
``Conv`` (dilations included).

Listed in ``UNSUPPORTED`` with the reason: the max-pool second-order helpers (no ONNX op).
"""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from graphc.backends.onnx_export import UNSUPPORTED, Emitter, exporter
from graphc.graph import Node


def _pads(em: Emitter, padding: object) -> dict:
    """ONNX's pads (all begins, then all ends) for any number of spatial axes."""
    if padding == "SAME":
        return {"auto_pad": "SAME_UPPER"}
    return {"pads": [p[0] for p in padding] + [p[1] for p in padding]}


def _axes(a: dict) -> list:
    """The spatial axes [2, 2 + nd) of a window op's attributes."""
    return list(range(2, 2 + len(a["strides"])))


# The 2-D ops and graphc/ops/conv_nd.py's N-d ones share attributes and exporters.
@exporter("conv2d", "conv")
def _conv(em: Emitter, node: Node, ins: list) -> list:
    a = node.attrs
    padding = a["padding"]
    if padding == "SAME" and max(a["dilations"]) > 1:
        # onnxruntime refuses dilations with auto_pad SAME: pad by TF's rule first
        ins = [_pad_same(em, ins[0], ins[1], a)] + list(ins[1:])
        padding = ((0, 0),) * len(a["strides"])
    return [em.op("Conv", ins, strides=list(a["strides"]), dilations=list(a["dilations"]),
                  group=a["groups"], **_pads(em, padding))]


def _pad_same(em: Emitter, x: str, w: str, a: dict) -> str:
    """x zero-padded by TF's SAME rule for run-time sizes (the weights w give the kernel)."""
    size = em.op("Gather", [em.shape(x), em.ints(_axes(a))], axis=0)
    begin, end = _same_begin_end(em, size, _kernel_extent(em, w, list(a["dilations"])),
                                 list(a["strides"]))
    zeros = em.ints([0, 0])
    return em.op("Pad", [x, em.op("Concat", [zeros, begin, zeros, end], axis=0)],
                 mode="constant")


@exporter("conv2d_backprop_input", "conv_backprop_input")
def _conv_transpose(em: Emitter, node: Node, ins: list) -> list:
    # One rule for every case (static or run-time sizes, SAME or explicit pads): the *full*
    # transposed convolution (no pads, output_padding s-1 so it covers every input cell the
    # forward windows can touch), then a Slice of the wanted window [pad_begin, +size).
    a = node.attrs
    g, w = ins[:2]
    strides, dil, axes = list(a["strides"]), list(a["dilations"]), _axes(a)
    eff = _kernel_extent(em, w, dil)
    full = em.op("ConvTranspose", [g, w], strides=strides, dilations=dil, group=a["groups"],
                 output_padding=[s - 1 for s in strides] if max(strides) > 1 else None)
    if len(ins) > 2:  # the size is like's
        size = em.op("Gather", [em.shape(ins[2]), em.ints(axes)], axis=0)
    elif a["size"] is not None:
        size = em.ints(a["size"])
    elif a["padding"] == "SAME":  # natural: in * s
        size = em.op("Mul", [em.op("Gather", [em.shape(g), em.ints(axes)], axis=0),
                             em.ints(strides)])
    else:  # natural: the full size without the pads and the output padding
        full_size = em.op("Gather", [em.shape(full), em.ints(axes)], axis=0)
        size = em.op("Sub", [full_size, em.ints([sum(p) + s - 1 for p, s in
                                                  zip(a["padding"], strides)])])
    if a["padding"] == "SAME":  # TF's rule on the forward input size
        begin = _same_begin_end(em, size, eff, strides)[0]
    else:
        begin = em.ints([p[0] for p in a["padding"]])
    end = em.op("Add", [begin, size])
    return [em.op("Slice", [full, begin, end, em.ints(axes)])]


def _same_begin_end(em: Emitter, size: str, eff: str, strides: list) -> tuple[str, str]:
    """TF's SAME pads for run-time sizes (one entry per spatial axis): begin = total // 2,
    end = the rest."""
    nd = len(strides)
    s_ = em.ints(strides)
    one = em.ints([1] * nd)
    ceil = em.op("Div", [em.op("Sub", [em.op("Add", [size, s_]), one]), s_])
    total = em.op("Sub", [em.op("Add", [em.op("Mul", [em.op("Sub", [ceil, one]), s_]), eff]),
                          size])
    total = em.op("Max", [total, em.ints([0] * nd)])
    begin = em.op("Div", [total, em.ints([2] * nd)])
    return begin, em.op("Sub", [total, begin])


def _kernel_extent(em: Emitter, w: str, dil: list) -> str:
    ones = em.ints([1] * len(dil))
    kernel = em.op("Gather", [em.shape(w), em.ints(list(range(2, 2 + len(dil))))], axis=0)
    return em.op("Add", [em.op("Mul", [em.op("Sub", [kernel, ones]), em.ints(dil)]), ones])


@exporter("conv2d_backprop_filter", "conv_backprop_filter")
def _conv_filter_grad(em: Emitter, node: Node, ins: list) -> list:
    # dW[o, c, a, b] = sum_{n,i,j} g[n, o, i, j] xpad[n, c, a*d + i*s, b*d + j*s]: a
    # convolution of x^T (C, N, H, W) with g^T (O, N, Ho, Wo) as weights, strides and
    # dilations swapped, cut to the kernel size, transposed back; per group.
    a = node.attrs
    x, g, like = ins
    strides, dil, groups, axes = list(a["strides"]), list(a["dilations"]), a["groups"], _axes(a)
    perm = [1, 0] + axes
    if a["padding"] == "SAME":
        x = _pad_same(em, x, like, a)
    elif any(p for pair in a["padding"] for p in pair):
        x = em.op("Pad", [x, em.ints([0, 0] + [p[0] for p in a["padding"]] + [0, 0]
                                     + [p[1] for p in a["padding"]])], mode="constant")
    kernel = em.op("Gather", [em.shape(like), em.ints(axes)], axis=0)
    xs = em.op("Split", [x], n_out=groups, axis=1,
               num_outputs=groups if em.opset >= 18 else None) if groups > 1 else [x]
    gs = em.op("Split", [g], n_out=groups, axis=1,
               num_outputs=groups if em.opset >= 18 else None) if groups > 1 else [g]
    parts = []
    for xg, gg in zip(xs, gs):
        r = em.op("Conv", [em.op("Transpose", [xg], perm=perm),
                           em.op("Transpose", [gg], perm=perm)],
                  strides=dil, dilations=strides)
        r = em.op("Slice", [r, em.ints([0] * len(axes)), kernel, em.ints(axes)])
        parts.append(em.op("Transpose", [r], perm=perm))
    return [parts[0] if len(parts) == 1 else em.op("Concat", parts, axis=0)]


@exporter("max_pool2d", "avg_pool2d")
def _pool(em: Emitter, node: Node, ins: list) -> list:
    a = node.attrs
    kw = dict(kernel_shape=list(a["ksize"]), strides=list(a["strides"]), **_pads(em, a["padding"]))
    if node.op == "max_pool2d":
        return [em.op("MaxPool", ins, **kw)]
    return [em.op("AveragePool", ins, count_include_pad=0, **kw)]


@exporter("max_pool2d_grad")
def _max_pool_grad(em: Emitter, node: Node, ins: list) -> list:
    if em.opset < 16:
        raise em.error("needs ScatterElements(reduction='add'), opset >= 16")
    a = node.attrs
    x, g = ins
    _, idx = em.op("MaxPool", [x], n_out=2, kernel_shape=list(a["ksize"]),
                   strides=list(a["strides"]), **_pads(em, a["padding"]))
    n = em.op("Size", [x])
    zeros = em.op("ConstantOfShape", [em.op("Reshape", [n, em.ints([1])])],
                  value=numpy_helper.from_array(np.zeros(1, node.inputs[0].dtype.np)))
    flat = em.op("ScatterElements", [zeros, em.op("Reshape", [idx, em.ints([-1])]),
                                     em.op("Reshape", [g, em.ints([-1])])],
                 axis=0, reduction="add")
    return [em.op("Reshape", [flat, em.shape(x)])]


@exporter("avg_pool2d_grad")
def _avg_pool_grad(em: Emitter, node: Node, ins: list) -> list:
    # g / (real cells per window), spread back over each window by a transposed
    # convolution with a ones kernel (one channel: N*C folded into the batch), then cut to
    # like's size at the pool's pads, as conv2d_backprop_input.
    a = node.attrs
    g, like = ins
    k, strides = list(a["ksize"]), list(a["strides"])
    dt = node.inputs[0].dtype.np
    plane = em.op("Slice", [like, em.ints([0, 0]), em.ints([1, 1]), em.ints([0, 1])])
    ones = em.op("ConstantOfShape", [em.shape(plane)],
                 value=numpy_helper.from_array(np.ones(1, dt)))
    counts = em.op("Mul", [em.op("AveragePool", [ones], kernel_shape=k, strides=strides,
                                 count_include_pad=1, **_pads(em, a["padding"])),
                           em.const(np.asarray(k[0] * k[1], dt))])
    scaled = em.op("Reshape", [em.op("Div", [g, counts]), em.ints([-1, 1, 0, 0])])
    full = em.op("ConvTranspose", [scaled, em.const(np.ones((1, 1, *k), dt))], strides=strides,
                 output_padding=[s - 1 for s in strides] if max(strides) > 1 else None)
    size = em.op("Gather", [em.shape(like), em.ints([2, 3])], axis=0)
    if a["padding"] == "SAME":
        begin = _same_begin_end(em, size, em.ints(k), strides)[0]
    else:
        begin = em.ints([a["padding"][0][0], a["padding"][1][0]])
    cut = em.op("Slice", [full, begin, em.op("Add", [begin, size]), em.ints([2, 3])])
    return [em.op("Reshape", [cut, em.shape(like)])]


# -- N-d pooling (graphc/ops/pool_nd.py) ---------------------------------------------------

def _nd_kw(em: Emitter, a: dict) -> dict:
    padding = a["padding"]
    if padding == "SAME" and max(a["dilations"]) > 1:
        # onnxruntime's SAME_UPPER leaves the dilation out of the pads: resolve them here
        shape = em.node.inputs[0].shape
        if shape is None or None in shape[2:]:
            raise em.error("SAME padding with dilations needs static spatial sizes (ONNX "
                           "pooling pads are attributes)")
        from graphc.ops.conv import resolve_pads

        padding = resolve_pads("SAME", shape[2:], a["ksize"], a["strides"], a["dilations"])
    pads = {"auto_pad": "SAME_UPPER"} if padding == "SAME" else {
        "pads": [p[0] for p in padding] + [p[1] for p in padding]}
    return dict(kernel_shape=list(a["ksize"]), strides=list(a["strides"]),
                dilations=list(a["dilations"]) if max(a["dilations"]) > 1 else None, **pads)


def _same_dilated(em: Emitter, node: Node, x: str, value: float) -> tuple[str, dict]:
    """SAME padding with dilations for run-time sizes (onnxruntime's SAME_UPPER leaves the
    dilation out): x padded with ``value`` by TF's rule, and the attributes of a VALID
    pool; other paddings pass through."""
    a = node.attrs
    if a["padding"] != "SAME" or max(a["dilations"]) == 1:
        return x, a
    nd = len(a["ksize"])
    eff = em.ints([(k - 1) * d + 1 for k, d in zip(a["ksize"], a["dilations"])])
    size = em.op("Slice", [em.shape(x), em.ints([2]), em.ints([2 + nd])])
    begin, end = _same_begin_end(em, size, eff, list(a["strides"]))
    pads = em.op("Concat", [em.ints([0, 0]), begin, em.ints([0, 0]), end], axis=0)
    fill = em.const(np.asarray(value, node.inputs[0].dtype.np))
    return em.op("Pad", [x, pads, fill], mode="constant"), dict(a, padding=((0, 0),) * nd)


@exporter("max_pool")
def _max_pool_nd(em: Emitter, node: Node, ins: list) -> list:
    x, a = _same_dilated(em, node, ins[0], -np.inf)
    return [em.op("MaxPool", [x], **_nd_kw(em, a))]


@exporter("max_pool_argmax")
def _max_pool_argmax(em: Emitter, node: Node, ins: list) -> list:
    # MaxPool's Indices: the row-major flat index into all of x, batch and channel included
    return [em.op("MaxPool", ins, n_out=2, **_nd_kw(em, node.attrs))[1]]


@exporter("max_pool_grad")
def _max_pool_nd_grad(em: Emitter, node: Node, ins: list) -> list:
    if em.opset < 16:
        raise em.error("needs ScatterElements(reduction='add'), opset >= 16")
    x, g = ins
    _, idx = em.op("MaxPool", [x], n_out=2, **_nd_kw(em, node.attrs))
    return [_scatter_add(em, x, idx, g, node.inputs[0].dtype.np)]


def _scatter_add(em: Emitter, x: str, idx: str, g: str, dtype: object) -> str:
    """zeros shaped as x with g added at the flat indices idx."""
    n = em.op("Size", [x])
    zeros = em.op("ConstantOfShape", [em.op("Reshape", [n, em.ints([1])])],
                  value=numpy_helper.from_array(np.zeros(1, dtype)))
    flat = em.op("ScatterElements", [zeros, em.op("Reshape", [idx, em.ints([-1])]),
                                     em.op("Reshape", [g, em.ints([-1])])],
                 axis=0, reduction="add")
    return em.op("Reshape", [flat, em.shape(x)])


@exporter("avg_pool")
def _avg_pool_nd(em: Emitter, node: Node, ins: list) -> list:
    a = node.attrs
    if max(a["dilations"]) == 1:
        return [em.op("AveragePool", ins, count_include_pad=0, **_nd_kw(em, a))]
    # AveragePool has dilations only from opset 19, and counts differently: window sums and
    # real-cell counts as convolutions with a ones kernel, channels folded into the batch.
    (x,), nd = ins, len(a["ksize"])
    dt = node.inputs[0].dtype.np
    folded = em.op("Reshape", [x, em.ints([-1, 1] + [0] * nd)])
    plane = em.op("Slice", [folded, em.ints([0]), em.ints([1]), em.ints([0])])
    ones = em.op("ConstantOfShape", [em.shape(plane)],
                 value=numpy_helper.from_array(np.ones(1, dt)))
    folded, padded = _same_dilated(em, node, folded, 0.0)
    ones = _same_dilated(em, node, ones, 0.0)[0]
    kw = dict(strides=list(a["strides"]), dilations=list(a["dilations"]),
              **{k: v for k, v in _nd_kw(em, padded).items() if k in ("pads", "auto_pad")})
    ones_k = em.const(np.ones((1, 1) + tuple(a["ksize"]), dt))
    sums = em.op("Conv", [folded, ones_k], **kw)
    counts = em.op("Max", [em.op("Conv", [ones, ones_k], **kw), em.const(np.asarray(1, dt))])
    shape = em.op("Concat", [em.op("Slice", [em.shape(x), em.ints([0]), em.ints([2])]),
                             em.op("Slice", [em.shape(sums), em.ints([2]),
                                             em.ints([2 + nd])])], axis=0)
    return [em.op("Reshape", [em.op("Div", [sums, counts]), shape])]


@exporter("avg_pool_grad")
def _avg_pool_nd_grad(em: Emitter, node: Node, ins: list) -> list:
    # As avg_pool2d_grad, with dilations: g / (real cells per window) spread back by a
    # ones-kernel ConvTranspose over (N*C, 1, *out), cut to like's size at the pool's pads.
    a = node.attrs
    g, like = ins
    nd, k, strides = len(a["ksize"]), list(a["ksize"]), list(a["strides"])
    dil, axes = list(a["dilations"]), list(range(2, 2 + len(a["ksize"])))
    dt = node.inputs[0].dtype.np
    ones_k = em.const(np.ones((1, 1, *k), dt))
    plane = em.op("Slice", [like, em.ints([0, 0]), em.ints([1, 1]), em.ints([0, 1])])
    ones, padded = _same_dilated(em, node, em.op("ConstantOfShape", [em.shape(plane)],
                                 value=numpy_helper.from_array(np.ones(1, dt))), 0.0)
    counts = em.op("Conv", [ones, ones_k], strides=strides,
                   dilations=dil if max(dil) > 1 else None, **_pads(em, padded["padding"]))
    counts = em.op("Max", [counts, em.const(np.asarray(1, dt))])
    scaled = em.op("Reshape", [em.op("Div", [g, counts]), em.ints([-1, 1] + [0] * nd)])
    full = em.op("ConvTranspose", [scaled, ones_k], strides=strides,
                 dilations=dil if max(dil) > 1 else None,
                 output_padding=[s - 1 for s in strides] if max(strides) > 1 else None)
    size = em.op("Gather", [em.shape(like), em.ints(axes)], axis=0)
    if a["padding"] == "SAME":
        eff = em.ints([(kk - 1) * d + 1 for kk, d in zip(k, dil)])
        begin = _same_begin_end(em, size, eff, strides)[0]
    else:
        begin = em.ints([p[0] for p in a["padding"]])
    cut = em.op("Slice", [full, begin, em.op("Add", [begin, size]), em.ints(axes)])
    return [em.op("Reshape", [cut, em.shape(like)])]


UNSUPPORTED.update({
    "max_pool2d_grad_grad": "no ONNX op for the max-pool gradient's gradient",
    "max_pool_grad_grad": "no ONNX op for the max-pool gradient's gradient",
})
