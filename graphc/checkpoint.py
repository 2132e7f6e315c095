"""Checkpoints as .npz files: written atomically, read without unpickling anything.

`save` writes to a temporary file in the target's directory (created 0666 less the umask,
like any file the user writes) and renames it into place, so a crash never leaves a
half-written checkpoint. `load` reads the zip members itself: only the names asked for,
each refused from its declared size (the zip directory's and the .npy header's) before a
byte of its data is read or inflated if that is beyond a bound, so a small file that
declares a huge array costs nothing; it refuses pickled data and turns any damage into a
CheckpointError that names the file."""

from __future__ import annotations

import math
import os
import secrets
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

FORMAT_KEY = "__graphc_checkpoint__"
VERSION = 1
# An .npy header is at most numpy's limit on what it parses (10,000 bytes, then refused)
# plus its magic and length fields: the bytes a member may hold beyond its array data.
MAX_HEADER_BYTES = 1 << 16
NPY_MAGIC = b"\x93NUMPY"
# Errors a damaged zip or .npy member raises while it is parsed and inflated.
_DAMAGE = (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError,
           NotImplementedError, RuntimeError, struct.error, OverflowError)


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
    fd, tmp = _create_temporary(path)
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


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new file next to `path` (.NAME.RANDOM.tmp), open for writing. Created by the kernel
    with mode 0666 less the umask, as any file the user writes (mkstemp would give 0600)."""
    directory = path.parent if str(path.parent) else Path(".")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_BINARY", 0)
    while True:
        tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def load(path: str | os.PathLike, names: Iterable[str] | None = None,
         max_bytes: int | Mapping[str, int] | None = None,
         like: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The named arrays of a checkpoint written by `save`.

    names: read only these (each must be present); None reads every array. max_bytes: the
    most array data a member may declare, one bound for all or by name; by default the
    size of the file itself, which no member `save` writes exceeds (it stores arrays
    uncompressed), so a member that would inflate beyond it is refused unread. like: arrays
    (a model's params) whose shape and dtype the members of their names must have, checked
    from the header before the data is read; their names are read too."""
    path = Path(path)
    fd = _open_regular(path)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if f.read(len(NPY_MAGIC)) == NPY_MAGIC:
            raise CheckpointError(f"checkpoint {path}: a bare .npy array, not an .npz "
                                  "checkpoint (save writes .npz files)")
        f.seek(0)
        bounds = _Bounds(max_bytes, size, like or {})
        if names is not None:
            names = list(dict.fromkeys([*names, *(like or {})]))
        try:
            with zipfile.ZipFile(f) as archive:
                return _read_members(archive, path, names, bounds)
        except CheckpointError:
            raise
        except _DAMAGE as exc:
            raise CheckpointError(f"checkpoint {path} is damaged or not an .npz file: "
                                  f"{exc}") from None


def _open_regular(path: Path) -> int:
    """A read-only descriptor of the regular file at `path` (symlinks followed); opened
    without blocking, so a FIFO is refused instead of waiting for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint {path} does not exist") from None
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be opened: {exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CheckpointError(f"checkpoint {path} is not a regular file")
    return fd


class _Bounds:
    """What each member may declare: at most so many bytes of data (`load`'s max_bytes),
    and for a name of `like`, exactly that array's shape and dtype."""

    def __init__(self, max_bytes: int | Mapping[str, int] | None, file_size: int,
                 like: Mapping[str, np.ndarray]):
        self.by_name = dict(max_bytes) if isinstance(max_bytes, Mapping) else {}
        self.by_name.update({name: value.nbytes for name, value in like.items()})
        self.default = max_bytes if isinstance(max_bytes, int) else file_size
        self.like = like

    def __call__(self, name: str) -> int:
        return self.by_name.get(name, self.default)

    def check(self, name: str, shape: tuple[int, ...], dtype: np.dtype, path: Path) -> None:
        """Raise CheckpointError if `name` must be like an array of another shape or dtype."""
        if name in self.like:
            want = self.like[name]
            if shape != want.shape or dtype != want.dtype:
                raise CheckpointError(f"checkpoint {path}: {name} is {dtype}{list(shape)}, "
                                      f"the model's is {want.dtype}{list(want.shape)}")


def _read_members(archive: zipfile.ZipFile, path: Path, names: Iterable[str] | None,
                  bounds: _Bounds) -> dict[str, np.ndarray]:
    """The arrays `names` (all but the format marker when None), after the format check."""
    members = {info.filename[:-4]: info for info in archive.infolist()
               if info.filename.endswith(".npy")}
    if FORMAT_KEY not in members:
        raise CheckpointError(f"checkpoint {path}: an .npz file, but not a graphc checkpoint "
                              f"(no {FORMAT_KEY} entry)")
    version = _read_member(archive, members[FORMAT_KEY], FORMAT_KEY, _Bounds(16, 0, {}), path)
    if version.shape != () or version.dtype.kind not in "iu" or int(version) != VERSION:
        raise CheckpointError(f"checkpoint {path}: format version {version!r}, expected "
                              f"{VERSION}")
    wanted = [n for n in members if n != FORMAT_KEY] if names is None else list(names)
    missing = sorted(set(wanted) - set(members))
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}")
    return {name: _read_member(archive, members[name], name, bounds, path) for name in wanted}


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, bounds: _Bounds,
                 path: Path) -> np.ndarray:
    """One .npy member as a writable array; refused before its data is read if the zip
    directory or the .npy header declares more than its bound or, for a name that must be
    like an array, another shape or dtype."""
    bound = bounds(name)
    if info.file_size > bound + MAX_HEADER_BYTES:
        raise CheckpointError(f"checkpoint {path}: {name} declares {info.file_size} bytes, "
                              f"more than the {bound} expected")
    with archive.open(info) as stream:
        shape, fortran, dtype = _read_header(stream, name, path)
        if any(n < 0 for n in shape):
            raise CheckpointError(f"checkpoint {path} is damaged: {name} declares the shape "
                                  f"{list(shape)}")
        bounds.check(name, shape, dtype, path)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > bound:
            raise CheckpointError(f"checkpoint {path}: {name} declares {dtype}{list(shape)} "
                                  f"({nbytes} bytes), more than the {bound} expected")
        if stream.tell() + nbytes != info.file_size:
            raise CheckpointError(f"checkpoint {path} is damaged: {name} is {dtype}"
                                  f"{list(shape)} ({nbytes} bytes), but holds "
                                  f"{info.file_size - stream.tell()} bytes of data")
        data = _read_exactly(stream, nbytes)
        if data is None or stream.read(1):  # reading to the end checks the CRC
            raise CheckpointError(f"checkpoint {path} is damaged: {name} is cut short")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


def _read_exactly(stream, nbytes: int, chunk: int = 1 << 20) -> bytearray | None:
    """`nbytes` bytes of `stream` in a new (writable) buffer, read a chunk at a time so
    nothing else of that size is held; None if the stream ends first."""
    data = bytearray(nbytes)
    view, done = memoryview(data), 0
    while done < nbytes:
        piece = stream.read(min(chunk, nbytes - done))
        if not piece:
            return None
        view[done:done + len(piece)] = piece
        done += len(piece)
    return data


def _read_header(stream, name: str, path: Path) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The shape, Fortran order and dtype an .npy header declares; pickled arrays refused."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise CheckpointError(f"checkpoint {path}: {name} is an .npy file of version "
                              f"{version}, expected 1.0 or 2.0")
    if dtype.hasobject:
        raise CheckpointError(f"checkpoint {path}: {name} holds Python objects (a pickle); "
                              "loading never unpickles")
    return shape, fortran, dtype


def check(arrays: Mapping[str, np.ndarray], targets: Mapping[str, object], path) -> None:
    """Raise CheckpointError unless every name of `targets` (name -> gc.param) is in
    `arrays` with the param's shape and dtype, ValueError if a param is read-only: after
    it, `restore` cannot fail midway."""
    missing = sorted(set(targets) - set(arrays))
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}")
    for name, node in targets.items():
        value, current = arrays[name], node.value
        if value.shape != current.shape or value.dtype != current.dtype:
            raise CheckpointError(f"checkpoint {path}: {name} is {value.dtype}"
                                  f"{list(value.shape)}, the model's is {current.dtype}"
                                  f"{list(current.shape)}")
        if not current.flags.writeable:
            raise ValueError(f"cannot restore {name} from checkpoint {path}: the param's "
                             "array is read-only")


def restore(arrays: Mapping[str, np.ndarray], targets: Mapping[str, object], path) -> None:
    """Copy arrays into params (`targets`: name -> gc.param) bit for bit, after checking
    that every name is present with the right shape and dtype."""
    check(arrays, targets, path)
    for name, node in targets.items():
        np.copyto(node.value, arrays[name])
