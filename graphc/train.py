"""Training loop: compile the whole training step once, then run it over seeded batches
with a progress bar, held-out evaluation, early stopping and checkpoints.

    trainer = gc.train.Trainer(model, gc.optim.Adam(model.params()), backend="llvm")
    history = trainer.fit(x, y, epochs=10, batch_size=64, validation=(x_val, y_val))
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graphc import checkpoint, dsl
from graphc.compiler import compile as compile_graph
from graphc.data.batching import Batches
from graphc.ir.node import Node
from graphc.nn.module import Module
from graphc.ops.composite import binary_cross_entropy_with_logits, mse_loss, softmax_cross_entropy
from graphc.optim.optimizer import Optimizer
from graphc.optim.schedule import Schedule

LOSSES: dict[str, Callable[[Node, Node], Node]] = {
    "cross_entropy": softmax_cross_entropy,
    "mse": mse_loss,
    "binary_cross_entropy": binary_cross_entropy_with_logits,
}
COUNTERS = ("trainer/epoch", "trainer/step")  # a checkpoint's counters (state_arrays)
SCALAR_BYTES = 16  # the most a scalar of any real dtype takes (longdouble)


@dataclass
class History:
    """Per-epoch records: loss, accuracy (when measured), val_loss, val_accuracy, lr, seconds."""

    epochs: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None
    trainer: Trainer | None = field(default=None, repr=False)

    def __getitem__(self, key: str) -> list:
        """One metric over the epochs, e.g. history["val_accuracy"]."""
        return [record.get(key) for record in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)


class Trainer:
    """Trains `model` with `optimizer` on `loss(output, target)`.

    loss: "cross_entropy" (logits and int labels), "mse", "binary_cross_entropy" or a
    function of (output, target) graph values giving a scalar. accuracy: also count how
    often the argmax over the output's last axis equals the target. The step is compiled
    on first use, for the shapes and dtypes of the first data it sees (the batch axis
    symbolic), so one compiled function serves every batch size."""

    def __init__(self, model: Module, optimizer: Optimizer, loss="cross_entropy",
                 accuracy: bool | None = None, schedule: Schedule | None = None,
                 backend: str = "llvm"):
        if not isinstance(model, Module):
            raise TypeError(f"Trainer: model must be a graphc.nn Module, got "
                            f"{type(model).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"Trainer: optimizer must be a graphc optimizer, got "
                            f"{type(optimizer).__name__}")
        if isinstance(loss, str):
            if loss not in LOSSES:
                raise ValueError(f"Trainer: loss must be one of {sorted(LOSSES)} or a function, "
                                 f"got {loss!r}")
            accuracy = loss == "cross_entropy" if accuracy is None else accuracy
            loss = LOSSES[loss]
        elif not callable(loss):
            raise TypeError(f"Trainer: loss must be a name or a function, got {loss!r}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss
        self.accuracy, self.schedule, self.backend = bool(accuracy), schedule, backend
        self.epoch = 0
        self.history = History()
        self._signature: tuple | None = None
        self._restored_step = 0  # the step counter a loaded checkpoint resumes from

    # ----- compiling ------------------------------------------------------------------------
    def compile(self, x: np.ndarray, y: np.ndarray) -> None:
        """Build and compile the training step, evaluation and prediction for data like
        (x, y); done by fit/evaluate/predict on first use."""
        signature = (x.shape[1:], x.dtype, y.shape[1:], y.dtype)
        if self._signature is not None:
            if signature != self._signature:
                raise ValueError(f"Trainer: compiled for x {self._signature[:2]} and y "
                                 f"{self._signature[2:]}, got x {signature[:2]} and y "
                                 f"{signature[2:]}")
            return
        self.x = dsl.input("x", ("N",) + x.shape[1:], x.dtype)
        self.y = dsl.input("y", ("N",) + y.shape[1:], y.dtype)
        train_out = self.model(self.x, training=True)
        eval_out = self.model(self.x, training=False)
        train_loss = self.loss_fn(train_out, self.y)
        eval_loss = self.loss_fn(eval_out, self.y)
        train_outputs, eval_outputs = [train_loss], [eval_loss]
        if self.accuracy:
            train_outputs.append(self._correct(train_out))
            eval_outputs.append(self._correct(eval_out))
        self.step_fn = compile_graph([self.x, self.y], train_outputs,
                                     updates=self.optimizer.updates(train_loss),
                                     backend=self.backend)
        self.step_fn.step = self._restored_step
        self.eval_fn = compile_graph([self.x, self.y], eval_outputs, backend=self.backend)
        self.predict_fn = compile_graph([self.x], eval_out, backend=self.backend)
        self._signature = signature

    def _correct(self, output: Node) -> Node:
        """How many argmaxes over the last axis equal the targets (a float32 count)."""
        hits = dsl.equal(dsl.argmax(output, -1), dsl.cast(self.y, "int64"))
        return dsl.sum(dsl.cast(hits, "float32"))

    # ----- training -------------------------------------------------------------------------
    def fit(self, x, y, epochs: int = 1, batch_size: int = 32, validation=None,
            seed: int = 0, transform=None, early_stopping: int | None = None,
            restore_best: bool = True, checkpoint_path=None, progress: bool = True) -> History:
        """Train `epochs` more epochs on (x, y); returns the history so far.

        validation: (x_val, y_val), evaluated after every epoch. transform(batch, rng): an
        augmentation for the inputs, seeded per epoch and batch. early_stopping: stop after
        this many epochs without a lower validation loss (then, with restore_best, go back
        to the best epoch's params). checkpoint_path: save the full training state after
        every epoch (see `save`)."""
        x, y = np.asarray(x), np.asarray(y)
        self.compile(x, y)
        if not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"fit: epochs must be an int >= 0, got {epochs!r}")
        if early_stopping is not None and validation is None:
            raise ValueError("fit: early_stopping needs validation data")
        batches = Batches(x, y, batch_size=batch_size, seed=seed, transform=transform)
        best_loss, best_state, waited = np.inf, None, 0
        for _ in range(epochs):
            batches.epoch = self.epoch  # the shuffle order depends on the epoch: resumable
            record = self._run_epoch(batches, progress, validation)
            self.history.epochs.append(record)
            if self.schedule is not None:
                self.schedule.step()
            if checkpoint_path is not None:
                self.save(checkpoint_path)
            if early_stopping is not None:
                if record["val_loss"] < best_loss:
                    best_loss, waited = record["val_loss"], 0
                    best_state = self.model.state_dict()
                    self.history.best_epoch = record["epoch"]
                else:
                    waited += 1
                    if waited >= early_stopping:
                        self.history.stopped_early = True
                        break
        if best_state is not None and restore_best:
            self.model.load_state_dict(best_state)
        return self.history

    def _run_epoch(self, batches: Batches, progress: bool, validation) -> dict:
        from tqdm.auto import tqdm

        start = time.perf_counter()
        self.epoch += 1
        total_loss = total_correct = 0.0
        seen = targets = 0
        lr = self.optimizer.learning_rate
        with tqdm(total=len(batches), desc=f"epoch {self.epoch}", disable=not progress,
                  leave=True, unit="batch") as bar:
            for xb, yb in batches:
                results = self.step_fn(xb, yb)
                n = len(xb)
                total_loss += float(results[0]) * n
                seen += n
                if self.accuracy:
                    total_correct += float(results[1])
                    targets += yb.size
                bar.update(1)
                bar.set_postfix(self._summary(total_loss / seen, total_correct, targets))
            record = {"epoch": self.epoch, "loss": total_loss / seen, "lr": lr}
            if self.accuracy:
                record["accuracy"] = total_correct / targets
            if validation is not None:
                scores = self.evaluate(*validation)
                record.update({f"val_{k}": v for k, v in scores.items()})
            record["seconds"] = time.perf_counter() - start
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items()
                             if k not in ("epoch", "seconds")})
        return record

    def _summary(self, loss: float, correct: float, targets: int) -> dict:
        summary = {"loss": f"{loss:.4g}"}
        if self.accuracy and targets:
            summary["acc"] = f"{correct / targets:.4f}"
        return summary

    # ----- using the model ------------------------------------------------------------------
    def evaluate(self, x, y, batch_size: int = 512) -> dict[str, float]:
        """Mean loss (and accuracy) over (x, y) with the evaluation graph (no dropout)."""
        x, y = np.asarray(x), np.asarray(y)
        self.compile(x, y)
        total_loss = total_correct = 0.0
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            results = self.eval_fn(xb, yb)
            total_loss += float(results[0]) * len(xb)
            if self.accuracy:
                total_correct += float(results[1])
        scores = {"loss": total_loss / len(x)}
        if self.accuracy:
            scores["accuracy"] = total_correct / y.size
        return scores

    def predict(self, x, batch_size: int = 512) -> np.ndarray:
        """The model's outputs for x (evaluation graph), in batches."""
        x = np.asarray(x)
        if self._signature is None:
            raise RuntimeError("Trainer.predict: fit or evaluate first, so the step is "
                               "compiled for the data's shapes")
        return np.concatenate([self.predict_fn(x[s:s + batch_size])
                               for s in range(0, len(x), batch_size)])

    # ----- checkpoints ----------------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to resume training exactly: params, optimizer state, the
        schedule, the epoch, and the step function's call counter (dropout masks)."""
        arrays = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        arrays.update({f"optimizer/{k}": v for k, v in self.optimizer.state_dict().items()})
        arrays["trainer/epoch"] = np.array(self.epoch, np.int64)
        step = self.step_fn.step if self._signature else self._restored_step
        arrays["trainer/step"] = np.array(step, np.int64)
        if self.schedule is not None:
            arrays.update({f"schedule/{k}": np.array(v)
                           for k, v in self.schedule.state_dict().items()})
        return arrays

    def save(self, path) -> Path:
        """Save the training state to an .npz checkpoint (atomically)."""
        return checkpoint.save(path, self.state_arrays())

    def load(self, path) -> None:
        """Restore a checkpoint written by `save` for this model and optimizer, bit for bit.
        Reads only the arrays this trainer has, each bounded by its size here, and checks
        all of them before changing anything: a refused checkpoint leaves the trainer as
        it was."""
        targets = {f"model/{k}": v for k, v in self.model.named_params().items()}
        targets.update({f"optimizer/{k}": v for k, v in self.optimizer.named_state().items()})
        scalars = [*COUNTERS, *(f"schedule/{k}" for k in self._schedule_state())]
        arrays = checkpoint.load(path, names=scalars, max_bytes=SCALAR_BYTES,
                                 like={name: node.value for name, node in targets.items()})
        checkpoint.check(arrays, targets, path)
        epoch, step = (_counter(arrays, key, path) for key in COUNTERS)
        schedule = {key.split("/", 1)[1]: _scalar(arrays, key, path)
                    for key in scalars if key.startswith("schedule/")}
        if self.schedule is not None:
            self._load_schedule(schedule, path)
        checkpoint.restore(arrays, targets, path)  # checked: copies, cannot fail
        self.epoch, self._restored_step = epoch, step
        if self._signature is not None:
            self.step_fn.step = step

    def _schedule_state(self) -> dict:
        return {} if self.schedule is None else self.schedule.state_dict()

    def _load_schedule(self, state: dict, path) -> None:
        """Give the schedule its state; if it refuses, put back the old one and raise."""
        old = self.schedule.state_dict()
        try:
            self.schedule.load_state_dict(state)
        except Exception as exc:
            self.schedule.load_state_dict(old)
            raise checkpoint.CheckpointError(f"checkpoint {path}: the schedule refused its "
                                             f"state {state}: {exc}") from exc



def _scalar(arrays: dict[str, np.ndarray], key: str, path) -> int | float:
    """arrays[key] as a Python number: a finite real scalar (schedule/epoch: a counter)."""
    value = arrays[key]
    if value.shape != ():
        raise checkpoint.CheckpointError(f"checkpoint {path}: {key} must be a scalar, got "
                                         f"{value.dtype}{list(value.shape)}")
    if key == "schedule/epoch":
        return _counter(arrays, key, path)
    if value.dtype.kind not in "iuf":
        raise checkpoint.CheckpointError(f"checkpoint {path}: {key} must be a real number, "
                                         f"got {value.dtype}")
    if not np.isfinite(value):
        raise checkpoint.CheckpointError(f"checkpoint {path}: {key} must be finite, got "
                                         f"{value}")
    return value.item()


def _counter(arrays: dict[str, np.ndarray], key: str, path) -> int:
    """arrays[key] as a Python int: a scalar of an integer dtype in [0, 2**63 - 1] (saved as
    int64; the step counter is the kernels' int64 seed)."""
    value = arrays[key]
    if value.shape != ():
        raise checkpoint.CheckpointError(f"checkpoint {path}: {key} must be a scalar, got "
                                         f"{value.dtype}{list(value.shape)}")
    if value.dtype.kind not in "iu":
        raise checkpoint.CheckpointError(f"checkpoint {path}: {key} must be an integer, got "
                                         f"{value.dtype}")
    count = int(value)
    if not 0 <= count <= np.iinfo(np.int64).max:
        raise checkpoint.CheckpointError(f"checkpoint {path}: {key} must be an integer "
                                         f">= 0 and <= 2**63 - 1, got {count}")
    return count


def fit(model: Module, optimizer: Optimizer, x, y, *, loss="cross_entropy",
        accuracy: bool | None = None, schedule: Schedule | None = None, backend: str = "llvm",
        **options) -> History:
    """Train with a new Trainer (see Trainer.fit for the options); returns the history,
    whose `trainer` attribute is the Trainer (for evaluate, predict and save)."""
    trainer = Trainer(model, optimizer, loss, accuracy, schedule, backend)
    history = trainer.fit(x, y, **options)
    history.trainer = trainer
    return history
