"""Checkpoint files: atomic writes, no unpickling, clear errors, exact round trips."""

import os

import numpy as np
import pytest

from graphc import checkpoint


def arrays():
    rng = np.random.default_rng(0)
    return {"model/w": rng.normal(size=(3, 4)).astype(np.float32),
            "optimizer/step": np.array(7, np.int64), "x": rng.normal(size=5)}


def test_round_trip_is_bit_exact(tmp_path):
    saved = arrays()
    checkpoint.save(tmp_path / "c.npz", saved)
    loaded = checkpoint.load(tmp_path / "c.npz")
    assert loaded.keys() == saved.keys()
    for k in saved:
        assert loaded[k].dtype == saved[k].dtype
        assert loaded[k].tobytes() == saved[k].tobytes()


def test_save_replaces_atomically_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "c.npz"
    checkpoint.save(path, {"a": np.zeros(2)})
    checkpoint.save(path, {"a": np.ones(2)})
    assert os.listdir(tmp_path) == ["c.npz"]
    np.testing.assert_array_equal(checkpoint.load(path)["a"], [1, 1])


def test_a_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "c.npz"
    checkpoint.save(path, {"a": np.zeros(2)})
    with pytest.raises(TypeError, match="Python objects"):
        checkpoint.save(path, {"a": np.array([object()])})
    np.testing.assert_array_equal(checkpoint.load(path)["a"], [0, 0])
    assert os.listdir(tmp_path) == ["c.npz"]


def test_corrupted_files_give_a_clear_error(tmp_path):
    path = tmp_path / "c.npz"
    checkpoint.save(path, arrays())
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3] ^= 0xFF  # a flipped byte inside the stored arrays
    path.write_bytes(bytes(raw))
    with pytest.raises(checkpoint.CheckpointError, match="damaged"):
        checkpoint.load(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(checkpoint.CheckpointError, match=str(path)):
        checkpoint.load(path)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.load(path)


def test_pickles_are_never_loaded(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, evil=np.array([{"a": 1}], dtype=object), **{checkpoint.FORMAT_KEY: 1})
    with pytest.raises(checkpoint.CheckpointError, match="pickle"):
        checkpoint.load(path)


def test_foreign_npz_and_missing_files(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(checkpoint.CheckpointError, match="not a graphc checkpoint"):
        checkpoint.load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "missing.npz")
