"""Compare a graphc layer with the same torch.nn layer: a torch state_dict (converted to
NumPy) loads into the graphc layer under the same names, shapes and order, then the
outputs and the gradients of sum(out * w) with respect to the float inputs and every param
(by name) agree. Used by tests/nn/test_attention.py and test_transformer.py."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import graphc as gc


def state_of(tlayer) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in tlayer.state_dict().items()}


def load_from_torch(tlayer, glayer) -> None:
    """torch's state_dict into glayer, after checking names, order, shapes and dtypes."""
    state = state_of(tlayer)
    assert list(glayer.state_dict()) == list(state)
    for name, value in glayer.state_dict().items():
        assert value.shape == state[name].shape and value.dtype == state[name].dtype, name
    glayer.load_state_dict(state)


def randomize(tlayer, seed: int = 0) -> None:
    """Every torch param drawn anew (nonzero biases, so a mix-up of params would show)."""
    import torch

    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in tlayer.parameters():
            p.copy_(torch.tensor(rng.normal(0, 0.5, size=tuple(p.shape))))


def flat(out) -> list:
    if isinstance(out, (tuple, list)):
        return [leaf for item in out for leaf in flat(item)]
    return [] if out is None else [out]


def compare(tlayer, glayer, arrays: list[np.ndarray], call: Callable, *, train: bool = False,
            backend: str = "numpy", rtol: float = 1e-9, atol: float = 1e-11) -> None:
    """call(layer, inputs) builds the layer's output(s) from its inputs (gc.input values or
    torch tensors). tlayer is made float64 and its params drawn anew first."""
    import torch

    tlayer = tlayer.double()
    randomize(tlayer)
    load_from_torch(tlayer, glayer)
    tlayer.train(train)
    glayer.train(train)
    nodes = [gc.input(f"in{k}", a.shape, a.dtype.name) for k, a in enumerate(arrays)]
    outs = flat(call(glayer, nodes))
    rng = np.random.default_rng(1)
    weights = [rng.normal(size=tuple(int(d) for d in o.shape)) for o in outs]
    loss = sum(gc.sum(o * w) for o, w in zip(outs, weights))
    params = glayer.named_params()
    floats = [n for n in nodes if n.dtype.kind == "f"]
    grads = gc.grad(loss, floats + list(params.values()))
    got = gc.compile(nodes, outs + grads, backend=backend)(*arrays)

    tensors = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    touts = flat(call(tlayer, tensors))
    assert len(touts) == len(outs)
    tloss = sum((o * torch.tensor(w)).sum() for o, w in zip(touts, weights))
    tparams = dict(tlayer.named_parameters())
    assert list(tparams) == list(params)
    tloss.backward()
    expected = [o.detach().numpy() for o in touts]
    expected += [t.grad.numpy() for t in tensors if t.requires_grad]
    expected += [tparams[name].grad.numpy() for name in params]
    assert len(got) == len(expected)
    names = [f"output {k}" for k in range(len(outs))] + [f"input {k} grad" for k in
                                                         range(len(floats))] + list(params)
    for name, a, b in zip(names, got, expected):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=name)
