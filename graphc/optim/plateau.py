"""ReduceLROnPlateau: lower the learning rate when a metric stops improving, with PyTorch's
rules (relative or absolute threshold, patience, cooldown, a floor)."""

from __future__ import annotations

import sys

from graphc.optim.optimizer import Optimizer
from graphc.optim.schedule import Schedule

WORST = sys.float_info.max  # the "best so far" before any epoch (PyTorch's inf, kept finite
# so a checkpoint's scalars stay finite; any finite metric beats it)


class ReduceLROnPlateau(Schedule):
    """step(metric) once per epoch (the Trainer passes the validation loss, or the training
    loss without validation data): after more than `patience` epochs without a metric
    better than the best by `threshold` (relative: best * (1 -+ threshold); absolute:
    best -+ threshold), the learning rate becomes max(lr * factor, min_lr), then
    `cooldown` epochs pass before counting again. mode="max" for a metric to raise."""

    metric_driven = True

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float = 0.0, eps: float = 1e-8):
        super().__init__(optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got "
                             f"{threshold_mode!r}")
        if not 0 <= factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in [0, 1), got {factor!r}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"ReduceLROnPlateau: {name} must be an int >= 0, got "
                                 f"{value!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor, self.patience, self.cooldown = float(factor), patience, cooldown
        self.threshold, self.min_lr, self.eps = float(threshold), float(min_lr), float(eps)
        self.best = WORST if mode == "min" else -WORST
        self.num_bad_epochs = self.cooldown_counter = 0

    def _is_better(self, value: float) -> bool:
        best, t = self.best, self.threshold
        if self.mode == "min":
            return value < (best * (1 - t) if self.threshold_mode == "rel" else best - t)
        return value > (best * (1 + t) if self.threshold_mode == "rel" else best + t)

    def step(self, metric: float | None = None) -> float:  # type: ignore[override]
        """Count one epoch with its metric; returns the learning rate for the next."""
        if metric is None:
            raise TypeError("ReduceLROnPlateau.step needs the epoch's metric, e.g. "
                            "step(val_loss)")
        value = float(metric)
        self.epoch += 1
        if self._is_better(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = self.optimizer.learning_rate
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.scheduled_lr(new)
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        return self.optimizer.learning_rate

    def lr_at(self, epoch: int) -> float:
        raise TypeError("ReduceLROnPlateau has no learning rate as a function of the epoch: "
                        "it follows the metric")

    def state_dict(self) -> dict[str, float]:
        return {**super().state_dict(), "best": self.best, "num_bad_epochs": self.num_bad_epochs,
                "cooldown_counter": self.cooldown_counter}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.best = float(state["best"])
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
