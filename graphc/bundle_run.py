"""Running a loaded bundle: :class:`BundleExecutable` (what ``gc.load`` returns).

The bundle has been verified by :func:`graphc.bundle.read_bundle`; here the kernel
sources it stores are compared with what the local backend generates from its graph (they
are never executed themselves), and the graph is compiled for the bundle's target with
the stored weights as the variables' values.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from graphc.bundle import Bundle, BundleError, export_sources, feed_tensors
from graphc.errors import FeedError, GraphcError, TargetError
from graphc.shapes import format_shape

__all__ = ["BundleExecutable", "gpu_available"]


def gpu_available() -> bool:
    """True when Numba sees a CUDA GPU (or its simulator, NUMBA_ENABLE_CUDASIM=1)."""
    try:
        from numba import cuda
    except ImportError:
        return False
    try:
        return bool(cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken driver means "no GPU" here
        return False


class BundleExecutable:
    """A loaded bundle: call it with the inputs, positionally or by name; it returns the
    single output's array, or a tuple of arrays in the signature's order.

    ``run(feeds)`` returns a dict ``output name -> array``; ``train_step(feeds)`` runs the
    updates too (models compiled with a training step). ``state`` holds the weights.
    """

    def __init__(self, bundle: Bundle) -> None:
        from graphc.session import Session
        from graphc.targets import get_backend

        self.bundle = bundle
        self.signature = bundle.signature
        self.target = bundle.target
        if self.target == "cuda" and not gpu_available():
            raise TargetError(f"{bundle.path} is compiled for cuda, but no CUDA GPU is "
                              "available here; recompile it with --target cpu or reference")
        backend = get_backend(self.target)  # TargetError names the targets built here
        regenerated = export_sources(backend, self.signature)
        if regenerated != bundle.sources:
            differ = sorted(set(regenerated) ^ set(bundle.sources) | {
                k for k in regenerated if bundle.sources.get(k) != regenerated[k]})
            raise BundleError(f"{bundle.path}: refused: its kernel sources differ from what this "
                              f"graphc generates for its graph ({', '.join(differ[:5])}); it was "
                              "written by another graphc version or altered: recompile it")
        self.session = Session(bundle.graph, self.target)
        self.session.state.update({k: np.array(v, copy=True) for k, v in bundle.weights.items()})
        self._inputs = feed_tensors(self.signature)
        self._fixed = list(self.signature.fixed.values())
        self._forward = self.session.make_callable(list(self.signature.outputs.values()),
                                                   self._inputs)
        self._train: Any = None

    @property
    def state(self) -> dict[str, np.ndarray]:
        """The variables' current values, by name."""
        return self.session.state

    @property
    def has_updates(self) -> bool:
        """True when the bundle has a training step."""
        return bool(self.signature.updates)

    def describe(self) -> str:
        """The target and the signature, as the CLI prints them."""
        return f"target: {self.target}\n{self.signature.describe()}"

    def _arrays(self, args: tuple, feeds: Mapping[str, Any]) -> list[Any]:
        names = list(self.signature.inputs)
        if len(args) > len(names):
            raise FeedError(f"expected {len(names)} inputs, got {len(args)}\n{self.describe()}")
        values = dict(zip(names, args))
        for name, value in feeds.items():
            if name not in self.signature.inputs:
                raise FeedError(f"unknown input {name!r}\n{self.describe()}")
            if name in values:
                raise FeedError(f"input {name!r} given twice")
            values[name] = value
        missing = [n for n in names if n not in values]
        if missing:
            raise FeedError(f"missing input{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(map(repr, missing))}\n{self.describe()}")
        from graphc.session import check_feed

        arrays = []
        for name in names:
            try:
                arrays.append(check_feed(self.signature.inputs[name], values[name]))
            except FeedError as err:
                raise FeedError(f"input {name!r}: {err}\n{self.describe()}") from None
        return arrays + self._fixed

    def run(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The outputs for the inputs ``feeds`` (name -> array), by output name."""
        values = self._forward(*self._arrays((), feeds))
        return dict(zip(self.signature.outputs, values))

    def train_step(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """One training step (runs the updates); returns the outputs, by name."""
        if not self.has_updates:
            raise GraphcError("this bundle has no training step (its signature has no updates)")
        if self._train is None:
            fetches = [*self.signature.outputs.values(), *self.signature.updates]
            self._train = self.session.make_callable(fetches, self._inputs)
        values = self._train(*self._arrays((), feeds))
        return dict(zip(self.signature.outputs, values))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        values = list(self._forward(*self._arrays(args, kwargs)))
        return values[0] if len(values) == 1 else tuple(values)

    def __repr__(self) -> str:
        ins = ", ".join(f"{n}: {t.dtype.name}{format_shape(t.shape)}"
                        for n, t in self.signature.inputs.items())
        return f"<graphc bundle {os.path.basename(self.bundle.path)} ({ins}) on {self.target!r}>"
