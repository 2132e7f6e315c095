"""Learning-rate schedules with PyTorch's names, arguments and values: each step writes the
optimizer's learning rate (a value, so the compiled step is not rebuilt).

As in PyTorch, building a schedule sets the learning rate of epoch 0, and `step()` moves
to the next epoch (call it once at the end of every epoch; OneCycleLR after every batch).
The Trainer does this itself: after each epoch, or after each batch for a schedule whose
`interval` is "batch" (OneCycleLR's; set `schedule.interval = "batch"` to step, e.g., a
LinearLR warm-up per batch). The base learning rate is the optimizer's at the first
schedule built on it (PyTorch's initial_lr), so schedules composed by SequentialLR share
it."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

from graphc.optim.optimizer import Optimizer

INTERVALS = ("epoch", "batch")


class Schedule:
    """lr(epoch) from the optimizer's base learning rate (`base_lr`); subclasses give
    `lr_at(epoch)` in closed form (PyTorch's values)."""

    interval = "epoch"

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected a graphc optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        if getattr(optimizer, "initial_lr", None) is None:
            optimizer.initial_lr = optimizer.learning_rate
        self.base_lr = optimizer.initial_lr
        self.epoch = 0

    def _start(self) -> None:
        """PyTorch's initial step: the learning rate of epoch 0, set at construction."""
        self.optimizer.scheduled_lr(self.lr_at(0))

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    @property
    def last_epoch(self) -> int:
        """PyTorch's name for the epoch count."""
        return self.epoch

    def step(self) -> float:
        """Advance one epoch (or batch) and set the optimizer's learning rate; returns it."""
        self.epoch += 1
        lr = self.lr_at(self.epoch)
        self.optimizer.scheduled_lr(lr)
        return lr

    def get_last_lr(self) -> list[float]:
        """The learning rate last set, as PyTorch's list of one per param group."""
        return [self.optimizer.learning_rate]

    def state_dict(self) -> dict[str, float]:
        return {"epoch": self.epoch, "base_lr": self.base_lr}

    def load_state_dict(self, state: dict) -> None:
        epoch, base_lr = int(state["epoch"]), float(state["base_lr"])
        if epoch < 0:
            raise ValueError(f"{type(self).__name__}: epoch must be >= 0, got {epoch}")
        self.epoch, self.base_lr = epoch, base_lr


def _positive_int(owner: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return value


def _positive(owner: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{owner}: {name} must be positive, got {value!r}")
    return float(value)


class StepLR(Schedule):
    """base_lr * gamma ** (epoch // step_size): decay by gamma every step_size epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        self.step_size = _positive_int("StepLR", "step_size", step_size)
        self.gamma = _positive("StepLR", "gamma", gamma)
        self._start()

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(Schedule):
    """base_lr * gamma ** (how many milestones are <= epoch)."""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1):
        super().__init__(optimizer)
        milestones = list(milestones)
        for m in milestones:
            _positive_int("MultiStepLR", "each milestone", m)
        self.milestones = sorted(milestones)  # repeats count twice, as in PyTorch
        self.gamma = _positive("MultiStepLR", "gamma", gamma)
        self._start()

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class ExponentialLR(Schedule):
    """base_lr * gamma ** epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float):
        super().__init__(optimizer)
        self.gamma = _positive("ExponentialLR", "gamma", gamma)
        self._start()

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** epoch


class LinearLR(Schedule):
    """base_lr times a factor going linearly from start_factor to end_factor over
    total_iters epochs, then end_factor: a warm-up with the defaults."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5):
        super().__init__(optimizer)
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor!r}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor!r}")
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = _positive_int("LinearLR", "total_iters", total_iters)
        self._start()

    def lr_at(self, epoch: int) -> float:
        progress = min(self.total_iters, epoch) / self.total_iters
        return self.base_lr * (self.start_factor
                               + (self.end_factor - self.start_factor) * progress)


class LambdaLR(Schedule):
    """base_lr * lr_lambda(epoch), for any function of the epoch."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float]):
        super().__init__(optimizer)
        if not callable(lr_lambda):
            raise TypeError(f"LambdaLR: lr_lambda must be a function of the epoch, got "
                            f"{lr_lambda!r}")
        self.lr_lambda = lr_lambda
        self._start()

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * float(self.lr_lambda(epoch))


class CosineAnnealingLR(Schedule):
    """eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2: from base_lr down
    to eta_min at T_max (and, as PyTorch's, back up after it: cosine is periodic)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):  # noqa: N803
        super().__init__(optimizer)
        self.T_max = _positive_int("CosineAnnealingLR", "T_max", T_max)
        self.eta_min = float(eta_min)
        self._start()

    def lr_at(self, epoch: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (
            1 + math.cos(math.pi * epoch / self.T_max)) / 2


class SequentialLR(Schedule):
    """schedulers[0] until milestones[0], then schedulers[1] (from its epoch 0), ...:
    e.g. a LinearLR warm-up then a CosineAnnealingLR, as torch's SequentialLR."""

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[Schedule],
                 milestones: Sequence[int]):
        super().__init__(optimizer)
        schedulers, milestones = list(schedulers), list(milestones)
        if not schedulers:
            raise ValueError("SequentialLR: expects at least one scheduler")
        for k, s in enumerate(schedulers):
            if not isinstance(s, Schedule) or isinstance(s, (SequentialLR,)) or \
                    getattr(s, "metric_driven", False):
                raise ValueError(f"SequentialLR: scheduler {k} ({type(s).__name__}) must be an "
                                 "epoch schedule (not ReduceLROnPlateau or a SequentialLR)")
            if s.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: scheduler {k} ({type(s).__name__}) belongs to "
                                 "another optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expects one milestone fewer than schedulers, got "
                             f"{len(schedulers)} schedulers and {len(milestones)} milestones")
        if milestones != sorted(milestones) or any(
                isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in milestones):
            raise ValueError(f"SequentialLR: milestones must be increasing positive ints, got "
                             f"{milestones}")
        self.schedulers, self.milestones = schedulers, milestones
        for s in schedulers:
            s.epoch = 0
        self._start()

    def _current(self, epoch: int) -> tuple[Schedule, int]:
        k = bisect.bisect_right(self.milestones, epoch)
        return self.schedulers[k], epoch - (self.milestones[k - 1] if k else 0)

    def lr_at(self, epoch: int) -> float:
        schedule, local = self._current(epoch)
        return schedule.lr_at(local)

    def step(self) -> float:
        lr = super().step()
        schedule, local = self._current(self.epoch)
        schedule.epoch = local
        return lr

    def state_dict(self) -> dict[str, float]:
        state = super().state_dict()
        for k, s in enumerate(self.schedulers):
            state.update({f"{k}.{name}": value for name, value in s.state_dict().items()})
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        for k, s in enumerate(self.schedulers):
            prefix = f"{k}."
            s.load_state_dict({name[len(prefix):]: value for name, value in state.items()
                               if name.startswith(prefix)})
