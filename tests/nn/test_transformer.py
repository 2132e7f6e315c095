"""Transformer layers against torch.nn: TransformerEncoderLayer (post- and pre-norm, ReLU
and GELU, sequence-first and batch-first, masks), TransformerEncoder (stacked copies and a
final norm), TransformerDecoderLayer (causal self-attention, cross-attention with memory
padding) and TransformerDecoder; outputs and gradients of inputs and every param, on the
NumPy backend and once on the LLVM backend; PyTorch's defaults; and a training step."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc import nn
from tests.nn.torch_oracle import compare

torch = pytest.importorskip("torch", reason="torch (the test extra) is the oracle")
T = torch.nn
F64 = "float64"


def normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def causal(n: int) -> np.ndarray:
    return np.triu(np.ones((n, n), bool), k=1)


def padding(n: int, s: int, seed: int = 3) -> np.ndarray:
    mask = np.random.default_rng(seed).random((n, s)) < 0.4
    mask[:, 0] = False
    return mask


CASES = {
    "encoder layer, defaults (sequence first, post-norm, ReLU)": (
        lambda: T.TransformerEncoderLayer(8, 2, 16, dropout=0.0),
        lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, dtype=F64),
        [normal(5, 3, 8)], lambda m, xs: m(xs[0])),
    "encoder layer, pre-norm GELU batch-first, masks": (
        lambda: T.TransformerEncoderLayer(8, 2, 12, dropout=0.0, activation="gelu",
                                          batch_first=True, norm_first=True),
        lambda: nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True, dtype=F64),
        [normal(3, 5, 8), causal(5), padding(3, 5)],
        lambda m, xs: m(xs[0], src_mask=xs[1], src_key_padding_mask=xs[2])),
    "encoder of two layers and a norm": (
        lambda: T.TransformerEncoder(T.TransformerEncoderLayer(8, 2, 16, dropout=0.0,
                                                               batch_first=True), 2,
                                     norm=T.LayerNorm(8), enable_nested_tensor=False),
        lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0,
                                                                 batch_first=True, dtype=F64),
                                      2, norm=nn.LayerNorm(8, dtype=F64)),
        [normal(2, 4, 8), padding(2, 4)], lambda m, xs: m(xs[0], src_key_padding_mask=xs[1])),
    "decoder layer, causal target, padded memory": (
        lambda: T.TransformerDecoderLayer(8, 2, 16, dropout=0.0),
        lambda: nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, dtype=F64),
        [normal(4, 2, 8), normal(6, 2, 8, seed=1), causal(4), padding(2, 6)],
        lambda m, xs: m(xs[0], xs[1], tgt_mask=xs[2], memory_key_padding_mask=xs[3])),
    "decoder of two pre-norm layers, batch-first, causal hint": (
        lambda: T.TransformerDecoder(T.TransformerDecoderLayer(8, 4, 16, dropout=0.0,
                                                               batch_first=True,
                                                               norm_first=True), 2),
        lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 4, 16, dropout=0.0,
                                                                 batch_first=True,
                                                                 norm_first=True, dtype=F64),
                                      2),
        [normal(2, 5, 8), normal(2, 3, 8, seed=1), causal(5)],
        lambda m, xs: m(xs[0], xs[1], tgt_mask=xs[2], tgt_is_causal=True)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_transformer_matches_torch(name):
    make_torch, make_graphc, arrays, call = CASES[name]
    compare(make_torch(), make_graphc(), arrays, call)


def test_transformer_on_llvm_matches_torch():
    make_torch, make_graphc, arrays, call = CASES["decoder layer, causal target, padded memory"]
    compare(make_torch(), make_graphc(), arrays, call, backend="llvm")


def test_defaults_are_torch_defaults():
    layer = nn.TransformerEncoderLayer(16, 4)
    assert layer.linear1.weight.shape == (2048, 16) and layer.dropout.p == 0.1
    assert isinstance(layer.activation, nn.ReLU) and not layer.norm_first
    assert not layer.self_attn.batch_first and layer.norm1.eps == 1e-5
    assert list(layer.state_dict()) == list(T.TransformerEncoderLayer(16, 4).state_dict())
    decoder = nn.TransformerDecoderLayer(16, 4)
    assert list(decoder.state_dict()) == list(T.TransformerDecoderLayer(16, 4).state_dict())


def test_stacked_copies_start_equal_and_are_independent():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True)
    stack = nn.TransformerEncoder(layer, 3)
    first, second = stack.layers[0], stack.layers[1]
    np.testing.assert_array_equal(first.linear1.weight.value, layer.linear1.weight.value)
    assert first.linear1.weight is not second.linear1.weight
    assert len({id(p) for p in stack.params()}) == 3 * len(layer.params())
    seeds = {m.seed for m in stack.modules() if "seed" in vars(m)}
    assert len(seeds) == 3 * 4  # 3 dropouts and the attention's, per layer, all distinct
    assert list(stack.state_dict())[:2] == ["layers.0.self_attn.in_proj_weight",
                                            "layers.0.self_attn.in_proj_bias"]


def test_causal_flag_equals_the_explicit_mask():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, causal=True,
                                       dtype=F64)
    x = gc.input("x", (3, 4, 8), F64)
    a = normal(3, 4, 8)
    flagged = gc.compile([x], layer(x))(a)
    layer.causal = False
    explicit = gc.compile([x], layer(x, src_mask=gc.constant(causal(4))))(a)
    hinted = gc.compile([x], layer(x, is_causal=True))(a)
    np.testing.assert_allclose(explicit, flagged, rtol=1e-12)
    np.testing.assert_allclose(hinted, flagged, rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_a_training_step_matches_torch(backend):
    """Two Adam steps on an encoder-decoder (dropout off) from the same state: the same
    params as torch's after them."""
    def build(lib, dtype):
        kw = {} if lib is T else {"dtype": dtype}
        return lib.ModuleList([
            lib.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, **kw),
            lib.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True, **kw)])

    tmodel = build(T, None).double()
    model = build(nn, F64)
    model.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})
    batches = [(normal(2, 5, 8, seed=s), normal(2, 4, 8, seed=s + 5)) for s in range(2)]
    mask = causal(4)
    opt = torch.optim.Adam(tmodel.parameters(), lr=1e-2)
    for src, tgt in batches:
        opt.zero_grad()
        memory = tmodel[0](torch.tensor(src))
        out = tmodel[1](torch.tensor(tgt), memory, tgt_mask=torch.tensor(mask))
        (out ** 2).mean().backward()
        opt.step()
    src, tgt = gc.input("src", (2, 5, 8), F64), gc.input("tgt", (2, 4, 8), F64)
    out = model[1](tgt, model[0](src), tgt_mask=gc.constant(mask))
    loss = gc.mean(out * out)
    step = gc.compile([src, tgt], loss, updates=gc.optim.Adam(model.params(), lr=1e-2)
                      .updates(loss), backend=backend)
    for s, t in batches:
        step(s, t)
    for name, value in tmodel.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[name], value.numpy(), rtol=1e-7,
                                   atol=1e-9, err_msg=name)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="activation should be relu/gelu"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
    layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    with pytest.raises(gc.GraphError, match="MultiheadAttention: expected query"):
        layer(gc.input("x", (2, 5, 6)))
