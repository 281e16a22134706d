"""``compile`` / ``fit`` / ``evaluate`` / ``predict`` / ``train_on_batch`` for models.

How it runs: ``compile`` adds the training part to the model's graph once: a label
placeholder, the loss (plus the layers' regularization penalties), the metrics, a scalar
``learning_rate`` placeholder and the optimizer's train op (grouped with the layers' update
ops, e.g. batch-norm statistics). Three executables are made from the model's session:
train ``[loss, metrics, train_op]``, test ``[loss, metrics]`` and predict ``outputs``; each
compiles once (sessions compile per (fetches, feeds) signature and never per batch size).
Dropout and batch norm read the graph's training flag, fed True by the train executable
and False by the others, so one graph and its variables serve both modes.
"""

from __future__ import annotations

import sys
import time
import warnings
from typing import Any, Optional, Sequence

import numpy as np

import graphc as gc
from graphc.graph import Tensor
from graphc.frontends.keras import backend
from graphc.frontends.keras import losses as losses_mod
from graphc.frontends.keras import metrics as metrics_mod
from graphc.frontends.keras import optimizers as optimizers_mod
from graphc.frontends.keras.callbacks import CallbackList, History
from graphc.frontends.keras.layers.base import as_list

__all__ = ["TrainingMixin", "resolve_target"]


def resolve_target(target: Optional[str]) -> str:
    """``target`` if built; ``"cpu"`` falls back to the default target with a warning while
    the cpu backend is not built (so examples say ``cpu`` and still run)."""
    if target == "cpu" and "cpu" not in gc.available_targets():
        fallback = gc.Session(gc.Graph()).target
        warnings.warn(f"target 'cpu' is not built in this graphc; using {fallback!r}",
                      stacklevel=3)
        return fallback
    return gc.Session(gc.Graph(), target=target).target


class TrainingMixin:
    """The training methods of :class:`~graphc.frontends.keras.models.Model`."""

    def _ensure_built(self, x: Any = None) -> None:
        pass

    def _can_build(self) -> bool:
        """Whether the graph can be built before the first data is seen."""
        return True

    # -- compile ---------------------------------------------------------------------------

    def compile(self, optimizer: Any = "rmsprop", loss: Any = None,
                metrics: Optional[Sequence[Any]] = None, target: Optional[str] = "cpu") -> None:
        """Set up training: optimizer (name or ``gc.keras.optimizers`` object), loss (name or
        callable), metrics (names or callables) and the graphc target to run on. A Sequential
        model whose input shape is not given yet is compiled as Keras does: its training
        graph is built when fit, evaluate or train_on_batch first sees data."""
        if loss is None:
            raise ValueError("compile: a loss is required; use one of "
                             + ", ".join(losses_mod.LOSSES))
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = losses_mod.get(loss)
        self._target = resolve_target(target)
        loss_name = loss if isinstance(loss, str) else getattr(self.loss, "name", None)
        self._loss_name = {"mse": "mean_squared_error",
                           "mae": "mean_absolute_error"}.get(loss_name, loss_name)
        self._metric_args = list(metrics or [])
        for m in self._metric_args:  # an unknown name fails here, not at the first fit
            metrics_mod.get(m, self._loss_name)
        self._executables: dict[str, Any] = {}
        self._train_op = None
        self._training_built = False
        self.compiled = True
        if self._can_build():
            self._build_training()

    def _build_training(self) -> None:
        """Add the loss, metrics and optimizer step of :meth:`compile` to the built graph."""
        self._ensure_built()
        if len(self.outputs) != 1:
            raise NotImplementedError("compile: models with several outputs are not supported "
                                      "yet; build one model per output")
        out = self.outputs[0]
        units = out.shape[-1] if out.shape else None
        named = [metrics_mod.get(m, self._loss_name, units) for m in self._metric_args]
        graph = self.graph
        with graph.as_default(), graph.name_scope(None), graph.name_scope("training"):
            sparse = getattr(self.loss, "sparse", False)
            y = gc.placeholder(gc.int64 if sparse else out.dtype,
                               out.shape[:-1] if sparse else out.shape, name="y_true")
            self._metric_fns = [fn for _, fn in named]
            total, *metric_tensors = self._loss_and_metrics(y, out)
            lr = gc.placeholder(out.dtype if out.dtype.is_floating else gc.float32, (),
                                name="learning_rate")
        train_op = None  # a model without trainable weights can still be evaluated
        if self.trainable_weights:
            train_op = self.optimizer.build(lr).minimize(total, var_list=self.trainable_weights)
            updates = [u for layer in self.layers for u in layer.updates]
            if updates:
                with graph.as_default():
                    train_op = gc.group([train_op, *updates])
        self._y, self._lr, self._sparse = y, lr, sparse
        self.metrics_names = ["loss"] + [name for name, _ in named]
        self._fetch_metrics = [total, *metric_tensors]
        self._test_fetches: Optional[list[Tensor]] = None
        self._train_op = train_op
        self._training_built = True

    def _executable(self, kind: str) -> tuple[Any, bool]:
        """(callable, feeds the flag?) for ``"train"``, ``"test"`` or ``"predict"``."""
        sess = self.session
        key = (kind, id(sess))  # a new session (another target) needs new executables
        entry = self._executables.get(key) if self.compiled else None
        if entry is None and kind == "train" and self._train_op is None:
            raise ValueError(f"model {self.name} has no trainable weights to train")
        if entry is None:
            fetches = {"train": lambda: [*self._fetch_metrics, self._train_op],
                       "test": self._evaluation_fetches,
                       # without the training flag: no dropout or batch-statistics branch
                       # left in the plan, which then compiles as one function (cpu)
                       "predict": lambda: list(self.inference_outputs())}[kind]()
            feeds = list(self.inputs) + ([] if kind == "predict" else [self._y])
            flag = backend.has_learning_phase(self.graph)
            from graphc.frontends.keras.models import _ancestors

            tensors = [f for f in fetches if isinstance(f, Tensor)]
            roots = tensors + ([u for layer in self.layers for u in layer.updates]
                               if kind == "train" else [])
            uses_flag = flag is not None and flag.node.id in _ancestors(roots)
            feeds += [flag] if uses_flag else []
            feeds += [self._lr] if kind == "train" else []
            entry = (sess.make_callable(fetches, feeds), uses_flag)
            if self.compiled:
                self._executables[key] = entry
        return entry

    def _evaluation_fetches(self) -> list[Tensor]:
        """The loss and metrics of the inference outputs (built once): as for predict, the
        plan then holds no dropout mask or batch-statistics branch to compute; the values
        are those of the training outputs with the flag fed False."""
        if self._test_fetches is None:
            (out,) = self.inference_outputs()
            if out is self.outputs[0]:
                self._test_fetches = self._fetch_metrics
            else:
                graph = self.graph
                with graph.as_default(), graph.name_scope(None), graph.name_scope("evaluation"):
                    self._test_fetches = self._loss_and_metrics(self._y, out)
        return self._test_fetches

    def _loss_and_metrics(self, y: Tensor, out: Tensor) -> list[Tensor]:
        """[the loss of ``out`` against ``y`` plus the weight penalties (no training flag
        in them), then each metric]."""
        total = self.loss(y, out)
        for penalty in self.losses:
            total = total + gc.cast(penalty, total.dtype)
        return [total, *(fn(y, out) for fn in self._metric_fns)]

    def _require_compiled(self, what: str) -> None:
        if not getattr(self, "compiled", False):
            raise RuntimeError(f"{what}: compile the model first (model.compile(optimizer, loss))")

    # -- data ------------------------------------------------------------------------------

    def _prepare_x(self, x: Any) -> list[np.ndarray]:
        self._ensure_built(x)
        if self.compiled and not self._training_built:  # compiled before it was built
            self._build_training()
        arrays = [np.asarray(a) for a in as_list(x)]
        if len(arrays) != len(self.inputs):
            raise ValueError(f"model {self.name} takes {len(self.inputs)} inputs, got "
                             f"{len(arrays)} arrays")
        return arrays

    def _prepare_y(self, y: Any, n: int) -> np.ndarray:
        y = np.asarray(y)
        out = self.outputs[0]
        if self._sparse:
            if y.ndim == len(out.shape):  # (N, 1) labels, as Keras allows
                y = y.reshape(y.shape[:-1])
        elif y.ndim == len(out.shape) - 1:
            y = y[..., None]
        if len(y) != n:
            raise ValueError(f"x has {n} samples but y has {len(y)}")
        return y

    # -- training --------------------------------------------------------------------------

    def train_on_batch(self, x: Any, y: Any) -> Any:
        """One optimizer step on this batch; returns the loss (and metrics) before the step."""
        self._require_compiled("train_on_batch")
        xs = self._prepare_x(x)
        values = self._run_batch("train", xs, self._prepare_y(y, len(xs[0])))
        return values[0] if len(values) == 1 else values

    def _run_batch(self, kind: str, xs: list, y: Optional[np.ndarray]) -> list[float]:
        fn, uses_flag = self._executable(kind)
        feeds = list(xs) + ([] if y is None else [y])
        if uses_flag:
            feeds.append(np.array(kind == "train"))
        if kind == "train":
            feeds.append(np.asarray(self.optimizer.learning_rate, self._lr.dtype.np))
            return [float(v) for v in fn(*feeds)[:-1]]
        return fn(*feeds) if kind == "predict" else [float(v) for v in fn(*feeds)]

    def fit(self, x: Any = None, y: Any = None, batch_size: int = 32, epochs: int = 1,
            verbose: Any = "auto", callbacks: Optional[Sequence[Any]] = None,
            validation_split: float = 0.0, validation_data: Any = None, shuffle: bool = True,
            initial_epoch: int = 0) -> History:
        """Train for ``epochs`` passes over (x, y) in minibatches; returns a History whose
        ``history`` maps ``loss``, metrics and ``val_*`` to per-epoch values."""
        xs = self._prepare_x(x)
        self._require_compiled("fit")
        n = len(xs[0])
        y = self._prepare_y(y, n)
        verbose = 1 if verbose == "auto" else int(verbose)
        if validation_data is None and validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            split = n - int(n * validation_split)  # Keras: the last samples, before shuffling
            validation_data = ([a[split:] for a in xs], y[split:])
            xs, y, n = [a[:split] for a in xs], y[:split], split
        if validation_data is not None:
            vx, vy = validation_data[0], validation_data[1]
            vxs = self._prepare_x(vx)
            validation_data = (vxs, self._prepare_y(vy, len(vxs[0])))
        history = History()
        cbs = CallbackList([*(callbacks or []), history], self)  # last, as Keras: it sees every log
        rng = np.random.default_rng(backend.next_seed())
        steps = max(1, -(-n // batch_size))
        self.stop_training = False
        cbs.call("on_train_begin", {})
        for epoch in range(initial_epoch, epochs):
            cbs.call("on_epoch_begin", epoch, {})
            order = rng.permutation(n) if shuffle else np.arange(n)
            sums, seen, start = np.zeros(len(self.metrics_names)), 0, time.perf_counter()
            bar = _bar(verbose, steps, f"Epoch {epoch + 1}/{epochs}")
            for step in range(steps):
                idx = order[step * batch_size:(step + 1) * batch_size]
                cbs.call("on_train_batch_begin", step, {})
                values = self._run_batch("train", [a[idx] for a in xs], y[idx])
                sums += np.asarray(values) * len(idx)
                seen += len(idx)
                logs = dict(zip(self.metrics_names, (sums / seen).tolist()))
                cbs.call("on_train_batch_end", step, logs)
                if bar is not None:
                    bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
                    bar.update(1)
            if validation_data is not None:
                val = self._evaluate_arrays(*validation_data, batch_size)
                logs.update({f"val_{k}": v for k, v in zip(self.metrics_names, val)})
            elapsed = time.perf_counter() - start
            if bar is not None:
                bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
                bar.close()
            elif verbose == 2:
                print(f"Epoch {epoch + 1}/{epochs} - {elapsed:.2f}s - "
                      + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()), flush=True)
            cbs.call("on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        cbs.call("on_train_end", {})
        return history

    # -- inference -------------------------------------------------------------------------

    def _evaluate_arrays(self, xs: list, y: np.ndarray, batch_size: int,
                         verbose: int = 0) -> list[float]:
        n = len(xs[0])
        sums = np.zeros(len(self.metrics_names))
        bar = _bar(verbose, max(1, -(-n // batch_size)), "evaluate")
        for start in range(0, n, batch_size):
            sl = slice(start, start + batch_size)
            values = self._run_batch("test", [a[sl] for a in xs], y[sl])
            sums += np.asarray(values) * len(y[sl])
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return (sums / max(n, 1)).tolist()

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int = 32, verbose: Any = 0,
                 return_dict: bool = False) -> Any:
        """The loss (and metrics) over (x, y) in inference mode: a float, a list
        ``[loss, *metrics]``, or a dict with ``return_dict=True``."""
        self._require_compiled("evaluate")
        xs = self._prepare_x(x)
        values = self._evaluate_arrays(xs, self._prepare_y(y, len(xs[0])), batch_size,
                                       1 if verbose == "auto" else int(verbose))
        if return_dict:
            return dict(zip(self.metrics_names, values))
        return values[0] if len(values) == 1 else values

    def test_on_batch(self, x: Any, y: Any) -> Any:
        """The loss (and metrics) on one batch, in inference mode."""
        self._require_compiled("test_on_batch")
        xs = self._prepare_x(x)
        values = self._run_batch("test", xs, self._prepare_y(y, len(xs[0])))
        return values[0] if len(values) == 1 else values

    def predict(self, x: Any, batch_size: int = 32, verbose: Any = 0) -> Any:
        """The outputs for ``x`` in inference mode (an array, or a list for several outputs)."""
        xs = self._prepare_x(x)
        n = len(xs[0])
        parts: list[list[np.ndarray]] = []
        bar = _bar(1 if verbose == "auto" else int(verbose), max(1, -(-n // batch_size)),
                   "predict")
        for start in range(0, n, batch_size):
            parts.append(self._run_batch("predict", [a[start:start + batch_size] for a in xs],
                                         None))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        outs = [np.concatenate([p[i] for p in parts]) for i in range(len(self.outputs))]
        return outs[0] if len(outs) == 1 else outs

    def predict_on_batch(self, x: Any) -> Any:
        """The outputs for one batch, in inference mode."""
        outs = self._run_batch("predict", self._prepare_x(x), None)
        return outs[0] if len(outs) == 1 else outs


def _bar(verbose: int, total: int, desc: str) -> Any:
    """A tqdm progress bar for verbose=1 (None otherwise, or when tqdm is missing)."""
    if verbose != 1:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="batch", file=sys.stdout, leave=True,
                dynamic_ncols=True)
