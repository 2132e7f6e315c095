"""The Trainer's PyTorch-style options: loss options and loss modules, threads, schedules
stepped per batch or by a metric, the model's modes, and state updates attached by layers
(what BatchNorm's running statistics use), which wait for a finite loss."""

import numpy as np
import pytest

import graphc as gc
from graphc import nn, optim
from graphc.train import Trainer
from tests.train.common import blobs


def mlp(seed=0, dropout=0.0):
    nn.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))


def test_loss_options_reach_the_loss():
    x, y = blobs(n=60)
    model = mlp()
    weight = np.array([1.0, 2.0, 0.5], np.float32)
    trainer = Trainer(model, optim.SGD(model.params(), lr=0.0), backend="numpy",
                      loss_options={"label_smoothing": 0.2, "weight": weight})
    got = trainer.evaluate(x, y, batch_size=60)["loss"]
    xi = gc.input("x", x.shape)
    expected = gc.compile([xi], gc.softmax_cross_entropy(
        model(xi, training=False), y.astype(np.int64), label_smoothing=0.2, weight=weight),
        backend="numpy")(x)
    assert got == pytest.approx(float(expected), rel=1e-6)
    assert got != pytest.approx(trainer.evaluate(x, y)["accuracy"])


def test_bad_loss_options_are_refused():
    model = mlp()
    opt = optim.SGD(model.params())
    with pytest.raises(ValueError, match=r"takes the options \['label_smoothing'"):
        Trainer(model, opt, loss_options={"smoothing": 0.1})
    with pytest.raises(ValueError, match="loss_options apply to a named loss"):
        Trainer(model, opt, loss=lambda o, t: gc.mean(o), loss_options={"weight": 1})
    with pytest.raises(ValueError, match="takes the options"):
        Trainer(model, opt, loss="mse", loss_options={"reduction": "sum"})


def test_a_loss_module_trains_and_counts_accuracy():
    x, y = blobs()
    model = mlp()
    trainer = Trainer(model, optim.Adam(model.params(), lr=0.03), backend="numpy",
                      loss=nn.CrossEntropyLoss(label_smoothing=0.05))
    history = trainer.fit(x, y, epochs=6, progress=False)
    assert history["accuracy"][-1] > 0.9 and history["loss"][-1] < history["loss"][0]


def test_threads_are_passed_to_every_compiled_function():
    x, y = blobs(n=40)
    model = mlp()
    trainer = Trainer(model, optim.SGD(model.params()), backend="numpy", threads=1)
    trainer.fit(x, y, epochs=1, progress=False)
    for fn in (trainer.step_fn, trainer.eval_fn, trainer.predict_fn):
        assert fn.options["threads"] == 1
    with pytest.raises(ValueError, match="threads"):
        Trainer(model, optim.SGD(model.params()), threads=0)


def test_a_batch_schedule_steps_after_every_batch():
    x, y = blobs(n=100)
    model = mlp()
    opt = optim.SGD(model.params(), lr=0.1, momentum=0.9)
    schedule = optim.OneCycleLR(opt, max_lr=0.1, epochs=2, steps_per_epoch=4)
    history = Trainer(model, opt, schedule=schedule, backend="numpy").fit(
        x, y, epochs=2, batch_size=25, progress=False)
    assert schedule.epoch == 8
    assert history["lr"][0] == pytest.approx(0.1 / 25)  # the first batch's rate


def test_reduce_on_plateau_follows_the_validation_loss():
    x, y = blobs()
    x_val, y_val = blobs(n=60, seed=1)
    y_val = (y_val + 1) % 3  # unlearnable: the validation loss stops falling
    model = mlp()
    opt = optim.SGD(model.params(), lr=0.05)
    schedule = optim.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    history = Trainer(model, opt, schedule=schedule, backend="numpy").fit(
        x, y, epochs=6, validation=(x_val, y_val), progress=False)
    assert min(history["lr"]) < 0.05
    assert schedule.best == pytest.approx(min(history["val_loss"]))


def test_a_schedule_of_another_optimizer_or_interval_is_refused():
    model = mlp()
    opt, other = optim.SGD(model.params()), optim.SGD(model.params())
    with pytest.raises(ValueError, match="this Trainer's optimizer"):
        Trainer(model, opt, schedule=optim.StepLR(other, 1))
    schedule = optim.StepLR(opt, 1)
    schedule.interval = "week"
    with pytest.raises(ValueError, match="interval"):
        Trainer(model, opt, schedule=schedule)


def _ops_of(fn) -> set:
    return {node.op for node in gc.Graph(list(fn.source.results))}


def test_the_step_uses_each_modules_mode_and_evaluation_none():
    x, y = blobs(n=40)
    model = mlp(dropout=0.5)
    trainer = Trainer(model, optim.SGD(model.params()), backend="numpy")
    trainer.fit(x, y, epochs=1, progress=False)
    assert "random_uniform" in _ops_of(trainer.step_fn)
    assert "random_uniform" not in _ops_of(trainer.eval_fn)
    frozen = mlp(dropout=0.5)
    frozen[2].eval()  # a submodule kept in eval mode while the model trains
    trainer = Trainer(frozen, optim.SGD(frozen.params()), backend="numpy")
    trainer.fit(x, y, epochs=1, progress=False)
    assert "random_uniform" not in _ops_of(trainer.step_fn)


def test_a_model_in_eval_mode_is_warned_about():
    x, y = blobs(n=40)
    model = mlp().eval()
    with pytest.warns(UserWarning, match="model is in eval mode"):
        Trainer(model, optim.SGD(model.params()), backend="numpy").fit(x, y, progress=False)


class Counting(nn.Module):
    """Counts the training batches it sees in a buffer, by an attached state update."""

    def __init__(self):
        self.layer = nn.Linear(4, 3, rng=0)
        self.register_buffer("seen", np.zeros((), np.float32))

    def forward(self, x, training):
        y = self.layer(x)
        return gc.attach_update(y, self.seen, self.seen + 1.0) if training else y


def test_attached_state_updates_run_in_the_step_and_are_checkpointed(tmp_path):
    x, y = blobs(n=64)
    model = Counting()
    assert [name for name, _ in model.named_buffers()] == ["seen"]
    assert model.params() == [model.layer.weight, model.layer.bias]  # a buffer is not trained
    trainer = Trainer(model, optim.SGD(model.params(), lr=0.1), backend="numpy")
    trainer.fit(x, y, epochs=2, batch_size=16, progress=False)
    assert model.seen.value == 8
    trainer.evaluate(x, y)
    trainer.predict(x)
    assert model.seen.value == 8  # evaluation changes no state
    trainer.save(tmp_path / "c.npz")
    model.seen.value = np.zeros((), np.float32)
    trainer.load(tmp_path / "c.npz")
    assert model.seen.value == 8


def test_a_non_finite_batch_changes_no_attached_state():
    x, y = blobs(n=48)
    x[5] = np.nan  # one of the three batches
    model = Counting()
    trainer = Trainer(model, optim.SGD(model.params(), lr=0.1), backend="numpy")
    with pytest.warns(RuntimeWarning, match="skipped 1"):
        trainer.fit(x, y, epochs=1, batch_size=16, progress=False, on_nonfinite="skip")
    assert model.seen.value == 2
