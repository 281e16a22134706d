"""ONNX importers for convolution, pooling, normalization and the loss ops.

2-D only (NCHW, as graphc's conv/pool ops). ``auto_pad``: ``SAME_UPPER`` is graphc's
``"SAME"`` (TF's rule), ``VALID`` zero pads, ``SAME_LOWER`` is refused. Pooling with
``ceil_mode``, dilations, or an AveragePool that counts padded cells is refused (graphc's
pools never count them). BatchNormalization imports the inference form (running
statistics). These importers are registered only when graphc has the op (conv/pool/norm
were being written alongside this module). LSTM/GRU/RNN are not imported yet.

Losses: ``NegativeLogLikelihoodLoss`` (13) and ``SoftmaxCrossEntropyLoss`` (12) with
``reduction`` none/sum/mean, class ``weights`` and ``ignore_index``, built from one_hot
picks so any (N, C, d1...) layout works.
"""

from __future__ import annotations

from typing import Any


import graphc as gc
from graphc.frontends.onnx_import import importer
from graphc.frontends.onnx_import_ctx import Context

try:
    from graphc.ops import conv as _conv
    from graphc.ops import pool as _pool
except ImportError:  # pragma: no cover - the ops are not built in this version
    _conv = _pool = None
try:
    from graphc.ops import normalization as _norm
except ImportError:  # pragma: no cover
    _norm = None


def _padding(ctx: Context, attrs: dict, rank: int = 2, x: Any = None) -> Any:
    auto = attrs.get("auto_pad", "NOTSET")
    if auto == "SAME_UPPER":
        return "SAME"
    if auto == "SAME_LOWER":  # the odd cell at the start: explicit pads from static sizes
        if x is None or x.shape is None or None in x.shape[2:]:
            raise ctx.fail("auto_pad SAME_LOWER needs static spatial sizes")
        k = attrs.get("kernel_shape")
        s = attrs.get("strides", [1, 1])
        d = attrs.get("dilations", [1, 1])
        pads = []
        for i in range(2):
            size = x.shape[2 + i]
            total = max((-(-size // s[i]) - 1) * s[i] + (k[i] - 1) * d[i] + 1 - size, 0)
            pads.append((total - total // 2, total // 2))
        return tuple(pads)
    if auto == "VALID":
        return ((0, 0), (0, 0))
    pads = attrs.get("pads", [0] * (2 * rank))
    return ((pads[0], pads[2]), (pads[1], pads[3]))


def one_d_as_2d(fn: Any) -> Any:
    """Run a 2-D importer on 1-D data (N, C, L) as (N, C, 1, L): attributes gain a leading
    unit entry (pads a zero pair), weights and inputs a unit axis 2, removed afterwards."""
    def wrapped(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
        x = ins[0]
        if x.ndim != 3:
            return fn(ctx, node, ins, attrs)
        a = dict(attrs)
        for key in ("kernel_shape", "strides", "dilations"):
            if key in a:
                a[key] = [1] + list(a[key])
        for key in ("output_padding",):
            if key in a:
                a[key] = [0] + list(a[key])
        if "output_shape" in a:
            a["output_shape"] = [1] + list(a["output_shape"][-1:])
        if "pads" in a:
            a["pads"] = [0, a["pads"][0], 0, a["pads"][1]]
        new = [None if t is None else gc.expand_dims(t, 2) if i < 2 and t.ndim == 3 else t
               for i, t in enumerate(ins)]
        outs = fn(ctx, node, new, a)
        return [gc.squeeze(o, [2]) for o in outs]
    return wrapped


def _check_2d(ctx: Context, x: Any, what: str) -> None:
    if x.ndim is not None and x.ndim != 4:
        raise ctx.fail(f"only 2-D {what} (rank-4 NCHW input) is supported, got rank {x.ndim}")


if _conv is not None:
    @importer("Conv")
    @one_d_as_2d
    def _conv_import(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
        x, w = ins[:2]
        _check_2d(ctx, x, "convolution")
        if "kernel_shape" not in attrs and w.shape is not None:
            attrs = dict(attrs, kernel_shape=list(w.shape[2:]))
        y = _conv.conv2d(x, w, strides=tuple(attrs.get("strides", (1, 1))),
                         padding=_padding(ctx, attrs, x=x), dilations=tuple(attrs.get("dilations", (1, 1))),
                         groups=attrs.get("group", 1))
        if len(ins) > 2 and ins[2] is not None:
            y = y + gc.reshape(ins[2], (1, -1, 1, 1))
        return [y]

    @importer("ConvTranspose")
    @one_d_as_2d
    def _conv_transpose(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
        x, w = ins[:2]
        _check_2d(ctx, x, "transposed convolution")
        strides = tuple(attrs.get("strides", (1, 1)))
        dil = tuple(attrs.get("dilations", (1, 1)))
        padding, size = _padding(ctx, attrs), None
        if any(attrs.get("output_padding", [0, 0])) or "output_shape" in attrs:
            # graphc takes the output size; compute it (and ONNX's pads) from static sizes
            if x.shape is None or None in x.shape[2:] or w.shape is None or None in w.shape[2:]:
                raise ctx.fail("output_padding/output_shape need static sizes")
            op_ = attrs.get("output_padding", [0, 0])
            eff = [(w.shape[2 + i] - 1) * dil[i] + 1 for i in range(2)]
            natural = [strides[i] * (x.shape[2 + i] - 1) + op_[i] + eff[i] for i in range(2)]
            if "output_shape" in attrs:
                size = tuple(attrs["output_shape"][-2:])
                total = [max(natural[i] - size[i], 0) for i in range(2)]
                upper = attrs.get("auto_pad", "NOTSET") == "SAME_UPPER"
                padding = tuple((t // 2, t - t // 2) if upper else (t - t // 2, t // 2)
                                for t in total)
            else:
                if padding == "SAME":
                    raise ctx.fail("output_padding with auto_pad SAME is not supported")
                size = tuple(natural[i] - sum(padding[i]) for i in range(2))
        y = _conv.conv2d_transpose(x, w, output_shape=size, strides=strides, padding=padding,
                                   dilations=dil, groups=attrs.get("group", 1))
        if len(ins) > 2 and ins[2] is not None:
            y = y + gc.reshape(ins[2], (1, -1, 1, 1))
        return [y]

if _pool is not None:
    @importer("MaxPool", "AveragePool")
    @one_d_as_2d
    def _pool_import(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
        x = ins[0]
        _check_2d(ctx, x, "pooling")
        if any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise ctx.fail("dilated pooling is not supported")
        if len(node.output) > 1 and node.output[1]:
            raise ctx.fail("the Indices output is not supported")
        padding = _padding(ctx, attrs, x=x)
        if node.op_type == "AveragePool" and attrs.get("count_include_pad", 0) and \
                padding != ((0, 0), (0, 0)):
            if padding == "SAME":
                raise ctx.fail("count_include_pad=1 with SAME padding is not supported")
            # counted padding = zeros padded in first, then an unpadded average
            x = gc.pad(x, ((0, 0), (0, 0)) + tuple(padding))
            padding = ((0, 0), (0, 0))
        fn = _pool.max_pool2d if node.op_type == "MaxPool" else _pool.avg_pool2d
        k = tuple(attrs["kernel_shape"])
        if attrs.get("ceil_mode", 0):
            padding = _ceil_pads(ctx, x, k, attrs.get("strides", (1, 1)), padding)
        return [fn(x, k, strides=tuple(attrs.get("strides", (1, 1))), padding=padding)]

def _ceil_pads(ctx: Context, x: Any, k: tuple, s: Any, padding: Any) -> Any:
    """ceil_mode as extra end padding (padded cells never count in graphc's pools)."""
    if padding == "SAME" or x.shape is None or None in x.shape[2:]:
        raise ctx.fail("ceil_mode needs static sizes and explicit pads")
    out = []
    for i in range(2):
        (b, e), size = padding[i], x.shape[2 + i]
        n = -(-(size + b + e - k[i]) // s[i]) + 1
        if (n - 1) * s[i] >= size + b:  # ONNX: a window may not start in the end padding
            n -= 1
        extra = max((n - 1) * s[i] + k[i] - (size + b + e), 0)
        if e + extra >= k[i]:
            raise ctx.fail("ceil_mode would need a window of padding only")
        out.append((b, e + extra))
    return tuple(out)


@importer("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    x = ins[0]
    if x.ndim is None or x.ndim < 3:
        raise ctx.fail("needs a known rank >= 3")
    fn = gc.reduce_mean if node.op_type == "GlobalAveragePool" else gc.reduce_max
    return [fn(x, axis=tuple(range(2, x.ndim)), keepdims=True)]


if _norm is not None:
    @importer("BatchNormalization")
    def _batch_norm(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
        x, scale, bias, mean, var = ins[:5]
        if attrs.get("training_mode", 0) or (len(node.output) > 1 and any(node.output[1:])):
            raise ctx.fail("training mode is not supported (import the inference form)")
        if x.ndim is None:
            raise ctx.fail("needs a known rank")
        shape = (1, -1) + (1,) * (x.ndim - 2)
        r = lambda t: gc.reshape(t, shape)  # noqa: E731
        return [_norm.batch_normalization(x, r(mean), r(var), r(bias), r(scale),
                                          attrs.get("epsilon", 1e-5))]


def _nll(ctx: Context, logp: Any, target: Any, weights: Any, attrs: dict) -> Any:
    """ONNX's NegativeLogLikelihoodLoss on log-probabilities (N, C, d...) and targets."""
    depth = logp.shape[1] if logp.ndim is not None and logp.ndim > 1 else None
    if depth is None:
        raise ctx.fail("needs a static class dimension (axis 1)")
    ignore = attrs.get("ignore_index")
    target = gc.cast(target, gc.int64)
    # one_hot gives all-zero rows for indices outside [0, C): ignored targets pick nothing.
    safe = target if ignore is None else gc.where(gc.equal(target, ignore),
                                                  -gc.ones_like(target), target)
    hot = gc.one_hot(safe, depth, axis=1, dtype=logp.dtype)
    picked = gc.reduce_sum(logp * hot, axis=1)
    w = gc.reduce_sum(hot * gc.reshape(weights, (1, -1) + (1,) * (logp.ndim - 2)), axis=1) \
        if weights is not None else gc.reduce_sum(hot, axis=1)
    loss = -picked * w if weights is not None else -picked
    reduction = attrs.get("reduction", "mean")
    if reduction == "none":
        return loss
    if reduction == "sum":
        return gc.reduce_sum(loss)
    return gc.reduce_sum(loss) / gc.reduce_sum(w)


@importer("NegativeLogLikelihoodLoss", since=13)
def _nll_loss(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    return [_nll(ctx, ins[0], ins[1], ins[2] if len(ins) > 2 else None, attrs)]


@importer("SoftmaxCrossEntropyLoss", since=12)
def _sce_loss(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
    scores = ins[0]
    logp = gc.nn.log_softmax(scores, axis=1)
    loss = _nll(ctx, logp, ins[1], ins[2] if len(ins) > 2 else None, attrs)
    return [loss, logp]



