"""Checkpoints as .npz files: written atomically, read without unpickling anything.

`save` writes to a temporary file in the target's directory and renames it into place,
so a crash never leaves a half-written checkpoint; `load` refuses pickled data and turns
any damage into a CheckpointError that names the file."""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

FORMAT_KEY = "__graphc_checkpoint__"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is damaged, not a graphc checkpoint, or does not fit the model."""


def save(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write named arrays to `path` (an .npz file) atomically; returns the path."""
    path = Path(path)
    checked = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name or name == FORMAT_KEY:
            raise ValueError(f"checkpoint: invalid array name {name!r}")
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise TypeError(f"checkpoint: array {name!r} holds Python objects; only numeric "
                            "arrays can be saved (loading never unpickles)")
        checked[name] = array
    checked[FORMAT_KEY] = np.array(VERSION)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **checked)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The named arrays of a checkpoint written by `save`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise CheckpointError(f"checkpoint {path}: a bare .npy array, not an .npz "
                                      "checkpoint")
            arrays = {name: archive[name] for name in archive.files}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path} is damaged or not an .npz file: {exc}") \
            from None
    version = arrays.pop(FORMAT_KEY, None)
    if version is None:
        raise CheckpointError(f"checkpoint {path}: an .npz file, but not a graphc checkpoint "
                              f"(no {FORMAT_KEY} entry)")
    if version.shape != () or int(version) != VERSION:
        raise CheckpointError(f"checkpoint {path}: format version {version}, expected {VERSION}")
    return arrays


def restore(arrays: Mapping[str, np.ndarray], targets: Mapping[str, object], path) -> None:
    """Copy arrays into params (`targets`: name -> gc.param) bit for bit, after checking
    that every name is present with the right shape and dtype."""
    missing = sorted(set(targets) - set(arrays))
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}")
    for name, node in targets.items():
        value, current = arrays[name], node.value
        if value.shape != current.shape or value.dtype != current.dtype:
            raise CheckpointError(f"checkpoint {path}: {name} is {value.dtype}"
                                  f"{list(value.shape)}, the model's is {current.dtype}"
                                  f"{list(current.shape)}")
    for name, node in targets.items():
        np.copyto(node.value, arrays[name])
