"""Adagrad, as PyTorch computes it: per-element learning rates from the sum of squared
gradients."""

from __future__ import annotations

from collections.abc import Iterable

from graphc import dsl
from graphc.ir.node import Node
from graphc.optim.optimizer import Optimizer, _check_nonnegative


class Adagrad(Optimizer):
    """t += 1; g += weight_decay * p; clr = lr / (1 + (t - 1) lr_decay); s += g^2;
    p -= clr g / (sqrt(s) + eps); s starts at initial_accumulator_value.
    clip_grad_norm, clip_grad_value, norm_type: see Optimizer."""

    def __init__(self, params: Iterable[Node], lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, **clipping):
        super().__init__(params, lr, **clipping)
        _check_nonnegative("Adagrad", lr_decay=lr_decay, weight_decay=weight_decay,
                           initial_accumulator_value=initial_accumulator_value, eps=eps)
        self.lr_decay, self.weight_decay, self.eps = float(lr_decay), float(weight_decay), \
            float(eps)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.t = self._scalar_state("step", 0, "int64")
        self.sum = self._buffers("sum")
        for s in self.sum:
            s.value[...] = self.initial_accumulator_value

    def step_updates(self, grads: list[Node]) -> dict[Node, Node]:
        self._check_grads(grads)
        t_new = self.kept(self.t, self.t + 1)
        updates = {self.t: t_new}
        clr = self.lr
        if self.lr_decay:
            clr = self.lr / (1.0 + dsl.cast(t_new - 1, self.dtype) * self.lr_decay)
        for p, g, s in zip(self.params, grads, self.sum, strict=True):
            if self.weight_decay:
                g = g + self.weight_decay * p
            s_new = self.kept(s, s + g * g)
            updates[s] = s_new
            updates[p] = self.kept(p, dsl.cast(p - clr * g / (dsl.sqrt(s_new) + self.eps),
                                               p.dtype))
        return updates
