"""Gradient buckets: the backward's completion order, bucket sizes, and gradient params
that are views of the bucket buffers."""

import numpy as np
import pytest

import graphc as gc
from graphc import nn


def mlp_grads():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(),
                          nn.Linear(12, 3))
    x, y = gc.input("x", ("N", 8)), gc.input("y", ("N",), "int32")
    loss = gc.softmax_cross_entropy(model(x, training=True), y)
    params = model.params()
    return model, params, gc.grad(loss, params)


def test_the_last_layer_completes_first():
    model, params, grads = mlp_grads()
    names = {id(p): name for name, p in model.named_params().items()}
    order = [names[id(params[k])] for k in gc.distributed.completion_order(grads)]
    layers = [name.split(".")[0] for name in order]
    assert layers == sorted(layers, reverse=True), order  # linear4, linear2, linear0
    assert sorted(order) == sorted(names.values())


def test_buckets_hold_whole_gradients_up_to_the_cap_in_completion_order():
    _, params, grads = mlp_grads()
    cap = 200  # bytes: the 16x8 and 12x16 weights (512, 768 bytes) get buckets of their own
    planned = gc.distributed.plan_buckets(params, grads, cap)
    order = [params[k] for k in gc.distributed.completion_order(grads)]
    assert [s.param for b in planned for s in b.slots] == order
    for bucket in planned:
        data_bytes = sum(s.param.value.nbytes for s in bucket.slots)
        assert data_bytes <= cap or len(bucket.slots) == 1
    assert len(planned) > 2
    one = gc.distributed.plan_buckets(params, grads, 25_000_000)
    assert len(one) == 1


def test_gradient_params_are_aligned_views_of_their_bucket():
    _, params, grads = mlp_grads()
    (bucket,) = gc.distributed.plan_buckets(params, grads, 1 << 20)
    assert bucket.buffer.ctypes.data % 64 == 0 and bucket.buffer.flags.c_contiguous
    for slot in bucket.slots:
        view = slot.grad.value
        assert view.shape == slot.param.shape and view.dtype == slot.param.dtype
        assert np.shares_memory(view, bucket.buffer) and view.flags.c_contiguous
        assert (view.ctypes.data - bucket.buffer.ctypes.data) == slot.offset * 4
        assert view.ctypes.data % 64 == 0
        view[...] = 1
    assert bucket.buffer.sum() == sum(p.value.size for p in params)  # gaps stay zero


def test_one_dtype_per_bucket():
    a = gc.param("a", np.ones(3, np.float32))
    b = gc.param("b", np.ones(2, np.float64))
    loss = gc.sum(a) + gc.cast(gc.sum(b), "float32")
    planned = gc.distributed.plan_buckets([a, b], gc.grad(loss, [a, b]), 1 << 20)
    assert sorted(bk.dtype.name for bk in planned) == ["float32", "float64"]


def test_bad_plans_are_refused():
    _, params, grads = mlp_grads()
    with pytest.raises(ValueError, match="bucket_bytes"):
        gc.distributed.plan_buckets(params, grads, 0)
    with pytest.raises(ValueError, match="gradients"):
        gc.distributed.plan_buckets(params, grads[:-1], 100)
