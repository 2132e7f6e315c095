"""A batch whose loss is NaN or infinite: fit stops naming the epoch, batch and step and
leaves the model as the last finite step did, or (on_nonfinite="skip") leaves the batch out."""

import numpy as np
import pytest

from graphc.data.batching import Batches
from graphc.train import NonFiniteLossError
from tests.train.common import blobs, make


class Recorder:
    """Wraps a trainer's step function: keeps a copy of every param and optimizer state
    just before each call."""

    def __init__(self, trainer):
        self.trainer, self.step_fn, self.before = trainer, trainer.step_fn, []

    def __call__(self, *args):
        state = {**self.trainer.model.named_params(), **self.trainer.optimizer.named_state()}
        self.before.append({k: v.value.copy() for k, v in state.items()})
        return self.step_fn(*args)

    @property
    def step(self):
        return self.step_fn.step


def _state(trainer):
    state = {**trainer.model.named_params(), **trainer.optimizer.named_state()}
    return {k: v.value.copy() for k, v in state.items()}


def _batch_holding(row, n, batch_size, seed=0, epoch=0):
    """The 0-based index of the batch of fit's shuffled epoch that holds `row`."""
    marker = np.zeros((n, 1), np.float32)
    marker[row] = 1
    batches = Batches(marker, batch_size=batch_size, seed=seed)
    batches.epoch = epoch
    return next(k for k, (b,) in enumerate(batches) if b.any())


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_a_nan_batch_stops_fit_and_the_model_stays_as_before_it(backend):
    x, y = blobs(n=64)
    trainer = make(backend=backend, dropout=0.0)
    trainer.fit(x, y, epochs=1, batch_size=8, progress=False)  # epoch 1 is clean
    x[37, 2] = np.nan
    trainer.step_fn = recorder = Recorder(trainer)
    bad = _batch_holding(37, 64, 8, epoch=1)
    with pytest.raises(NonFiniteLossError) as info:
        trainer.fit(x, y, epochs=1, batch_size=8, progress=False)
    err = info.value
    assert (err.epoch, err.batch, err.step) == (2, bad + 1, 8 + bad)
    message = str(err)
    assert f"epoch 2, batch {bad + 1} of 8 (step {8 + bad}): the loss is nan" in message
    assert "np.isfinite" in message and "learning rate (it is 0.05)" in message
    assert "on_nonfinite='skip'" in message
    after, before = _state(trainer), recorder.before[-1]
    assert after.keys() == before.keys()
    for key in before:  # the NaN step applied nothing: params and velocities as they were
        assert after[key].tobytes() == before[key].tobytes(), key
        assert np.isfinite(after[key]).all()


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_a_diverging_learning_rate_stops_fit(backend):
    x, y = blobs(n=64)
    trainer = make(backend=backend, lr=1e4, dropout=0.0)
    with pytest.raises(NonFiniteLossError, match=r"the loss is (nan|inf).*it is 10000"):
        trainer.fit(x, y, epochs=20, batch_size=8, progress=False)
    assert trainer.history.epochs == [] or all(np.isfinite(trainer.history["loss"]))


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_skip_leaves_nan_batches_out_and_learns_from_the_rest(backend):
    x, y = blobs(n=96)
    bad_rows = [5, 50]
    x[bad_rows, 0] = np.nan
    bad = {_batch_holding(r, 96, 8, epoch=e) for r in bad_rows for e in (0,)}
    trainer = make(backend=backend, dropout=0.0)
    with pytest.warns(RuntimeWarning, match=f"epoch 1: skipped {len(bad)} of 12 batches"):
        history = trainer.fit(x, y, epochs=1, batch_size=8, progress=False,
                              on_nonfinite="skip")
    assert history.epochs[0]["skipped"] == len(bad)
    assert np.isfinite(history["loss"][0])
    with pytest.warns(RuntimeWarning, match="skipped"):
        trainer.fit(x, y, epochs=5, batch_size=8, progress=False, on_nonfinite="skip")
    clean = np.isfinite(x).all(axis=1)
    assert trainer.evaluate(x[clean], y[clean])["accuracy"] > 0.9
    assert all(np.isfinite(p.value).all() for p in trainer.model.params())


def test_skip_of_every_batch_is_an_error():
    x, y = blobs(n=16)
    x[:, 1] = np.inf
    trainer = make()
    with pytest.raises(NonFiniteLossError, match="every batch of epoch 1 had a non-finite loss"):
        trainer.fit(x, y, epochs=1, batch_size=8, progress=False, on_nonfinite="skip")


def test_clean_epochs_record_no_skips():
    x, y = blobs(n=32)
    history = make().fit(x, y, epochs=2, batch_size=8, progress=False, on_nonfinite="skip")
    assert all("skipped" not in record for record in history.epochs)


def test_bad_on_nonfinite():
    x, y = blobs(n=16)
    with pytest.raises(ValueError, match=r"on_nonfinite must be one of \('raise', 'skip'\), "
                                         "got 'ignore'"):
        make().fit(x, y, on_nonfinite="ignore")
