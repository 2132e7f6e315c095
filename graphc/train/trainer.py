"""The Trainer: compiles the training step, evaluation and prediction for the data's
shapes, runs epochs of seeded batches, stops (or skips the batch) when the loss is not
finite, and saves and resumes the whole training state."""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

from graphc import checkpoint, dsl
from graphc.compiler import _checked_threads
from graphc.compiler import compile as compile_graph
from graphc.data.batching import Batches
from graphc.ir.node import Node
from graphc.nn.module import Module
from graphc.ops.state import attached_updates
from graphc.optim.optimizer import Optimizer
from graphc.optim.schedule import INTERVALS, Schedule
from graphc.train.history import History
from graphc.train.objective import Objective

COUNTERS = ("trainer/epoch", "trainer/step")  # a checkpoint's counters (state_arrays)
SCALAR_BYTES = 16  # the most a scalar of any real dtype takes (longdouble)
NONFINITE = ("raise", "skip")  # what fit does on a batch whose loss is NaN or infinite
EVAL_BATCH = 512  # samples per call of evaluate and predict


class NonFiniteLossError(FloatingPointError):
    """The loss of a training batch was NaN or infinite (Trainer.fit with
    on_nonfinite="raise"). The params and optimizer state are as the last batch with a
    finite loss left them: the step applies no update whose loss is not finite."""

    def __init__(self, message: str, epoch: int, batch: int, step: int):
        super().__init__(message)
        self.epoch, self.batch, self.step = epoch, batch, step


class Trainer:
    """Trains `model` with `optimizer` on `loss(output, target)`.

    loss: "cross_entropy" (logits; int labels, or probabilities / one-hot rows),
    "mse", "l1", "smooth_l1", "huber", "binary_cross_entropy", a function of (output,
    target) graph values giving a scalar, or a loss module (nn.CrossEntropyLoss(...));
    graphc/train/objective.py lists the targets each takes. loss_options: the named
    loss's options, e.g. {"label_smoothing": 0.1, "weight": class_weights} for
    cross_entropy, {"pos_weight": w} for binary_cross_entropy. accuracy: also count how
    often the argmax over the output's last axis equals the target's (default: for
    cross_entropy). schedule: stepped after every epoch, or after every batch when its
    `interval` is "batch" (OneCycleLR); a ReduceLROnPlateau gets the epoch's validation
    loss (the training loss without validation data). threads: the most threads a call of
    the compiled functions uses (None: as many as pay).

    The training step is built from the model in its modes (a model is in training mode
    when built; a submodule put in eval mode, e.g. a frozen BatchNorm, stays so), with the
    state updates its layers attach (BatchNorm's running statistics, gc.attach_update),
    applied only when the loss is finite, as the optimizer's; evaluation and
    prediction use every module in eval mode. The step is compiled on first use, for the
    shapes and dtypes of the first data it sees (the batch axis symbolic), so one
    compiled function serves every batch size. Its functions are named train_step,
    evaluate and predict (in drawings, reports and `graphc viz` files)."""

    def __init__(self, model: Module, optimizer: Optimizer, loss="cross_entropy",
                 accuracy: bool | None = None, schedule: Schedule | None = None,
                 backend: str = "llvm", *, loss_options: dict | None = None,
                 threads: int | None = None):
        if not isinstance(model, Module):
            raise TypeError(f"Trainer: model must be a graphc.nn Module, got "
                            f"{type(model).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"Trainer: optimizer must be a graphc optimizer, got "
                            f"{type(optimizer).__name__}")
        if schedule is not None:
            if not isinstance(schedule, Schedule) or schedule.optimizer is not optimizer:
                raise ValueError("Trainer: schedule must be a graphc schedule of this "
                                 "Trainer's optimizer")
            if schedule.interval not in INTERVALS:
                raise ValueError(f"Trainer: the schedule's interval must be one of "
                                 f"{INTERVALS}, got {schedule.interval!r}")
        self.objective = Objective.of(loss, accuracy, loss_options)
        self.model, self.optimizer, self.loss_fn = model, optimizer, self.objective.loss_fn
        self.threads = None if threads is None else _checked_threads(threads)
        self.accuracy, self.schedule, self.backend = self.objective.accuracy, schedule, backend
        self.epoch = 0
        self.history = History()
        self._signature: tuple | None = None
        self._restored_step = 0  # the step counter a loaded checkpoint resumes from
        self._ahead: set[tuple] = set()  # (function, batch size) compiled ahead

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
        if not self.model.training:
            warnings.warn("Trainer: the model is in eval mode, so its training step is built "
                          "without dropout and with running statistics; call model.train() "
                          "first if that is not meant", UserWarning, stacklevel=3)
        train_out = self.model(self.x)  # each module in its own mode
        eval_out = self.model(self.x, training=False)
        train = self.objective.build(train_out, self.y)
        evaluation = self.objective.build(eval_out, self.y)
        self._counting = train
        extra = [train.hits] if self.accuracy else []
        finite = _finite(train.loss)
        updates = self.optimizer.updates(train.loss, only_if=finite)
        # State updates the layers attach to the graph (BatchNorm's running statistics),
        # given explicitly so they too wait for a finite loss (gc.compile's own win).
        updates.update({state: dsl.where(finite, value, state) for state, value
                        in attached_updates([train.loss, *extra]).items()
                        if state not in updates})
        options = {} if self.threads is None else {"threads": self.threads}
        self.step_fn = compile_graph([self.x, self.y], [train.loss, *extra], updates=updates,
                                     backend=self.backend, name="train_step", **options)
        self.step_fn.step = self._restored_step
        self.eval_fn = compile_graph([self.x, self.y], [evaluation.loss] + (
            [evaluation.hits] if self.accuracy else []), backend=self.backend, name="evaluate",
            **options)
        self.predict_fn = compile_graph([self.x], eval_out, backend=self.backend,
                                        name="predict", **options)
        self._signature = signature

    def _predictions(self, y: np.ndarray) -> int:
        """How many predictions a batch of targets holds (rows of probability targets)."""
        return self._counting.predictions(y.size, y.shape[-1] if y.ndim else 1)

    # ----- training -------------------------------------------------------------------------
    def fit(self, x, y, epochs: int = 1, batch_size: int = 32, validation=None,
            seed: int = 0, transform=None, early_stopping: int | None = None,
            restore_best: bool = True, checkpoint_path=None, progress: bool | None = None,
            on_nonfinite: str = "raise") -> History:
        """Train `epochs` more epochs on (x, y); returns the history so far.

        validation: (x_val, y_val), evaluated after every epoch. transform(batch, rng): an
        augmentation for the inputs, seeded per epoch and batch. early_stopping: stop after
        this many epochs without a lower validation loss (then, with restore_best, go back
        to the best epoch's params). checkpoint_path: save the full training state after
        every epoch (see `save`). progress: a progress bar per epoch; None (the default)
        draws it only on a terminal (and in notebooks) and otherwise prints one line per
        epoch, so a log gets no carriage returns; True always, False never.
        on_nonfinite: a batch whose loss is NaN or infinite never updates the params;
        "raise" stops with NonFiniteLossError (the epoch, batch and step, and what to check),
        "skip" leaves the batch out and goes on (the epoch's record counts them as
        "skipped", with a warning)."""
        x, y = np.asarray(x), np.asarray(y)
        if on_nonfinite not in NONFINITE:
            raise ValueError(f"fit: on_nonfinite must be one of {NONFINITE}, got "
                             f"{on_nonfinite!r}")
        if progress is not None and not isinstance(progress, bool):
            raise TypeError(f"fit: progress must be True, False or None, got {progress!r}")
        self.compile(x, y)
        if not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"fit: epochs must be an int >= 0, got {epochs!r}")
        if early_stopping is not None and validation is None:
            raise ValueError("fit: early_stopping needs validation data")
        batches = Batches(x, y, batch_size=batch_size, seed=seed, transform=transform)
        best_loss, best_state, waited = np.inf, None, 0
        for _ in range(epochs):
            batches.epoch = self.epoch  # the shuffle order depends on the epoch: resumable
            record = self._run_epoch(batches, progress, validation, on_nonfinite)
            self.history.epochs.append(record)
            self._step_schedule_after_epoch(record)
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

    def _run_epoch(self, batches: Batches, progress: bool | None, validation,
                   on_nonfinite: str) -> dict:
        from tqdm.auto import tqdm

        start = time.perf_counter()
        self.epoch += 1
        total_loss = total_correct = 0.0
        seen = targets = skipped = 0
        lr = self.optimizer.learning_rate
        with tqdm(total=len(batches), desc=f"epoch {self.epoch}", leave=True, unit="batch",
                  disable=None if progress is None else not progress) as bar:
            for index, (xb, yb) in enumerate(batches):
                results = self.step_fn(xb, yb)
                if index == 0:  # compiled by now: the other shapes to come compile aside
                    self._compile_ahead(batches, xb, yb, validation)
                loss = float(results[0])
                bar.update(1)
                if self.schedule is not None and self.schedule.interval == "batch":
                    self.schedule.step()
                if not np.isfinite(loss):
                    if on_nonfinite == "raise":
                        raise self._nonfinite(loss, index, len(batches))
                    skipped += 1
                    continue
                n = len(xb)
                total_loss += loss * n
                seen += n
                if self.accuracy:
                    total_correct += float(results[1])
                    targets += self._predictions(yb)
                bar.set_postfix(self._summary(total_loss / seen, total_correct, targets))
            if seen == 0 and skipped:
                raise self._nonfinite(loss, index, len(batches), every=True)
            record = {"epoch": self.epoch, "loss": total_loss / seen if seen else float("nan"),
                      "lr": lr}
            if self.accuracy:
                record["accuracy"] = total_correct / targets if targets else float("nan")
            if skipped:
                record["skipped"] = skipped
                warnings.warn(f"epoch {self.epoch}: skipped {skipped} of {len(batches)} "
                              "batches whose loss was not finite (their updates were not "
                              "applied)", RuntimeWarning, stacklevel=3)
            if validation is not None:
                scores = self.evaluate(*validation)
                record.update({f"val_{k}": v for k, v in scores.items()})
            record["seconds"] = time.perf_counter() - start
            summary = {k: f"{v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds")}
            bar.set_postfix(summary)
            if bar.disable and progress is None:  # not a terminal: one line for the log
                print(f"epoch {self.epoch}: " + " ".join(f"{k}={v}" for k, v in summary.items())
                      + f" ({record['seconds']:.1f} s)", file=sys.stderr, flush=True)
        return record

    def _compile_ahead(self, batches: Batches, xb: np.ndarray, yb: np.ndarray,
                       validation) -> None:
        """Compile, in the background while this epoch trains, the shapes it and the
        validation will need that the first batch's did not: a last smaller batch and the
        validation batches. The calls then find their code ready instead of stopping for a
        compile (the same code: bit for bit what a compile at the call gives)."""
        wanted = [(self.step_fn, xb[:size], yb[:size]) for size in set(batches.sizes())
                  if size and size != len(xb)]
        xv, yv = (map(np.asarray, validation) if validation is not None
                  and len(validation) == 2 else (None, None))
        # Data unlike the training data is refused by evaluate, with the Trainer's message.
        if xv is not None and (xv.shape[1:], xv.dtype, yv.shape[1:], yv.dtype) \
                == self._signature:
            wanted += [(self.eval_fn, xv[:size], yv[:size])
                       for size in {min(len(xv), EVAL_BATCH), len(xv) % EVAL_BATCH} if size]
        for function, x, y in wanted:
            # A data-parallel trainer's functions (graphc.distributed) are wrappers whose
            # shards have other shapes: they compile at their calls.
            compile_ahead = getattr(function, "compile_ahead", None)
            if compile_ahead is not None and (function, len(x)) not in self._ahead:
                self._ahead.add((function, len(x)))
                compile_ahead(x, y)

    def _step_schedule_after_epoch(self, record: dict) -> None:
        if self.schedule is None or self.schedule.interval == "batch":
            return
        if getattr(self.schedule, "metric_driven", False):
            self.schedule.step(record.get("val_loss", record["loss"]))
        else:
            self.schedule.step()

    def _nonfinite(self, loss: float, index: int, batches: int,
                   every: bool = False) -> NonFiniteLossError:
        """The error for a non-finite loss at batch `index` (0-based) of this epoch."""
        step = self.step_fn.step - 1
        what = (f"every batch of epoch {self.epoch} had a non-finite loss (the last {loss})"
                if every else f"epoch {self.epoch}, batch {index + 1} of {batches} (step "
                              f"{step}): the loss is {loss}")
        return NonFiniteLossError(
            f"{what}. The params and optimizer state are as the last finite step left them. "
            "Check the data for NaN or inf (np.isfinite(x).all(), and y), lower the learning "
            f"rate (it is {self.optimizer.learning_rate:g}), and look for an op outside its "
            "domain (log of 0, sqrt of a negative, a division by 0); "
            "fit(..., on_nonfinite='skip') leaves such batches out instead",
            self.epoch, index + 1, step)

    def _summary(self, loss: float, correct: float, targets: int) -> dict:
        summary = {"loss": f"{loss:.4g}"}
        if self.accuracy and targets:
            summary["acc"] = f"{correct / targets:.4f}"
        return summary

    # ----- using the model ------------------------------------------------------------------
    def evaluate(self, x, y, batch_size: int = EVAL_BATCH) -> dict[str, float]:
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
            scores["accuracy"] = total_correct / self._predictions(y)
        return scores

    def predict(self, x, batch_size: int = EVAL_BATCH) -> np.ndarray:
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
        arrays = {f"model/{k}": v.value.copy() for k, v in self.model.named_state().items()}
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
        targets = {f"model/{k}": v for k, v in self.model.named_state().items()}
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
    trainer = Trainer(model, optimizer, loss, accuracy, schedule, backend,
                      loss_options=options.pop("loss_options", None),
                      threads=options.pop("threads", None))
    history = trainer.fit(x, y, **options)
    history.trainer = trainer
    return history


def _finite(loss: Node) -> Node:
    """Whether the loss is finite (neither NaN nor infinite), a bool scalar."""
    return dsl.less(dsl.abs(loss), float("inf"))
