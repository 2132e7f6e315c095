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
    params and their own state params."""

    def __init__(self, params: Iterable[Node], lr: float):
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

    @property
    def learning_rate(self) -> float:
        """The learning rate the next step uses; setting it takes effect without recompiling."""
        return float(self.lr.value)

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        _check_nonnegative(type(self).__name__, lr=value)
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
        try:
            new = self.step_updates(grad(loss, self.params))
        finally:
            self._only_if = None
        if only_if is None:
            return new
        return {p: v if _kept_by(v, p, only_if) else dsl.where(only_if, v, p)
                for p, v in new.items()}

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


def _check_nonnegative(owner: str, **values) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(
                value, bool) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value!r}")
