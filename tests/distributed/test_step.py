"""DataParallel in one process (a world of size 1): the split step computes what the
single compiled step computes, its gradients land in the buckets, and the API refuses
what it cannot use."""

import numpy as np
import pytest

import graphc as gc
from graphc import nn
from graphc.checkpoint import CheckpointError
from graphc.distributed import World

RNG = np.random.default_rng(1)
X = RNG.standard_normal((24, 6)).astype(np.float32)
Y = RNG.integers(0, 4, 24).astype(np.int32)


def model_and_loss():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 4))
    x, y = gc.input("x", ("N", 6)), gc.input("y", ("N",), "int32")
    return model, x, y, gc.softmax_cross_entropy(model(x, training=True), y)


def optimizer(kind, params):
    return (gc.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3) if kind == "sgd"
            else gc.optim.Adam(params, lr=1e-2))


def builder(kind, **options):
    def build():
        model, x, y, loss = model_and_loss()
        return gc.distributed.TrainingStep([x, y], loss, optimizer(kind, model.params()),
                                           model=model, **options)
    return build


@pytest.mark.parametrize("backend", ["llvm", "numpy"])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_the_split_step_computes_the_whole_step(kind, backend):
    ddp = gc.distributed.DataParallel(builder(kind), World(), backend=backend, threads=1)
    model, x, y, loss = model_and_loss()
    options = {"threads": 1} if backend == "llvm" else {}
    whole = gc.compile([x, y], [loss], updates=optimizer(kind, model.params()).updates(loss),
                       backend=backend, **options)
    for start in range(0, 24, 8):
        got = ddp.step(X[start:start + 8], Y[start:start + 8])
        (expected,) = whole(X[start:start + 8], Y[start:start + 8])
        np.testing.assert_allclose(got["loss"], expected, rtol=1e-6)
    mine = ddp.split.spec.model.state_dict()
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(mine[key], value, rtol=1e-6, atol=1e-7, err_msg=key)
    assert ddp.split.steps == 3 and ddp.timings.steps == 3
    assert all(v > 0 for v in ddp.timings.per_step().values())


def test_data_parallel_functions_are_never_tiered(monkeypatch):
    """GRAPHC_TIERED would let each rank interpret a different number of early updates, so
    the ranks' params would part in their last bits: the split step compiles untiered."""
    monkeypatch.setenv("GRAPHC_TIERED", "1")
    ddp = gc.distributed.DataParallel(builder("sgd"), World(), threads=1)
    for function in (ddp.split.gradient_fn, ddp.split.update_fn):
        assert type(function._runner).__name__ != "TieredRunner"


def test_the_buckets_hold_the_gradients_of_the_last_step():
    ddp = gc.distributed.DataParallel(builder("sgd"), World(), threads=1)
    spec = ddp.split.spec
    before = {p: p.value.copy() for p in spec.optimizer.params}
    ddp.step(X, Y)
    grads = gc.grad(spec.loss, spec.optimizer.params)
    saved = {p: p.value.copy() for p in spec.optimizer.params}
    for p, value in before.items():
        p.value = value
    expected = gc.compile([spec.inputs[0], spec.inputs[1]], grads, backend="numpy")(X, Y)
    for p, value in saved.items():
        p.value = value
    slots = {s.param: s.grad.value for b in ddp.buckets for s in b.slots}
    for p, g in zip(spec.optimizer.params, expected):
        np.testing.assert_allclose(slots[p], g, rtol=1e-5, atol=1e-7)
    assert ddp.split.gradient_bytes >= sum(p.value.nbytes for p in spec.optimizer.params)


def test_totals_and_a_summed_loss():
    def build():
        model, x, y, _ = model_and_loss()
        logits = model(x, training=True)
        loss = gc.sum(gc.log_softmax(logits) * gc.one_hot(y, 4)) * -1.0
        hits = gc.sum(gc.cast(gc.equal(gc.argmax(logits, -1), gc.cast(y, "int64")), "float32"))
        return gc.distributed.TrainingStep([x, y], loss, gc.optim.SGD(model.params(), lr=0.01),
                                           totals={"correct": hits}, reduction="sum")
    ddp = gc.distributed.DataParallel(build, World())
    result = ddp.step(X, Y)
    assert set(result) == {"loss", "correct"}
    assert 0 <= result["correct"] <= 24 and result["correct"] == int(result["correct"])
    assert result["loss"] > 24 * 0.5  # a sum over the batch, not a mean


def test_an_empty_global_batch_is_refused():
    ddp = gc.distributed.DataParallel(builder("sgd"), World())
    with pytest.raises(ValueError, match="global batch is empty"):
        ddp.step(X[:0], Y[:0])


def test_arguments_are_checked_like_a_compiled_function():
    ddp = gc.distributed.DataParallel(builder("sgd"), World())
    with pytest.raises(ValueError, match="input 'x'"):
        ddp.step(X[:, :5], Y)


def test_checkpoints_round_trip_and_a_foreign_one_changes_nothing(tmp_path):
    ddp = gc.distributed.DataParallel(builder("adam"), World())
    ddp.step(X, Y)
    ddp.epoch = 4
    path = ddp.save(tmp_path / "state.npz")
    saved = ddp.state_arrays()
    ddp.step(X, Y)
    ddp.load(path)
    after = ddp.state_arrays()
    assert ddp.epoch == 4 and ddp.split.steps == 1
    for key, value in saved.items():
        np.testing.assert_array_equal(after[key], value, err_msg=key)
    other = gc.distributed.DataParallel(builder("sgd"), World())
    before = other.state_arrays()
    with pytest.raises(CheckpointError):
        other.load(path)
    for key, value in other.state_arrays().items():
        np.testing.assert_array_equal(value, before[key])
    with pytest.raises(FileNotFoundError):
        ddp.load(tmp_path / "missing.npz")


def test_a_trainer_alone_fits_as_without_data_parallel():
    results = []
    for parallel in (False, True):
        model, *_ = model_and_loss()
        trainer = gc.train.Trainer(model, optimizer("adam", model.params()))
        if parallel:
            ddp = gc.distributed.DataParallel(trainer, World())
            with pytest.raises(RuntimeError, match="first fit"):
                ddp.step(X, Y)
            history = ddp.fit(X, Y, epochs=2, batch_size=8, validation=(X, Y), progress=False)
            assert ddp.evaluate(X, Y) == trainer.evaluate(X, Y)
        else:
            history = trainer.fit(X, Y, epochs=2, batch_size=8, validation=(X, Y),
                                  progress=False)
        results.append((history, model.state_dict(), trainer.predict(X)))
    (h0, p0, y0), (h1, p1, y1) = results
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(h1[key], h0[key], rtol=1e-5)
    for key, value in p0.items():
        np.testing.assert_allclose(p1[key], value, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y1, y0, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("source, error, match", [
    (42, TypeError, "step builder"),
    (lambda: "not a step", TypeError, "step builder"),
])
def test_bad_sources_are_refused(source, error, match):
    with pytest.raises(error, match=match):
        gc.distributed.DataParallel(source, World())


def test_bad_steps_and_options_are_refused():
    model, x, y, loss = model_and_loss()
    opt = gc.optim.SGD(model.params(), lr=0.1)
    step = gc.distributed.TrainingStep
    cases = [
        (step([x, y], gc.mean(model(x), axis=0), opt), ValueError, "loss must be a scalar"),
        (step([x, y], loss, "sgd"), TypeError, "optimizer"),
        (step(x, loss, opt), TypeError, "inputs"),
        (step([x, y], loss, opt, reduction="max"), ValueError, "reduction"),
        (step([x, y], loss, opt, totals={"t": model(x)}), ValueError, "totals"),
        (step([gc.input("s", ())], loss, opt), ValueError, "batch"),
    ]
    for spec, error, match in cases:
        with pytest.raises(error, match=match):
            gc.distributed.DataParallel(spec, World())
    with pytest.raises(ValueError, match="bucket_mb"):
        gc.distributed.DataParallel(step([x, y], loss, opt), World(), bucket_mb=0)
    ddp = gc.distributed.DataParallel(step([x, y], loss, opt), World())
    with pytest.raises(TypeError, match="only for a DataParallel of a Trainer"):
        ddp.fit(X, Y)
