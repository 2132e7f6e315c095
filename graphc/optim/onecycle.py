"""OneCycleLR: Smith's one-cycle policy, stepped after every batch, with PyTorch's phases,
annealing and momentum cycling."""

from __future__ import annotations

import math

from graphc.optim.optimizer import Optimizer
from graphc.optim.schedule import Schedule


class OneCycleLR(Schedule):
    """From max_lr / div_factor up to max_lr over the first pct_start of total_steps, then
    down to that / final_div_factor (three_phase: up, back down to the start, then down
    to the minimum), cosine or linear annealing; the momentum (SGD's, RMSprop's, Adam's
    beta1) cycles the other way between max_momentum and base_momentum. Give total_steps
    or epochs and steps_per_epoch; step after every batch (the Trainer does)."""

    interval = "batch"

    def __init__(self, optimizer: Optimizer, max_lr: float, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False):
        if total_steps is not None:
            self.total_steps = _positive_int("total_steps", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_positive_int("epochs", epochs)
                                * _positive_int("steps_per_epoch", steps_per_epoch))
        else:
            raise ValueError("OneCycleLR: give either total_steps or epochs and "
                             "steps_per_epoch")
        if isinstance(pct_start, bool) or not isinstance(pct_start, (int, float)) or \
                not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        for name, value in (("max_lr", max_lr), ("div_factor", div_factor),
                            ("final_div_factor", final_div_factor)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not value > 0:
                raise ValueError(f"OneCycleLR: {name} must be positive, got {value!r}")
        self.anneal_strategy, self.cycle_momentum = anneal_strategy, bool(cycle_momentum)
        self.initial_lr = float(max_lr) / div_factor
        self.max_lr, self.min_lr = float(max_lr), self.initial_lr / final_div_factor
        self.base_momentum, self.max_momentum = float(base_momentum), float(max_momentum)
        total = self.total_steps
        lr = {"initial": self.initial_lr, "max": self.max_lr, "min": self.min_lr}
        m = {"base": self.base_momentum, "max": self.max_momentum}
        if three_phase:  # (end step, lr from, lr to, momentum from, momentum to)
            self.phases = [
                (float(pct_start * total) - 1, lr["initial"], lr["max"], m["max"], m["base"]),
                (float(2 * pct_start * total) - 2, lr["max"], lr["initial"], m["base"], m["max"]),
                (total - 1, lr["initial"], lr["min"], m["max"], m["max"]),
            ]
        else:
            self.phases = [
                (float(pct_start * total) - 1, lr["initial"], lr["max"], m["max"], m["base"]),
                (total - 1, lr["max"], lr["min"], m["base"], m["max"]),
            ]
        if self.cycle_momentum:
            if not optimizer.momentum_name:
                raise ValueError(f"OneCycleLR: {type(optimizer).__name__} has no momentum or "
                                 "beta1 to cycle; pass cycle_momentum=False")
            optimizer.momentum_as_state()
        optimizer.initial_lr = self.initial_lr  # PyTorch sets the group's initial_lr so
        super().__init__(optimizer)
        self._start()

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _values(self, step: int) -> tuple[float, float]:
        """(learning rate, momentum) after `step` steps."""
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step} times; the schedule has "
                             f"total_steps={self.total_steps}")
        start = 0.0
        for k, (end, lr0, lr1, m0, m1) in enumerate(self.phases):
            if step <= end or k == len(self.phases) - 1:
                pct = (step - start) / (end - start)
                return self._anneal(lr0, lr1, pct), self._anneal(m0, m1, pct)
            start = end
        raise AssertionError("unreachable: the last phase always answers")

    def lr_at(self, epoch: int) -> float:
        return self._values(epoch)[0]

    def _start(self) -> None:
        super()._start()
        self._set_momentum(0)

    def _set_momentum(self, step: int) -> None:
        if self.cycle_momentum:
            self.optimizer.momentum = self._values(step)[1]

    def step(self) -> float:
        lr = super().step()
        self._set_momentum(self.epoch)
        return lr

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._values(self.epoch)  # refuses a step count beyond total_steps


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"OneCycleLR: {name} must be a positive int, got {value!r}")
    return value
