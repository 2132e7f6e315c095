"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from collections.abc import Iterable

from graphc import dsl
from graphc.ir.node import Node
from graphc.optim.optimizer import Optimizer, _check_nonnegative


class SGD(Optimizer):
    """p -= lr * d, where g = grad + weight_decay * p and, with momentum mu,
    v = mu * v + g and d = v (or d = g + mu * v with nesterov=True); d = g without momentum.
    This is PyTorch's form (no dampening): v starts at zero, so the first step's v is g.
    clip_grad_norm, clip_grad_value, norm_type: see Optimizer."""

    momentum_name = "momentum"

    def __init__(self, params: Iterable[Node], lr: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0, **clipping):
        super().__init__(params, lr, **clipping)
        _check_nonnegative("SGD", momentum=momentum, weight_decay=weight_decay)
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        self._momentum, self.nesterov = float(momentum), bool(nesterov)
        self.weight_decay = float(weight_decay)
        self.velocity = self._buffers("velocity") if momentum else None

    def _momentum_default(self) -> float:
        return self._momentum

    def momentum_as_state(self) -> Node:
        """As PyTorch, an SGD built without momentum gets one when a schedule sets it."""
        node = super().momentum_as_state()
        if self.velocity is None:
            self.velocity = self._buffers("velocity")
        return node

    def step_updates(self, grads: list[Node]) -> dict[Node, Node]:
        self._check_grads(grads)
        updates = {}
        mu = self.momentum_value()
        for k, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.velocity is not None:
                v = self.velocity[k]
                v_new = self.kept(v, mu * v + g)
                updates[v] = v_new
                g = g + mu * v_new if self.nesterov else v_new
            updates[p] = self.kept(p, dsl.cast(p - self.lr * g, p.dtype))
        return updates
