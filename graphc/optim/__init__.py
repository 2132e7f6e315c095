"""Optimizers whose state lives in params, so a whole training step compiles to one
function (`gc.compile(..., updates=opt.updates(loss))`), with gradient clipping compiled
into the step; and learning-rate schedules, as PyTorch names and computes them."""

from graphc.optim.adadelta import Adadelta
from graphc.optim.adagrad import Adagrad
from graphc.optim.adam import Adam, AdamW
from graphc.optim.onecycle import OneCycleLR
from graphc.optim.optimizer import Optimizer
from graphc.optim.plateau import ReduceLROnPlateau
from graphc.optim.rmsprop import RMSprop
from graphc.optim.schedule import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiStepLR,
    Schedule,
    SequentialLR,
    StepLR,
)
from graphc.optim.sgd import SGD

LRScheduler = Schedule  # PyTorch's name for the base class

__all__ = [
    "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Optimizer",
    "Schedule", "LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "LinearLR", "LambdaLR",
    "CosineAnnealingLR", "SequentialLR", "OneCycleLR", "ReduceLROnPlateau",
]
