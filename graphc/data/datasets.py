"""Datasets: scikit-learn's 8x8 digits (an optional extra), and MNIST-format IDX files a
user already has on disk (graphc downloads nothing)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

# IDX type codes and the big-endian dtypes they store.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images, labels): 1797 8x8 handwritten digits as float32 (N, 8, 8) in [0, 1] and
    int32 labels 0-9. Needs scikit-learn (`pip install graphc[digits]`), which ships them."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits  # an optional extra
    except ImportError:
        raise ImportError("load_digits needs scikit-learn, which ships the digits data: "
                          "pip install 'graphc[digits]' (or scikit-learn)") from None
    digits = sklearn_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target.astype(np.int32)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array in an IDX file (the MNIST format), gzip-compressed or not.

    Raises ValueError naming the file if its header or size is not valid IDX."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: not a valid gzip file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'none'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: IDX header declares {ndim} dims but the file is truncated")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: IDX header says shape {shape} of {dtype.str} "
                         f"({expected} bytes), but the file holds {len(raw) - header} bytes")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_mnist(directory: str | os.PathLike, train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) from MNIST's IDX files in `directory` (named as distributed, e.g.
    train-images-idx3-ubyte or train-images.idx3-ubyte, optionally .gz): float32 images
    (N, 28, 28) in [0, 1] and int32 labels."""
    prefix = "train" if train else "t10k"
    images = read_idx(_find(Path(directory), f"{prefix}-images", "idx3-ubyte"))
    labels = read_idx(_find(Path(directory), f"{prefix}-labels", "idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{directory}: MNIST images {images.shape} and labels {labels.shape} "
                         "do not match")
    return (images / 255.0).astype(np.float32), labels.astype(np.int32)


def _find(directory: Path, stem: str, kind: str) -> Path:
    candidates = [directory / f"{stem}{sep}{kind}{gz}" for sep in ("-", ".")
                  for gz in ("", ".gz")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no {stem} file in {directory} (looked for "
                            f"{', '.join(c.name for c in candidates)})")
