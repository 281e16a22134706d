"""Tensors made from a shape: fill, zeros, ones, their ``_like`` forms, range, and random draws.

Random ops draw from the counter-based generator of :mod:`graphc.random_bits`, keyed by
(seed, stream, step, element index), so a seeded graph gives the same numbers on every run
and every target. ``step`` is the number of times the session has run a program; ``stream``
distinguishes the random ops of one graph. An op given an explicit ``seed`` uses stream 0,
so its draws do not depend on the rest of the graph; otherwise the seed is the graph's
(``gc.set_random_seed``) or, failing that, fresh entropy, and the stream is the op's rank
among the graph's random ops.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from graphc import dtypes
from graphc.errors import DTypeError, ShapeError
from graphc.graph import Graph, Literal, Tensor, TensorSpec, get_default_graph
from graphc.op import Kind, apply1, defop
from graphc.ops.elementwise import _as_tensor, cast
from graphc.ops.state import constant, to_array
from graphc.shapes import as_shape, format_shape, is_fully_known

__all__ = ["fill", "zeros", "ones", "zeros_like", "ones_like", "range", "random_normal",
           "random_uniform", "set_random_seed"]


def _static_shape(shape: Any, op: str) -> tuple[int, ...]:
    shape = as_shape(shape)
    if not is_fully_known(shape):
        raise ShapeError(f"{op}: the shape {format_shape(shape)} must be fully known; use "
                         f"{op}_like(tensor) for a shape known only at run time")
    return shape


defop("fill", kind=Kind.BROADCAST,
      infer=lambda *, shape, value: TensorSpec(shape, dtypes.as_dtype(value.array.dtype)),
      ref=lambda *, shape, value: np.full(shape, value.array),
      doc="a tensor of `shape` holding `value` everywhere")

defop("fill_like", kind=Kind.BROADCAST,
      infer=lambda x, *, value: TensorSpec(x.shape, dtypes.as_dtype(value.array.dtype)),
      ref=lambda x, *, value: np.full(x.shape, value.array),
      vjp=lambda n, g: [None], input_names=("like",),
      doc="a tensor of `like`'s run-time shape holding `value` everywhere")


def fill(dims: Any, value: Any, dtype: Any = None, name: Optional[str] = None) -> Tensor:
    """A tensor of static shape ``dims`` filled with the scalar ``value``."""
    value = Literal(to_array(value, dtype))
    return apply1("fill", [], {"shape": _static_shape(dims, "fill"), "value": value},
                  name=name, graph=get_default_graph())


def zeros(shape: Any, dtype: Any = dtypes.float32, name: Optional[str] = None) -> Tensor:
    """A tensor of zeros."""
    return fill(shape, 0, dtype, name)


def ones(shape: Any, dtype: Any = dtypes.float32, name: Optional[str] = None) -> Tensor:
    """A tensor of ones."""
    return fill(shape, 1, dtype, name)


def _fill_like(x: Any, value: Any, dtype: Any, name: Optional[str]) -> Tensor:
    x = _as_tensor(x)
    dtype = dtypes.as_dtype(dtype) if dtype is not None else x.dtype
    return apply1("fill_like", [x], {"value": Literal(np.asarray(value, dtype.np))}, name=name)


def zeros_like(x: Any, dtype: Any = None, name: Optional[str] = None) -> Tensor:
    """Zeros of ``x``'s (run-time) shape, in ``x``'s dtype unless given."""
    return _fill_like(x, 0, dtype, name)


def ones_like(x: Any, dtype: Any = None, name: Optional[str] = None) -> Tensor:
    """Ones of ``x``'s (run-time) shape, in ``x``'s dtype unless given."""
    return _fill_like(x, 1, dtype, name)


def _range_ref(start: np.ndarray, limit: np.ndarray, delta: np.ndarray) -> np.ndarray:
    return np.arange(start, limit, delta, dtype=start.dtype)


def _infer_range(start: TensorSpec, limit: TensorSpec, delta: TensorSpec) -> TensorSpec:
    for s in (start, limit, delta):
        if s.shape not in ((), None):
            raise ShapeError(f"start, limit and delta must be scalars, got {format_shape(s.shape)}")
    return TensorSpec((None,), start.dtype)


defop("range", kind=Kind.SHAPE, infer=_infer_range, ref=_range_ref,
      input_names=("start", "limit", "delta"),
      doc="[start, start + delta, ...) up to limit; its length is known at run time")


def range(start: Any, limit: Any = None, delta: Any = 1, dtype: Any = None,  # noqa: A001
          name: Optional[str] = None) -> Tensor:
    """``np.arange`` as a tensor (TF1's ``gc.range(start, limit, delta)``); a constant when
    the arguments are Python numbers."""
    if limit is None:
        start, limit = 0, start
    args = (start, limit, delta)
    if not any(isinstance(a, Tensor) for a in args):
        kind_float = any(isinstance(a, float) for a in args)
        dtype = dtype or (dtypes.DEFAULT_FLOAT if kind_float else dtypes.DEFAULT_INT)
        return constant(np.arange(start, limit, delta), dtype, name=name)
    from graphc.ops.elementwise import promote

    start, limit, delta = promote(*args)
    if dtype is not None:
        start, limit, delta = (cast(a, dtype) for a in (start, limit, delta))
    return apply1("range", [start, limit, delta], name=name)


# -- random draws -------------------------------------------------------------------------

def _infer_random(*like: TensorSpec, shape: Any, dtype: dtypes.DType, seed: int,
                  stream: int) -> TensorSpec:
    if not dtype.is_floating:
        raise DTypeError(f"draws floats; got dtype {dtype}")
    return TensorSpec(like[0].shape if like else shape, dtype)


def _random_ref(kind: str):
    def ref(*like: np.ndarray, shape: Any, dtype: dtypes.DType, seed: int, stream: int,
            step: int) -> np.ndarray:
        from graphc import random_bits

        draw = random_bits.uniform if kind == "uniform" else random_bits.normal
        return draw(like[0].shape if like else shape, seed, stream, step, dtype.np)
    return ref


defop("random_uniform", kind=Kind.RANDOM, stateful=True, infer=_infer_random,
      ref=_random_ref("uniform"), vjp=lambda n, *g: [None] * len(n.inputs),
      input_names=("like",), doc="uniform floats in [0, 1), of a static shape or like's")
defop("random_normal", kind=Kind.RANDOM, stateful=True, infer=_infer_random,
      ref=_random_ref("normal"), vjp=lambda n, *g: [None] * len(n.inputs),
      input_names=("like",), doc="standard normal floats, of a static shape or like's")


def set_random_seed(seed: Optional[int], graph: Optional[Graph] = None) -> None:
    """Set the default graph's seed, making its unseeded random ops reproducible."""
    (graph or get_default_graph()).seed = None if seed is None else int(seed)


def _seed_and_stream(graph: Graph, seed: Optional[int]) -> tuple[int, int]:
    if seed is not None:
        return int(seed) & 0xFFFFFFFFFFFFFFFF, 0
    streams = graph.collections.setdefault("_random_streams", [0])
    streams[0] += 1
    base = graph.seed if graph.seed is not None else int(np.random.SeedSequence().entropy % 2**63)
    return base, streams[0]


def _draw(op: str, shape: Any, dtype: Any, seed: Optional[int], name: Optional[str]) -> Tensor:
    graph = shape.graph if isinstance(shape, Tensor) else get_default_graph()
    seed, stream = _seed_and_stream(graph, seed)
    attrs = {"dtype": dtypes.as_dtype(dtype), "seed": seed, "stream": stream}
    if isinstance(shape, Tensor):  # a tensor whose run-time shape the draw takes
        return apply1(op, [shape], {**attrs, "shape": None}, name=name)
    return apply1(op, [], {**attrs, "shape": _static_shape(shape, op)}, name=name, graph=graph)


def random_uniform(shape: Any, minval: float = 0.0, maxval: float = 1.0,
                   dtype: Any = dtypes.float32, seed: Optional[int] = None,
                   name: Optional[str] = None) -> Tensor:
    """Uniform draws in ``[minval, maxval)``. ``shape``: static dims, or a tensor whose
    run-time shape to take."""
    u = _draw("random_uniform", shape, dtype, seed, name)
    return u if (minval, maxval) == (0.0, 1.0) else u * (maxval - minval) + minval


def random_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0,
                  dtype: Any = dtypes.float32, seed: Optional[int] = None,
                  name: Optional[str] = None) -> Tensor:
    """Normal draws with ``mean`` and ``stddev``. ``shape`` as in :func:`random_uniform`."""
    z = _draw("random_normal", shape, dtype, seed, name)
    return z if (mean, stddev) == (0.0, 1.0) else z * stddev + mean
