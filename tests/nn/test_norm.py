"""Normalization layers against torch.nn: the same state_dict names, order and shapes, a
torch state_dict loads, and outputs and gradients (input and every param) agree in
training and evaluation mode; BatchNorm's running statistics are updated inside the
compiled step as PyTorch's forward updates them (both backends, with an optimizer's
updates, through the Trainer), never trained, and left alone in evaluation."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc import nn

torch = pytest.importorskip("torch", reason="torch (the test extra) is the oracle")
T = torch.nn
F64 = "float64"


def normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def torch_state(tlayer) -> dict:
    return {k: v.detach().numpy().copy() for k, v in tlayer.state_dict().items()}


def warmed(tlayer, x):
    """A torch layer (float64) with random affine params and running statistics moved
    away from their start by two training batches."""
    tlayer = tlayer.double()
    with torch.no_grad():
        for p in tlayer.parameters():
            p.copy_(torch.tensor(normal(*p.shape, seed=p.numel())))
        tlayer.train()
        for k in range(2):
            tlayer(torch.tensor(x * (1.5 + k) + k))
    return tlayer


def loaded(tlayer, glayer):
    state = torch_state(tlayer)
    assert list(glayer.state_dict()) == list(state)
    for name, value in glayer.state_dict().items():
        assert value.shape == state[name].shape and value.dtype == state[name].dtype, name
    glayer.load_state_dict(state)
    return glayer


def check_against_torch(tlayer, glayer, x, train: bool):
    """Outputs and gradients (input, params) of sum(out * w), and the buffers after the
    step, against torch's forward and backward in the same mode."""
    loaded(tlayer, glayer)
    tlayer.train(train)
    glayer.train(train)
    inp = gc.input("x", x.shape, F64)
    out = glayer(inp)
    w = normal(*x.shape, seed=9)
    params = glayer.named_params()
    grads = gc.grad(gc.sum(out * w), [inp, *params.values()])
    got = gc.compile([inp], [out, *grads], backend="numpy")(x)

    tx = torch.tensor(x, requires_grad=True)
    tout = tlayer(tx)
    (tout * torch.tensor(w)).sum().backward()
    tparams = dict(tlayer.named_parameters())
    assert list(tparams) == list(params)
    expected = [tout.detach().numpy(), tx.grad.numpy()] + [tparams[n].grad.numpy()
                                                           for n in params]
    for k, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11, err_msg=f"result {k}")
    for name, value in torch_state(tlayer).items():  # buffers updated (or not) alike
        np.testing.assert_allclose(glayer.state_dict()[name], value, rtol=1e-12,
                                   err_msg=name)


LAYERS = {
    "BatchNorm1d (N, C)": (lambda: T.BatchNorm1d(3), lambda: nn.BatchNorm1d(3, dtype=F64),
                           normal(5, 3)),
    "BatchNorm1d (N, C, L)": (lambda: T.BatchNorm1d(3, momentum=0.3),
                              lambda: nn.BatchNorm1d(3, momentum=0.3, dtype=F64),
                              normal(4, 3, 5)),
    "BatchNorm2d": (lambda: T.BatchNorm2d(2), lambda: nn.BatchNorm2d(2, dtype=F64),
                    normal(3, 2, 4, 3)),
    "BatchNorm2d cumulative": (lambda: T.BatchNorm2d(2, momentum=None, affine=False),
                               lambda: nn.BatchNorm2d(2, momentum=None, affine=False,
                                                      dtype=F64), normal(3, 2, 2, 2)),
    "BatchNorm1d untracked": (lambda: T.BatchNorm1d(3, track_running_stats=False),
                              lambda: nn.BatchNorm1d(3, track_running_stats=False, dtype=F64),
                              normal(4, 3)),
    "GroupNorm": (lambda: T.GroupNorm(2, 4), lambda: nn.GroupNorm(2, 4, dtype=F64),
                  normal(3, 4, 2, 3)),
    "InstanceNorm1d": (lambda: T.InstanceNorm1d(3), lambda: nn.InstanceNorm1d(3, dtype=F64),
                       normal(2, 3, 6)),
    "InstanceNorm2d affine tracked": (
        lambda: T.InstanceNorm2d(2, affine=True, track_running_stats=True),
        lambda: nn.InstanceNorm2d(2, affine=True, track_running_stats=True, dtype=F64),
        normal(3, 2, 3, 3)),
    "InstanceNorm2d unbatched": (lambda: T.InstanceNorm2d(2, affine=True),
                                 lambda: nn.InstanceNorm2d(2, affine=True, dtype=F64),
                                 normal(2, 3, 4)),
    "LayerNorm over two axes": (lambda: T.LayerNorm((3, 4)),
                                lambda: nn.LayerNorm((3, 4), dtype=F64), normal(2, 3, 4)),
    "LayerNorm without bias": (lambda: T.LayerNorm(4, bias=False),
                               lambda: nn.LayerNorm(4, bias=False, dtype=F64), normal(3, 4)),
    "RMSNorm": (lambda: T.RMSNorm((2, 3)), lambda: nn.RMSNorm((2, 3), dtype=F64),
                normal(4, 2, 3)),
    "RMSNorm eps": (lambda: T.RMSNorm(3, eps=1e-3), lambda: nn.RMSNorm(3, eps=1e-3, dtype=F64),
                    normal(4, 3)),
}


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_matches_torch(name, train):
    make_torch, make_graphc, x = LAYERS[name]
    check_against_torch(warmed(make_torch(), x), make_graphc(), x, train)


def test_buffers_are_saved_but_not_trained():
    layer = nn.BatchNorm2d(3)
    assert list(layer.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                        "num_batches_tracked"]
    assert [n for n, _ in layer.named_buffers()] == ["running_mean", "running_var",
                                                     "num_batches_tracked"]
    assert list(layer.named_params()) == ["weight", "bias"]
    assert layer.state_dict()["num_batches_tracked"].dtype == np.int64
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU())
    assert [n for n, _ in model.named_buffers()] == ["1.running_mean", "1.running_var",
                                                     "1.num_batches_tracked"]
    assert len(gc.optim.SGD(model.params(), lr=0.1).params) == 4  # conv w, b; bn w, b


def _torch_steps(tmodel, batches, lr):
    opt = torch.optim.SGD(tmodel.parameters(), lr=lr, momentum=0.9)
    for xb, wb in batches:
        opt.zero_grad()
        (tmodel(torch.tensor(xb)) * torch.tensor(wb)).sum().backward()
        opt.step()


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum", "cumulative"])
def test_training_steps_update_running_stats_like_torch(backend, momentum):
    """Three SGD steps through Conv2d -> BatchNorm2d -> ReLU compiled as one function (the
    optimizer's updates given, the running statistics' found on the graph): params and
    buffers as torch's after three steps."""
    tmodel = T.Sequential(T.Conv2d(2, 3, 3, padding=1), T.BatchNorm2d(3, momentum=momentum),
                          T.ReLU()).double()
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, dtype=F64),
                          nn.BatchNorm2d(3, momentum=momentum, dtype=F64), nn.ReLU())
    loaded(tmodel, model)
    batches = [(normal(4, 2, 5, 5, seed=s), normal(4, 3, 5, 5, seed=s + 10)) for s in range(3)]
    _torch_steps(tmodel, batches, lr=0.05)

    x, w = gc.input("x", ("N", 2, 5, 5), F64), gc.input("w", ("N", 3, 5, 5), F64)
    loss = gc.sum(model(x) * w)
    opt = gc.optim.SGD(model.params(), lr=0.05, momentum=0.9)
    step = gc.compile([x, w], loss, updates=opt.updates(loss), backend=backend)
    assert {p.name for p, _ in step.source.updates} >= {b.name for b in model.buffers()}
    for xb, wb in batches:
        step(xb, wb)
    for name, value in torch_state(tmodel).items():
        np.testing.assert_allclose(model.state_dict()[name], value, rtol=1e-9, atol=1e-12,
                                   err_msg=name)


def test_evaluation_leaves_running_stats_alone_and_own_updates_win():
    layer = nn.BatchNorm1d(2, dtype=F64)
    x = gc.input("x", (4, 2), F64)
    before = layer.state_dict()
    evaluate = gc.compile([x], layer(x, training=False))
    evaluate(normal(4, 2))
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    frozen = gc.compile([x], layer(x, training=True),
                        updates={layer.running_mean: layer.running_mean * 1.0})
    frozen(normal(4, 2) + 3.0)
    np.testing.assert_array_equal(layer.running_mean.value, before["running_mean"])
    assert layer.running_var.value[0] != 1.0 and layer.num_batches_tracked.value == 1


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_a_layer_applied_twice_in_one_step_updates_twice_in_order(backend):
    """A siamese use: PyTorch's two forward calls update the statistics one after the
    other; the compiled step chains the two updates the same way."""
    tlayer = T.BatchNorm1d(3).double()
    layer = nn.BatchNorm1d(3, dtype=F64)
    a, b = normal(5, 3, seed=1), normal(6, 3, seed=2) * 2 + 1
    tlayer(torch.tensor(a)), tlayer(torch.tensor(b))
    xa, xb = gc.input("a", (5, 3), F64), gc.input("b", (6, 3), F64)
    step = gc.compile([xa, xb], gc.sum(layer(xa)) + gc.sum(layer(xb)), backend=backend)
    step(a, b)
    for name, value in torch_state(tlayer).items():
        np.testing.assert_allclose(layer.state_dict()[name], value, rtol=1e-12, err_msg=name)


def test_gradients_alone_still_update_the_statistics():
    layer = nn.BatchNorm1d(2, dtype=F64)
    x = gc.input("x", (3, 2), F64)
    (g,) = gc.grad(gc.sum(layer(x) * gc.constant(normal(3, 2))), [layer.weight])
    gc.compile([x], g)(normal(3, 2) + 5.0)
    assert layer.num_batches_tracked.value == 1 and layer.running_mean.value[0] > 0.4


def test_trainer_fit_updates_the_running_stats_and_evaluates_with_them():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 3.0).astype(np.int64)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    trainer = gc.train.Trainer(model, gc.optim.SGD(model.params(), lr=0.1), loss="cross_entropy")
    trainer.fit(x, y, epochs=2, batch_size=16, progress=False)
    bn = model[1]
    assert int(bn.num_batches_tracked.value) == 8
    assert np.all(np.isfinite(bn.running_var.value)) and not np.allclose(bn.running_var.value, 1)
    batch_out = gc.compile([gc.input("x", (64, 4))], model(gc.input("x", (64, 4)),
                                                           training=False))
    assert np.all(np.isfinite(batch_out(x)))


def test_bad_inputs_are_refused():
    with pytest.raises(gc.GraphError, match=r"BatchNorm2d: expected input \(N, C, H, W\)"):
        nn.BatchNorm2d(3)(gc.input("x", (2, 3, 4)))
    with pytest.raises(gc.GraphError, match=r"BatchNorm1d: .* C = 3, got \(2, 4\)"):
        nn.BatchNorm1d(3)(gc.input("x", (2, 4)))
    with pytest.raises(ValueError, match="GroupNorm: num_channels 5 is not divisible"):
        nn.GroupNorm(2, 5)
    with pytest.raises(gc.GraphError, match="batch_norm: expected more than 1 value"):
        nn.BatchNorm1d(3)(gc.input("x", (1, 3)), training=True)
    with pytest.raises(ValueError, match="momentum must be in"):
        nn.BatchNorm1d(3, momentum=2.0)
    with pytest.raises(gc.GraphError, match="layer_norm: normalized_shape"):
        nn.LayerNorm((3, 4))(gc.input("x", (2, 4, 3)))
