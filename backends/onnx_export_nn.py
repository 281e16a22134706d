"""Exporters for the convolution and pooling ops (NCHW, OIHW: ONNX's own layouts).

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

Listed in ``UNSUPPORTED`` with the reason: the max-pool second-order helper (no ONNX op).
"""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from graphc.backends.onnx_export import UNSUPPORTED, Emitter, exporter
from graphc.graph import Node


def _pads(em: Emitter, padding: object) -> dict:
    if padding == "SAME":
        return {"auto_pad": "SAME_UPPER"}
    (t, b), (l, r) = padding
    return {"pads": [t, l, b, r]}


@exporter("conv2d")
def _conv(em: Emitter, node: Node, ins: list) -> list:
    a = node.attrs
    return [em.op("Conv", ins, strides=list(a["strides"]), dilations=list(a["dilations"]),
                  group=a["groups"], **_pads(em, a["padding"]))]


@exporter("conv2d_backprop_input")
def _conv_transpose(em: Emitter, node: Node, ins: list) -> list:
    # One rule for every case (static or run-time sizes, SAME or explicit pads): the *full*
    # transposed convolution (no pads, output_padding s-1 so it covers every input cell the
    # forward windows can touch), then a Slice of the wanted window [pad_begin, +size).
    a = node.attrs
    g, w = ins[:2]
    strides, dil = list(a["strides"]), list(a["dilations"])
    eff = _kernel_extent(em, w, dil)
    full = em.op("ConvTranspose", [g, w], strides=strides, dilations=dil, group=a["groups"],
                 output_padding=[s - 1 for s in strides] if max(strides) > 1 else None)
    if len(ins) > 2:  # the size is like's
        size = em.op("Gather", [em.shape(ins[2]), em.ints([2, 3])], axis=0)
    elif a["size"] is not None:
        size = em.ints(a["size"])
    elif a["padding"] == "SAME":  # natural: in * s
        size = em.op("Mul", [em.op("Gather", [em.shape(g), em.ints([2, 3])], axis=0),
                             em.ints(strides)])
    else:  # natural: the full size without the pads and the output padding
        full_size = em.op("Gather", [em.shape(full), em.ints([2, 3])], axis=0)
        (t, b), (l, r) = a["padding"]
        size = em.op("Sub", [full_size, em.ints([t + b + strides[0] - 1, l + r + strides[1] - 1])])
    if a["padding"] == "SAME":  # TF's rule on the forward input size
        begin = _same_begin_end(em, size, eff, strides)[0]
    else:
        begin = em.ints([a["padding"][0][0], a["padding"][1][0]])
    end = em.op("Add", [begin, size])
    return [em.op("Slice", [full, begin, end, em.ints([2, 3])])]


def _same_begin_end(em: Emitter, size: str, eff: str, strides: list) -> tuple[str, str]:
    """TF's SAME pads for run-time sizes (2-vectors): begin = total // 2, end = the rest."""
    s_ = em.ints(strides)
    one = em.ints([1, 1])
    ceil = em.op("Div", [em.op("Sub", [em.op("Add", [size, s_]), one]), s_])
    total = em.op("Sub", [em.op("Add", [em.op("Mul", [em.op("Sub", [ceil, one]), s_]), eff]),
                          size])
    total = em.op("Max", [total, em.ints([0, 0])])
    begin = em.op("Div", [total, em.ints([2, 2])])
    return begin, em.op("Sub", [total, begin])


def _kernel_extent(em: Emitter, w: str, dil: list) -> str:
    kernel = em.op("Gather", [em.shape(w), em.ints([2, 3])], axis=0)
    return em.op("Add", [em.op("Mul", [em.op("Sub", [kernel, em.ints([1, 1])]), em.ints(dil)]),
                         em.ints([1, 1])])


@exporter("conv2d_backprop_filter")
def _conv_filter_grad(em: Emitter, node: Node, ins: list) -> list:
    # dW[o, c, a, b] = sum_{n,i,j} g[n, o, i, j] xpad[n, c, a*d + i*s, b*d + j*s]: a
    # convolution of x^T (C, N, H, W) with g^T (O, N, Ho, Wo) as weights, strides and
    # dilations swapped, cut to the kernel size, transposed back; per group.
    a = node.attrs
    x, g, like = ins
    strides, dil, groups = list(a["strides"]), list(a["dilations"]), a["groups"]
    if a["padding"] == "SAME":
        size = em.op("Gather", [em.shape(x), em.ints([2, 3])], axis=0)
        begin, end = _same_begin_end(em, size, _kernel_extent(em, like, dil), strides)
        zeros = em.ints([0, 0])
        pads = em.op("Concat", [zeros, begin, zeros, end], axis=0)
        x = em.op("Pad", [x, pads], mode="constant")
    else:
        (t, b), (l, r) = a["padding"]
        if t or b or l or r:
            x = em.op("Pad", [x, em.ints([0, 0, t, l, 0, 0, b, r])], mode="constant")
    kernel = em.op("Gather", [em.shape(like), em.ints([2, 3])], axis=0)
    xs = em.op("Split", [x], n_out=groups, axis=1,
               num_outputs=groups if em.opset >= 18 else None) if groups > 1 else [x]
    gs = em.op("Split", [g], n_out=groups, axis=1,
               num_outputs=groups if em.opset >= 18 else None) if groups > 1 else [g]
    parts = []
    for xg, gg in zip(xs, gs):
        r = em.op("Conv", [em.op("Transpose", [xg], perm=[1, 0, 2, 3]),
                           em.op("Transpose", [gg], perm=[1, 0, 2, 3])],
                  strides=dil, dilations=strides)
        r = em.op("Slice", [r, em.ints([0, 0]), kernel, em.ints([2, 3])])
        parts.append(em.op("Transpose", [r], perm=[1, 0, 2, 3]))
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


UNSUPPORTED.update({
    "max_pool2d_grad_grad": "no ONNX op for the max-pool gradient's gradient",
})
