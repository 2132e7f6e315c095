"""Optimizers whose state lives in params, so a whole training step compiles to one
function (`gc.compile(..., updates=opt.updates(loss))`), and learning-rate schedules."""

from graphc.optim.adam import Adam, AdamW
from graphc.optim.optimizer import Optimizer
from graphc.optim.schedule import CosineAnnealingLR, Schedule, StepLR
from graphc.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "CosineAnnealingLR", "Optimizer", "Schedule", "StepLR"]
