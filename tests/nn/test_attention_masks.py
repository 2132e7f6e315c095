"""Attention masks: a causal layer's output at position t ignores every later position,
an explicit bool mask does the same, and a fully masked row stays finite."""

import numpy as np
import pytest

import graphc as gc


def run(layer, array, **options):
    x = gc.input("x", array.shape, "float64")
    return gc.compile([x], layer(x, **options), backend="numpy")(array)


def test_causal_attention_ignores_later_positions():
    layer = gc.nn.MultiHeadAttention(8, 2, causal=True, rng=np.random.default_rng(0),
                                     dtype="float64")
    a = np.random.default_rng(1).normal(size=(2, 5, 8))
    b = a.copy()
    b[:, 3:] += 10.0  # change only positions 3 and 4
    out_a, out_b = run(layer, a), run(layer, b)
    np.testing.assert_allclose(out_a[:, :3], out_b[:, :3], rtol=1e-12)
    assert not np.allclose(out_a[:, 3:], out_b[:, 3:])


def test_an_explicit_mask_equals_the_causal_flag():
    rng = np.random.default_rng(2)
    causal = gc.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, causal=True, rng=rng,
                                           dtype="float64")
    plain = gc.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, rng=rng, dtype="float64")
    for name, p in plain.named_params().items():  # same weights in both layers
        p.value = causal.named_params()[name].value
    a = rng.normal(size=(3, 4, 8))
    mask = gc.constant(np.triu(np.ones((4, 4), bool), k=1))
    np.testing.assert_allclose(run(plain, a, attn_mask=mask), run(causal, a), rtol=1e-12)


def test_a_fully_masked_row_is_finite_and_bad_masks_are_refused():
    layer = gc.nn.MultiHeadAttention(4, 1, rng=np.random.default_rng(3), dtype="float64")
    a = np.random.default_rng(4).normal(size=(1, 3, 4))
    everything = gc.constant(np.ones((3, 3), bool))
    assert np.all(np.isfinite(run(layer, a, attn_mask=everything)))
    with pytest.raises(gc.GraphTypeError, match="attn_mask must be bool"):
        run(layer, a, attn_mask=gc.constant(np.ones((3, 3))))
