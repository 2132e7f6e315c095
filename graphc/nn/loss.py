"""Loss modules, as torch.nn names them: `criterion = nn.CrossEntropyLoss(...)`, then
`criterion(output, target)` builds the loss (graphc/ops/losses.py has the functions and
their exact semantics). A class weight or pos_weight is a buffer, as in PyTorch, so it
appears in state_dict()."""

from __future__ import annotations

import numpy as np

from graphc.ir.node import Node
from graphc.nn.module import Module
from graphc.ops import losses


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        if reduction not in self.reductions:
            raise ValueError(f"{type(self).__name__}: reduction must be one of "
                             f"{list(self.reductions)}, got {reduction!r}")
        self.reduction = reduction

    reductions = losses.REDUCTIONS

    def _buffer(self, name: str, value) -> None:
        """A class weight as a buffer (None: no buffer, as PyTorch)."""
        if value is None:
            setattr(self, name, None)
        elif isinstance(value, Node):
            setattr(self, name, value)
        else:
            array = np.asarray(value)
            if array.dtype.kind != "f":
                array = array.astype(np.float32)
            self.register_buffer(name, array)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class NLLLoss(_Loss):
    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self._buffer("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, input, training: bool, target) -> Node:
        return losses.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class CrossEntropyLoss(_Loss):
    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(reduction)
        self._buffer("weight", weight)
        self.ignore_index, self.label_smoothing = ignore_index, float(label_smoothing)

    def forward(self, input, training: bool, target) -> Node:
        return losses.cross_entropy(input, target, self.weight, self.ignore_index,
                                    self.reduction, self.label_smoothing)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"


class BCELoss(_Loss):
    def __init__(self, weight=None, reduction: str = "mean"):
        super().__init__(reduction)
        self._buffer("weight", weight)

    def forward(self, input, training: bool, target) -> Node:
        return losses.binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None):
        super().__init__(reduction)
        self._buffer("weight", weight)
        self._buffer("pos_weight", pos_weight)

    def forward(self, input, training: bool, target) -> Node:
        return losses.binary_cross_entropy_with_logits(input, target, self.weight,
                                                       self.reduction, self.pos_weight)


class MSELoss(_Loss):
    def forward(self, input, training: bool, target) -> Node:
        return losses.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    def forward(self, input, training: bool, target) -> Node:
        return losses.l1_loss(input, target, self.reduction)


class SmoothL1Loss(_Loss):
    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input, training: bool, target) -> Node:
        return losses.smooth_l1_loss(input, target, self.reduction, self.beta)


class HuberLoss(_Loss):
    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input, training: bool, target) -> Node:
        return losses.huber_loss(input, target, self.reduction, self.delta)


class KLDivLoss(_Loss):
    reductions = losses.REDUCTIONS + ("batchmean",)

    def __init__(self, reduction: str = "mean", log_target: bool = False):
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input, training: bool, target) -> Node:
        return losses.kl_div(input, target, self.reduction, self.log_target)
