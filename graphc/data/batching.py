"""Mini-batches with seeded shuffling, and a seeded train/test split."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np


def _check_arrays(owner: str, arrays) -> tuple[np.ndarray, ...]:
    if not arrays:
        raise ValueError(f"{owner}: needs at least one array")
    arrays = tuple(np.asarray(a) for a in arrays)
    for k, a in enumerate(arrays):
        if a.ndim == 0:
            raise ValueError(f"{owner}: array {k} is a scalar; arrays need a sample axis")
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"{owner}: the arrays have different numbers of samples "
                         f"{[len(a) for a in arrays]}")
    return arrays


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """[start, stop) of the part of n samples that process `rank` of `world_size` takes:
    contiguous parts in rank order, the first n % world_size of them one sample longer
    (as numpy.array_split), so the parts put end to end are the n samples."""
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


class Batches:
    """Iterate over (x_batch, y_batch, ...) tuples of `batch_size` samples.

    Each pass (epoch) shuffles with a generator seeded by (seed, epoch), so the order is
    new every epoch and the same on every run. `transform(batch, rng)` (e.g. an
    augmentation) applies to the first array of each batch with its own seeded generator.

    Sharding for data-parallel training: with world_size > 1, `batch_size` is the global
    batch and this process (`rank`) gets its slice of each global batch (shard_bounds).
    Every process shuffles with the same seed, so the slices of one step are disjoint and
    together make the global batch; every process sees the same number of batches (a
    short last batch may leave some slices empty). Its transform's generator is seeded
    by (seed, epoch, batch, 1, rank).
    """

    def __init__(self, *arrays, batch_size: int = 32, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False,
                 transform: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
                 rank: int = 0, world_size: int = 1):
        self.arrays = _check_arrays("Batches", arrays)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Batches: batch_size must be a positive int, got {batch_size!r}")
        _check_shard(rank, world_size, batch_size)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.drop_last, self.transform = drop_last, transform
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.arrays[0])
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def sizes(self) -> list[int]:
        """The number of samples of each batch a pass yields (this process's slices when
        sharded), in order: the full batch size, and a last smaller batch or none."""
        n = len(self.arrays[0])
        out = []
        for k in range(len(self)):
            size = min(self.batch_size, n - k * self.batch_size)
            if self.world_size > 1:
                start, stop = shard_bounds(size, self.rank, self.world_size)
                size = stop - start
            out.append(size)
        return out

    def __iter__(self) -> Iterator[tuple[np.ndarray, ...]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        n = len(self.arrays[0])
        order = (np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle
                 else np.arange(n))
        for k in range(len(self)):
            index = order[k * self.batch_size:(k + 1) * self.batch_size]
            if self.world_size > 1:
                start, stop = shard_bounds(len(index), self.rank, self.world_size)
                index = index[start:stop]
            batch = tuple(a[index] for a in self.arrays)
            if self.transform is not None:
                key = [self.seed, epoch, k, 1] + ([self.rank] if self.world_size > 1 else [])
                rng = np.random.default_rng(key)
                batch = (self.transform(batch[0], rng),) + batch[1:]
            yield batch


def _check_shard(rank, world_size, batch_size: int) -> None:
    for name, value in (("rank", rank), ("world_size", world_size)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"Batches: {name} must be an int, got {value!r}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"Batches: need 0 <= rank < world_size, got rank {rank} and "
                         f"world_size {world_size}")
    if batch_size < world_size:
        raise ValueError(f"Batches: a global batch_size of {batch_size} cannot give each of "
                         f"{world_size} processes a sample; use a batch_size >= world_size")


def train_test_split(*arrays, test_size: float = 0.2, seed: int = 0) -> list[np.ndarray]:
    """[a_train, a_test, b_train, b_test, ...]: a seeded random split of the samples."""
    arrays = _check_arrays("train_test_split", arrays)
    n = len(arrays[0])
    if not 0 < test_size < 1:
        raise ValueError(f"train_test_split: test_size must be in (0, 1), got {test_size!r}")
    n_test = int(round(n * test_size))
    if not 0 < n_test < n:
        raise ValueError(f"train_test_split: {n} samples cannot be split with test_size "
                         f"{test_size}")
    order = np.random.default_rng(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    return [part for a in arrays for part in (a[train], a[test])]
