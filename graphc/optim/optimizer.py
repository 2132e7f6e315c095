"""The Optimizer base class: turns (loss, params) into the `updates` of gc.compile.

Its state — the learning rate, momentum buffers, moments, the step count — lives in
params of its own, so one compiled step updates the model and the state together, and a
schedule changes the learning rate between steps by writing a value, without recompiling."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from graphc import dsl, dtypes
from graphc.autodiff import grad
from graphc.ir.node import Node
from graphc.nn.module import assign


class Optimizer:
    """Subclasses implement `step_updates(grads) -> {param: new value}` for the model's
    params and their own state params.

    Gradient clipping is an option of every optimizer, compiled into the step (the
    gradients are clipped before the update, as torch.nn.utils's functions do between
    backward() and step()): clip_grad_value=v limits each gradient element to [-v, v];
    clip_grad_norm=m scales all gradients together by min(1, m / (norm + 1e-6)), the norm
    being the global norm of order norm_type (2 by default, or inf) over every param's
    gradient. With both, values are clipped first."""

    momentum_name = ""  # the hyperparameter OneCycleLR cycles ("momentum", "beta1"), if any

    def __init__(self, params: Iterable[Node], lr: float, *,
                 clip_grad_norm: float | None = None, clip_grad_value: float | None = None,
                 norm_type: float = 2.0):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got no params to optimize")
        for k, p in enumerate(params):
            if not isinstance(p, Node) or p.op != "param":
                raise TypeError(f"{type(self).__name__}: item {k} of params is {p!r}, not a "
                                "gc.param")
            if not dtypes.is_float(p.dtype):
                raise TypeError(f"{type(self).__name__}: param '{p.name}' is {p.dtype.name}; "
                                "only float params can be trained")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{type(self).__name__}: a param is listed twice")
        _check_nonnegative(type(self).__name__, lr=lr)
        self.params = params
        self.dtype = dtypes.promote(*(p.dtype for p in params))
        self._state: dict[str, Node] = {}
        self.lr = self._scalar_state("lr", lr)
        if clip_grad_norm is not None:
            _check_positive(type(self).__name__, clip_grad_norm=clip_grad_norm)
        if clip_grad_value is not None:
            _check_positive(type(self).__name__, clip_grad_value=clip_grad_value)
        if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)) or \
                not norm_type > 0:
            raise ValueError(f"{type(self).__name__}: norm_type must be a positive number or "
                             f"inf, got {norm_type!r}")
        self.clip_grad_norm, self.clip_grad_value = clip_grad_norm, clip_grad_value
        self.norm_type = float(norm_type)
        self._momentum_state: Node | None = None
        self._built = False
        self.initial_lr: float | None = None  # set by the first schedule built on it

    # ----- state ------------------------------------------------------------------------
    def _scalar_state(self, name: str, value, dtype=None) -> Node:
        node = dsl.param(f"{type(self).__name__.lower()}.{name}",
                         np.array(value, dtype or self.dtype))
        self._state[name] = node
        return node

    def _buffers(self, name: str) -> list[Node]:
        """One zero-initialized state param per model param (e.g. the momentum)."""
        buffers = []
        for k, p in enumerate(self.params):
            node = dsl.param(f"{p.name}.{name}", np.zeros_like(p.value))
            self._state[f"{name}.{k}"] = node
            buffers.append(node)
        return buffers

    def named_state(self) -> dict[str, Node]:
        """The optimizer's own params (learning rate, buffers, step count), by name."""
        return dict(self._state)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: node.value.copy() for name, node in self._state.items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore the state exactly (same names, shapes and dtypes)."""
        missing = sorted(set(self._state) - set(state))
        unexpected = sorted(set(state) - set(self._state))
        if missing or unexpected:
            raise KeyError(f"{type(self).__name__}.load_state_dict: missing {missing}, "
                           f"unexpected {unexpected}")
        for name, node in self._state.items():
            assign(node, state[name], name)

    # ----- a momentum a schedule may change -------------------------------------------------
    def momentum_value(self):
        """The momentum (or Adam's beta1) the step uses: a Python float baked into the step,
        or the state param made by `momentum_as_state` (a schedule then writes it)."""
        return self._momentum_state if self._momentum_state is not None else \
            self._momentum_default()

    def _momentum_default(self) -> float:
        raise NotImplementedError

    def momentum_as_state(self) -> Node:
        """Make the momentum a state param (as the learning rate is), so a schedule
        (OneCycleLR's cycle_momentum) can change it between steps; before the step is
        built. Returns it."""
        owner = type(self).__name__
        if not self.momentum_name:
            raise TypeError(f"{owner} has no momentum to cycle")
        if self._momentum_state is None:
            if self._built:
                raise RuntimeError(f"{owner}: its step is already built; make the schedule "
                                   "that cycles its momentum before calling updates() (or "
                                   "before the Trainer first compiles)")
            self._momentum_state = self._scalar_state(self.momentum_name,
                                                      self._momentum_default())
        return self._momentum_state

    @property
    def momentum(self) -> float:
        value = self.momentum_value()
        return float(value.value) if isinstance(value, Node) else value

    @momentum.setter
    def momentum(self, value: float) -> None:
        if self._momentum_state is None:
            raise AttributeError(f"{type(self).__name__}: the momentum is fixed in the step; "
                                 "momentum_as_state() first makes it changeable")
        self._momentum_state.value = np.array(value, self.dtype)

    @property
    def learning_rate(self) -> float:
        """The learning rate the next step uses; setting it takes effect without recompiling."""
        return float(self.lr.value)

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        _check_nonnegative(type(self).__name__, lr=value)
        self.lr.value = np.array(value, self.dtype)

    def scheduled_lr(self, value: float) -> None:
        """Set the learning rate a schedule computed: any finite value, as PyTorch lets a
        scheduler write (OneCycleLR's linear annealing steps just below 0 after its last
        step)."""
        if not np.isfinite(value):
            raise ValueError(f"{type(self).__name__}: a schedule set the learning rate to "
                             f"{value!r}")
        self.lr.value = np.array(value, self.dtype)

    # ----- the update -------------------------------------------------------------------
    def updates(self, loss: Node, only_if: Node | None = None) -> dict[Node, Node]:
        """{param: new value} for one step that lowers `loss`: the `updates` of gc.compile.

        only_if: a bool scalar graph value; where it is false, the step changes nothing
        (every param and state keeps its value). The Trainer passes "the loss is finite",
        so a NaN batch leaves the model and the optimizer as they were. Subclasses apply it
        to each state where they compute it (`kept`), which keeps the whole update one
        fused loop per param; any update value they leave unguarded is guarded here."""
        if only_if is not None and (only_if.dtype != dtypes.BOOL or only_if.ndim != 0):
            raise TypeError(f"{type(self).__name__}.updates: only_if must be a bool scalar, "
                            f"got {only_if!r}")
        self._only_if = only_if
        self._built = True
        try:
            new = self.step_updates(self.clipped(grad(loss, self.params)))
        finally:
            self._only_if = None
        if only_if is None:
            return new
        return {p: v if _kept_by(v, p, only_if) else dsl.where(only_if, v, p)
                for p, v in new.items()}

    def clipped(self, grads: list[Node]) -> list[Node]:
        """The gradients after clip_grad_value and clip_grad_norm (as given, without)."""
        if self.clip_grad_value is not None:
            v = float(self.clip_grad_value)
            grads = [dsl.clip(g, -v, v) for g in grads]
        if self.clip_grad_norm is not None:
            if self.norm_type == float("inf"):
                parts = [dsl.max(dsl.abs(g)) for g in grads]
                total = parts[0]
                for part in parts[1:]:
                    total = dsl.maximum(total, part)
            else:
                order = self.norm_type
                total = None
                for g in grads:
                    part = dsl.sum(g * g) if order == 2 else dsl.sum(dsl.abs(g) ** order)
                    part = dsl.cast(part, self.dtype)
                    total = part if total is None else total + part
                total = dsl.sqrt(total) if order == 2 else total ** (1.0 / order)
            scale = dsl.minimum(float(self.clip_grad_norm) / (total + 1e-6), 1.0)
            grads = [g * dsl.cast(scale, g.dtype) for g in grads]
        return grads

    def kept(self, state: Node, new: Node) -> Node:
        """`new`, the value of `state` after the step, or where the step is skipped (the
        `only_if` of `updates` is false) the state's old value."""
        only_if = getattr(self, "_only_if", None)
        return new if only_if is None else dsl.where(only_if, new, state)

    def step_updates(self, grads: list[Node]) -> dict[Node, Node]:
        raise NotImplementedError

    def _check_grads(self, grads: list[Node]) -> None:
        if len(grads) != len(self.params):
            raise ValueError(f"{type(self).__name__}: got {len(grads)} gradients for "
                             f"{len(self.params)} params")


def _kept_by(value: Node, state: Node, only_if: Node) -> bool:
    """Whether `value` is already `kept(state, ...)` under `only_if`."""
    return value.op == "where" and value.inputs[0] is only_if and value.inputs[2] is state


def _check_positive(owner: str, **values) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(
                value, bool) or not np.isfinite(value) or value <= 0:
            raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")


def _check_nonnegative(owner: str, **values) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(
                value, bool) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value!r}")
