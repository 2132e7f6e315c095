"""The IDX reader on files written here; the digits loader where scikit-learn is installed."""

import gzip
import struct

import numpy as np
import pytest

from graphc import data


def write_idx(path, array, code, compress=False):
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("dtype, code", [(np.uint8, 0x08), (np.int16, 0x0B), (np.int32, 0x0C),
                                         (np.float32, 0x0D), (np.float64, 0x0E)])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips(tmp_path, dtype, code, compress):
    array = (np.arange(24).reshape(2, 3, 4) * 3 - 5 * (dtype != np.uint8)).astype(dtype)
    write_idx(tmp_path / "a.idx", array, code, compress)
    out = data.read_idx(tmp_path / "a.idx")
    np.testing.assert_array_equal(out, array)
    assert out.dtype.byteorder in "=|" and out.dtype == np.dtype(dtype)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"PK\x03\x04junk")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(bad)
    write_idx(bad, np.zeros((2, 2), np.uint8), 0x08)
    bad.write_bytes(bad.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        data.read_idx(bad)
    bad.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(bad)
    bad.write_bytes(b"\x1f\x8bnot gzip")
    with pytest.raises(ValueError, match="gzip"):
        data.read_idx(bad)


def test_load_mnist_from_a_directory(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, 0x08, compress=True)
    write_idx(tmp_path / "t10k-labels.idx1-ubyte", labels, 0x08)
    x, y = data.load_mnist(tmp_path, train=False)
    np.testing.assert_allclose(x, images / 255.0, rtol=1e-6)
    assert x.dtype == np.float32 and y.dtype == np.int32 and y.tolist() == [3, 1, 4, 1, 5]
    with pytest.raises(FileNotFoundError, match="train-images"):
        data.load_mnist(tmp_path, train=True)


def test_load_digits():
    pytest.importorskip("sklearn", reason="load_digits needs the optional scikit-learn")
    images, labels = data.load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float32
    assert images.min() == 0 and images.max() == 1
    assert labels.dtype == np.int32 and set(labels.tolist()) == set(range(10))
