"""``gc.train``: TF1-style optimizers whose updates are ops in the graph.

``opt.minimize(loss)`` is ``opt.apply_gradients(opt.compute_gradients(loss))``:
:func:`graphc.gradients` adds the backward graph, then each rule adds the ops that compute
the variables' (and slots') new values and one ``gc.assign`` per written variable, grouped
into the returned train op. Running that op is one training step.

Run semantics decide how the rules are written. In one ``session.run`` every read of a
variable sees its value from the start of the run and the assigns apply when it ends (see
:mod:`graphc.ops.state`). So each rule computes every new value from the start-of-run values
in one dataflow graph: Adam's ``var`` update uses the new ``m`` and ``v`` *tensors* built in
the same graph (not a re-read of the slots), and its step counter is ``t_old + 1``. The same
variable may be written only once per run, hence running two train ops that update one
variable (or share one Adam's step counter) in the same ``session.run`` is refused.

Optimizer state lives in *slots*: non-trainable ``gc.Variable``s of the variable's shape
and dtype named ``"{var}/{OptimizerName}"``, ``"{var}/{OptimizerName}_1"``... (TF1's
names), created once per optimizer per variable (calling ``minimize`` twice reuses them).
Scalars shared by all variables (Adam's step counter) are non-slot variables named
``"{OptimizerName}/..."``. Both are outside any active name scope.

Where graphc differs from TF1, deliberately:

* ``clipnorm`` / ``clipvalue`` (Keras's arguments, per variable) are applied in
  :meth:`Optimizer.compute_gradients`; gradients handed straight to ``apply_gradients`` are
  used as given. With both set, the norm clip comes first, then the value clip.
* Adam keeps one integer step counter ``t`` instead of TF1's ``beta1_power`` /
  ``beta2_power`` variables; the update is the same (``beta**t`` is computed in the
  variable's dtype).
* Hyperparameters may be Python numbers (validated) or scalar float Tensors (cast to each
  variable's dtype), e.g. a placeholder or a schedule computed from a step variable.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np

from graphc.autodiff import gradients
from graphc.checkpoint import Saver  # gc.train.Saver (defined in graphc/checkpoint.py)
from graphc.errors import DTypeError, GradientError, GraphError, ShapeError
from graphc.graph import Graph, Node, Tensor
from graphc.ops.elementwise import cast, clip_by_value, maximum, sqrt
from graphc.ops.reduce import norm
from graphc.ops.state import assign, constant, group
from graphc.shapes import format_shape, merge_shapes
from graphc.variables import Variable, trainable_variables

__all__ = ["Optimizer", "GradientDescentOptimizer", "MomentumOptimizer", "AdamOptimizer",
           "AdagradOptimizer", "RMSPropOptimizer", "Saver"]

Hyper = Any  # a Python number or a scalar float Tensor


class Optimizer:
    """The base of the optimizers: gradients, clipping, slots and the assign ops.

    ``Optimizer(learning_rate, clipnorm=None, clipvalue=None, name="Optimizer")``.
    Subclasses define ``_create_slots(var)``, optionally ``_prepare(graph)`` (shared values
    and their updates, built once per ``apply_gradients``) and ``_apply_dense(grad, var,
    shared)`` returning ``[(variable, new_value), ...]``.
    """

    def __init__(self, learning_rate: Hyper, clipnorm: Optional[float] = None,
                 clipvalue: Optional[float] = None, name: str = "Optimizer",
                 use_locking: bool = False) -> None:
        # use_locking is accepted for TF1 compatibility: graphc's runs are atomic anyway.
        if not isinstance(name, str) or not name:
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string, "
                             f"got {name!r}")
        self._name = name
        self._learning_rate = _check_hyper(self, "learning_rate", learning_rate)
        self.clipnorm = None if clipnorm is None else _number(self, "clipnorm", clipnorm, low=0.0,
                                                              low_open=True)
        self.clipvalue = None if clipvalue is None else _number(self, "clipvalue", clipvalue,
                                                                low=0.0, low_open=True)
        self._slots: dict[str, dict[Variable, Variable]] = {}
        self._non_slots: dict[tuple[Graph, str], Variable] = {}

    # -- the public interface ----------------------------------------------------------

    @property
    def learning_rate(self) -> Hyper:
        """The learning rate as given (a number or a scalar Tensor)."""
        return self._learning_rate

    def get_name(self) -> str:
        """The optimizer's name (the suffix of its slots' names)."""
        return self._name

    def compute_gradients(self, loss: Tensor, var_list: Optional[Sequence[Variable]] = None,
                          grad_loss: Optional[Tensor] = None
                          ) -> list[tuple[Optional[Tensor], Variable]]:
        """``[(gradient, variable), ...]`` of ``loss`` (summed if not scalar) with respect to
        ``var_list`` (default: the trainable variables of the loss's graph). A variable the
        loss does not depend on gets ``None``. ``clipnorm`` / ``clipvalue`` are applied here."""
        if not isinstance(loss, Tensor):
            raise GraphError(f"{self._name}.compute_gradients: loss must be a Tensor, got "
                             f"{type(loss).__name__}")
        if not loss.dtype.is_floating:
            raise DTypeError(f"{self._name}.compute_gradients: loss must be a float tensor, "
                             f"got {loss.describe()}")
        if var_list is None:
            var_list = trainable_variables(loss.graph)
        else:
            var_list = list(var_list)
            for v in var_list:
                _check_variable(self, v, "var_list")
        if not var_list:
            raise GraphError(f"{self._name}: no variables to optimize (the graph of "
                             f"{loss.name} has no trainable variables and no var_list was given)")
        for v in var_list:
            if v.graph is not loss.graph:
                raise GraphError(f"{self._name}: variable {v.name} belongs to another graph "
                                 f"than the loss {loss.name}")
        grads = gradients(loss, var_list, grad_ys=grad_loss)
        with loss.graph.as_default():
            grads = [None if g is None else self._clip(g) for g in grads]
        return list(zip(grads, var_list))

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Variable]],
                        global_step: Optional[Variable] = None, name: Optional[str] = None,
                        *, _also_run: Sequence[Tensor] = ()) -> Node:
        """One op that updates each variable from its gradient (pairs whose gradient is None
        are skipped) and, if given, increments ``global_step`` by 1. (``_also_run``: more
        update tensors to group into it, for :meth:`minimize`.)"""
        pairs = list(grads_and_vars)
        present: list[tuple[Tensor, Variable]] = []
        seen: set[int] = set()
        for pair in pairs:
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise GraphError(f"{self._name}.apply_gradients: expected (gradient, variable) "
                                 f"pairs, got {pair!r}")
            grad, var = pair
            _check_variable(self, var, "grads_and_vars")
            if id(var) in seen:
                raise GraphError(f"{self._name}.apply_gradients: variable {var.name} appears "
                                 "twice; sum its gradients first")
            seen.add(id(var))
            if grad is not None:
                present.append((_check_grad(self, grad, var), var))
        if not present:
            names = ", ".join(v.name for _, v in pairs) or "(none)"
            raise GradientError(f"{self._name}: no gradients provided for any variable; check "
                                f"that the loss depends on the variables: {names}")
        graph = present[0][1].graph
        for _, var in present:
            if var.graph is not graph:
                raise GraphError(f"{self._name}.apply_gradients: variables {present[0][1].name} "
                                 f"and {var.name} belong to different graphs")
        if global_step is not None:
            _check_variable(self, global_step, "global_step")
        with _root_scope(graph):
            for _, var in present:
                self._create_slots(var)
            self._create_non_slots(graph)
        updates: list[Tensor] = []
        with graph.as_default(), graph.name_scope(name or self._name):
            shared, shared_updates = self._prepare(graph)
            updates.extend(assign(v, value) for v, value in shared_updates)
            for grad, var in present:
                updates.extend(assign(v, value) for v, value in self._apply_dense(grad, var, shared))
            if global_step is not None:
                updates.append(assign(global_step, global_step + 1))
        with graph.as_default():
            return group(updates, list(_also_run), name=name or self._name)

    def minimize(self, loss: Tensor, global_step: Optional[Variable] = None,
                 var_list: Optional[Sequence[Variable]] = None, name: Optional[str] = None,
                 grad_loss: Optional[Tensor] = None) -> Node:
        """``apply_gradients(compute_gradients(loss, var_list), global_step, name)``, grouped
        with the graph's ``"update_ops"`` that belong to a batch-norm output the loss depends
        on (the moving-statistics updates of :func:`graphc.nn.batch_norm` in training), so one
        run of the returned op is a whole Keras-style training step. Updates removed from the
        ``"update_ops"`` collection are not run; when several write one variable, the last
        built is run (a run writes a variable once)."""
        grads_and_vars = self.compute_gradients(loss, var_list, grad_loss=grad_loss)
        if all(g is None for g, _ in grads_and_vars):
            names = ", ".join(v.name for _, v in grads_and_vars)
            raise GradientError(f"{self._name}: no gradients provided for any variable; "
                                f"{loss.name} does not depend on any of: {names}")
        return self.apply_gradients(grads_and_vars, global_step=global_step, name=name,
                                    _also_run=_update_ops_for(loss))

    def get_slot_names(self) -> list[str]:
        """The names of the slots this optimizer creates (e.g. ``["m", "v"]`` for Adam)."""
        return sorted(self._slots)

    def get_slot(self, var: Variable, name: str) -> Optional[Variable]:
        """The slot ``name`` of ``var``, or None if it has not been created."""
        return self._slots.get(name, {}).get(var)

    def variables(self) -> list[Variable]:
        """Every variable this optimizer created (slots and shared ones), in creation order."""
        made = [v for per_var in self._slots.values() for v in per_var.values()]
        made += list(self._non_slots.values())
        return sorted(made, key=lambda v: v.node.id)

    def __repr__(self) -> str:
        return f"<gc.train.{type(self).__name__} {self._name!r}>"

    # -- for subclasses ------------------------------------------------------------------

    def _create_slots(self, var: Variable) -> None:
        pass

    def _create_non_slots(self, graph: Graph) -> None:
        pass

    def _prepare(self, graph: Graph) -> tuple[dict, list[tuple[Variable, Tensor]]]:
        return {}, []

    def _apply_dense(self, grad: Tensor, var: Variable, shared: dict) -> list[tuple[Variable, Tensor]]:
        raise NotImplementedError

    def _slot(self, var: Variable, slot_name: str, fill: float = 0.0) -> Variable:
        """The slot ``slot_name`` of ``var``, created (filled with ``fill``) on first use."""
        per_var = self._slots.setdefault(slot_name, {})
        slot = per_var.get(var)
        if slot is None:
            value = np.full(var.shape, fill, dtype=var.dtype.np)
            slot = per_var[var] = Variable(value, name=f"{var.node.name}/{self._name}",
                                           trainable=False)
        return slot

    def _non_slot(self, graph: Graph, name: str, value: Any) -> Variable:
        var = self._non_slots.get((graph, name))
        if var is None:
            var = self._non_slots[(graph, name)] = Variable(
                value, name=f"{self._name}/{name}", trainable=False)
        return var

    def _hyper(self, value: Hyper, var: Variable) -> Any:
        """A hyperparameter ready to combine with ``var``: numbers as they are (they become
        constants of the variable's dtype), tensors cast to it."""
        if isinstance(value, Tensor) and value.dtype != var.dtype:
            return cast(value, var.dtype)
        return value

    def _clip(self, grad: Tensor) -> Tensor:
        if self.clipnorm is not None:  # Keras / tf.clip_by_norm: g * c / max(||g||, c)
            grad = grad * self.clipnorm / maximum(norm(grad), self.clipnorm)
        if self.clipvalue is not None:
            grad = clip_by_value(grad, -self.clipvalue, self.clipvalue)
        return grad


class GradientDescentOptimizer(Optimizer):
    """Plain gradient descent: ``var <- var - lr * g``. No slots."""

    def __init__(self, learning_rate: Hyper, clipnorm: Optional[float] = None,
                 clipvalue: Optional[float] = None, name: str = "GradientDescent",
                 use_locking: bool = False) -> None:
        super().__init__(learning_rate, clipnorm, clipvalue, name, use_locking)

    def _apply_dense(self, grad, var, shared):
        return [(var, var - self._hyper(self._learning_rate, var) * grad)]


class MomentumOptimizer(Optimizer):
    """Momentum (TF1's ``ApplyMomentum``), slot ``accum`` = ``"{var}/Momentum"`` (zeros)::

        accum <- momentum * accum + g
        var   <- var - lr * accum                        (use_nesterov=False)
        var   <- var - lr * (g + momentum * accum_new)   (use_nesterov=True)

    Same as PyTorch's SGD with ``dampening=0`` (also for Nesterov). Keras's SGD keeps
    ``velocity <- momentum * velocity - lr * g`` (lr inside the accumulator): the same
    trajectory for a constant lr, different when lr changes between steps.
    """

    def __init__(self, learning_rate: Hyper, momentum: Hyper, use_nesterov: bool = False,
                 clipnorm: Optional[float] = None, clipvalue: Optional[float] = None,
                 name: str = "Momentum", use_locking: bool = False) -> None:
        super().__init__(learning_rate, clipnorm, clipvalue, name, use_locking)
        self._momentum = _check_hyper(self, "momentum", momentum, low=0.0)
        self._use_nesterov = bool(use_nesterov)

    def _create_slots(self, var):
        self._slot(var, "momentum")

    def _apply_dense(self, grad, var, shared):
        lr, mu = self._hyper(self._learning_rate, var), self._hyper(self._momentum, var)
        accum = self.get_slot(var, "momentum")
        accum_new = mu * accum + grad
        step = grad + mu * accum_new if self._use_nesterov else accum_new
        return [(accum, accum_new), (var, var - lr * step)]


class AdamOptimizer(Optimizer):
    """Adam in TF1's form (Kingma & Ba, sec. 2, the "epsilon hat" variant).

    Slots ``m`` = ``"{var}/Adam"`` and ``v`` = ``"{var}/Adam_1"`` (zeros); one shared int64
    step counter ``t`` = ``"Adam/iterations"`` (0), per graph::

        t     <- t + 1
        lr_t  <- lr * sqrt(1 - beta2**t) / (1 - beta1**t)
        m     <- beta1 * m + (1 - beta1) * g
        v     <- beta2 * v + (1 - beta2) * g * g
        var   <- var - lr_t * m / (sqrt(v) + epsilon)

    (``t``, ``m`` and ``v`` on the right of the last three lines are the new values.)
    ``epsilon`` is added to ``sqrt(v)`` *outside* the bias correction, as in TF1 and Keras
    (whose default epsilon is 1e-7). PyTorch (and the paper's Algorithm 1) put it inside:
    ``var -= lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - beta1**t)``,
    ``v_hat = v / (1 - beta2**t)``; TF1's epsilon equals PyTorch's times
    ``sqrt(1 - beta2**t)``, so the two differ in the first steps and when ``v`` is tiny.
    """

    def __init__(self, learning_rate: Hyper = 0.001, beta1: Hyper = 0.9, beta2: Hyper = 0.999,
                 epsilon: Hyper = 1e-8, clipnorm: Optional[float] = None,
                 clipvalue: Optional[float] = None, name: str = "Adam",
                 use_locking: bool = False) -> None:
        super().__init__(learning_rate, clipnorm, clipvalue, name, use_locking)
        self._beta1 = _check_hyper(self, "beta1", beta1, low=0.0, high=1.0)
        self._beta2 = _check_hyper(self, "beta2", beta2, low=0.0, high=1.0)
        self._epsilon = _check_hyper(self, "epsilon", epsilon, low=0.0)

    def _create_slots(self, var):
        self._slot(var, "m")
        self._slot(var, "v")

    def _create_non_slots(self, graph):
        self._non_slot(graph, "iterations", np.int64(0))

    @property
    def iterations(self) -> Optional[Variable]:
        """The step counter: the only one, else the default graph's (None before the first
        ``apply_gradients``)."""
        from graphc.graph import get_default_graph

        if len(self._non_slots) == 1:
            return next(iter(self._non_slots.values()))
        return self._non_slots.get((get_default_graph(), "iterations"))

    def _prepare(self, graph):
        t = self._non_slots[(graph, "iterations")]
        t_new = t + 1
        return {"t": t_new}, [(t, t_new)]

    def _apply_dense(self, grad, var, shared):
        lr, eps = self._hyper(self._learning_rate, var), self._hyper(self._epsilon, var)
        b1, b2 = self._hyper(self._beta1, var), self._hyper(self._beta2, var)
        t = cast(shared["t"], var.dtype)
        lr_t = lr * sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
        m, v = self.get_slot(var, "m"), self.get_slot(var, "v")
        m_new = b1 * m + (1.0 - b1) * grad
        v_new = b2 * v + (1.0 - b2) * (grad * grad)
        return [(m, m_new), (v, v_new), (var, var - lr_t * m_new / (sqrt(v_new) + eps))]


class AdagradOptimizer(Optimizer):
    """Adagrad (TF1's ``ApplyAdagrad``), slot ``accumulator`` = ``"{var}/Adagrad"`` filled
    with ``initial_accumulator_value`` (> 0)::

        accum <- accum + g * g
        var   <- var - lr * g / sqrt(accum)

    No epsilon, as TF1 (the positive initial value keeps the division finite). Keras adds
    ``epsilon=1e-7`` outside the root, ``g / (sqrt(accum) + eps)``; PyTorch starts ``accum``
    at 0 and adds ``eps=1e-10`` outside the root.
    """

    def __init__(self, learning_rate: Hyper, initial_accumulator_value: float = 0.1,
                 clipnorm: Optional[float] = None, clipvalue: Optional[float] = None,
                 name: str = "Adagrad", use_locking: bool = False) -> None:
        super().__init__(learning_rate, clipnorm, clipvalue, name, use_locking)
        self._initial = _number(self, "initial_accumulator_value", initial_accumulator_value,
                                low=0.0, low_open=True)

    def _create_slots(self, var):
        self._slot(var, "accumulator", self._initial)

    def _apply_dense(self, grad, var, shared):
        accum = self.get_slot(var, "accumulator")
        accum_new = accum + grad * grad
        lr = self._hyper(self._learning_rate, var)
        return [(accum, accum_new), (var, var - lr * grad / sqrt(accum_new))]


class RMSPropOptimizer(Optimizer):
    """RMSProp (TF1's ``ApplyRMSProp`` / ``ApplyCenteredRMSProp``). Slots, in TF1's order:
    ``rms`` = ``"{var}/RMSProp"`` filled with **ones** (as TF1), then if centered ``mg``
    (zeros), then ``momentum`` (zeros), suffixed ``_1``, ``_2``::

        ms  <- decay * ms + (1 - decay) * g * g
        mg  <- decay * mg + (1 - decay) * g                    (centered only)
        den <- ms + epsilon          |  ms - mg * mg + epsilon  (centered)
        mom <- momentum * mom + lr * g / sqrt(den)
        var <- var - mom

    ``epsilon`` is inside the root, and ``lr`` inside the momentum accumulator. Keras (3)
    has the same equations but starts ``ms`` at zeros (and defaults rho=0.9,
    epsilon=1e-7); PyTorch starts at zeros, puts ``eps`` outside the root
    (``sqrt(ms) + eps``) and ``lr`` outside the buffer (``buf = momentum*buf + g/den;
    var -= lr*buf``), defaults alpha=0.99, eps=1e-8.
    """

    def __init__(self, learning_rate: Hyper, decay: Hyper = 0.9, momentum: Hyper = 0.0,
                 epsilon: Hyper = 1e-10, centered: bool = False,
                 clipnorm: Optional[float] = None, clipvalue: Optional[float] = None,
                 name: str = "RMSProp", use_locking: bool = False) -> None:
        super().__init__(learning_rate, clipnorm, clipvalue, name, use_locking)
        self._decay = _check_hyper(self, "decay", decay, low=0.0, high=1.0, high_open=False)
        self._momentum = _check_hyper(self, "momentum", momentum, low=0.0)
        self._epsilon = _check_hyper(self, "epsilon", epsilon, low=0.0)
        self._centered = bool(centered)

    def _create_slots(self, var):
        self._slot(var, "rms", 1.0)
        if self._centered:
            self._slot(var, "mg")
        self._slot(var, "momentum")

    def _apply_dense(self, grad, var, shared):
        lr, eps = self._hyper(self._learning_rate, var), self._hyper(self._epsilon, var)
        rho, mu = self._hyper(self._decay, var), self._hyper(self._momentum, var)
        ms, mom = self.get_slot(var, "rms"), self.get_slot(var, "momentum")
        ms_new = rho * ms + (1.0 - rho) * (grad * grad)
        updates = [(ms, ms_new)]
        if self._centered:
            mg = self.get_slot(var, "mg")
            mg_new = rho * mg + (1.0 - rho) * grad
            updates.append((mg, mg_new))
            den = ms_new - mg_new * mg_new + eps
        else:
            den = ms_new + eps
        mom_new = mu * mom + lr * grad / sqrt(den)
        return updates + [(mom, mom_new), (var, var - mom_new)]


# -- helpers -----------------------------------------------------------------------------

def _update_ops_for(loss: Tensor) -> list[Tensor]:
    """The ``"update_ops"`` whose owning output (collection ``UPDATE_OWNERS``) ``loss``
    depends on, one per written variable (the last built)."""
    from graphc.ops.normalization import UPDATE_OWNERS

    graph = loss.graph
    owners = graph.get_collection(UPDATE_OWNERS)
    if not owners:
        return []
    wanted = {(u.node.id, u.index) for u in graph.get_collection("update_ops")
              if isinstance(u, Tensor)}
    ancestors: set[int] = set()
    stack = [loss.node]
    while stack:
        node = stack.pop()
        if node.id not in ancestors:
            ancestors.add(node.id)
            stack.extend(t.node for t in node.inputs)
    by_var: dict[int, Tensor] = {}
    for update, output in owners:
        if (update.node.id, update.index) in wanted and output.node.id in ancestors:
            by_var[update.node.inputs[0].node.id] = update
    return list(by_var.values())


@contextlib.contextmanager
def _root_scope(graph: Graph) -> Iterator[None]:
    """Build in ``graph`` outside any name scope (TF1 names slots after their variable)."""
    with graph.as_default(), graph.name_scope(None):
        yield


def _number(opt: Optimizer, what: str, value: Any, low: Optional[float] = None,
            high: Optional[float] = None, low_open: bool = False, high_open: bool = True) -> float:
    """``value`` as a finite float within the bounds, or a ValueError naming it."""
    where = f"{type(opt).__name__}: {what}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where} must be a number or a scalar float Tensor, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{where} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{where} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{where} must be {'<' if high_open else '<='} {high}, got {value}")
    return value


def _check_hyper(opt: Optimizer, what: str, value: Any, **bounds: Any) -> Hyper:
    """A hyperparameter: a validated number, or a scalar float Tensor (checked, not bounded)."""
    if isinstance(value, Tensor):
        if value.shape != ():
            raise ShapeError(f"{type(opt).__name__}: {what} must be a scalar tensor (shape ()), "
                             f"got {value.describe()}; e.g. gc.placeholder(gc.float32, shape=())")
        if not value.dtype.is_floating:
            raise DTypeError(f"{type(opt).__name__}: {what} must be a float tensor, got "
                             f"{value.describe()}")
        return value
    return _number(opt, what, value, **bounds)


def _check_variable(opt: Optimizer, var: Any, what: str) -> None:
    if not isinstance(var, Variable):
        raise GraphError(f"{opt._name}: {what} must hold gc.Variable objects, got "
                         f"{getattr(var, 'name', None) or type(var).__name__!s} "
                         f"({type(var).__name__})")


def _check_grad(opt: Optimizer, grad: Any, var: Variable) -> Tensor:
    if not isinstance(grad, Tensor):
        grad = constant(grad, var.dtype, graph=var.graph)
    if grad.graph is not var.graph:
        raise GraphError(f"{opt._name}: the gradient {grad.name} of {var.name} belongs to "
                         "another graph")
    if grad.dtype != var.dtype:
        raise DTypeError(f"{opt._name}: the gradient {grad.describe()} of {var.describe()} "
                         "has another dtype")
    try:
        merge_shapes(grad.shape, var.shape)
    except ShapeError:
        raise ShapeError(f"{opt._name}: the gradient's shape {format_shape(grad.shape)} differs "
                         f"from {var.describe()}") from None
    return grad
