"""Training loop: compile the whole training step once, then run it over seeded batches
with a progress bar (on a terminal), held-out evaluation, early stopping, checkpoints, a
stop (or a skip) on a non-finite loss, and curves of the history.

    trainer = gc.train.Trainer(model, gc.optim.Adam(model.params()), backend="llvm")
    history = trainer.fit(x, y, epochs=10, batch_size=64, validation=(x_val, y_val))
    history.plot("curves.png")

trainer.py runs the loop, objective.py turns a loss and the targets' form into the graph
values the step computes, history.py keeps and draws the per-epoch records.
"""

from graphc.train.history import History
from graphc.train.objective import LOSSES, Objective
from graphc.train.trainer import NonFiniteLossError, Trainer, fit

__all__ = ["Trainer", "fit", "History", "NonFiniteLossError", "LOSSES", "Objective"]
