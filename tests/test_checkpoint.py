"""Checkpoint files: atomic writes, no unpickling, clear errors, exact round trips."""

import io
import os
import stat
import subprocess
import sys
import time
import tracemalloc
import zipfile

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


# ----- hostile checkpoints (issue 13, item 13) -------------------------------------------------

def _npy(array_header: dict, data: bytes = b"") -> bytes:
    """An .npy file: the header for `array_header` (descr, fortran_order, shape), then data."""
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, array_header)
    return stream.getvalue() + data


def _with_member(path, name: str, content: bytes, compress=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(f"{name}.npy", content, compress_type=compress)


def _peak_bytes(fn) -> int:
    """The most memory Python held while fn() ran (its exceptions propagate)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_member_declaring_a_huge_shape_is_refused_before_reading(tmp_path):
    """A 16 GiB float32 array declared in 300 bytes: refused by the declared size, without
    allocating or inflating anything."""
    path = tmp_path / "c.npz"
    checkpoint.save(path, arrays())
    header = {"descr": "<f4", "fortran_order": False, "shape": (2**32,)}
    _with_member(path, "huge", _npy(header, bytes(16)))
    assert path.stat().st_size < 4096
    started = time.perf_counter()
    with pytest.raises(checkpoint.CheckpointError,
                       match=r"huge declares float32\[4294967296\] \(17179869184 bytes\)"):
        _peak_bytes(lambda: checkpoint.load(path))
    assert time.perf_counter() - started < 1
    assert _peak_bytes(lambda: checkpoint.load(path, names=["x"])) < 1 << 20  # unread


def test_a_member_inflating_beyond_the_bound_is_refused_unread(tmp_path):
    """A deflated member of 64 MiB of zeros (64 KB in the file): beyond the file's own size,
    the default bound (save stores arrays uncompressed), and beyond a target's size."""
    path = tmp_path / "c.npz"
    checkpoint.save(path, arrays())
    header = {"descr": "<f4", "fortran_order": False, "shape": (2**24,)}
    _with_member(path, "zeros", _npy(header, bytes(2**26)), zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2**20
    for load in (lambda: checkpoint.load(path),
                 lambda: checkpoint.load(path, names=["zeros"], max_bytes={"zeros": 1000})):
        with pytest.raises(checkpoint.CheckpointError, match=r"zeros declares 67108992 bytes"):
            assert _peak_bytes(load) < 1 << 20
    assert checkpoint.load(path, max_bytes=2**26)["zeros"].shape == (2**24,)  # when allowed


def test_names_reads_only_those_members_and_requires_them(tmp_path):
    path = tmp_path / "c.npz"
    checkpoint.save(path, arrays())
    loaded = checkpoint.load(path, names=["x", "model/w"])
    assert sorted(loaded) == ["model/w", "x"]
    assert loaded["x"].tobytes() == arrays()["x"].tobytes()
    with pytest.raises(checkpoint.CheckpointError, match=r"c.npz lacks \['nope'\]"):
        checkpoint.load(path, names=["x", "nope"])


def test_a_member_whose_size_disagrees_with_its_header_is_damaged(tmp_path):
    path = tmp_path / "c.npz"
    checkpoint.save(path, {"a": np.zeros(2)})
    header = {"descr": "<f8", "fortran_order": False, "shape": (4,)}
    _with_member(path, "short", _npy(header, bytes(16)))
    with pytest.raises(checkpoint.CheckpointError, match="short.*32 bytes"):
        checkpoint.load(path)


def test_loaded_arrays_are_writable_and_keep_their_order(tmp_path):
    saved = {"f": np.asfortranarray(np.arange(6.0).reshape(2, 3)), "s": np.float32(2.5),
             "e": np.zeros((0, 3), np.int16), "b": np.array([True, False])}
    checkpoint.save(tmp_path / "c.npz", saved)
    loaded = checkpoint.load(tmp_path / "c.npz")
    for name, value in saved.items():
        np.testing.assert_array_equal(loaded[name], value)
        assert loaded[name].dtype == value.dtype and loaded[name].flags.writeable
    assert loaded["f"].flags.f_contiguous


def test_a_bare_npy_file_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "w.npy"
    np.save(path, np.arange(3.0))
    with pytest.raises(checkpoint.CheckpointError, match=r"w.npy: a bare \.npy array"):
        checkpoint.load(path)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "c.npz"
    os.mkfifo(path)
    done = subprocess.run([sys.executable, "-c", "import sys; from graphc import checkpoint\n"
                           "try: checkpoint.load(sys.argv[1])\n"
                           "except checkpoint.CheckpointError as e: print(e)", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert "not a regular file" in done.stdout, done.stderr


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_save_honours_the_umask(tmp_path, umask, mode):
    """Like any file the user writes: 0666 less the umask (mkstemp alone gives 0600)."""
    old = os.umask(umask)
    try:
        path = checkpoint.save(tmp_path / "c.npz", arrays())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert os.listdir(tmp_path) == ["c.npz"]
