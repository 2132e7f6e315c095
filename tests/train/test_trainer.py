"""The training loop: loss falls, evaluation, early stopping, schedules, exact resume."""

import io
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

import graphc as gc
from graphc import checkpoint, nn, optim
from graphc.train import Trainer
from tests.train.common import blobs, make


def test_fit_lowers_the_loss_and_reaches_high_accuracy():
    x, y = blobs()
    trainer = make()
    history = trainer.fit(x, y, epochs=8, batch_size=16, validation=blobs(seed=0),
                          progress=False)
    assert history["loss"][-1] < history["loss"][0] / 3
    assert history["accuracy"][-1] > 0.9 and history["val_accuracy"][-1] > 0.9
    scores = trainer.evaluate(x, y)
    assert set(scores) == {"loss", "accuracy"} and scores["accuracy"] > 0.9
    assert trainer.predict(x).shape == (240, 3)


def test_accuracy_counts_argmax_hits():
    trainer = make(dropout=0.0)
    x, y = blobs(n=50)
    trainer.compile(x, y)
    logits = trainer.predict(x)
    expected = (logits.argmax(-1) == y).mean()
    assert trainer.evaluate(x, y, batch_size=7)["accuracy"] == pytest.approx(expected)


def test_schedule_steps_every_epoch():
    x, y = blobs()
    trainer = make(schedule=True, lr=0.1)
    history = trainer.fit(x, y, epochs=3, progress=False)
    assert history["lr"] == pytest.approx([0.1, 0.05, 0.025])
    assert trainer.optimizer.learning_rate == pytest.approx(0.0125)


def test_early_stopping_stops_and_restores_the_best_params():
    x, y = blobs()
    x_val, y_val = blobs(n=60, seed=1)
    y_val = (y_val + 1) % 3  # labels the model cannot learn: validation loss soon rises
    trainer = make()
    history = trainer.fit(x, y, epochs=30, validation=(x_val, y_val), early_stopping=2,
                          progress=False)
    assert history.stopped_early and len(history) < 30
    best = history.best_epoch
    assert history["val_loss"][best - 1] == min(history["val_loss"])
    assert trainer.evaluate(x_val, y_val)["loss"] == pytest.approx(history["val_loss"][best - 1],
                                                                   rel=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_checkpoint_resume_is_bit_exact(tmp_path, backend):
    x, y = blobs()
    path = tmp_path / "run.npz"
    first = make(schedule=True, backend=backend)
    first.fit(x, y, epochs=2, checkpoint_path=path, progress=False)
    first.fit(x, y, epochs=1, progress=False)
    expected = first.state_arrays()

    resumed = make(seed=99, schedule=True, backend=backend)  # other values, overwritten by load
    resumed.load(path)
    assert resumed.epoch == 2
    resumed.fit(x, y, epochs=1, progress=False)
    got = resumed.state_arrays()
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key].tobytes() == expected[key].tobytes(), key


def test_load_refuses_a_checkpoint_of_another_model(tmp_path):
    x, y = blobs()
    trainer = make()
    trainer.fit(x, y, epochs=1, progress=False)
    trainer.save(tmp_path / "c.npz")
    nn.manual_seed(0)
    other_model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3))
    other = Trainer(other_model, optim.SGD(other_model.params(), momentum=0.9), backend="numpy")
    expected = r"model/0.weight is float32\[16, 4\], the model's is float32\[8, 4\]"
    with pytest.raises(checkpoint.CheckpointError, match=expected):
        other.load(tmp_path / "c.npz")


def test_fit_function_and_custom_loss():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)
    model = nn.Linear(3, 1, rng=0)
    history = gc.train.fit(model, optim.SGD(model.params(), lr=0.1), x, y,
                           loss=lambda out, t: gc.mean((out - t) ** 2), epochs=20,
                           batch_size=16, progress=False, backend="numpy")
    assert "accuracy" not in history.epochs[0]
    assert history["loss"][-1] < 1e-3 < history["loss"][0]
    np.testing.assert_allclose(model.weight.value.ravel(), [1, -2, 0.5], atol=0.02)
    assert history.trainer.evaluate(x, y)["loss"] < 1e-3


def test_bad_arguments():
    model = nn.Linear(4, 3)
    opt = optim.SGD(model.params())
    with pytest.raises(ValueError, match="loss"):
        Trainer(model, opt, loss="hinge")
    with pytest.raises(TypeError, match="Module"):
        Trainer(lambda x: x, opt)
    trainer = Trainer(model, opt, backend="numpy")
    x, y = blobs(n=10)
    with pytest.raises(ValueError, match="early_stopping"):
        trainer.fit(x, y, early_stopping=2)
    with pytest.raises(ValueError, match="compiled for"):
        trainer.evaluate(x[:, :3], y)
    with pytest.raises(RuntimeError, match="fit or evaluate first"):
        Trainer(model, opt).predict(x)


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_shows_loss_and_accuracy(monkeypatch):
    monkeypatch.setattr("sys.stderr", Terminal())
    x, y = blobs(n=40)
    make().fit(x, y, epochs=1, batch_size=8, validation=(x, y))
    err = sys.stderr.getvalue()
    assert "epoch 1" in err and "5/5" in err and "\r" in err
    assert "loss=" in err and "accuracy=" in err and "val_accuracy=" in err


def test_off_a_terminal_fit_writes_one_line_per_epoch_and_no_bar(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    x, y = blobs(n=40)
    make().fit(x, y, epochs=2, batch_size=8, validation=(x, y))
    lines = sys.stderr.getvalue().splitlines()
    assert "\r" not in sys.stderr.getvalue() and len(lines) == 2
    for epoch, line in enumerate(lines, 1):
        assert line.startswith(f"epoch {epoch}: loss=") and "val_accuracy=" in line
        assert line.endswith(" s)")


@pytest.mark.parametrize("progress", [True, False])
def test_progress_true_or_false_overrides_the_terminal_check(monkeypatch, progress):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    x, y = blobs(n=40)
    make().fit(x, y, epochs=1, batch_size=8, progress=progress)
    err = sys.stderr.getvalue()
    assert ("\r" in err and "5/5" in err) if progress else err == ""


def test_progress_must_be_a_bool_or_none():
    x, y = blobs(n=40)
    with pytest.raises(TypeError, match="progress must be True, False or None, got 'yes'"):
        make().fit(x, y, progress="yes")


# ----- hostile checkpoints (issue 13, item 13) -------------------------------------------------

def _trained(tmp_path, seed=0):
    """A trainer after one epoch (so its optimizer state is not all zeros), and a valid
    checkpoint of it."""
    x, y = blobs(n=48)
    trainer = make(seed=seed, schedule=True)
    trainer.fit(x, y, epochs=1, progress=False)
    return trainer, trainer.save(tmp_path / f"ok{seed}.npz")


def _forged(tmp_path, valid, **changes):
    """The checkpoint `valid` with arrays replaced (or removed: None)."""
    arrays = checkpoint.load(valid)
    for name, value in changes.items():
        name = name.replace("__", "/")
        if value is None:
            del arrays[name]
        else:
            arrays[name] = value
    return checkpoint.save(tmp_path / "forged.npz", arrays)


BAD_CHECKPOINTS = {
    "no step": ({"trainer__step": None}, r"lacks \['trainer/step'\]"),
    "no epoch": ({"trainer__epoch": None}, r"lacks \['trainer/epoch'\]"),
    "no schedule": ({"schedule__epoch": None}, r"lacks \['schedule/epoch'\]"),
    "step of shape (2,)": ({"trainer__step": np.array([3, 4])},
                           r"trainer/step must be a scalar, got int64\[2\]"),
    "negative step": ({"trainer__step": np.array(-1)},
                      r"trainer/step must be an integer >= 0 .*, got -1"),
    "epoch 2**70": ({"trainer__epoch": np.array(2.0**70)},
                    "trainer/epoch must be an integer, got float64"),
    "epoch 2**64-1": ({"trainer__epoch": np.array(2**64 - 1, np.uint64)},
                      r"trainer/epoch must be .*<= 2\*\*63 - 1, got 18446744073709551615"),
    "bool epoch": ({"trainer__epoch": np.array(True)}, "trainer/epoch must be an integer"),
    "negative schedule epoch": ({"schedule__epoch": np.array(-3)},
                                "schedule/epoch must be .*>= 0"),
    "base_lr a string": ({"schedule__base_lr": np.array("0.1")},
                         "schedule/base_lr must be a real number"),
    "base_lr NaN": ({"schedule__base_lr": np.array(np.nan)}, "schedule/base_lr must be finite"),
    "weight shape": ({"model__0.weight": np.zeros((8, 4), np.float32)},
                     r"model/0.weight is float32\[8, 4\], the model's is float32\[16, 4\]"),
    "no velocity": ({"optimizer__velocity.0": None}, r"lacks \[.optimizer/velocity.0.\]"),
}


@pytest.mark.parametrize("case", sorted(BAD_CHECKPOINTS))
def test_a_failed_load_changes_nothing(tmp_path, case):
    """Everything is validated before anything is applied: params, optimizer state, epoch,
    step counter and schedule are bit for bit what they were."""
    changes, message = BAD_CHECKPOINTS[case]
    _, valid = _trained(tmp_path, seed=0)
    trainer, _ = _trained(tmp_path, seed=1)
    before = trainer.state_arrays()
    forged = _forged(tmp_path, valid, **changes)
    with pytest.raises(checkpoint.CheckpointError, match=message):
        trainer.load(forged)
    after = trainer.state_arrays()
    assert after.keys() == before.keys()
    for name in before:
        assert after[name].dtype == before[name].dtype, name
        assert after[name].tobytes() == before[name].tobytes(), name
    assert trainer.optimizer.learning_rate == before["optimizer/lr"]
    trainer.load(valid)  # and a valid one still loads
    assert trainer.state_arrays()["model/0.weight"].tobytes() == \
        checkpoint.load(valid)["model/0.weight"].tobytes()


def test_load_reads_only_the_keys_the_model_asks_for(tmp_path):
    """An unused member that inflates to 64 MiB (64 KB in the file) is never read."""
    trainer, path = _trained(tmp_path)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (2**24,)})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("unused.npy", header.getvalue() + bytes(2**26), zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    try:
        trainer.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"load held {peak} bytes"


def test_a_load_into_a_read_only_param_changes_nothing(tmp_path):
    """Found while fixing the above: np.copyto into a read-only array fails midway."""
    _, valid = _trained(tmp_path, seed=0)
    trainer, _ = _trained(tmp_path, seed=1)
    before = trainer.state_arrays()
    trainer.optimizer.named_state()["velocity.3"].value.flags.writeable = False
    with pytest.raises(ValueError, match=r"optimizer/velocity.3 .*read-only"):
        trainer.load(valid)
    after = trainer.state_arrays()
    for name in before:
        assert after[name].tobytes() == before[name].tobytes(), name


def test_a_param_declaring_a_huge_shape_is_refused_before_reading(tmp_path):
    """model/0.weight declared float32[2**32] (16 GiB) in a file of a few KB: refused from
    its header, nothing allocated, nothing changed."""
    trainer, valid = _trained(tmp_path)
    before = trainer.state_arrays()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (2**32,)})
    forged = tmp_path / "huge.npz"
    with zipfile.ZipFile(valid) as source, zipfile.ZipFile(forged, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "model/0.weight.npy":
                data = header.getvalue() + bytes(64)
            target.writestr(info.filename, data)
    tracemalloc.start()
    try:
        with pytest.raises(checkpoint.CheckpointError,
                           match=r"model/0.weight is float32\[4294967296\], the model's is "
                                 r"float32\[16, 4\]"):
            trainer.load(forged)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    after = trainer.state_arrays()
    assert all(after[name].tobytes() == before[name].tobytes() for name in before)


def test_fit_compiles_the_other_batch_sizes_ahead(monkeypatch):
    """After the first batch, the last smaller batch (250 = 3 x 64 + 58) and the validation
    batches (600 = 512 + 88) are compiled ahead, once (tests/test_compile_ahead.py: the
    calls then run the same bits)."""
    from graphc.compiler import Executable

    asked: list[tuple[str, int]] = []
    real = Executable.compile_ahead

    def record(self, *arguments):
        asked.append((self.name, len(arguments[0])))
        return real(self, *arguments)

    monkeypatch.setattr(Executable, "compile_ahead", record)
    trainer = make()
    trainer.fit(*blobs(n=250), epochs=2, batch_size=64, validation=blobs(n=600, seed=1),
                progress=False)
    assert sorted(asked) == [("evaluate", 88), ("evaluate", 512), ("train_step", 58)]


def test_validation_data_of_other_shapes_gets_the_trainers_message():
    """Validation data unlike the training data is refused by evaluate with the Trainer's
    message, not by the compile ahead of it with a compiled function's."""
    x, y = blobs()
    with pytest.raises(ValueError, match="Trainer: compiled for x"):
        make().fit(x, y, epochs=1, batch_size=64, validation=(x[:, :3], y), progress=False)
