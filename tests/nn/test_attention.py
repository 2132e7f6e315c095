"""MultiheadAttention against torch.nn.MultiheadAttention (params, state_dict, outputs,
weights and gradients, every mask form, cross-attention with other key/value widths,
bias_k/bias_v, zero attention, unbatched and batch-first inputs), on the NumPy backend
and on the LLVM backend (the fused attention kernels); and graphc's MultiHeadAttention."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc import nn
from tests.nn.torch_oracle import compare, load_from_torch, randomize

torch = pytest.importorskip("torch", reason="torch (the test extra) is the oracle")
T = torch.nn
F64 = "float64"


def normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def padding(n: int, s: int, seed: int = 3) -> np.ndarray:
    """A key padding mask (True = padding) with at least one real key per row."""
    mask = np.random.default_rng(seed).random((n, s)) < 0.4
    mask[:, 0] = False
    return mask


def self_attention(**kw):
    return lambda layer, xs: layer(xs[0], xs[0], xs[0], **kw)


CASES = {
    # name: (torch layer, graphc layer, inputs, call(layer, inputs))
    "self-attention, weights": (
        lambda: T.MultiheadAttention(8, 2), lambda: nn.MultiheadAttention(8, 2, dtype=F64),
        [normal(5, 3, 8)], self_attention()),
    "per-head weights, no bias": (
        lambda: T.MultiheadAttention(8, 4, bias=False),
        lambda: nn.MultiheadAttention(8, 4, bias=False, dtype=F64),
        [normal(4, 2, 8)], self_attention(average_attn_weights=False)),
    "cross-attention, kdim/vdim, batch_first": (
        lambda: T.MultiheadAttention(6, 3, kdim=4, vdim=5, batch_first=True),
        lambda: nn.MultiheadAttention(6, 3, kdim=4, vdim=5, batch_first=True, dtype=F64),
        [normal(2, 3, 6), normal(2, 7, 4, seed=1), normal(2, 7, 5, seed=2)],
        lambda layer, xs: layer(*xs, need_weights=False)),
    "key padding and bool attn_mask": (
        lambda: T.MultiheadAttention(8, 2, batch_first=True),
        lambda: nn.MultiheadAttention(8, 2, batch_first=True, dtype=F64),
        [normal(3, 4, 8), normal(3, 6, 8, seed=1), padding(3, 6),
         np.random.default_rng(4).random((4, 6)) < 0.3],
        lambda layer, xs: layer(xs[0], xs[1], xs[1], key_padding_mask=xs[2],
                                attn_mask=xs[3], need_weights=False)),
    "float attn_mask per head, float key padding": (
        lambda: T.MultiheadAttention(8, 2),
        lambda: nn.MultiheadAttention(8, 2, dtype=F64),
        [normal(4, 3, 8), normal(3 * 2, 4, 4, seed=5), normal(3, 4, seed=6)],
        lambda layer, xs: layer(xs[0], xs[0], xs[0], attn_mask=xs[1],
                                key_padding_mask=xs[2])),
    "causal hint with its mask": (
        lambda: T.MultiheadAttention(8, 2, batch_first=True),
        lambda: nn.MultiheadAttention(8, 2, batch_first=True, dtype=F64),
        [normal(2, 5, 8), np.triu(np.ones((5, 5), bool), k=1)],
        lambda layer, xs: layer(xs[0], xs[0], xs[0], attn_mask=xs[1], is_causal=True,
                                need_weights=False)),
    "bias_k, bias_v, zero attention, padding": (
        lambda: T.MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True),
        lambda: nn.MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True, dtype=F64),
        [normal(4, 2, 8), padding(2, 4)],
        lambda layer, xs: layer(xs[0], xs[0], xs[0], key_padding_mask=xs[1])),
    "unbatched": (
        lambda: T.MultiheadAttention(8, 2), lambda: nn.MultiheadAttention(8, 2, dtype=F64),
        [normal(5, 8), normal(3, 8, seed=1)],
        lambda layer, xs: layer(xs[0], xs[1], xs[1])),
}


@pytest.mark.parametrize("name", list(CASES))
def test_multihead_attention_matches_torch(name):
    make_torch, make_graphc, arrays, call = CASES[name]
    compare(make_torch(), make_graphc(), arrays, call)


@pytest.mark.parametrize("name", ["self-attention, weights", "key padding and bool attn_mask",
                                  "float attn_mask per head, float key padding"])
def test_multihead_attention_on_llvm_matches_torch(name):
    """The fused forward, backward and mask-gradient kernels, float64."""
    make_torch, make_graphc, arrays, call = CASES[name]
    compare(make_torch(), make_graphc(), arrays, call, backend="llvm")


def test_a_query_with_every_key_padded_gets_zeros_as_torch():
    tlayer, layer = T.MultiheadAttention(4, 2, batch_first=True), \
        nn.MultiheadAttention(4, 2, batch_first=True, dtype=F64)
    mask = np.zeros((2, 3), bool)
    mask[1] = True  # the second sequence has no key to attend to
    compare(tlayer, layer, [normal(2, 3, 4), mask],
            lambda m, xs: m(xs[0], xs[0], xs[0], key_padding_mask=xs[1], need_weights=False))


def test_state_dict_names_are_torch_names():
    assert list(nn.MultiheadAttention(8, 2).state_dict()) == [
        "in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    layer = nn.MultiheadAttention(8, 2, kdim=3, vdim=5, add_bias_kv=True)
    assert {k: v.shape for k, v in layer.state_dict().items()} == {
        k: tuple(v.shape) for k, v in
        T.MultiheadAttention(8, 2, kdim=3, vdim=5, add_bias_kv=True).state_dict().items()}
    assert [n for n, _ in nn.MultiHeadAttention(8, 2).named_parameters()] == [
        "in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]


def test_dropout_is_on_in_training_only_and_the_weights_carry_its_mask():
    layer = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True, dtype=F64)
    x = gc.input("x", (2, 5, 8), F64)
    out, weights = layer(x, x, x, average_attn_weights=False)
    value = layer.in_proj_weight[16:]
    v_heads = gc.transpose(gc.reshape(x @ gc.transpose(value) + layer.in_proj_bias[16:],
                                      (2, 5, 2, 4)), (0, 2, 1, 3))
    by_hand = layer.out_proj(gc.reshape(gc.transpose(weights @ v_heads, (0, 2, 1, 3)),
                                        (2, 5, 8)))
    a = normal(2, 5, 8)
    for backend in ("numpy", "llvm"):
        got, expected, w = gc.compile([x], [out, by_hand, weights], backend=backend)(a)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
        assert np.mean(w == 0) > 0.3  # about half the weights dropped
    evaluate = gc.compile([x], layer(x, x, x, need_weights=False, training=False)[0])
    np.testing.assert_array_equal(evaluate(a), evaluate(a))


def test_graphc_multi_head_attention_is_batch_first_self_attention():
    tlayer = T.MultiheadAttention(8, 2, batch_first=True).double()
    randomize(tlayer)
    layer = nn.MultiHeadAttention(8, 2, dtype=F64)
    load_from_torch(tlayer, layer)
    a = normal(3, 5, 8)
    x = gc.input("x", a.shape, F64)
    got = gc.compile([x], layer(x))(a)
    expected = tlayer(*[torch.tensor(a)] * 3, need_weights=False)[0].detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_causal_flag_ignores_later_positions_and_equals_the_explicit_mask():
    layer = nn.MultiHeadAttention(8, 2, causal=True, rng=0, dtype=F64)
    x = gc.input("x", (2, 5, 8), F64)
    a = normal(2, 5, 8)
    b = a.copy()
    b[:, 3:] += 10.0  # change only positions 3 and 4
    f = gc.compile([x], layer(x))
    out_a, out_b = f(a), f(b)
    np.testing.assert_allclose(out_a[:, :3], out_b[:, :3], rtol=1e-12)
    assert not np.allclose(out_a[:, 3:], out_b[:, 3:])
    later = gc.constant(np.triu(np.ones((5, 5), bool), k=1))
    explicit = gc.compile([x], layer(x, attn_mask=later, is_causal=False))
    np.testing.assert_allclose(explicit(a), out_a, rtol=1e-12)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(10, 3)
    layer = nn.MultiheadAttention(8, 2, batch_first=True)
    x = gc.input("x", (2, 5, 8))
    with pytest.raises(gc.GraphError, match=r"expected key \(N, L, E\) with 8 features"):
        layer(x, gc.input("k", (2, 5, 6)), x)
    with pytest.raises(gc.GraphError, match=r"attn_mask must be \(L, S\)"):
        layer(x, x, x, attn_mask=gc.constant(np.ones((5, 4), bool)))
    with pytest.raises(gc.GraphError, match=r"key_padding_mask must be \(N, S\)"):
        layer(x, x, x, key_padding_mask=gc.constant(np.ones((2, 4), bool)))
    with pytest.raises(gc.GraphTypeError, match="masks must be bool or float32"):
        layer(x, x, x, attn_mask=gc.constant(np.ones((5, 5), np.int32)))
