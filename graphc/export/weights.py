"""The weights file of an export (`name.weights.bin`), written here and read by the
exported C runtime (and by `read_weights`, for Python).

Format, all integers little-endian:

    offset 0   8 bytes   magic "GCWEIGHT"
           8   u32       format version (1)
          12   u32       number of params
          16   u64       total file size in bytes
          24   16 bytes  fingerprint: the first 16 bytes of SHA-256 over the params'
                         names, dtypes and shapes (a file for another model is refused)
          40   24 bytes  zero
          64   the params in the manifest's order, each at a 64-byte aligned offset
               (the manifest and the header list them), C order, little-endian, zero
               padding between them

A C program writes the same format back with `name_save_weights`.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"GCWEIGHT"
VERSION = 1
HEADER = struct.Struct("<8sIIQ16s24x")
ALIGN = 64


@dataclass(frozen=True)
class Entry:
    """One param in the file: its name, dtype, shape, byte offset and size."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int
    nbytes: int


def fingerprint(params: Sequence[tuple[str, np.dtype, tuple[int, ...]]]) -> bytes:
    """16 bytes naming the params' names, dtypes and shapes, in order."""
    text = json.dumps([[name, np.dtype(dtype).name, [int(d) for d in shape]]
                       for name, dtype, shape in params], separators=(",", ":"))
    return hashlib.sha256(text.encode()).digest()[:16]


def layout(params: Sequence[tuple[str, np.dtype, tuple[int, ...]]]) -> tuple[list[Entry], int]:
    """Each param's place in the file, and the file's total size."""
    entries, offset = [], HEADER.size
    for name, dtype, shape in params:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        offset = _aligned(offset)
        entries.append(Entry(name, dtype, tuple(int(d) for d in shape), offset, nbytes))
        offset += nbytes
    return entries, offset


def encode(arrays: Sequence[tuple[str, np.ndarray]]) -> bytes:
    """The file's bytes for (name, value) pairs, in order."""
    described = [(name, a.dtype, a.shape) for name, a in arrays]
    entries, total = layout(described)
    out = bytearray(total)
    out[:HEADER.size] = HEADER.pack(MAGIC, VERSION, len(entries), total, fingerprint(described))
    for entry, (_, array) in zip(entries, arrays):
        data = np.ascontiguousarray(array, dtype=entry.dtype.newbyteorder("<")).tobytes()
        out[entry.offset:entry.offset + entry.nbytes] = data
    return bytes(out)


def write(path: str | os.PathLike, arrays: Sequence[tuple[str, np.ndarray]]) -> Path:
    """Write the weights file for (name, value) pairs (atomically: a reader sees the old
    file or the new one)."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(encode(arrays))
    os.replace(temporary, path)
    return path


def read_weights(manifest: dict | str | os.PathLike,
                 path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """The params in a weights file, by name, checked against an export's manifest (a
    dict, or the path of `name.json`); `path` defaults to the weights file beside the
    manifest. Raises ValueError naming what does not fit (another model's file, a
    truncated file)."""
    if not isinstance(manifest, dict):
        manifest_path = Path(manifest)
        manifest = json.loads(manifest_path.read_text())
        if path is None:
            path = manifest_path.parent / manifest["weights"]["file"]
    elif path is None:
        raise TypeError("read_weights: pass the weights file's path with a manifest dict")
    params = [(p["name"], np.dtype(p["dtype"]), tuple(p["shape"])) for p in manifest["params"]]
    data = Path(path).read_bytes()
    if len(data) < HEADER.size:
        raise ValueError(f"{path}: {len(data)} bytes is too short for a weights file")
    magic, version, count, total, mark = HEADER.unpack_from(data)
    entries, expected = layout(params)
    if magic != MAGIC or version != VERSION:
        raise ValueError(f"{path}: not a graphc weights file (magic {magic!r}, version "
                         f"{version})")
    if count != len(entries) or mark != fingerprint(params):
        raise ValueError(f"{path}: the weights of another model (its params differ from "
                         f"those of {manifest['name']!r} in names, dtypes or shapes)")
    if total != expected or len(data) != expected:
        raise ValueError(f"{path}: {len(data)} bytes, the header says {total}, "
                         f"{manifest['name']!r} needs {expected}")
    return {e.name: np.frombuffer(data, e.dtype.newbyteorder("<"), int(np.prod(e.shape)),
                                  e.offset).astype(e.dtype).reshape(e.shape)
            for e in entries}


def _aligned(offset: int) -> int:
    return -(-offset // ALIGN) * ALIGN
