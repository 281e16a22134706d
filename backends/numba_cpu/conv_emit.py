"""``conv2d`` in a compiled program (:mod:`.program_codegen`): the step-by-step kernel's
schemes (:mod:`.conv_kernels`), called from the generated ``@njit`` code.

The same njit helpers run, with the same geometry, so the results are the kernel's:

* few input taps (``use_direct``: C*kh*kw <= 32, strides 1, one group, such as LeNet's
  first layer): :func:`.conv_direct.direct_forward` over the padded input;
* otherwise blocks of samples: :func:`.conv_loops.fill_cols` into a column matrix, one
  GEMM per group through :func:`.loop_blas.gemm` (NumPy's OpenBLAS, as the kernel's
  ``np.dot``), :func:`.conv_loops.scatter_out` to NCHW. Block size and the full-width /
  compact layouts are the kernel's own ``layout()``, called by the shape function.

Padding (explicit or ``"SAME"``, resolved from the run-time size) goes through
:func:`.pad_loops.pad_into` into a workspace buffer. What differs from the kernel: the
direct loops stay on one thread. Where the kernel would use Numba's pool (``chunks`` > 1:
big inputs, several threads) the shape function returns None and the plan runs step by
step, where the Python dispatch is negligible next to such a convolution and the parallel
launch is serialized as :mod:`.threads` requires. Weights of unknown shape, non-float
dtypes and ranks other than 4 raise :class:`~.loop_shapes.Unsupported`.
"""

from __future__ import annotations

from typing import Any

from .conv_kernels import layout, use_direct
from .loop_shapes import Dim, Unsupported
from .loop_values import Gen, Val
from .window_shapes import Axis, calc, require, window_axis

__all__ = ["IMPORTS", "emit_conv2d"]

#: The compiled helpers the generated code calls: module (in this package) -> names.
IMPORTS = {"conv_loops": ("fill_cols", "scatter_out"), "conv_direct": ("direct_forward",),
           "pad_loops": ("pad_into",), "conv_kernels": ("chunks", "layout")}


def call(fn: str, *args: object) -> str:
    """Source of the helper call ``fn(*args)``. Integer and boolean constants are passed
    as ``np.int64`` / ``np.bool_`` values: a literal would make Numba compile the helper
    for those very values (``Literal[int](5)``), a new specialization for every model and
    layer, each compiled again into every program that calls it."""
    def render(a: object) -> str:
        if isinstance(a, bool):
            return f"np.bool_({a})"
        if isinstance(a, int) or (isinstance(a, str) and a.lstrip("-").isdigit()):
            return f"np.int64({a})"
        return str(a)
    return f"{fn}({', '.join(render(a) for a in args)})"


def contiguous(v: Val) -> str:
    """Source of ``v`` as a C-ordered array (a strided view is copied)."""
    return v.name if v.contiguous else f"np.ascontiguousarray({v.name})"


def padded(gen: Gen, x: Val, h: Axis, w: Axis, fill: str) -> tuple[str, list[str]]:
    """Source of ``x`` (N, C, H, W) padded as ``h``/``w`` say, and the lines that fill it
    (for the caller to emit): ``x`` itself (C-ordered) when both axes are known to be
    unpadded, else a workspace buffer with ``fill`` in the border."""
    if h.unpadded and w.unpadded:
        return contiguous(x), []
    xp = gen.buffer(x.dtype, (x.dims[0], x.dims[1], h.padded, w.padded))
    ex = gen.dims.expr
    return xp.name, [call("pad_into", x.name, xp.name, ex(h.lo), ex(w.lo), fill)]


def _operands(gen: Gen, node: Any) -> tuple[Val, Val, tuple]:
    """x, w and w's static (O, C/G, kh, kw), after the scope checks."""
    x, w = (gen.val(r) for r in node.inputs)
    if len(x.dims) != 4 or len(w.dims) != 4:
        raise Unsupported("conv2d of rank other than 4")
    if x.dtype != w.dtype or x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        raise Unsupported("conv2d other than float32/float64")
    wdims = tuple(gen.dims.find(d) for d in w.dims)
    if not all(isinstance(d, int) for d in wdims):
        raise Unsupported("conv2d with weights of unknown shape")
    return x, w, wdims


def emit_conv2d(gen: Gen, node: Any) -> list[Val]:
    """``y = conv2d(x, w)`` (NCHW, OIHW) with the node's strides, padding, dilations and
    groups: the direct loops or the blocked GEMM, as the cpu kernel chooses."""
    x, w, (o, cg, kh, kw) = _operands(gen, node)
    a = node.attrs
    (sh, sw), (dh, dw), groups = a["strides"], a["dilations"], a["groups"]
    taps = groups * cg * kh * kw
    if taps == 0 or o == 0 or o % groups:
        raise Unsupported("conv2d without taps or output channels")
    dims = gen.dims
    n = x.dims[0]
    dims.same(x.dims[1], groups * cg)  # the input's channels (else inference's error)
    hax = window_axis(gen, x.dims[2], kh, sh, dh, a["padding"], 0)
    wax = window_axis(gen, x.dims[3], kw, sw, dw, a["padding"], 1)
    static = node.specs[0].shape
    ho, wo = dims.static(hax.out, static[2]), dims.static(wax.out, static[3])
    require(gen, "{0} >= 1 and {1} >= 1", ho, wo)  # (SAME on an empty plane: the kernel's)
    y = gen.buffer(x.dtype, (dims.static(n, static[0]), o, ho, wo))
    xp, fill = padded(gen, x, hax, wax, "0.0")
    gen.emit(*fill)
    wc = contiguous(w)
    if use_direct(taps, (sh, sw), groups):
        # One thread here: where the kernel would take Numba's pool, run step by step.
        # (checked at run time always: the pool's size is read then, as the kernel does)
        gen.dims.require(f"chunks({dims.expr(n)}, {dims.product((n, o * taps, ho, wo))}) == 1")
        acc = gen.buffer(x.dtype, (calc(gen, "2 * (({0} - 1) * {1} + {2})", ho, wax.padded, wo),))
        gen.emit(call("direct_forward", xp, wc, y.name, acc.name, dh, dw))
        return [y]
    _blocked(gen, node, x, xp, wc, y, (o, cg, kh, kw), (hax, wax))
    return [y]


def _layout(gen: Gen, n: Dim, rows: int, wp: Dim, ho: Dim, wo: Dim, strides: tuple) -> tuple:
    """The kernel's :func:`.conv_kernels.layout` (full-width or compact columns, pitch,
    span, samples per block): called now when every size is known, else by the shape
    function (the same function either way, so both paths block alike)."""
    found = [gen.dims.find(d) for d in (n, wp, ho, wo)]
    if all(isinstance(d, int) for d in found):
        f, p, s, b = layout(found[0], rows, found[1], found[2], found[3], strides)
        return f, p, s, b
    call_ = (f"layout({', '.join(gen.dims.expr(d) for d in (n, rows, wp, ho, wo))}, "
             f"{tuple(strides)!r})")
    full = tuple(strides) == (1, 1)  # (layout's own rule: a static choice)
    return (full, *(gen.dims.fresh(f"{call_}[{i}]") for i in (1, 2, 3)))


def _blocked(gen: Gen, node: Any, x: Val, xp: str, wc: str, y: Val, wdims: tuple,
             axes: tuple[Axis, Axis]) -> None:
    """Per block of samples: fill the columns, one GEMM per group, scatter to NCHW."""
    a, ex = node.attrs, gen.dims.expr
    (sh, sw), (dh, dw), groups = a["strides"], a["dilations"], a["groups"]
    o, cg, kh, kw = wdims
    hax, wax = axes
    n, ho, wo = x.dims[0], y.dims[2], y.dims[3]
    rows, k = groups * cg * kh * kw, cg * kh * kw
    full, pitch, span, block = _layout(gen, n, rows, wax.padded, ho, wo, (sh, sw))
    cbuf = gen.buffer(x.dtype, (rows, block, span))
    ybuf = gen.buffer(x.dtype, (o, block, span))
    w2, n0, nb, cols, yb = (gen.name(p) for p in ("w", "n", "n", "c", "c"))
    sp, og = ex(span), o // groups
    lines = [f"{w2} = {wc}.reshape(({o}, {k}))",
             f"for {n0} in range(0, {ex(n)}, {ex(block)}):",
             f"    {nb} = min({ex(block)}, {ex(n)} - {n0})",
             f"    {cols} = {cbuf.name}.reshape(-1)[:{rows} * {nb} * {sp}]"
             f".reshape(({rows}, {nb} * {sp}))",
             f"    {yb} = {ybuf.name}.reshape(-1)[:{o} * {nb} * {sp}].reshape(({o}, {nb} * {sp}))",
             "    " + call("fill_cols", xp, n0, nb, cols, kh, kw, sh, sw, dh, dw, ex(ho), ex(wo),
                          full, ex(pitch), sp)]
    if groups == 1:
        lines.append(f"    gemm({w2}, {cols}, {yb}, False, False)")
    else:  # group gi: rows gi*og.. of the weights and the output, gi*k.. of the columns
        gi = gen.name("g")
        lines += [f"    for {gi} in range({groups}):",
                  f"        gemm({w2}[{gi} * {og}:({gi} + 1) * {og}], "
                  f"{cols}[{gi} * {k}:({gi} + 1) * {k}], {yb}[{gi} * {og}:({gi} + 1) * {og}], "
                  "False, False)"]
    lines.append("    " + call("scatter_out", yb, y.name, n0, nb, ex(pitch), sp))
    gen.emit(*lines)
