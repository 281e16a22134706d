"""``max_pool2d`` and ``avg_pool2d`` in a compiled program (:mod:`.program_codegen`): the
step-by-step kernels' loops, called from the generated ``@njit`` code.

Unpadded 2x2 windows with strides 2 run :func:`.pool_2x2.maxpool2x2_forward`; every other
window, stride and padding runs :func:`.pool_kernels.maxpool_forward` over the input padded
with ``-inf`` (:func:`.pad_loops.pad_into`; padded cells never win, as in the reference).
``"SAME"`` pads of an unknown size are resolved at run time, and a 2x2 window whose pads
come out zero takes the 2x2 loops then, as the kernel does. Non-float dtypes and ranks
other than 4 raise :class:`~.loop_shapes.Unsupported`.

``avg_pool2d`` runs :func:`.avg_pool_kernels.avgpool_forward`, which clips each window to
the input itself: no padded copy, whatever the padding.
"""

from __future__ import annotations

from typing import Any

from .conv_emit import call, contiguous, padded
from .loop_shapes import Unsupported
from .loop_values import Gen, Val
from .window_shapes import Axis, window_axis

__all__ = ["AVG_IMPORTS", "IMPORTS", "emit_avg_pool2d", "emit_max_pool2d"]

#: The compiled helpers the generated code calls: module (in this package) -> names.
IMPORTS = {"pool_2x2": ("maxpool2x2_forward",), "pool_kernels": ("maxpool_forward",),
           "pad_loops": ("pad_into",)}
#: The same for average pooling.
AVG_IMPORTS = {"avg_pool_kernels": ("avgpool_forward",)}


def _pooling(gen: Gen, node: Any) -> tuple[Val, Axis, Axis, Val]:
    """x, the two window axes and the output buffer of a 2-D pooling node (NCHW)."""
    x = gen.val(node.inputs[0])
    if len(x.dims) != 4:
        raise Unsupported(f"{node.op} of rank other than 4")
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        raise Unsupported(f"{node.op} other than float32/float64")  # the kernels' dtypes
    a = node.attrs
    (kh, kw), (sh, sw), padding = a["ksize"], a["strides"], a["padding"]
    hax = window_axis(gen, x.dims[2], kh, sh, 1, padding, 0)
    wax = window_axis(gen, x.dims[3], kw, sw, 1, padding, 1)
    out = gen.output(node, (x.dims[0], x.dims[1], hax.out, wax.out), x.dtype)
    return x, hax, wax, out


def emit_max_pool2d(gen: Gen, node: Any) -> list[Val]:
    """``y = max_pool2d(x)`` (NCHW) with the node's window, strides and padding."""
    x, hax, wax, out = _pooling(gen, node)
    dims = gen.dims
    (kh, kw), (sh, sw) = node.attrs["ksize"], node.attrs["strides"]
    fast = (kh, kw) == (2, 2) and (sh, sw) == (2, 2)
    if fast and hax.unpadded and wax.unpadded:
        gen.emit(f"maxpool2x2_forward({contiguous(x)}, {out.name})")
        return [out]
    xp, general = padded(gen, x, hax, wax, "-np.inf")
    general.append(call("maxpool_forward", xp, out.name, kh, kw, sh, sw))
    if fast:  # "SAME" pads of unknown size: zero at run time for even sizes
        zero = " and ".join(f"{dims.expr(p)} == 0" for p in (hax.lo, hax.hi, wax.lo, wax.hi))
        gen.emit(f"if {zero}:", f"    maxpool2x2_forward({contiguous(x)}, {out.name})",
                 "else:", *("    " + ln for ln in general))
    else:
        gen.emit(*general)
    return [out]


def emit_avg_pool2d(gen: Gen, node: Any) -> list[Val]:
    """``y = avg_pool2d(x)`` (NCHW): the kernel clips each window to the input, so only
    the leading pads are passed (no padded copy)."""
    x, hax, wax, out = _pooling(gen, node)
    (kh, kw), (sh, sw) = node.attrs["ksize"], node.attrs["strides"]
    ex = gen.dims.expr
    gen.emit(call("avgpool_forward", contiguous(x), out.name, kh, kw, sh, sw, ex(hax.lo),
                  ex(wax.lo)))
    return [out]
