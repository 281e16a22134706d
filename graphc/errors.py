"""The errors graphc users see.

Every error is a :class:`GraphcError` and also the matching builtin (``ShapeError`` is a
``ValueError``, ``DTypeError`` a ``TypeError``) so generic handlers keep working.

Errors raised while an op is being built carry context: the op's name, its inputs'
names, dtypes and shapes, and the line of the user's file that built it::

    graphc.ShapeError: matmul: inner dimensions differ, 784 vs 512
      a: x  float32[None, 784]   b: W1  float32[512, 256]
      at model.py:12  logits = x @ W1

Shape-inference functions raise the bare error (``ShapeError("inner dimensions differ")``);
:func:`graphc.op.apply` adds the context with :meth:`GraphcError.with_context`. Errors
only a run can find (a label out of range, an index past a dimension known at run time)
get the line of the op that raised them from the backend running it (:meth:`~GraphcError.at`)::

    graphc.FeedError: sparse_softmax_cross_entropy_with_logits: label 7 is outside [0, 3)
      at model.py:14  loss = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, ...)
"""

from __future__ import annotations

from typing import Sequence

__all__ = [
    "GraphcError", "ShapeError", "DTypeError", "FeedError", "GraphError", "GradientError",
    "TargetError", "FileFormatError", "CheckpointError", "first_line",
]


def first_line(err: BaseException) -> str:
    """``Type: first line of the message``: how a backend names a compiler error (Numba's
    run to pages) in the one-line warning or error it gives instead."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


class GraphcError(Exception):
    """Base of all graphc errors."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.op: str | None = None
        self.context: list[str] = []
        self.located = False

    def with_context(self, op: str, inputs: Sequence[tuple[str, object]] = (),
                     location: object = None) -> "GraphcError":
        """Attach the op name, ``(label, tensor)`` inputs and user location (once)."""
        if self.op is None:
            self.op = op
            if inputs:
                self.context.append("   ".join(f"{label}: {_describe(t)}" for label, t in inputs))
            if location is not None:
                self.context.append(f"at {location}")
                self.located = True
        return self

    def at(self, location: object) -> "GraphcError":
        """Attach the user's source line of the op that raised this at run time (once:
        an error raised while building the op already has its own)."""
        if location is not None and not self.located:
            self.context.append(f"at {location}")
            self.located = True
        return self

    def __str__(self) -> str:
        head = f"{self.op}: {self.message}" if self.op else self.message
        return "\n  ".join([head, *self.context])


def _describe(tensor: object) -> str:
    describe = getattr(tensor, "describe", None)
    return describe() if describe else repr(tensor)


class ShapeError(GraphcError, ValueError):
    """Shapes that do not fit the op (caught when the graph is built)."""


class DTypeError(GraphcError, TypeError):
    """A dtype the op does not accept (caught when the graph is built)."""


class FeedError(GraphcError, ValueError):
    """A missing feed, or a fed value of the wrong shape or dtype."""


class GraphError(GraphcError, ValueError):
    """A misuse of the graph: mixing graphs, an unknown name, conflicting state updates."""


class GradientError(GraphcError, ValueError):
    """A gradient that cannot be built (an op without a gradient rule on the path)."""


class TargetError(GraphcError, ValueError):
    """An unknown or unavailable compilation target."""


class FileFormatError(GraphcError, ValueError):
    """A file graphc cannot read: wrong format, truncated or corrupt."""


class CheckpointError(FileFormatError):
    """A checkpoint that is corrupt or does not match the graph's variables."""


# Tracebacks then read `graphc.ShapeError: ...`, the name users import.
for _cls in (GraphcError, ShapeError, DTypeError, FeedError, GraphError, GradientError,
             TargetError, FileFormatError, CheckpointError):
    _cls.__module__ = "graphc"
