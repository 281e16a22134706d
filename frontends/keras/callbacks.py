"""Callbacks with Keras semantics: History, EarlyStopping, ModelCheckpoint,
LearningRateScheduler, ReduceLROnPlateau, CSVLogger.

Epochs are 0-based in the hooks (``on_epoch_end(epoch, logs)``) and 1-based in file names
(``{epoch}`` in ModelCheckpoint's path), as Keras. Files are written atomically: a
temporary file in the same folder replaces the target only when complete.
"""

from __future__ import annotations

import inspect
import io
import math
import os
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np

from graphc.serialization import atomic_output

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint",
           "LearningRateScheduler", "ReduceLROnPlateau", "CSVLogger", "EpochTimer"]


class Callback:
    """Base class: override the hooks you need; ``self.model`` is the model being trained."""

    model: Any = None

    def set_model(self, model: Any) -> None:
        self.model = model

    def on_train_begin(self, logs: Optional[dict] = None) -> None: ...
    def on_train_end(self, logs: Optional[dict] = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: Optional[dict] = None) -> None: ...
    def on_train_batch_end(self, batch: int, logs: Optional[dict] = None) -> None: ...


class CallbackList:
    """Calls a hook on every callback in order."""

    def __init__(self, callbacks: Sequence[Callback], model: Any) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be gc.keras.callbacks.Callback objects, got "
                                f"{type(cb).__name__}")
            cb.set_model(model)

    def call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)


class History(Callback):
    """Records the logs of every epoch: ``history[key]`` is a list, ``epoch`` the indices."""

    def on_train_begin(self, logs=None):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


class _Monitor(Callback):
    """Shared by callbacks that watch one logged value for improvement."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if any(k in monitor for k in ("acc", "auc")) else "min"
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(float(min_delta))

    def improved(self, current: float, reference: float) -> bool:
        """Better than ``reference`` by more than ``min_delta``."""
        if self.mode == "min":
            return current + self.min_delta < reference
        return current - self.min_delta > reference

    def worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    def value(self, logs: Optional[dict]) -> Optional[float]:
        logs = logs or {}
        if self.monitor not in logs:
            import warnings

            warnings.warn(f"{type(self).__name__}: {self.monitor!r} is not in the logs "
                          f"(available: {', '.join(logs)}); pass validation data or pick "
                          "another monitor", stacklevel=3)
            return None
        return float(logs[self.monitor])


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs; with ``restore_best_weights`` the best epoch's weights are put back when
    training ends (Keras 3)."""

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: Optional[float] = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__(monitor, mode, min_delta)
        self.patience, self.verbose, self.baseline = int(patience), verbose, baseline
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best = self.worst()
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = self.value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self.improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self.improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the weights (``.npz``, atomically) after every epoch, or only when ``monitor``
    improved with ``save_best_only``. ``filepath`` may hold ``{epoch}`` and log keys,
    e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``."""

    def __init__(self, filepath: Any, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = True,
                 mode: str = "auto") -> None:
        super().__init__(monitor, mode, 0.0)
        if not save_weights_only:
            raise NotImplementedError("ModelCheckpoint saves weights only (save_weights_only="
                                      "True); save the graph with gc.save_graph if needed")
        self.filepath, self.verbose = os.fspath(filepath), verbose
        self.save_best_only = bool(save_best_only)
        self.best = self.worst()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = self.value(logs)
            if current is None or not self.improved(current, self.best):
                return
            self.best = current
        self.model.save_weights(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved weights to {path}")


def _learning_rate(model: Any) -> float:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise RuntimeError("learning-rate callbacks need a compiled model")
    return float(optimizer.learning_rate)


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch's start to ``schedule(epoch, lr)`` (or
    ``schedule(epoch)``); it is fed to the train step as a tensor, so nothing recompiles."""

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        self.schedule, self.verbose = schedule, verbose
        try:
            self._two_args = len(inspect.signature(schedule).parameters) >= 2
        except (TypeError, ValueError):
            self._two_args = True

    def on_epoch_begin(self, epoch, logs=None):
        lr = _learning_rate(self.model)
        new = self.schedule(epoch, lr) if self._two_args else self.schedule(epoch)
        new = float(new)
        if not math.isfinite(new) or new <= 0:
            raise ValueError(f"LearningRateScheduler: the schedule returned {new} at epoch "
                             f"{epoch}; a learning rate must be a finite number > 0")
        self.model.optimizer.learning_rate = new
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {new}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _learning_rate(self.model)


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for
    ``patience`` epochs (then wait ``cooldown`` epochs), never below ``min_lr``."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0) -> None:
        super().__init__(monitor, mode, min_delta)
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        self.factor, self.patience, self.verbose = float(factor), int(patience), verbose
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)

    def on_train_begin(self, logs=None):
        self.wait, self.cooldown_counter, self.best = 0, 0, self.worst()

    def on_epoch_end(self, epoch, logs=None):
        current = self.value(logs)
        if logs is not None:
            logs["learning_rate"] = _learning_rate(self.model)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.improved(current, self.best):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = _learning_rate(self.model)
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new
                    if self.verbose:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """Write one CSV row per epoch (``epoch`` and the logs); the file is rewritten
    atomically after each epoch, so it is never half-written. ``append`` keeps earlier rows."""

    def __init__(self, filename: Any, separator: str = ",", append: bool = False) -> None:
        self.filename, self.sep, self.append = os.fspath(filename), separator, bool(append)

    def on_train_begin(self, logs=None):
        self.rows: list[str] = []
        self.keys: Optional[list[str]] = None
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8") as f:
                lines = f.read().splitlines()
            if lines:
                self.keys = lines[0].split(self.sep)[1:]
                self.rows = lines[1:]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = list(logs)
        values = [_fmt(logs.get(k, "")) for k in self.keys]
        self.rows.append(self.sep.join([str(epoch), *values]))
        text = io.StringIO()
        text.write(self.sep.join(["epoch", *self.keys]) + "\n")
        for row in self.rows:
            text.write(row + "\n")
        with atomic_output(self.filename) as f:
            f.write(text.getvalue().encode("utf-8"))


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


class EpochTimer(Callback):
    """Records each epoch's wall time (validation included) in ``times``; not in Keras,
    used by the examples to report time per epoch."""

    def on_train_begin(self, logs=None):
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)

    def per_epoch(self) -> float:
        """Median seconds per epoch, leaving out the first (it compiles) when there are more."""
        times = sorted(self.times[1:] or self.times)
        return times[len(times) // 2] if times else float("nan")
