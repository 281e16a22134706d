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
* filter gradient: 0.39 ms against 1.01. Each weight is a dot product of the gradient
  plane with a shifted input plane; 4 output channels share each input load
  (2 or 1 for the last channels).

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


@numba.njit(cache=True, nogil=True, fastmath=_REDUCE, inline="always")
def _dot4(g, o, x, span):  # pragma: no cover - compiled
    """The dot products of rows o .. o+3 of ``g`` with ``x`` over ``span`` cells (the
    sums start from the first products: a literal 0 would make them float64)."""
    g0, g1, g2, g3 = g[o], g[o + 1], g[o + 2], g[o + 3]
    v = x[0]
    s0, s1, s2, s3 = g0[0] * v, g1[0] * v, g2[0] * v, g3[0] * v
    for f in range(1, span):
        v = x[f]
        s0 += g0[f] * v
        s1 += g1[f] * v
        s2 += g2[f] * v
        s3 += g3[f] * v
    return s0, s1, s2, s3


@numba.njit(cache=True, nogil=True, fastmath=_REDUCE, inline="always")
def _dot2(g, o, x, span):  # pragma: no cover - compiled
    """As :func:`_dot4` for rows o and o+1."""
    g0, g1 = g[o], g[o + 1]
    v = x[0]
    s0, s1 = g0[0] * v, g1[0] * v
    for f in range(1, span):
        v = x[f]
        s0 += g0[f] * v
        s1 += g1[f] * v
    return s0, s1


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
    o4 = o_ - o_ % 4
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
                for b in range(kw):
                    x = xf[a * dh * wp + b * dw:]
                    for o in range(0, o4, 4):
                        s0, s1, s2, s3 = _dot4(gbuf, o, x, span)
                        dwt[o, c, a, b] += s0
                        dwt[o + 1, c, a, b] += s1
                        dwt[o + 2, c, a, b] += s2
                        dwt[o + 3, c, a, b] += s3
                    o = o4
                    if o_ - o >= 2:
                        s0, s1 = _dot2(gbuf, o, x, span)
                        dwt[o, c, a, b] += s0
                        dwt[o + 1, c, a, b] += s1
                        o += 2
                    if o < o_:
                        dwt[o, c, a, b] += _dot1(gbuf[o], x, span)


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
