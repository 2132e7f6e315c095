"""The Module machinery a PyTorch user relies on: modes, submodules, buffers, state dicts,
containers, PyTorch's argument names, and the layers without a torch counterpart to check
values against (Dropout2d's statistics) or whose refusals are graphc's."""

import numpy as np
import pytest

import graphc as gc
from graphc import nn


def test_named_modules_children_and_repr():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.ModuleList([nn.ReLU(), nn.Tanh()]),
                          nn.ModuleDict({"out": nn.Linear(3, 1, rng=1)}))
    assert [name for name, _ in model.named_modules()] == ["", "0", "1", "1.0", "1.1", "2",
                                                           "2.out"]
    assert len(list(model.children())) == 3
    assert list(model.named_params()) == ["0.weight", "0.bias", "2.out.weight", "2.out.bias"]
    assert [name for name, _ in model.named_parameters()] == list(model.named_params())
    assert model.parameters() == model.params()
    text = repr(model)
    assert "(0): Linear(in_features=2, out_features=3, bias=True)" in text
    assert "(out): Linear" in text


def test_a_shared_module_is_visited_once():
    shared = nn.Linear(2, 2, rng=0)
    model = nn.Sequential(shared, shared)
    assert len(list(model.modules())) == 2
    model.eval()
    assert not shared.training


def test_register_buffer_saves_but_does_not_train():
    class Scaled(nn.Module):
        def __init__(self):
            self.scale = gc.param("scale", np.ones(3, np.float32))
            self.register_buffer("count", np.zeros((), np.int64))
            self.register_buffer("scratch", np.zeros(3, np.float32), persistent=False)

        def forward(self, x):
            return x * self.scale

    m = Scaled()
    assert m.params() == [m.scale]
    assert [name for name, _ in m.named_buffers()] == ["count", "scratch"]
    assert list(m.state_dict()) == ["scale", "count"]  # non-persistent: not saved
    m.load_state_dict({"scale": np.full(3, 2, np.float32), "count": np.array(5)})
    assert m.count.value == 5
    x = gc.input("x", (3,))
    assert gc.compile([x], m(x), backend="numpy")(np.ones(3, np.float32)).tolist() == [2, 2, 2]
    with pytest.raises(TypeError, match="register_buffer"):
        m.register_buffer("bad", gc.input("y", (2,)))


def test_a_pytorch_style_forward_reads_the_mode():
    class Noisy(nn.Module):
        def __init__(self):
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            return self.drop(x) if self.training else x * 2.0

    m = Noisy()
    x = gc.input("x", (64,))
    ones = np.ones(64, np.float32)
    assert (gc.compile([x], m(x), backend="numpy")(ones) == 0).any()
    np.testing.assert_array_equal(gc.compile([x], m.eval()(x), backend="numpy")(ones), 2 * ones)
    np.testing.assert_array_equal(gc.compile([x], m(x, training=False), backend="numpy")(ones),
                                  2 * ones)


def test_module_list_and_dict_operations():
    blocks = nn.ModuleList()
    blocks.append(nn.ReLU()).extend([nn.Tanh(), nn.Sigmoid()])
    blocks.insert(0, nn.Identity())
    assert [type(b).__name__ for b in blocks] == ["Identity", "ReLU", "Tanh", "Sigmoid"]
    assert isinstance(blocks[1:3], nn.ModuleList) and len(blocks[1:3]) == 2
    with pytest.raises(TypeError, match="ModuleList: layer 4"):
        blocks.append(lambda x: x)
    with pytest.raises(NotImplementedError, match="call its items"):
        blocks(gc.input("x", (2,)))
    heads = nn.ModuleDict({"a": nn.ReLU()})
    heads["b"] = nn.Tanh()
    assert list(heads) == ["a", "b"] and "b" in heads and heads.a is heads["a"]
    with pytest.raises(KeyError, match="without '.'"):
        heads["x.y"] = nn.ReLU()


def test_dropout_takes_p_and_rate_and_refuses_bad_probabilities():
    assert nn.Dropout(p=0.3).p == 0.3 and nn.Dropout(rate=0.2).p == 0.2
    assert nn.Dropout(0.4).rate == 0.4
    for bad in (-0.1, 1.5, "0.5"):
        with pytest.raises(ValueError, match="Dropout: p must be a probability"):
            nn.Dropout(bad)


def test_dropout2d_drops_whole_channels():
    layer = nn.Dropout2d(0.5)
    x = np.ones((16, 32, 3, 3), np.float32)
    inp = gc.input("x", ("N", 32, 3, 3))
    out = gc.compile([inp], layer(inp), backend="numpy")(x)
    per_channel = out.reshape(16, 32, 9)
    assert np.all(per_channel.min(-1) == per_channel.max(-1))  # a channel is kept or dropped
    assert set(np.unique(out)) == {0.0, 2.0}
    # 512 channels at p = 0.5: the dropped fraction is within 0.1 of it (> 4.5 sigma)
    assert abs((per_channel[:, :, 0] == 0).mean() - 0.5) < 0.1
    np.testing.assert_array_equal(gc.compile([inp], layer.eval()(inp), backend="numpy")(x), x)
    with pytest.raises(gc.GraphError, match="Dropout2d"):
        nn.Dropout2d()(gc.input("y", (2, 3)))


def test_unflatten_and_flatten_refusals():
    with pytest.raises(ValueError, match="Unflatten"):
        nn.Unflatten(1, (2, -1, -1))
    with pytest.raises(gc.GraphError, match="does not split"):
        nn.Unflatten(1, (5, 2))(gc.input("x", (3, 12)))
    with pytest.raises(gc.GraphError, match="out of range"):
        nn.Flatten(start_dim=3)(gc.input("x", (3, 12)))
    inp = gc.input("x", ("N", 12))
    assert nn.Unflatten(1, (3, 4))(inp).shape[1:] == (3, 4)


def test_activation_modules_take_pytorch_arguments():
    x = np.array([-2.0, -0.5, 0.0, 1.5])
    inp = gc.input("x", (4,), "float64")
    run = lambda layer: gc.compile([inp], layer(inp), backend="numpy")(x)  # noqa: E731
    np.testing.assert_allclose(run(nn.LeakyReLU(negative_slope=0.1)), [-0.2, -0.05, 0, 1.5])
    np.testing.assert_allclose(run(nn.ReLU(inplace=True)), [0, 0, 0, 1.5])
    np.testing.assert_allclose(run(nn.SiLU()), x / (1 + np.exp(-x)), rtol=1e-12)
    with pytest.warns(UserWarning, match="implicit dimension"):
        nn.Softmax()(gc.input("y", (2, 3)))
    with pytest.raises(gc.GraphError, match="PReLU"):
        nn.PReLU(3)(gc.input("z", (2, 4)))


def test_conv_and_pool_layers_refuse_what_they_do_not_support():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="wrap")
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="return_indices=True is not supported"):
        nn.MaxPool2d(2, return_indices=True)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        nn.Upsample()
    with pytest.raises(ValueError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=2)
    with pytest.raises(gc.GraphError, match=r"LSTM.*static"):
        nn.LSTM(3, 4)(gc.input("x", ("L", 2, 3)))
    with pytest.raises(gc.GraphError, match=r"GRU.*\(L, N, I\)"):
        nn.GRU(3, 4)(gc.input("x", (5, 2, 2)))


def test_linear_torch_init_is_pytorchs_uniform():
    layer = nn.Linear(400, 300, init="torch", rng=0)
    bound = 1 / np.sqrt(400)
    for p in (layer.weight.value, layer.bias.value):
        assert np.abs(p).max() <= bound
    # 120000 uniform draws: the std is within 2% of bound / sqrt(3)
    assert abs(layer.weight.value.std() / (bound / np.sqrt(3)) - 1) < 0.02
