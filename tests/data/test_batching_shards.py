"""Batches sharded by rank for data-parallel training: each process's slice of every
global batch, the same shuffle on every process, a new one every epoch."""

import numpy as np
import pytest

from graphc import data


def shards(n: int, batch_size: int, size: int, epochs: int = 1, **options) -> list:
    """[rank][epoch][batch] -> the ids that process saw."""
    out = []
    for rank in range(size):
        batches = data.Batches(np.arange(n), batch_size=batch_size, rank=rank, world_size=size,
                               **options)
        out.append([[b[0].tolist() for b in batches] for _ in range(epochs)])
    return out


@pytest.mark.parametrize("n, batch_size, size", [(10, 4, 2), (67, 16, 2), (50, 9, 3), (7, 7, 7)])
def test_the_slices_of_each_step_make_the_global_batch(n, batch_size, size):
    whole = [[b[0].tolist() for b in data.Batches(np.arange(n), batch_size=batch_size, seed=5)]]
    parts = shards(n, batch_size, size, seed=5)
    for rank in range(size):
        assert len(parts[rank][0]) == len(whole[0])  # every process steps as often
    for k, batch in enumerate(whole[0]):
        pieces = [parts[rank][0][k] for rank in range(size)]
        assert sum(pieces, []) == batch  # disjoint, in rank order, complete
        assert max(map(len, pieces)) - min(map(len, pieces)) <= 1


def test_every_epoch_reshuffles_the_same_way_on_every_process():
    parts = shards(40, 8, 2, epochs=2, seed=1)
    assert parts[0][0] != parts[0][1]
    again = shards(40, 8, 2, epochs=2, seed=1)
    assert again == parts


def test_shard_bounds_split_like_array_split():
    for n in range(0, 12):
        for size in range(1, 5):
            bounds = [data.shard_bounds(n, r, size) for r in range(size)]
            expected = np.array_split(np.arange(n), size)
            assert [list(range(a, b)) for a, b in bounds] == [e.tolist() for e in expected]


def test_a_short_last_batch_may_leave_a_slice_empty():
    parts = shards(9, 8, 4)  # the last global batch has one sample
    assert [parts[r][0][-1] for r in range(4)][1:] == [[], [], []]


def test_transform_is_seeded_per_rank():
    seen = {}

    def record(batch, rng):
        seen.setdefault(len(seen), rng.integers(1 << 30))
        return batch

    for rank in (0, 1):
        list(data.Batches(np.arange(8), batch_size=4, rank=rank, world_size=2, transform=record))
    assert len(set(seen.values())) == 4


@pytest.mark.parametrize("options, error", [
    ({"rank": 2, "world_size": 2}, ValueError), ({"rank": -1, "world_size": 2}, ValueError),
    ({"rank": 0, "world_size": 0}, ValueError), ({"rank": 0.5, "world_size": 2}, TypeError),
    ({"rank": 0, "world_size": 5, "batch_size": 4}, ValueError)])
def test_bad_shards_are_refused(options, error):
    options = {"batch_size": 8, **options}
    with pytest.raises(error, match="rank|world_size|batch_size"):
        data.Batches(np.arange(10), **options)
