"""Every layer against torch.nn (the oracle of PyTorch compatibility): the same
architecture has the same state_dict names, order and shapes, a torch state_dict converted
to NumPy loads with `load_state_dict`, and then the outputs and the gradients (of the input
and of every param, by name) agree. In float64, on the NumPy backend (the ops the layers
compose are checked on LLVM by the op table)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import graphc as gc
from graphc import nn

torch = pytest.importorskip("torch", reason="torch (the test extra) is the oracle")
T = torch.nn
F64 = "float64"


def load_from_torch(tlayer, glayer) -> None:
    state = {k: v.detach().numpy() for k, v in tlayer.state_dict().items()}
    assert list(glayer.state_dict()) == list(state)
    for name, value in glayer.state_dict().items():
        assert value.shape == state[name].shape, name
    glayer.load_state_dict(state)


def compare(tlayer, glayer, x, *, train: bool = True, extra=(), rtol=1e-10):
    """Load tlayer's state into glayer, then compare outputs (each output of a tuple) and
    the gradients of sum(out * w) w.r.t. the input and every param."""
    tlayer = tlayer.double()
    load_from_torch(tlayer, glayer)
    tlayer.train(train)
    glayer.train(train)
    inp = gc.input("x", x.shape, x.dtype)
    out = glayer(inp, *extra)
    outs = _flat(out)
    rng = np.random.default_rng(1)
    weights = [rng.normal(size=tuple(o.shape)) for o in outs]
    loss = sum(gc.sum(o * w) for o, w in zip(outs, weights))
    params = glayer.named_params()
    wrt = ([inp] if x.dtype.kind == "f" else []) + list(params.values())
    grads = gc.grad(loss, wrt) if wrt else []
    got = gc.compile([inp], outs + grads, backend="numpy")(x)

    tx = torch.tensor(x, requires_grad=x.dtype.kind == "f")
    touts = _flat(tlayer(tx, *extra))
    tloss = sum((o * torch.tensor(w)).sum() for o, w in zip(touts, weights))
    tparams = dict(tlayer.named_parameters())
    assert list(tparams) == list(params)
    tloss.backward()
    expected = [o.detach().numpy() for o in touts]
    if x.dtype.kind == "f":
        expected.append(tx.grad.numpy())
    expected += [tparams[name].grad.numpy() for name in params]
    assert len(got) == len(expected)
    for k, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12, err_msg=f"result {k}")


def _flat(out) -> list:
    if isinstance(out, (tuple, list)):
        return [leaf for item in out for leaf in _flat(item)]
    return [out]


def normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


LAYERS = {
    # name: (torch layer, graphc layer, input)
    "Linear": (lambda: T.Linear(5, 3), lambda: nn.Linear(5, 3, dtype=F64), normal(4, 5)),
    "Linear no bias, 3-D": (lambda: T.Linear(5, 3, bias=False),
                            lambda: nn.Linear(5, 3, bias=False, dtype=F64), normal(2, 4, 5)),
    "Conv1d": (lambda: T.Conv1d(3, 4, 3, stride=2, padding=1),
               lambda: nn.Conv1d(3, 4, 3, stride=2, padding=1, dtype=F64), normal(2, 3, 9)),
    "Conv1d groups dilation": (lambda: T.Conv1d(4, 6, 3, dilation=2, groups=2),
                               lambda: nn.Conv1d(4, 6, 3, dilation=2, groups=2, dtype=F64),
                               normal(2, 4, 11)),
    "Conv2d": (lambda: T.Conv2d(3, 4, 3, padding=1),
               lambda: nn.Conv2d(3, 4, 3, padding=1, dtype=F64), normal(2, 3, 6, 5)),
    "Conv2d groups dilation stride": (
        lambda: T.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2),
                         groups=2),
        lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2),
                          groups=2, dtype=F64), normal(2, 4, 7, 8)),
    "Conv2d same, even kernel": (lambda: T.Conv2d(3, 4, 4, padding="same"),
                                 lambda: nn.Conv2d(3, 4, 4, padding="same", dtype=F64),
                                 normal(2, 3, 6, 5)),
    "Conv2d reflect": (lambda: T.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"),
                       lambda: nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect",
                                         dtype=F64), normal(2, 3, 6, 5)),
    "ConvTranspose1d": (lambda: T.ConvTranspose1d(4, 3, 3, stride=2, padding=1,
                                                  output_padding=1),
                        lambda: nn.ConvTranspose1d(4, 3, 3, stride=2, padding=1,
                                                   output_padding=1, dtype=F64),
                        normal(2, 4, 5)),
    "ConvTranspose2d": (lambda: T.ConvTranspose2d(4, 3, 3, stride=2, padding=1,
                                                  output_padding=1),
                        lambda: nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1,
                                                   output_padding=1, dtype=F64),
                        normal(2, 4, 4, 5)),
    "ConvTranspose2d groups": (lambda: T.ConvTranspose2d(4, 6, 2, stride=2, groups=2),
                               lambda: nn.ConvTranspose2d(4, 6, 2, stride=2, groups=2,
                                                          dtype=F64), normal(2, 4, 3, 3)),
    "MaxPool2d": (lambda: T.MaxPool2d(2), lambda: nn.MaxPool2d(2), normal(2, 3, 6, 4)),
    "MaxPool2d dilation ceil_mode": (
        lambda: T.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True),
        lambda: nn.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True),
        normal(2, 3, 9, 8)),
    "MaxPool1d": (lambda: T.MaxPool1d(3, stride=2, padding=1),
                  lambda: nn.MaxPool1d(3, stride=2, padding=1), normal(2, 3, 9)),
    "AvgPool1d": (lambda: T.AvgPool1d(3, stride=2, padding=1, count_include_pad=False),
                  lambda: nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False),
                  normal(2, 3, 9)),
    "AvgPool2d ceil_mode divisor": (
        lambda: T.AvgPool2d(3, stride=2, ceil_mode=True, divisor_override=4),
        lambda: nn.AvgPool2d(3, stride=2, ceil_mode=True, divisor_override=4),
        normal(2, 3, 8, 7)),
    "AvgPool2d": (lambda: T.AvgPool2d(3, stride=2, padding=1),
                  lambda: nn.AvgPool2d(3, stride=2, padding=1), normal(2, 3, 7, 6)),
    "AdaptiveAvgPool2d": (lambda: T.AdaptiveAvgPool2d((2, 3)),
                          lambda: nn.AdaptiveAvgPool2d((2, 3)), normal(2, 3, 7, 5)),
    "AdaptiveAvgPool2d global": (lambda: T.AdaptiveAvgPool2d(1),
                                 lambda: nn.AdaptiveAvgPool2d(1), normal(2, 3, 4, 4)),
    "AdaptiveMaxPool2d": (lambda: T.AdaptiveMaxPool2d(3), lambda: nn.AdaptiveMaxPool2d(3),
                          normal(2, 3, 7, 8)),
    "Upsample nearest": (lambda: T.Upsample(scale_factor=2),
                         lambda: nn.Upsample(scale_factor=2), normal(2, 3, 3, 4)),
    "Upsample bilinear": (lambda: T.Upsample(size=(5, 7), mode="bilinear",
                                             align_corners=False),
                          lambda: nn.Upsample(size=(5, 7), mode="bilinear",
                                              align_corners=False), normal(2, 3, 3, 4)),
    "Identity": (lambda: T.Identity(3, x=1), lambda: nn.Identity(3, x=1), normal(3, 4)),
    "Flatten": (lambda: T.Flatten(), lambda: nn.Flatten(), normal(2, 3, 4, 2)),
    "Flatten 1-2": (lambda: T.Flatten(1, 2), lambda: nn.Flatten(1, 2), normal(2, 3, 4, 2)),
    "Unflatten": (lambda: T.Unflatten(1, (2, -1)), lambda: nn.Unflatten(1, (2, -1)),
                  normal(3, 12)),
    "Embedding": (lambda: T.Embedding(10, 4), lambda: nn.Embedding(10, 4, dtype=F64),
                  np.array([[1, 9, 3], [0, 0, 7]])),
    "Embedding padding_idx": (lambda: T.Embedding(10, 4, padding_idx=0),
                              lambda: nn.Embedding(10, 4, padding_idx=0, dtype=F64),
                              np.array([[1, 9, 0], [0, 0, 7]])),
}
ACTIVATIONS = {
    "ReLU": (T.ReLU, nn.ReLU, {}), "Sigmoid": (T.Sigmoid, nn.Sigmoid, {}),
    "Tanh": (T.Tanh, nn.Tanh, {}), "GELU": (T.GELU, nn.GELU, {}),
    "GELU tanh": (T.GELU, nn.GELU, {"approximate": "tanh"}),
    "LeakyReLU": (T.LeakyReLU, nn.LeakyReLU, {"negative_slope": 0.2}),
    "ELU": (T.ELU, nn.ELU, {"alpha": 0.5}), "SELU": (T.SELU, nn.SELU, {}),
    "SiLU": (T.SiLU, nn.SiLU, {}), "Mish": (T.Mish, nn.Mish, {}),
    "Hardswish": (T.Hardswish, nn.Hardswish, {}),
    "Softplus": (T.Softplus, nn.Softplus, {"beta": 2.0, "threshold": 1.5}),
    "CELU": (T.CELU, nn.CELU, {"alpha": 0.7}), "ReLU6": (T.ReLU6, nn.ReLU6, {}),
    "Hardsigmoid": (T.Hardsigmoid, nn.Hardsigmoid, {}),
    "Hardtanh": (T.Hardtanh, nn.Hardtanh, {"min_val": -0.5, "max_val": 2.0}),
    "LogSigmoid": (T.LogSigmoid, nn.LogSigmoid, {}), "Softsign": (T.Softsign, nn.Softsign, {}),
    "Softmax": (T.Softmax, nn.Softmax, {"dim": 1}),
    "LogSoftmax": (T.LogSoftmax, nn.LogSoftmax, {"dim": -1}),
}
for _name, (_t, _g, _kw) in ACTIVATIONS.items():
    LAYERS[_name] = ((lambda t=_t, kw=_kw: t(**kw)), (lambda g=_g, kw=_kw: g(**kw)),
                     normal(2, 3, 4) * 2)
LAYERS["PReLU"] = (lambda: T.PReLU(), lambda: nn.PReLU(dtype=F64), normal(2, 3, 4))
LAYERS["PReLU per channel"] = (lambda: T.PReLU(3, init=0.1),
                               lambda: nn.PReLU(3, init=0.1, dtype=F64), normal(2, 3, 4))


# PyTorch's float64 backward of these uses float32 constants (1.0f / 6, 1.0f / alpha), so
# its input gradient is good to ~1e-7 only; graphc's is exact (the op tests check it).
GRADIENT_RTOL = {"CELU": 1e-6, "Hardsigmoid": 1e-6}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_matches_torch(name):
    make_torch, make_graphc, x = LAYERS[name]
    torch.manual_seed(0)
    tlayer = make_torch()
    for p in tlayer.parameters():  # off the defaults, so a mix-up of params shows
        torch.nn.init.normal_(p, std=0.5)
    compare(tlayer, make_graphc(), x, rtol=GRADIENT_RTOL.get(name, 1e-10))


RNNS = {
    "LSTM": (lambda: T.LSTM(3, 5), lambda: nn.LSTM(3, 5, dtype=F64), normal(4, 2, 3), ()),
    "LSTM deep bidirectional batch_first": (
        lambda: T.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True),
        lambda: nn.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True, dtype=F64),
        normal(2, 5, 3), ()),
    "LSTM no bias, initial state": (
        lambda: T.LSTM(3, 4, bias=False),
        lambda: nn.LSTM(3, 4, bias=False, dtype=F64), normal(3, 2, 3),
        ((normal(1, 2, 4, seed=5), normal(1, 2, 4, seed=6)),)),
    "LSTM unbatched": (lambda: T.LSTM(3, 4), lambda: nn.LSTM(3, 4, dtype=F64), normal(5, 3),
                       ()),
    "GRU": (lambda: T.GRU(3, 5), lambda: nn.GRU(3, 5, dtype=F64), normal(4, 2, 3), ()),
    "GRU deep bidirectional batch_first h0": (
        lambda: T.GRU(3, 4, num_layers=2, batch_first=True, bidirectional=True),
        lambda: nn.GRU(3, 4, num_layers=2, batch_first=True, bidirectional=True, dtype=F64),
        normal(2, 5, 3), (normal(4, 2, 4, seed=7),)),
    "GRU no bias": (lambda: T.GRU(3, 4, bias=False),
                    lambda: nn.GRU(3, 4, bias=False, dtype=F64), normal(3, 2, 3), ()),
}


@pytest.mark.parametrize("name", list(RNNS))
def test_recurrent_layer_matches_torch(name):
    make_torch, make_graphc, x, state = RNNS[name]
    torch.manual_seed(0)
    tlayer = make_torch()
    glayer = make_graphc()
    if state:  # the initial state enters as a constant in graphc and a tensor in torch
        tstate = tuple(torch.tensor(s) for s in _flat(state))
        tstate = tstate if len(tstate) > 1 else tstate[0]
        compare_with_state(tlayer, glayer, x, state[0], tstate)
    else:
        compare(tlayer, glayer, x)


def compare_with_state(tlayer, glayer, x, state, tstate):
    tlayer = tlayer.double()
    load_from_torch(tlayer, glayer)
    inp = gc.input("x", x.shape, x.dtype)
    got = gc.compile([inp], _flat(glayer(inp, state)), backend="numpy")(x)
    expected = [o.detach().numpy() for o in _flat(tlayer(torch.tensor(x), tstate))]
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_recurrent_dropout_applies_between_layers_in_training_only():
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5, rng=0)
    x = gc.input("x", (5, 2, 3))
    data = normal(5, 2, 3).astype(np.float32)
    ops = lambda out: {n.op for n in gc.Graph([out])}  # noqa: E731
    assert "random_uniform" in ops(lstm(x)[0])
    lstm.eval()
    assert "random_uniform" not in ops(lstm(x)[0])
    train = gc.compile([x], lstm(x, training=True)[0], backend="numpy")(data)
    evaluate = gc.compile([x], lstm(x)[0], backend="numpy")(data)
    assert not np.allclose(train, evaluate)


class TorchNet(T.Module):
    """Containers, a shared activation with a param, and a custom forward."""

    def __init__(self):
        super().__init__()
        self.blocks = T.ModuleList([T.Linear(4, 4) for _ in range(2)])
        self.heads = T.ModuleDict({"a": T.Linear(4, 2), "b": T.Linear(4, 3)})
        self.act = T.PReLU()
        self.tail = T.Sequential(OrderedDict(proj=T.Linear(5, 3), drop=T.Dropout(0.5)))

    def forward(self, x):
        for block in self.blocks:
            x = self.act(block(x))
        return self.tail(torch.cat([self.heads["a"](x), self.heads["b"](x)], -1))


class GraphcNet(nn.Module):
    """TorchNet in graphc, written as a PyTorch user writes it."""

    def __init__(self):
        self.blocks = nn.ModuleList([nn.Linear(4, 4, dtype=F64) for _ in range(2)])
        self.heads = nn.ModuleDict({"a": nn.Linear(4, 2, dtype=F64),
                                    "b": nn.Linear(4, 3, dtype=F64)})
        self.act = nn.PReLU(dtype=F64)
        self.tail = nn.Sequential(OrderedDict(proj=nn.Linear(5, 3, dtype=F64),
                                              drop=nn.Dropout(0.5)))

    def forward(self, x):
        for block in self.blocks:
            x = self.act(block(x))
        return self.tail(gc.concat([self.heads["a"](x), self.heads["b"](x)], -1))


def test_containers_and_a_custom_forward_match_torch():
    torch.manual_seed(0)
    compare(TorchNet(), GraphcNet(), normal(6, 4), train=False)


def test_modes_propagate_and_an_explicit_training_overrides():
    net = GraphcNet()
    assert net.training and net.tail.drop.training  # built in training mode
    net.eval()
    assert not any(m.training for m in net.modules())
    net.tail.train()
    assert net.tail.drop.training and not net.training
    x = gc.input("x", (3, 4), F64)
    ops = lambda out: {n.op for n in gc.Graph([out])}  # noqa: E731
    assert "random_uniform" in ops(net(x))           # the tail's own mode
    assert "random_uniform" not in ops(net(x, training=False))  # the override
    net.tail.drop.eval()
    assert "random_uniform" in ops(net(x, training=True))


def test_loss_modules_keep_their_weights_as_torch_does():
    weight = np.array([1.0, 2.0, 0.5])
    tloss = T.CrossEntropyLoss(weight=torch.tensor(weight), label_smoothing=0.1)
    gloss = nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1)
    assert list(gloss.state_dict()) == list(tloss.state_dict()) == ["weight"]
    logits, labels = normal(4, 3), np.array([0, 2, 1, 2])
    x, y = gc.input("x", (4, 3), F64), gc.input("y", (4,), "int64")
    got = gc.compile([x, y], gloss(x, y), backend="numpy")(logits, labels)
    np.testing.assert_allclose(got, tloss(torch.tensor(logits), torch.tensor(labels)).item(),
                               rtol=1e-12)
    tbce = T.BCEWithLogitsLoss(pos_weight=torch.tensor([2.0, 0.5, 1.0]))
    gbce = nn.BCEWithLogitsLoss(pos_weight=np.array([2.0, 0.5, 1.0]))
    assert list(gbce.state_dict()) == list(tbce.state_dict()) == ["pos_weight"]
    targets = np.random.default_rng(3).uniform(size=(4, 3))
    t = gc.input("t", (4, 3), F64)
    got = gc.compile([x, t], gbce(x, t), backend="numpy")(logits, targets)
    np.testing.assert_allclose(got, tbce(torch.tensor(logits), torch.tensor(targets)).item(),
                               rtol=1e-12)


def test_load_state_dict_refuses_without_writing_and_strict_false_reports():
    layer = nn.Linear(3, 2, dtype=F64)
    before = layer.weight.value.copy()
    state = {"weight": np.ones((2, 3)), "bias": np.ones(3)}
    with pytest.raises(ValueError, match="param 'bias'"):
        layer.load_state_dict(state)
    np.testing.assert_array_equal(layer.weight.value, before)  # nothing written
    result = layer.load_state_dict({"weight": np.ones((2, 3)), "extra": np.ones(1)},
                                   strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(layer.weight.value, np.ones((2, 3)))
