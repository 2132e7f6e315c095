"""Seeded batching and splitting."""

import numpy as np
import pytest

from graphc import data


def test_batches_cover_every_sample_once_per_epoch_in_a_seeded_order():
    x, y = np.arange(10.0), np.arange(10) * 2
    batches = data.Batches(x, y, batch_size=4, seed=3)
    assert len(batches) == 3
    first = list(batches)
    assert [len(b[0]) for b in first] == [4, 4, 2]
    seen = np.concatenate([b[0] for b in first])
    assert sorted(seen) == list(x)
    for bx, by in first:
        np.testing.assert_array_equal(by, bx * 2)
    second = np.concatenate([b[0] for b in batches])
    assert not np.array_equal(seen, second)  # a new order each epoch
    again = data.Batches(x, y, batch_size=4, seed=3)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in again]), seen)


def test_no_shuffle_and_drop_last():
    batches = data.Batches(np.arange(10), batch_size=4, shuffle=False, drop_last=True)
    assert [b[0].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_transform_is_seeded_per_epoch_and_batch():
    images = np.zeros((8, 1, 4, 4), np.float32)
    noise = data.GaussianNoise(1.0)
    a = [b[0] for b in data.Batches(images, batch_size=4, seed=1, transform=noise)]
    b = [b[0] for b in data.Batches(images, batch_size=4, seed=1, transform=noise)]
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], a[1])


def test_train_test_split_is_a_seeded_partition():
    x, y = np.arange(20), np.arange(20) + 100
    x_tr, x_te, y_tr, y_te = data.train_test_split(x, y, test_size=0.25, seed=0)
    assert len(x_te) == 5 and len(x_tr) == 15
    assert sorted(np.concatenate([x_tr, x_te])) == list(x)
    np.testing.assert_array_equal(y_te, x_te + 100)
    np.testing.assert_array_equal(data.train_test_split(x, test_size=0.25, seed=0)[1], x_te)


def test_errors():
    with pytest.raises(ValueError, match="different numbers"):
        data.Batches(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        data.Batches(np.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="test_size"):
        data.train_test_split(np.zeros(3), test_size=1.5)


@pytest.mark.parametrize("n, batch_size, drop_last", [(10, 4, False), (10, 4, True),
                                                      (12, 4, False), (3, 8, False)])
def test_sizes_are_the_lengths_a_pass_yields(n, batch_size, drop_last):
    batches = data.Batches(np.arange(n), batch_size=batch_size, drop_last=drop_last)
    assert batches.sizes() == [len(b[0]) for b in batches]


def test_sizes_of_a_shard_are_its_slices():
    for rank in range(3):
        batches = data.Batches(np.arange(11), batch_size=6, rank=rank, world_size=3)
        assert batches.sizes() == [len(b[0]) for b in batches]
