"""Each layer against values computed by hand or with plain NumPy (attention and the
Transformer layers: tests/nn/test_attention.py and test_transformer.py)."""

import math

import numpy as np
import pytest

import graphc as gc
from graphc import nn

erf = np.vectorize(math.erf)


def run(build, *arrays):
    """Compile build(*inputs) on the NumPy backend and call it with the arrays."""
    inputs = [gc.input(f"in{k}", a.shape, a.dtype) for k, a in enumerate(arrays)]
    return gc.compile(inputs, build(*inputs), backend="numpy")(*arrays)


def test_linear_computes_x_wt_plus_b_with_an_out_by_in_weight():
    layer = nn.Linear(2, 3)
    assert layer.weight.shape == (3, 2) and layer.bias.shape == (3,)
    layer.weight.value = np.array([[1, 4], [2, 5], [3, 6]], np.float32)
    layer.bias.value = np.array([0.5, -1, 0], np.float32)
    x = np.array([[1, 1], [2, -1]], np.float32)
    np.testing.assert_array_equal(run(layer, x), [[5.5, 6, 9], [-1.5, -2, 0]])


def test_linear_applies_to_the_last_axis_of_a_batch_of_sequences():
    layer = nn.Linear(4, 3, rng=0)
    x = np.random.default_rng(1).normal(size=(2, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(run(layer, x), x @ layer.weight.value.T + layer.bias.value,
                               rtol=1e-6)


def test_linear_without_bias_has_only_a_weight():
    layer = nn.Linear(3, 2, bias=False)
    assert layer.params() == [layer.weight]


def test_init_statistics_follow_he_and_xavier():
    # 400x500 draws: the sample std is within 2% of the target with overwhelming odds.
    he = nn.Linear(400, 500, init="he", rng=0).weight.value
    assert he.dtype == np.float32
    assert abs(he.std() / math.sqrt(2 / 400) - 1) < 0.02
    xavier = nn.Linear(400, 500, init="xavier", rng=0).weight.value
    limit = math.sqrt(6 / 900)
    assert np.abs(xavier).max() <= limit
    assert abs(xavier.std() / (limit / math.sqrt(3)) - 1) < 0.02


def test_init_is_seeded():
    a, b = nn.Linear(5, 5, rng=7), nn.Linear(5, 5, rng=7)
    np.testing.assert_array_equal(a.weight.value, b.weight.value)
    nn.manual_seed(3)
    c = nn.Linear(5, 5)
    nn.manual_seed(3)
    d = nn.Linear(5, 5)
    np.testing.assert_array_equal(c.weight.value, d.weight.value)
    assert not np.array_equal(a.weight.value, c.weight.value)


def test_bad_sizes_and_inits_are_refused():
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="init"):
        nn.Linear(2, 3, init="orthogonal")
    with pytest.raises(ValueError, match=r"Linear.*\(\.\.\., 3\)"):
        nn.Linear(3, 2)(gc.input("x", ("N", 4)))


def test_activations():
    x = np.array([-2.0, -0.5, 0.0, 1.5], np.float64)
    np.testing.assert_allclose(run(nn.ReLU(), x), [0, 0, 0, 1.5])
    np.testing.assert_allclose(run(nn.Sigmoid(), x), 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(run(nn.Tanh(), x), np.tanh(x), rtol=1e-12)
    np.testing.assert_allclose(run(nn.GELU(), x), x * 0.5 * (1 + erf(x / math.sqrt(2))),
                               rtol=1e-12)


def test_dropout_is_identity_in_eval_and_masks_in_training():
    layer = nn.Dropout(0.25)
    x = np.ones((64, 64), np.float32)
    inp = gc.input("x", x.shape)
    assert layer.training  # built in training mode, as in PyTorch
    out = gc.compile([inp], layer(inp), backend="numpy")(x)
    assert set(np.unique(out)) == {0.0, np.float32(1 / 0.75)}
    # 4096 draws at rate 0.25: the dropped fraction is within 0.05 of it (> 7 sigma).
    assert abs((out == 0).mean() - 0.25) < 0.05
    np.testing.assert_array_equal(gc.compile([inp], layer.eval()(inp), backend="numpy")(x), x)
    assert not layer.training
    out = gc.compile([inp], layer(inp, training=True), backend="numpy")(x)  # the override
    assert (out == 0).any()


def test_distinct_dropout_layers_have_distinct_masks():
    a, b = nn.Dropout(0.5), nn.Dropout(0.5)
    assert a.seed != b.seed
    inp = gc.input("x", (32, 32))
    f = gc.compile([inp], [a(inp, training=True), b(inp, training=True)], backend="numpy")
    ma, mb = f(np.ones((32, 32), np.float32))
    assert not np.array_equal(ma, mb)


def test_layer_norm_matches_numpy():
    layer = nn.LayerNorm(4, dtype="float64")
    layer.weight.value = np.array([1.0, 2.0, 0.5, -1.0])
    layer.bias.value = np.array([0.0, 1.0, 0.0, 3.0])
    x = np.random.default_rng(0).normal(size=(3, 4))
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    expected = (x - mu) / np.sqrt(var + 1e-5) * layer.weight.value + layer.bias.value
    np.testing.assert_allclose(run(layer, x), expected, rtol=1e-12)


def test_embedding_looks_up_rows():
    layer = nn.Embedding(5, 3, rng=0)
    ids = np.array([[4, 0], [2, 2]], np.int32)
    np.testing.assert_array_equal(run(layer, ids), layer.weight.value[ids])


def test_flatten_keeps_the_batch_axis():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    inp = gc.input("x", ("N", 3, 2, 2))
    out = nn.Flatten()(inp)
    assert out.shape[1] == 12
    np.testing.assert_array_equal(gc.compile([inp], out, backend="numpy")(x), x.reshape(2, 12))


def test_sequential_chains_layers_and_names_params_by_position():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.ReLU(), nn.Linear(4, 2, rng=1))
    assert list(model.named_params()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    w0, b0, w2, b2 = (p.value for p in model.params())
    expected = np.maximum(x @ w0.T + b0, 0) @ w2.T + b2
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-5)
    assert len(model) == 3 and isinstance(model[1], nn.ReLU)
    with pytest.raises(TypeError, match="layer 1"):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_shared_params_are_listed_once_and_state_round_trips():
    shared = nn.Linear(2, 2, rng=0)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    assert model.params() == [shared.weight, shared.bias]
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # as PyTorch lists them
    shared.weight.value = np.zeros((2, 2), np.float32)
    model.load_state_dict(state)
    np.testing.assert_array_equal(shared.weight.value, state["0.weight"])
    with pytest.raises(KeyError, match="missing"):
        model.load_state_dict({})
    with pytest.raises(ValueError, match="0.weight"):
        model.load_state_dict({**state, "0.weight": np.zeros((3, 2), np.float32)})


def test_training_flag_must_be_a_bool():
    with pytest.raises(TypeError, match="training"):
        nn.ReLU()(gc.input("x", (2,)), training="yes")
    with pytest.raises(TypeError, match="training"):
        nn.ReLU().train("yes")
