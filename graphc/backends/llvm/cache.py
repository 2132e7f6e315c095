"""The disk cache of compiled object code, under $XDG_CACHE_HOME/graphc (default
~/.cache/graphc); GRAPHC_CACHE=0 turns it off.

An entry is keyed by key.variant_key (the unoptimized program, compile options, binding
and code fingerprint, computed before anything is optimized) and holds a compiled variant
(layout.py: its run-time layout and object code). Its file holds a header (magic, key,
payload length, payload hash) before the payload, so a truncated, corrupt or foreign file
is recognized and ignored (then rebuilt). Writers go
through a temporary file and an atomic rename, so concurrent compilers never see half a
file.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from pathlib import Path

MAGIC = b"GRAPHC-OBJ-1\n"
_HEADER = struct.Struct("<32sQ32s")  # key digest, payload length, payload digest


def enabled() -> bool:
    return os.environ.get("GRAPHC_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "graphc"


def path_of(key: bytes) -> Path:
    return directory() / f"{key.hex()}.o"


def load(key: bytes) -> bytes | None:
    """The payload stored under key, or None if absent or not a valid entry for it."""
    try:
        data = path_of(key).read_bytes()
    except OSError:
        return None
    start = len(MAGIC) + _HEADER.size
    if len(data) < start or not data.startswith(MAGIC):
        return None
    stored_key, length, digest = _HEADER.unpack_from(data, len(MAGIC))
    payload = data[start:]
    if stored_key != key or length != len(payload) or hashlib.sha256(payload).digest() != digest:
        return None
    return payload


def store(key: bytes, payload: bytes) -> None:
    """Write an entry atomically; a cache that cannot be written is silently skipped."""
    folder = directory()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".o")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC)
                f.write(_HEADER.pack(key, len(payload), hashlib.sha256(payload).digest()))
                f.write(payload)
            os.replace(temp, path_of(key))
        except BaseException:
            os.unlink(temp)
            raise
    except OSError:
        pass
