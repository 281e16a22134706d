"""``sparse_softmax_cross_entropy_with_logits`` in a compiled program
(:mod:`.program_codegen`): the step kernel's one pass per row
(:func:`.loss_kernels.softmax_xent_rows`), called from the generated ``@njit`` code.

A Keras classifier's evaluate fetches its loss and accuracy; with this op and ``argmax``
(:mod:`.reduce_emit`) emitted, that plan runs as one call, as its predict does. The labels
must have the logits' shape without the class axis (checked by the shape function; other
shapes run step by step, where the reference broadcasts or raises). A label out of range
makes the program return 2: its outputs are fresh arrays and it writes no state, so the
caller runs the plan step by step, where the reference raises its FeedError.
"""

from __future__ import annotations

from typing import Any

from .conv_emit import call, contiguous
from .loop_shapes import Unsupported
from .loop_values import Gen, Val

__all__ = ["IMPORTS", "emit_sparse_xent"]

#: The compiled helpers the generated code calls: module (in this package) -> names.
IMPORTS = {"loss_kernels": ("softmax_xent_rows",)}


def emit_sparse_xent(gen: Gen, node: Any) -> list[Val]:
    """``loss[r] = logsumexp(logits[r]) - logits[r, labels[r]]`` over the rows."""
    labels, logits = (gen.val(r) for r in node.inputs)
    if logits.dtype.kind != "f" or logits.dtype.itemsize not in (4, 8):
        raise Unsupported(f"{node.op} other than float32/float64")
    if len(labels.dims) + 1 != len(logits.dims):
        raise Unsupported(f"{node.op} with broadcast labels")
    dims = gen.dims
    for a, b in zip(labels.dims, logits.dims):
        dims.same(a, b)
    classes = dims.expr(logits.dims[-1])
    dims.require(f"({classes}) > 0")
    out = gen.output(node, labels.dims)
    rows = dims.product(labels.dims)
    kernel = call("softmax_xent_rows", f"{contiguous(labels)}.reshape(-1)",
                  f"{contiguous(logits)}.reshape(({rows}, {classes}))", f"{out.name}.reshape(-1)")
    gen.emit(f"if {kernel} >= 0:", "    return 2  # a label out of range")
    return [out]
