"""RMSprop, as PyTorch computes it (Hinton's running mean of squared gradients, with
optional momentum and the centered variant)."""

from __future__ import annotations

from collections.abc import Iterable

from graphc import dsl
from graphc.ir.node import Node
from graphc.optim.optimizer import Optimizer, _check_nonnegative


class RMSprop(Optimizer):
    """g += weight_decay * p; s = alpha s + (1 - alpha) g^2; avg = sqrt(s) + eps
    (centered: a = alpha a + (1 - alpha) g and avg = sqrt(s - a^2) + eps);
    with momentum mu: b = mu b + g / avg, p -= lr b; else p -= lr g / avg.
    clip_grad_norm, clip_grad_value, norm_type: see Optimizer."""

    momentum_name = "momentum"

    def __init__(self, params: Iterable[Node], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, **clipping):
        super().__init__(params, lr, **clipping)
        _check_nonnegative("RMSprop", alpha=alpha, eps=eps, weight_decay=weight_decay,
                           momentum=momentum)
        if alpha > 1:
            raise ValueError(f"RMSprop: alpha must be in [0, 1], got {alpha!r}")
        self.alpha, self.eps, self.weight_decay = float(alpha), float(eps), float(weight_decay)
        self._momentum, self.centered = float(momentum), bool(centered)
        self.square_avg = self._buffers("square_avg")
        self.grad_avg = self._buffers("grad_avg") if centered else None
        self.momentum_buffer = self._buffers("momentum_buffer") if momentum else None

    def _momentum_default(self) -> float:
        return self._momentum

    def momentum_as_state(self) -> Node:
        """As PyTorch, an RMSprop built without momentum gets one when a schedule sets it."""
        node = super().momentum_as_state()
        if self.momentum_buffer is None:
            self.momentum_buffer = self._buffers("momentum_buffer")
        return node

    def step_updates(self, grads: list[Node]) -> dict[Node, Node]:
        self._check_grads(grads)
        updates = {}
        a = self.alpha
        for k, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            if self.weight_decay:
                g = g + self.weight_decay * p
            s = self.square_avg[k]
            s_new = self.kept(s, a * s + (1.0 - a) * (g * g))
            updates[s] = s_new
            if self.grad_avg is not None:
                m = self.grad_avg[k]
                m_new = self.kept(m, a * m + (1.0 - a) * g)
                updates[m] = m_new
                avg = dsl.sqrt(s_new - m_new * m_new) + self.eps
            else:
                avg = dsl.sqrt(s_new) + self.eps
            if self.momentum_buffer is not None:
                b = self.momentum_buffer[k]
                b_new = self.kept(b, self.momentum_value() * b + g / avg)
                updates[b] = b_new
                step = b_new
            else:
                step = g / avg
            updates[p] = self.kept(p, dsl.cast(p - self.lr * step, p.dtype))
        return updates
