"""Adam, and AdamW (Adam with decoupled weight decay)."""

from __future__ import annotations

from collections.abc import Iterable

from graphc import dsl
from graphc.ir.node import Node
from graphc.optim.optimizer import Optimizer, _check_nonnegative


class Adam(Optimizer):
    """Kingma & Ba's Adam with bias correction, as PyTorch computes it:
    t += 1; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    weight_decay adds weight_decay * p to g (L2); AdamW decays p directly instead.
    clip_grad_norm, clip_grad_value, norm_type: see Optimizer."""

    decoupled = False
    momentum_name = "beta1"

    def __init__(self, params: Iterable[Node], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, **clipping):
        super().__init__(params, lr, **clipping)
        b1, b2 = betas
        _check_nonnegative(type(self).__name__, beta1=b1, beta2=b2, eps=eps,
                           weight_decay=weight_decay)
        if not (b1 < 1 and b2 < 1):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        self.betas, self.eps, self.weight_decay = (float(b1), float(b2)), float(eps), \
            float(weight_decay)
        self.t = self._scalar_state("step", 0, "int64")
        self.m = self._buffers("exp_avg")
        self.v = self._buffers("exp_avg_sq")

    def _momentum_default(self) -> float:
        return self.betas[0]

    def step_updates(self, grads: list[Node]) -> dict[Node, Node]:
        self._check_grads(grads)
        b1, b2 = self.momentum_value(), self.betas[1]
        t_new = self.kept(self.t, self.t + 1)
        t = dsl.cast(t_new, self.dtype)
        correction1 = 1.0 - b1 ** t
        correction2 = 1.0 - b2 ** t
        updates = {self.t: t_new}
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            if self.weight_decay and not self.decoupled:
                g = g + self.weight_decay * p
            m_new = self.kept(m, b1 * m + (1.0 - b1) * g)
            v_new = self.kept(v, b2 * v + (1.0 - b2) * (g * g))
            updates[m], updates[v] = m_new, v_new
            base = p * (1.0 - self.lr * self.weight_decay) if self.decoupled and \
                self.weight_decay else p
            step = (m_new / correction1) / (dsl.sqrt(v_new / correction2) + self.eps)
            updates[p] = self.kept(p, dsl.cast(base - self.lr * step, p.dtype))
        return updates


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay
    before the Adam step, instead of adding the decay to the gradient."""

    decoupled = True

    def __init__(self, params: Iterable[Node], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, **clipping):
        super().__init__(params, lr, betas, eps, weight_decay, **clipping)
