"""Adadelta, as PyTorch computes it (Zeiler's unit-correcting running averages of squared
gradients and squared steps)."""

from __future__ import annotations

from collections.abc import Iterable

from graphc import dsl
from graphc.ir.node import Node
from graphc.optim.optimizer import Optimizer, _check_nonnegative


class Adadelta(Optimizer):
    """g += weight_decay * p; s = rho s + (1 - rho) g^2;
    d = sqrt(u + eps) / sqrt(s + eps) * g; u = rho u + (1 - rho) d^2; p -= lr d.
    clip_grad_norm, clip_grad_value, norm_type: see Optimizer."""

    def __init__(self, params: Iterable[Node], lr: float = 1.0, rho: float = 0.9,
                 eps: float = 1e-6, weight_decay: float = 0.0, **clipping):
        super().__init__(params, lr, **clipping)
        _check_nonnegative("Adadelta", rho=rho, eps=eps, weight_decay=weight_decay)
        if rho > 1:
            raise ValueError(f"Adadelta: rho must be in [0, 1], got {rho!r}")
        self.rho, self.eps, self.weight_decay = float(rho), float(eps), float(weight_decay)
        self.square_avg = self._buffers("square_avg")
        self.acc_delta = self._buffers("acc_delta")

    def step_updates(self, grads: list[Node]) -> dict[Node, Node]:
        self._check_grads(grads)
        updates = {}
        rho = self.rho
        for p, g, s, u in zip(self.params, grads, self.square_avg, self.acc_delta, strict=True):
            if self.weight_decay:
                g = g + self.weight_decay * p
            s_new = self.kept(s, rho * s + (1.0 - rho) * (g * g))
            delta = dsl.sqrt(u + self.eps) / dsl.sqrt(s_new + self.eps) * g
            u_new = self.kept(u, rho * u + (1.0 - rho) * (delta * delta))
            updates[s], updates[u] = s_new, u_new
            updates[p] = self.kept(p, dsl.cast(p - self.lr * delta, p.dtype))
        return updates
