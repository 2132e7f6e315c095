"""The disk cache of compiled object code, under $XDG_CACHE_HOME/graphc (default
~/.cache/graphc); GRAPHC_CACHE=0 turns it off.

An entry is keyed by key.variant_key (the unoptimized program, compile options, binding
and code fingerprint, computed before anything is optimized) and holds a compiled variant
(layout.py: its run-time layout and object code). Its file holds a header (magic, key,
payload length, payload hash) before the payload, so a truncated, corrupt or foreign file
is recognized and ignored (then rebuilt). Writers go
through a temporary file and an atomic rename, so concurrent compilers never see half a
file. An entry is opened without following a symlink and without blocking, and read only
if it is a regular file of at most MAX_ENTRY_BYTES: a FIFO, a device or a huge file under
an entry's name is a miss, never a hang or an exhausted memory. A writer killed between
its temporary file and the rename leaves a .tmp-*.o file: the first store of a process
removes those older than STALE_TEMP_SECONDS, `graphc cache clear` removes them all. The
folder also holds key.py's table of graphc's source hashes (sources-*), written the same way.

The cache folder must be trusted: an entry forged with a correct digest runs its code in
every process that compiles that program. The folder is created mode 0700 and its entries
0600; a folder owned by another user or writable by every user (a squatted /tmp/graphc) is
not used, with a warning. Whoever else can write it (a group of a shared 0775 folder) is
trusted.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import tempfile
import time
import warnings
from pathlib import Path

MAGIC = b"GRAPHC-OBJ-1\n"
_HEADER = struct.Struct("<32sQ32s")  # key digest, payload length, payload digest
# The largest entry read or written. An entry is a variant's object code and the constants
# folded into it: the lenet training step's is 110 KB, so 256 MiB leaves room for graphs
# with big constants while a stray huge file costs at most that much memory (and a bigger
# payload is simply not cached, so `store` never writes what `load` would refuse).
MAX_ENTRY_BYTES = 256 << 20
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
    | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)

TEMP_PREFIX, SUFFIX = ".tmp-", ".o"
SOURCE_TABLE_PREFIX = "sources-"  # key.py's tables of graphc's source hashes
# A temporary file lives from mkstemp to the rename, milliseconds of writing; one an hour
# old is an orphan of a killed writer, never a live write.
STALE_TEMP_SECONDS = 3600
_swept: set[Path] = set()  # the folders this process has swept of stale temporary files
_warned: set[Path] = set()  # the untrusted folders this process has warned about


def enabled() -> bool:
    return os.environ.get("GRAPHC_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "graphc"


def path_of(key: bytes) -> Path:
    return directory() / f"{key.hex()}{SUFFIX}"


def entries(folder: Path) -> list[Path]:
    """The entries in `folder`: the names `path_of` gives (whatever kind of file they are)."""
    return sorted(p for p in _listing(folder) if p.name.endswith(SUFFIX)
                  and len(p.stem) == 64 and all(c in "0123456789abcdef" for c in p.stem))


def source_tables(folder: Path) -> list[Path]:
    """The source-hash tables in `folder` (key.py: one per source tree, sources-<16 hex>)."""
    return sorted(p for p in _listing(folder) if p.name.startswith(SOURCE_TABLE_PREFIX)
                  and len(p.name) == len(SOURCE_TABLE_PREFIX) + 16
                  and all(c in "0123456789abcdef" for c in p.name[len(SOURCE_TABLE_PREFIX):]))


def temp_files(folder: Path) -> list[Path]:
    """The temporary files of writers in `folder`, live or orphaned (.tmp-*.o)."""
    return sorted(p for p in _listing(folder)
                  if p.name.startswith(TEMP_PREFIX) and p.name.endswith(SUFFIX))


def _listing(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:  # absent, not a folder, unreadable
        return []


def sweep_temp_files(folder: Path, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Remove the temporary files in `folder` last modified more than `older_than` seconds
    ago; returns how many were removed (a file another process removes first is skipped)."""
    removed, now = 0, time.time()
    for path in temp_files(folder):
        try:
            if now - path.lstat().st_mtime > older_than:
                path.unlink()
                removed += 1
        except OSError:
            pass
    return removed


def load(key: bytes) -> bytes | None:
    """The payload stored under key, or None if absent or not a valid entry for it."""
    return _payload(read_file(path_of(key).name), key)


def payload_of(entry: Path) -> bytes | None:
    """The payload of an entry file (one of `entries(folder)`, any folder), as `load`
    checks it; None if it is not a valid entry."""
    return _payload(_read(entry), bytes.fromhex(entry.stem))


def _payload(data: bytes | None, key: bytes) -> bytes | None:
    if data is None:
        return None
    start = len(MAGIC) + _HEADER.size
    if len(data) < start or not data.startswith(MAGIC):
        return None
    stored_key, length, digest = _HEADER.unpack_from(data, len(MAGIC))
    payload = data[start:]
    if stored_key != key or length != len(payload) or hashlib.sha256(payload).digest() != digest:
        return None
    return payload


def _trusted(folder: Path) -> bool:
    """Whether `folder` is safe to run code from: not owned by another user, not writable by
    every user (absent counts as safe: `store` creates it private). Warns once per folder."""
    try:
        info = folder.stat()
    except OSError:
        return True
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        problem = f"owned by uid {info.st_uid}, not by this user (uid {os.geteuid()})"
    elif info.st_mode & stat.S_IWOTH:
        problem = "writable by every user"
    else:
        return True
    if folder not in _warned:
        _warned.add(folder)
        warnings.warn(f"graphc: not using the compiled-code cache {folder}: it is {problem}, "
                      "so others could plant code that compiled functions would run; make "
                      f"it yours and private (chmod 700 {folder}), point XDG_CACHE_HOME "
                      "elsewhere, or set GRAPHC_CACHE=0", UserWarning, stacklevel=4)
    return False


def read_file(name: str) -> bytes | None:
    """The bytes of the file `name` in the cache folder as `_read` reads them; None when
    the folder is not trusted."""
    folder = directory()
    return _read(folder / name) if _trusted(folder) else None


def _read(path: Path) -> bytes | None:
    """The bytes of the regular file at `path` if it is at most MAX_ENTRY_BYTES long; None
    for anything else (absent, a symlink, a FIFO or device, too big, unreadable)."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ENTRY_BYTES:
                return None
            data = f.read(info.st_size + 1)  # one byte more: a file that grew is refused
    except OSError:
        return None
    return data if len(data) == info.st_size else None


def store(key: bytes, payload: bytes) -> None:
    """Write an entry atomically; a cache that cannot be written is silently skipped, and so
    is a payload too big to be read back (MAX_ENTRY_BYTES)."""
    if len(MAGIC) + _HEADER.size + len(payload) <= MAX_ENTRY_BYTES:
        write_file(path_of(key).name, MAGIC,
                   _HEADER.pack(key, len(payload), hashlib.sha256(payload).digest()), payload)


def write_file(name: str, *chunks: bytes) -> None:
    """Write the file `name` in the cache folder (created private) whole or not at all:
    through a temporary file and an atomic rename. Skipped silently when the folder cannot
    be written or is not trusted."""
    folder = directory()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _trusted(folder):
            return
        if folder not in _swept:
            _swept.add(folder)
            sweep_temp_files(folder)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=SUFFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            os.replace(temp, folder / name)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError:
        pass
