"""The target forms each Trainer loss takes, their accuracy, and errors naming the loss."""

import numpy as np
import pytest

import graphc as gc
from graphc import nn, optim
from graphc.errors import GraphError
from graphc.train import Trainer
from tests.train.common import blobs, make


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_one_hot_targets_train_and_count_accuracy_per_row(backend):
    x, labels = blobs()
    onehot = np.eye(3, dtype=np.float32)[labels]
    trainer = make(backend=backend, dropout=0.0)
    history = trainer.fit(x, onehot, epochs=6, batch_size=16, progress=False)
    assert history["accuracy"][-1] > 0.9
    logits = trainer.predict(x)
    scores = trainer.evaluate(x, onehot, batch_size=7)
    assert scores["accuracy"] == pytest.approx((logits.argmax(-1) == labels).mean())
    expected = -(onehot * _log_softmax(logits.astype(np.float64))).sum(-1).mean()
    assert scores["loss"] == pytest.approx(expected, rel=1e-4, abs=1e-7)


def test_probability_targets_give_the_soft_cross_entropy():
    x, labels = blobs(n=40)
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=40).astype(np.float32)
    trainer = make(dropout=0.0)
    trainer.compile(x, probs)
    logits = trainer.predict(x).astype(np.float64)
    scores = trainer.evaluate(x, probs)
    assert scores["loss"] == pytest.approx(-(probs * _log_softmax(logits)).sum(-1).mean(),
                                           rel=1e-5)
    assert scores["accuracy"] == pytest.approx((logits.argmax(-1) == probs.argmax(-1)).mean())


def test_int_one_hot_rows_are_cast_to_the_output_dtype():
    x, labels = blobs(n=40)
    as_int = np.eye(3, dtype=np.int32)[labels]
    as_float = as_int.astype(np.float32)
    a, b = make(dropout=0.0), make(dropout=0.0)
    assert a.evaluate(x, as_int) == b.evaluate(x, as_float)


def test_sequence_labels_against_per_token_logits():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5, 4)).astype(np.float32)
    y = rng.integers(0, 3, (12, 5)).astype(np.int64)
    model = nn.Linear(4, 3, rng=0)
    trainer = Trainer(model, optim.SGD(model.params()), backend="numpy")
    scores = trainer.evaluate(x, y)
    logits = trainer.predict(x)
    assert scores["accuracy"] == pytest.approx((logits.argmax(-1) == y).mean())


def _regressor(out=1):
    nn.manual_seed(0)
    model = nn.Linear(4, out, rng=0)
    return model, optim.SGD(model.params(), lr=0.01)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_])
def test_mse_casts_integer_and_bool_targets(dtype):
    x, labels = blobs(n=30)
    y = (labels[:, None] % 2).astype(dtype)
    model, opt = _regressor()
    trainer = Trainer(model, opt, loss="mse", backend="numpy")
    loss = trainer.evaluate(x, y)["loss"]
    assert loss == pytest.approx(((trainer.predict(x) - y.astype(np.float64)) ** 2).mean(),
                                 rel=1e-5)


def test_mse_labels_for_a_single_output_say_to_add_the_axis():
    x, labels = blobs(n=30)
    model, opt = _regressor()
    with pytest.raises(GraphError, match=r"loss 'mse' takes targets of the output's shape "
                                         r"\(N, 1\); got targets \(N,\) int32 .*add the axis: "
                                         r"y\[:, None\]"):
        Trainer(model, opt, loss="mse", backend="numpy").fit(x, labels, progress=False)


def test_mse_class_labels_suggest_cross_entropy_or_one_hot():
    x, labels = blobs(n=30)
    model, opt = _regressor(out=3)
    with pytest.raises(GraphError, match=r"loss 'mse' .*these look like class labels: use "
                                         r"loss='cross_entropy', or one-hot encode them "
                                         r"\(np.eye\(3, dtype=np.float32\)\[y\]\)"):
        Trainer(model, opt, loss="mse", backend="numpy").fit(x, labels, progress=False)


def test_cross_entropy_refuses_float_labels_saying_to_cast():
    x, labels = blobs(n=30)
    with pytest.raises(GraphError, match=r"loss 'cross_entropy' takes integer class labels of "
                                         r"shape \(N,\) or class probabilities .*cast the labels "
                                         r"to an integer dtype"):
        make().fit(x, labels.astype(np.float32), progress=False)


def test_cross_entropy_refuses_targets_of_another_shape():
    x, labels = blobs(n=30)
    with pytest.raises(GraphError, match=r"loss 'cross_entropy' .*got targets \(N, 2\) float32 "
                                         r"for the output \(N, 3\) float32"):
        make().fit(x, np.zeros((30, 2), np.float32), progress=False)


def test_binary_cross_entropy_accuracy_thresholds_logits_and_targets():
    x, labels = blobs(n=50)
    y = (labels == 1).astype(np.float32)[:, None]
    model, opt = _regressor()
    trainer = Trainer(model, opt, loss="binary_cross_entropy", accuracy=True, backend="numpy")
    scores = trainer.evaluate(x, y)
    assert scores["accuracy"] == pytest.approx(((trainer.predict(x) > 0) == (y > 0.5)).mean())


def test_accuracy_on_a_regression_output_is_refused_saying_how_to_turn_it_off():
    x, labels = blobs(n=30)
    model, opt = _regressor()
    trainer = Trainer(model, opt, loss="mse", accuracy=True, backend="numpy")
    with pytest.raises(GraphError, match=r"accuracy compares .*\(pass accuracy=False\)"):
        trainer.evaluate(x, labels[:, None].astype(np.float32))


def test_a_failing_custom_loss_is_named():
    x, labels = blobs(n=30)

    def hinge(out, target):
        return gc.mean(gc.maximum(1.0 - out * target, 0.0))

    model, opt = _regressor(out=3)
    trainer = Trainer(model, opt, loss=hinge, backend="numpy")
    with pytest.raises(GraphError, match=r"the loss function hinge\(output, target\) failed "
                                         r"for the output \(N, 3\) float32 and the targets "
                                         r"\(N, 2\) float32: "):
        trainer.evaluate(x, np.zeros((30, 2), np.float32))


def test_a_custom_loss_must_give_a_scalar():
    x, _ = blobs(n=30)

    def per_row(out, target):
        return gc.sum((out - target) ** 2, axis=-1)

    model, opt = _regressor(out=3)
    with pytest.raises(GraphError, match=r"per_row\(output, target\) must return a scalar "
                                         r"graph value, got \(N,\) float32"):
        Trainer(model, opt, loss=per_row, backend="numpy").evaluate(x, x[:, :3])
