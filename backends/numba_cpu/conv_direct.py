"""Direct (no GEMM) convolution loops for few input taps: strides 1, one group.

When ``C*kh*kw`` is small (LeNet's first layer: 1 channel, 5x5, so 25), the GEMMs of
:mod:`.conv_kernels` have both a small M (the output channels) and a small K, where BLAS
runs far below its peak. These loops work in the full-width layout of :mod:`.conv_loops`
(output cell (i, j) at ``i*Wp + j`` of a padded input plane, so every tap is one shifted
contiguous vector) and measured on (64, 1, 28, 28) * (6, 1, 5, 5), one thread:

* forward: 0.27 ms against 0.70 for the blocked GEMM. One pass over an output plane
  applies up to 5 taps of a kernel row to two output channels at once, so each input
  load serves two multiply-adds and each accumulator is loaded and stored once per 5
  (one pass per tap was store-bound: 0.61 ms; one channel per pass 0.41 ms). The pair's
  taps read one array at unsigned offsets: views per tap (as the single channel does)
  would be 5 more pointers for LLVM's run-time alias checks, too many to vectorize, and
  signed indices would be wrapped around (a branch per load);
* filter gradient: 0.29 ms against 1.01. Each weight is a dot product of the gradient
  plane with a shifted input plane; one pass computes those of up to 5 taps of a kernel
  row for two output channels, so each input load serves two products and each
  gradient load up to 5 (4 channels sharing each load of one tap took 0.49 ms).

With 6 channels in (K = 150) the blocked GEMM was 5-10% faster for both, hence the
threshold in :func:`.conv_kernels.use_direct`. The dot products need reassociation to
vectorize (``fastmath`` reassoc/contract only, so NaN and infinity keep their meaning);
that changes results by float rounding only, as BLAS does.
"""

from __future__ import annotations

import numba

__all__ = [
    "direct_filter_grad",
    "direct_filter_grad_par",
    "direct_forward",
    "direct_forward_par",
]

_REDUCE = {"reassoc", "contract"}


@numba.njit(cache=True, nogil=True, inline="always")
def _taps(acc, src, w, o, c, a, dw, span):  # pragma: no cover - compiled
    """``acc[f] += sum_b w[o, c, a, b] * src[f + b*dw]``, in passes of 5, 3 and 1 taps."""
    kw = w.shape[3]
    b = 0
    while kw - b >= 5:  # one view per tap: indices stay non-negative loop counters
        w0, w1, w2, w3, w4 = w[o, c, a, b], w[o, c, a, b + 1], w[o, c, a, b + 2], \
            w[o, c, a, b + 3], w[o, c, a, b + 4]
        s0, s1, s2 = src[b * dw:], src[(b + 1) * dw:], src[(b + 2) * dw:]
        s3, s4 = src[(b + 3) * dw:], src[(b + 4) * dw:]
        for f in range(span):
            acc[f] += w0 * s0[f] + w1 * s1[f] + w2 * s2[f] + w3 * s3[f] + w4 * s4[f]
        b += 5
    while kw - b >= 3:
        w0, w1, w2 = w[o, c, a, b], w[o, c, a, b + 1], w[o, c, a, b + 2]
        s0, s1, s2 = src[b * dw:], src[(b + 1) * dw:], src[(b + 2) * dw:]
        for f in range(span):
            acc[f] += w0 * s0[f] + w1 * s1[f] + w2 * s2[f]
        b += 3
    while b < kw:
        w0 = w[o, c, a, b]
        s0 = src[b * dw:]
        for f in range(span):
            acc[f] += w0 * s0[f]
        b += 1


@numba.njit(cache=True, nogil=True, fastmath=_REDUCE, inline="always")
def _taps_pair(acc, xf, base, w, o, c, a, dw, span):  # pragma: no cover - compiled
    """:func:`_taps` for output channels ``o`` and ``o + 1`` (``acc``'s two rows, ``span``
    apart) from ``xf[base:]``, in passes of 5, 3 and 1 taps."""
    kw = w.shape[3]
    # (unsigned throughout: an int64 and a uint64 make a float64 in Numba)
    us, d = numba.uint64(span), numba.uint64(dw)
    d2 = d + d
    d3, d4 = d2 + d, d2 + d2
    b = 0
    while kw - b >= 5:
        p0, p1, p2, p3, p4 = w[o, c, a, b], w[o, c, a, b + 1], w[o, c, a, b + 2], \
            w[o, c, a, b + 3], w[o, c, a, b + 4]
        q0, q1, q2, q3, q4 = w[o + 1, c, a, b], w[o + 1, c, a, b + 1], w[o + 1, c, a, b + 2], \
            w[o + 1, c, a, b + 3], w[o + 1, c, a, b + 4]
        start = numba.uint64(base + b * dw)
        for f in range(us):
            i = start + f
            s0, s1, s2, s3, s4 = xf[i], xf[i + d], xf[i + d2], xf[i + d3], xf[i + d4]
            acc[f] += p0 * s0 + p1 * s1 + p2 * s2 + p3 * s3 + p4 * s4
            acc[us + f] += q0 * s0 + q1 * s1 + q2 * s2 + q3 * s3 + q4 * s4
        b += 5
    while kw - b >= 3:
        p0, p1, p2 = w[o, c, a, b], w[o, c, a, b + 1], w[o, c, a, b + 2]
        q0, q1, q2 = w[o + 1, c, a, b], w[o + 1, c, a, b + 1], w[o + 1, c, a, b + 2]
        start = numba.uint64(base + b * dw)
        for f in range(us):
            i = start + f
            s0, s1, s2 = xf[i], xf[i + d], xf[i + d2]
            acc[f] += p0 * s0 + p1 * s1 + p2 * s2
            acc[us + f] += q0 * s0 + q1 * s1 + q2 * s2
        b += 3
    while b < kw:
        p0, q0 = w[o, c, a, b], w[o + 1, c, a, b]
        start = numba.uint64(base + b * dw)
        for f in range(us):
            s0 = xf[start + f]
            acc[f] += p0 * s0
            acc[us + f] += q0 * s0
        b += 1


@numba.njit(cache=True, nogil=True, fastmath=_REDUCE)  # (the inlined taps' flags)
def _forward_range(xp, w, y, acc, dh, dw, n0, n1):  # pragma: no cover - compiled
    """:func:`direct_forward` for samples ``n0 .. n1``: output channels in pairs, the
    last one alone when their number is odd."""
    c_, wp = xp.shape[1], xp.shape[3]
    o_, kh = w.shape[0], w.shape[2]
    ho, wo = y.shape[2], y.shape[3]
    span = (ho - 1) * wp + wo
    pair = acc[:2 * span]
    for n in range(n0, n1):
        for o in range(0, o_ - 1, 2):
            pair[:] = 0
            for c in range(c_):
                xf = xp[n, c].reshape(-1)
                for a in range(kh):
                    _taps_pair(pair, xf, a * dh * wp, w, o, c, a, dw, span)
            _crop(pair, y, n, o, wp)
            _crop(pair[span:], y, n, o + 1, wp)
        if o_ % 2:
            ac = acc[:span]
            ac[:] = 0
            for c in range(c_):
                xf = xp[n, c].reshape(-1)
                for a in range(kh):
                    _taps(ac, xf[a * dh * wp:], w, o_ - 1, c, a, dw, span)
            _crop(ac, y, n, o_ - 1, wp)


@numba.njit(cache=True, nogil=True, inline="always")
def _crop(ac, y, n, o, wp):  # pragma: no cover - compiled
    """``y[n, o]`` = the output cells of the full-width plane ``ac`` (rows ``wp`` apart)."""
    for i in range(y.shape[2]):
        src = ac[i * wp:]
        dst = y[n, o, i]
        for j in range(y.shape[3]):
            dst[j] = src[j]


@numba.njit(cache=True, nogil=True)
def direct_forward(xp, w, y, acc, dh, dw):  # pragma: no cover - compiled
    """``y`` (N, O, Ho, Wo) = the stride-1 convolution of the padded ``xp`` (N, C, Hp, Wp)
    with ``w`` (O, C, kh, kw); ``acc``: scratch of at least ``2 * ((Ho-1)*Wp + Wo)`` cells."""
    _forward_range(xp, w, y, acc, dh, dw, 0, xp.shape[0])


@numba.njit(cache=True, nogil=True, parallel=True)
def direct_forward_par(xp, w, y, accs, dh, dw):  # pragma: no cover - compiled
    """:func:`direct_forward` on ``len(accs)`` threads, each with its scratch row and a
    contiguous chunk of samples (launch under ``threads.PARALLEL_LOCK``)."""
    n_, chunks = xp.shape[0], accs.shape[0]
    for t in numba.prange(chunks):
        _forward_range(xp, w, y, accs[t], dh, dw, t * n_ // chunks, (t + 1) * n_ // chunks)


@numba.njit(cache=True, nogil=True, inline="always")
def _add_taps(dwt, o, c, a, b, ps, qs):  # pragma: no cover - compiled
    """``dwt[o, c, a, b + k] += ps[k]`` and ``dwt[o + 1, c, a, b + k] += qs[k]``."""
    for k in range(len(ps)):
        dwt[o, c, a, b + k] += ps[k]
        dwt[o + 1, c, a, b + k] += qs[k]


@numba.njit(cache=True, nogil=True, fastmath=_REDUCE, inline="always")
def _filter_taps_pair(dwt, g0, g1, xf, o, c, a, base, dw, span):  # pragma: no cover
    """Add to ``dwt[o]`` and ``dwt[o + 1]`` at (c, a, b) the dot products of the gradient
    rows ``g0``, ``g1`` with ``xf`` shifted by ``base + b*dw``, for every tap b of the kernel
    row, in passes of 5, 3 and 1 taps: each input load serves both channels, each gradient
    load every tap of the pass. (The sums start from the first products: a literal 0
    would make them float64.)"""
    kw = dwt.shape[3]
    us, d = numba.uint64(span), numba.uint64(dw)
    one, d2 = numba.uint64(1), d + d
    d3, d4 = d2 + d, d2 + d2
    b = 0
    while kw - b >= 5:
        st = numba.uint64(base + b * dw)
        u, v = g0[0], g1[0]
        x0, x1, x2, x3, x4 = xf[st], xf[st + d], xf[st + d2], xf[st + d3], xf[st + d4]
        p0, p1, p2, p3, p4 = u * x0, u * x1, u * x2, u * x3, u * x4
        q0, q1, q2, q3, q4 = v * x0, v * x1, v * x2, v * x3, v * x4
        for f in range(one, us):
            i = st + f
            x0, x1, x2, x3, x4 = xf[i], xf[i + d], xf[i + d2], xf[i + d3], xf[i + d4]
            u, v = g0[f], g1[f]
            p0, p1, p2, p3, p4 = p0 + u * x0, p1 + u * x1, p2 + u * x2, p3 + u * x3, p4 + u * x4
            q0, q1, q2, q3, q4 = q0 + v * x0, q1 + v * x1, q2 + v * x2, q3 + v * x3, q4 + v * x4
        _add_taps(dwt, o, c, a, b, (p0, p1, p2, p3, p4), (q0, q1, q2, q3, q4))
        b += 5
    while kw - b >= 3:
        st = numba.uint64(base + b * dw)
        u, v = g0[0], g1[0]
        x0, x1, x2 = xf[st], xf[st + d], xf[st + d2]
        p0, p1, p2, q0, q1, q2 = u * x0, u * x1, u * x2, v * x0, v * x1, v * x2
        for f in range(one, us):
            i = st + f
            x0, x1, x2 = xf[i], xf[i + d], xf[i + d2]
            u, v = g0[f], g1[f]
            p0, p1, p2 = p0 + u * x0, p1 + u * x1, p2 + u * x2
            q0, q1, q2 = q0 + v * x0, q1 + v * x1, q2 + v * x2
        _add_taps(dwt, o, c, a, b, (p0, p1, p2), (q0, q1, q2))
        b += 3
    while b < kw:
        st = numba.uint64(base + b * dw)
        x0 = xf[st]
        p0, q0 = g0[0] * x0, g1[0] * x0
        for f in range(one, us):
            x0 = xf[st + f]
            p0, q0 = p0 + g0[f] * x0, q0 + g1[f] * x0
        _add_taps(dwt, o, c, a, b, (p0,), (q0,))
        b += 1


@numba.njit(cache=True, nogil=True, fastmath=_REDUCE, inline="always")
def _dot1(g0, x, span):  # pragma: no cover - compiled
    """The dot product of ``g0`` and ``x`` over ``span`` cells."""
    s = g0[0] * x[0]
    for f in range(1, span):
        s += g0[f] * x[f]
    return s


@numba.njit(cache=True, nogil=True, fastmath=_REDUCE)
def _filter_range(xp, g, dwt, gbuf, dh, dw, n0, n1):  # pragma: no cover - compiled
    """Add the weight gradient of samples ``n0 .. n1`` to ``dwt``."""
    c_, wp = xp.shape[1], xp.shape[3]
    o_, kh, kw = dwt.shape[0], dwt.shape[2], dwt.shape[3]
    ho, wo = g.shape[2], g.shape[3]
    span = (ho - 1) * wp + wo
    for n in range(n0, n1):
        for o in range(o_):
            row = gbuf[o]
            row[:] = 0
            for i in range(ho):
                src = g[n, o, i]
                dst = row[i * wp:]
                for j in range(wo):
                    dst[j] = src[j]
        for c in range(c_):
            xf = xp[n, c].reshape(-1)
            for a in range(kh):
                for o in range(0, o_ - 1, 2):
                    _filter_taps_pair(dwt, gbuf[o], gbuf[o + 1], xf, o, c, a, a * dh * wp,
                                      dw, span)
                if o_ % 2:
                    for b in range(kw):
                        dwt[o_ - 1, c, a, b] += _dot1(gbuf[o_ - 1], xf[a * dh * wp + b * dw:],
                                                      span)


@numba.njit(cache=True, nogil=True)
def direct_filter_grad(xp, g, dwt, gbuf, dh, dw):  # pragma: no cover - compiled
    """``dwt`` (O, C, kh, kw) = the weight gradient of the stride-1 convolution of ``xp``
    for output gradient ``g`` (N, O, Ho, Wo); ``gbuf``: (O, >= (Ho-1)*Wp + Wo) scratch
    that holds one sample's gradient in the full-width layout (zeros past each row)."""
    dwt[...] = 0
    _filter_range(xp, g, dwt, gbuf, dh, dw, 0, xp.shape[0])


@numba.njit(cache=True, nogil=True, parallel=True)
def direct_filter_grad_par(xp, g, dwt, gbufs, parts, dh, dw):  # pragma: no cover - compiled
    """:func:`direct_filter_grad` on ``len(gbufs)`` threads: each sums a contiguous chunk
    of samples into its ``parts[t]`` (T, O, C, kh, kw), added up at the end."""
    n_, chunks = xp.shape[0], gbufs.shape[0]
    for t in numba.prange(chunks):
        parts[t] = 0
        _filter_range(xp, g, parts[t], gbufs[t], dh, dw, t * n_ // chunks,
                      (t + 1) * n_ // chunks)
    dwt[...] = parts[0]
    for t in range(1, chunks):
        dwt += parts[t]
