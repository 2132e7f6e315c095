"""Data and trainers the training tests share."""

import numpy as np

from graphc import nn, optim
from graphc.train import Trainer


def blobs(n=240, seed=0):
    """Three separable Gaussian blobs in 4-D, with int32 labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    centers = rng.normal(0, 3, (3, 4))
    return (centers[y] + rng.normal(size=(n, 4))).astype(np.float32), y


def make(dropout=0.3, seed=0, lr=0.05, schedule=False, backend="numpy", **options):
    """A small MLP classifier's Trainer (SGD with momentum; StepLR when schedule)."""
    nn.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))
    opt = optim.SGD(model.params(), lr=lr, momentum=0.9)
    sched = optim.StepLR(opt, step_size=1, gamma=0.5) if schedule else None
    return Trainer(model, opt, schedule=sched, backend=backend, **options)
