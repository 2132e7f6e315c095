"""The shape ops under PyTorch's names against PyTorch (values and gradients), their
symbolic dims, and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc as gc
from tests.ops.oracle import agree_with_torch

X = np.random.default_rng(5).normal(size=(2, 3, 4))


def _joined(pieces):
    """A tuple of pieces as one value (each flattened), for one comparison."""
    if isinstance(pieces[0], torch.Tensor):
        return torch.cat([p.reshape(-1) for p in pieces])
    return gc.concat([p.reshape(-1) for p in pieces])


@pytest.mark.parametrize("ours,theirs", [
    (lambda v: gc.stack([v, 2.0 * v], dim=-1), lambda v: torch.stack([v, 2.0 * v], -1)),
    (lambda v: _joined(gc.split(v, 3, dim=2)), lambda v: _joined(torch.split(v, 3, 2))),
    (lambda v: _joined(gc.split(v, [1, 0, 2], 1)), lambda v: _joined(torch.split(v, [1, 0, 2], 1))),
    (lambda v: _joined(gc.chunk(v, 3, dim=2)), lambda v: _joined(torch.chunk(v, 3, 2))),
    (lambda v: _joined(gc.unbind(v, 1)), lambda v: _joined(torch.unbind(v, 1))),
    (lambda v: gc.flip(v, (0, 2)), lambda v: torch.flip(v, (0, 2))),
    (lambda v: gc.roll(v, 5), lambda v: torch.roll(v, 5)),
    (lambda v: gc.roll(v, (-1, 7), (2, 1)), lambda v: torch.roll(v, (-1, 7), (2, 1))),
    (lambda v: gc.tile(v, (2, 1)), lambda v: torch.tile(v, (2, 1))),
    (lambda v: gc.repeat(v, 2, 1, 1, 3), lambda v: v.repeat(2, 1, 1, 3)),
    (lambda v: gc.repeat_interleave(v, 3, dim=1), lambda v: torch.repeat_interleave(v, 3, 1)),
    (lambda v: gc.repeat_interleave(v, [2, 0, 1], dim=1),
     lambda v: torch.repeat_interleave(v, torch.tensor([2, 0, 1]), 1)),
    (lambda v: gc.repeat_interleave(v, 2), lambda v: torch.repeat_interleave(v, 2)),
    (lambda v: gc.permute(v, (2, 0, 1)), lambda v: torch.permute(v, (2, 0, 1))),
    (lambda v: gc.unsqueeze(v, -1), lambda v: torch.unsqueeze(v, -1)),
    (lambda v: gc.flatten(v, 1), lambda v: torch.flatten(v, 1)),
    (lambda v: gc.unflatten(v, 2, (2, -1)), lambda v: torch.unflatten(v, 2, (2, -1))),
    (lambda v: gc.expand(v[:, :1], 5, -1, 3, 4), lambda v: v[:, :1].expand(5, -1, 3, 4)),
])
def test_shape_ops_follow_torch(ours, theirs):
    agree_with_torch(ours, theirs, [X], backends=("numpy",))


def test_shape_ops_compile_natively():
    """One LLVM program of several (each is a composition of ops the op table runs)."""
    agree_with_torch(lambda v: gc.concat([gc.roll(gc.flip(v, 1), 1, 2).reshape(-1),
                                          gc.repeat(v, 1, 2, 1).reshape(-1),
                                          gc.repeat_interleave(v, [1, 2, 0], 1).reshape(-1)]),
                     lambda v: torch.cat([torch.roll(torch.flip(v, (1,)), 1, 2).reshape(-1),
                                          v.repeat(1, 2, 1).reshape(-1),
                                          torch.repeat_interleave(v, torch.tensor([1, 2, 0]),
                                                                  1).reshape(-1)]),
                     [X], backends=("llvm",))


def test_symbolic_dims_go_through_where_sizes_are_not_needed():
    x = gc.input("x", ("N", 3))
    assert gc.tile(x, (2, 1)).shape == (2 * x.shape[0], 3)
    assert gc.repeat_interleave(x, 2, 0).shape == (2 * x.shape[0], 3)
    assert gc.flip(x, 0).shape == x.shape
    assert gc.flatten(x).shape == (3 * x.shape[0],)
    assert gc.stack([x, x], 1).shape == (x.shape[0], 2, 3)


@pytest.mark.parametrize("build,message", [
    (lambda x: gc.stack([x, x[:, :1]]), r"stack: values must have one shape"),
    (lambda x: gc.stack(x), "stack: needs a non-empty list"),
    (lambda x: gc.split(x, [1, 1], 1), r"split: sections \[1, 1\] add up to 2, not the size 3"),
    (lambda x: gc.split(x, 0, 1), "split: split_size must be at least 1"),
    (lambda x: gc.split(x, 1, 0), "split: axis 0 of .N, 3. has symbolic size N, but split"),
    (lambda x: gc.chunk(x, 0, 1), "chunk: chunks must be at least 1"),
    (lambda x: gc.roll(x, (1, 2), 1), "roll: shifts .1, 2. and dims .1. differ in length"),
    (lambda x: gc.tile(x, (-1,)), "tile: reps must be at least 0"),
    (lambda x: gc.repeat(x, 2), r"repeat: needs at least 2 sizes for \(N, 3\)"),
    (lambda x: gc.repeat_interleave(x, [1, 2], 1), "repeat_interleave: 2 repeats for axis 1"),
    (lambda x: gc.repeat_interleave(x, gc.input("r", (3,), "int32"), 1),
     "repeat_interleave: repeats must be an int or constant counts"),
    (lambda x: gc.permute(x, (0, 0)), "permute: dims .0, 0. are not a permutation"),
    (lambda x: gc.flatten(x, 1, 0), "flatten: start_dim 1 comes after end_dim 0"),
    (lambda x: gc.unflatten(x, 1, (2, -1)), "unflatten: cannot split axis 1"),
    (lambda x: gc.expand(x, -1, 4), r"expand: cannot broadcast \(N, 3\) to \(N, 4\)"),
    (lambda x: gc.unsqueeze(x, 3), "unsqueeze: dim: axis 3 is out of range"),
])
def test_bad_arguments_are_refused_at_build_time(build, message):
    x = gc.input("x", ("N", 3))
    with pytest.raises(gc.GraphError, match=message + r".*test_rearrange.py"):
        build(x)
