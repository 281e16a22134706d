"""ONNX importers for convolution, pooling, normalization and the loss ops.

Convolutions: 2-D (and 1-D as 2-D) on the 2-D ops, 3-D and more on
:mod:`graphc.ops.conv_nd`. ``auto_pad``: ``SAME_UPPER`` is graphc's ``"SAME"``
(TF's rule), ``VALID`` zero pads, ``SAME_LOWER`` becomes explicit pads from static sizes.
Pooling is N-d: 2-D without dilations uses ``max_pool2d``/``avg_pool2d`` (the cpu target's
kernels), anything else (1-D, 3-D, dilations, the ``Indices`` output) the N-d ops of
:mod:`graphc.ops.pool_nd`. ``ceil_mode`` is extra end padding (a last window starting in
the end padding is dropped, as ONNX); ``count_include_pad=1`` pads zeros in first. BatchNormalization imports the inference form (running
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
    from graphc.ops import conv_nd as _conv_nd
    from graphc.ops import pool_nd as _pool_nd
except ImportError:  # pragma: no cover - the ops are not built in this version
    _conv = _pool = _pool_nd = _conv_nd = None
try:
    from graphc.ops import normalization as _norm
except ImportError:  # pragma: no cover
    _norm = None


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


if _conv is not None:
    @importer("Conv")
    @one_d_as_2d
    def _conv_import(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
        x, w = ins[:2]
        nd = _spatial_rank(ctx, x, "convolution")
        if "kernel_shape" not in attrs and w.shape is not None:
            attrs = dict(attrs, kernel_shape=list(w.shape[2:]))
        s = tuple(attrs.get("strides", (1,) * nd))
        d = tuple(attrs.get("dilations", (1,) * nd))
        padding = _window_padding(ctx, attrs, x, tuple(attrs["kernel_shape"]), s, d)
        fn = _conv.conv2d if nd == 2 else _conv_nd.conv  # the 2-D op has cpu kernels
        y = fn(x, w, strides=s, padding=padding, dilations=d, groups=attrs.get("group", 1))
        return [_add_bias(y, ins)]

    @importer("ConvTranspose")
    @one_d_as_2d
    def _conv_transpose(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
        x, w = ins[:2]
        nd = _spatial_rank(ctx, x, "transposed convolution")
        strides = tuple(attrs.get("strides", (1,) * nd))
        dil = tuple(attrs.get("dilations", (1,) * nd))
        if "kernel_shape" not in attrs and w.shape is not None:
            attrs = dict(attrs, kernel_shape=list(w.shape[2:]))
        auto = attrs.get("auto_pad", "NOTSET")
        if auto == "SAME_LOWER" and "output_shape" not in attrs:
            raise ctx.fail("auto_pad SAME_LOWER without output_shape is not supported")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            padding: Any = "SAME"  # TF's rule; with output_shape, explicit pads below
        else:
            padding = _window_padding(ctx, attrs, x, tuple(attrs.get("kernel_shape", (1,) * nd)),
                                    strides, dil)
        size = None
        if any(attrs.get("output_padding", [0] * nd)) or "output_shape" in attrs:
            # graphc takes the output size; compute it (and ONNX's pads) from static sizes
            if x.shape is None or None in x.shape[2:] or w.shape is None or None in w.shape[2:]:
                raise ctx.fail("output_padding/output_shape need static sizes")
            op_ = attrs.get("output_padding", [0] * nd)
            eff = [(w.shape[2 + i] - 1) * dil[i] + 1 for i in range(nd)]
            natural = [strides[i] * (x.shape[2 + i] - 1) + op_[i] + eff[i] for i in range(nd)]
            if "output_shape" in attrs:
                size = tuple(attrs["output_shape"][-nd:])
                total = [max(natural[i] - size[i], 0) for i in range(nd)]
                upper = attrs.get("auto_pad", "NOTSET") == "SAME_UPPER"
                padding = tuple((t // 2, t - t // 2) if upper else (t - t // 2, t // 2)
                                for t in total)
            else:
                if padding == "SAME":
                    raise ctx.fail("output_padding with auto_pad SAME is not supported")
                size = tuple(natural[i] - sum(padding[i]) for i in range(nd))
        fn = _conv.conv2d_transpose if nd == 2 else _conv_nd.conv_transpose
        y = fn(x, w, output_shape=size, strides=strides, padding=padding, dilations=dil,
               groups=attrs.get("group", 1))
        return [_add_bias(y, ins)]


def _spatial_rank(ctx: Context, x: Any, what: str) -> int:
    if x.ndim is None or x.ndim < 3:
        raise ctx.fail(f"{what} needs an input of known rank >= 3 (N, C, *spatial)")
    return x.ndim - 2


def _add_bias(y: Any, ins: list) -> Any:
    if len(ins) > 2 and ins[2] is not None:
        return y + gc.reshape(ins[2], (1, -1) + (1,) * (y.ndim - 2))
    return y


if _pool is not None:
    @importer("MaxPool", "AveragePool")
    def _pool_import(ctx: Context, node: Any, ins: list, attrs: dict) -> list:
        x = ins[0]
        if x.ndim is None or x.ndim < 3:
            raise ctx.fail("pooling needs an input of known rank >= 3 (N, C, *spatial)")
        nd = x.ndim - 2
        k = tuple(attrs["kernel_shape"])
        s = tuple(attrs.get("strides", (1,) * nd))
        d = tuple(attrs.get("dilations", (1,) * nd))
        base = _window_padding(ctx, attrs, x, k, s, d)
        padding = _ceil_pads(ctx, x, k, s, d, base) if attrs.get("ceil_mode", 0) else base
        if node.op_type == "AveragePool" and attrs.get("count_include_pad", 0) and \
                padding != ((0, 0),) * nd:
            if padding == "SAME":
                raise ctx.fail("count_include_pad=1 with SAME padding is not supported")
            # Counted padding = zeros padded in first; ceil_mode's extension (cells past
            # the pads) is still not counted, as ONNX's reference and PyTorch.
            x = gc.pad(x, ((0, 0), (0, 0)) + tuple(base))
            padding = tuple((0, p[1] - b[1]) for p, b in zip(padding, base))
        indices = len(node.output) > 1 and bool(node.output[1])
        if nd == 2 and d == (1, 1) and not indices:  # the 2-D ops have cpu kernels
            fn = _pool.max_pool2d if node.op_type == "MaxPool" else _pool.avg_pool2d
            return [fn(x, k, strides=s, padding=padding)]
        fn = _pool_nd.max_pool if node.op_type == "MaxPool" else _pool_nd.avg_pool
        outs = [fn(x, k, strides=s, padding=padding, dilations=d)]
        if indices:
            idx = _pool_nd.max_pool_argmax(x, k, strides=s, padding=padding, dilations=d)
            outs.append(_storage_order(ctx, idx, x, attrs.get("storage_order", 0)))
        return outs


def _window_padding(ctx: Context, attrs: dict, x: Any, k: tuple, s: tuple, d: tuple) -> Any:
    """ONNX's pads (conv and pooling) as graphc's: "SAME" (SAME_UPPER) or one (begin, end)
    per spatial axis (SAME_LOWER from static sizes: the odd cell at the start)."""
    nd = len(k)
    auto = attrs.get("auto_pad", "NOTSET")
    if auto == "SAME_UPPER":
        return "SAME"
    if auto == "VALID":
        return ((0, 0),) * nd
    if auto == "SAME_LOWER":  # the odd cell at the start: explicit pads from static sizes
        if x.shape is None or None in x.shape[2:]:
            raise ctx.fail("auto_pad SAME_LOWER needs static spatial sizes")
        pads = []
        for i in range(nd):
            size = x.shape[2 + i]
            total = max((-(-size // s[i]) - 1) * s[i] + (k[i] - 1) * d[i] + 1 - size, 0)
            pads.append((total - total // 2, total // 2))
        return tuple(pads)
    pads = attrs.get("pads", [0] * (2 * nd))
    return tuple((pads[i], pads[nd + i]) for i in range(nd))


def _ceil_pads(ctx: Context, x: Any, k: tuple, s: tuple, d: tuple, padding: Any) -> Any:
    """ceil_mode as extra end padding (padded cells never count in graphc's pools); as
    ONNX, a last window that would start in the end padding is dropped."""
    if padding == "SAME" or x.shape is None or None in x.shape[2:]:
        raise ctx.fail("ceil_mode needs static sizes and explicit pads")
    out = []
    for i in range(len(k)):
        (b, e), size = padding[i], x.shape[2 + i]
        span = (k[i] - 1) * d[i] + 1
        n = -(-(size + b + e - span) // s[i]) + 1
        if (n - 1) * s[i] >= size + b:
            n -= 1
        out.append((b, e + max((n - 1) * s[i] + span - (size + b + e), 0)))
    return tuple(out)


def _storage_order(ctx: Context, idx: Any, x: Any, order: int) -> Any:
    """MaxPool's Indices in column-major spatial order (storage_order=1, 2-D only): the
    flat ``base + h*W + w`` becomes ``base + h + w*H``."""
    if not order:
        return idx
    if x.ndim != 4 or x.shape is None or None in x.shape[2:]:
        raise ctx.fail("storage_order=1 needs a 2-D pooling with static H and W")
    h, w = x.shape[2:]
    within = gc.mod(idx, h * w)
    row, col = gc.floordiv(within, w), gc.mod(within, w)
    return gc.where(gc.less(idx, 0), idx, idx - within + row + col * h)


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



