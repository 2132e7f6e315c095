"""The code fingerprint in the cache key: graphc's sources enter by their content, so the
fingerprint depends on what the files hold, not on when or where they were written. Each
file's hash is remembered by stat signature in a table in the cache folder; a file written
shortly before its hash was taken is not remembered (git's racy files), and a table that
cannot be read or does not check out means reading every file.

What is not guaranteed, and not tested: a table forged with a correct digest is believed
(like the cached object code, it must come from a trusted folder), and so is one that
predates a write which set the file's ctime back (only a clock set back does that)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from graphc.backends.llvm.runtime import key

SOURCES = {"a.py": "x = 1\n", "sub/b.py": "y = 2\n", "sub/c.py": ""}
LATER = 10 * key.RACY_NS  # a clock this far ahead sees every file of a test as settled


def _write(root: Path, sources: dict[str, str] = SOURCES) -> Path:
    for relative, text in sources.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


@pytest.fixture
def package(tmp_path, monkeypatch) -> Path:
    """A source tree standing in for graphc's, with a cache folder of its own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    root = _write(tmp_path / "pkg")
    monkeypatch.setattr(key, "_PACKAGE", root)
    yield root
    key._fingerprint.cache_clear()


def _fingerprint() -> bytes:
    """The fingerprint a new process would compute."""
    key._fingerprint.cache_clear()
    return key.code_fingerprint()


def _ahead(monkeypatch, ns: int = LATER) -> None:
    _clock_at(monkeypatch, time.time_ns() + ns)


def _clock_at(monkeypatch, now: int) -> None:
    monkeypatch.setattr(key, "_now_ns", lambda: now)


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The files whose bytes are hashed."""
    read: list[str] = []
    real = key._hash_file
    monkeypatch.setattr(key, "_hash_file", lambda path: read.append(path) or real(path))
    return read


def test_the_fingerprint_covers_every_source_file(package):
    digests = [_fingerprint()]
    for relative, text in (("sub/b.py", "y = 3\n"), ("sub/d.py", "")):
        (package / relative).write_text(text)
        digests.append(_fingerprint())
    assert len(set(digests)) == 3


def test_the_fingerprint_does_not_change_once_an_edit_settles(package, monkeypatch):
    """It once hashed the bytes of a file written in the last 2 s and only the stat of an
    older one: a key computed right after an edit missed the entry stored a moment later."""
    (package / "a.py").write_text("x = 9\n")
    fresh = _fingerprint()
    _ahead(monkeypatch)
    assert _fingerprint() == fresh  # the table written now
    assert _fingerprint() == fresh  # from the table


def test_copies_of_one_tree_have_one_fingerprint(package, tmp_path, monkeypatch):
    copy = shutil.copytree(package, tmp_path / "copy", copy_function=shutil.copyfile)
    for source in copy.rglob("*.py"):
        os.utime(source, ns=(10**18, 10**18))
    _ahead(monkeypatch)
    digests = []
    for root in (package, copy, package, copy):  # read, then from each one's table
        monkeypatch.setattr(key, "_PACKAGE", root)
        digests.append(_fingerprint())
    assert len(set(digests)) == 1


def test_a_settled_file_is_read_once_then_known_by_its_stat(package, monkeypatch, reads):
    _ahead(monkeypatch)
    first = _fingerprint()
    assert len(reads) == len(SOURCES)
    assert _fingerprint() == first and len(reads) == len(SOURCES)  # none read again
    (package / "sub/b.py").write_text("y = 22\n")
    assert _fingerprint() != first
    assert reads[len(SOURCES):] == [str(package / "sub/b.py")]


def test_a_file_written_just_before_its_hash_is_read_every_time(package, monkeypatch,
                                                                  reads):
    """Racy: within the timestamp granularity, a second write could leave its stat as the
    first one left it. Here size and mtime are set back, and the ctime may well be the
    same tick's; its bytes are read all the same."""
    _clock_at(monkeypatch, max(p.stat().st_ctime_ns for p in package.rglob("*.py")) + 10**6)
    first = _fingerprint()
    source = package / "a.py"
    before = source.stat()
    source.write_text("x = 2\n")
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert source.stat().st_size == before.st_size
    assert _fingerprint() != first
    assert len(reads) == 2 * len(SOURCES)
    assert key._read_table(package) == {}


def test_a_rewrite_that_keeps_size_and_mtime_is_seen_by_its_ctime(package, monkeypatch):
    """A settled file is known by its stat signature: a write that sets size and mtime back
    still moves the ctime, once the clock has ticked since the hash was taken (which the
    racy rule guarantees for every file the table holds)."""
    _ahead(monkeypatch)
    first = _fingerprint()
    source = package / "a.py"
    before = source.stat()
    deadline = time.monotonic() + 5  # a few ms here; 1-2 s where timestamps are coarse
    while source.stat().st_ctime_ns == before.st_ctime_ns and time.monotonic() < deadline:
        time.sleep(0.001)
        source.write_text("x = 2\n")
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = source.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert after.st_ctime_ns != before.st_ctime_ns
    assert _fingerprint() != first


def _table(root: Path) -> Path:
    return Path(os.environ["XDG_CACHE_HOME"]) / "graphc" / key._table_name(root)


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] ^= 1
    path.write_bytes(bytes(data))


def _another_trees(path: Path, root: Path) -> None:
    """A well-formed table, of the same files under another root."""
    elsewhere = root.with_name("elsewhere")
    key._write_table(elsewhere, key._read_table(root))
    os.replace(_table(elsewhere), path)


def _replaced(path: Path, make) -> None:
    path.unlink()
    make(path)


DAMAGE = {
    "a flipped byte": lambda path, root: _flip_a_byte(path),
    "truncated": lambda path, root: path.write_bytes(path.read_bytes()[:100]),
    "empty": lambda path, root: path.write_bytes(b""),
    "another tree's": _another_trees,
    "a folder": lambda path, root: _replaced(path, Path.mkdir),
    "a FIFO": lambda path, root: _replaced(path, os.mkfifo),
    "a symlink": lambda path, root: (path.rename(path.with_name("moved")),
                                     path.symlink_to(path.with_name("moved"))),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_table_means_reading_every_file(package, monkeypatch, reads, damage):
    _ahead(monkeypatch)
    expected = _fingerprint()
    assert key._read_table(package)
    DAMAGE[damage](_table(package), package)
    del reads[:]
    assert _fingerprint() == expected
    assert len(reads) == len(SOURCES)


def test_without_a_writable_cache_folder_every_file_is_read(package, tmp_path, monkeypatch,
                                                            reads):
    _ahead(monkeypatch)
    expected = _fingerprint()
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))  # no folder can be made
    del reads[:]
    assert _fingerprint() == _fingerprint() == expected
    assert len(reads) == 2 * len(SOURCES)


def test_with_the_cache_off_no_table_is_read_or_written(package, tmp_path, monkeypatch, reads):
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    _ahead(monkeypatch)
    expected = _fingerprint()
    assert _fingerprint() == expected and len(reads) == 2 * len(SOURCES)
    assert not (tmp_path / "cache").exists()


def test_an_editors_lock_file_is_not_a_source(package):
    """Emacs marks a file being edited with a symlink .#name to nowhere."""
    expected = _fingerprint()
    (package / ".#a.py").symlink_to("user@host.1234:1700000000")
    assert _fingerprint() == expected


def test_concurrent_writers_leave_a_whole_table(package, monkeypatch):
    """Readers see one writer's table or another's, never a mix or a part."""
    _ahead(monkeypatch)
    _fingerprint()
    full = key._read_table(package)
    part = dict(list(full.items())[:1])
    seen: list[dict] = []

    def write(table: dict) -> None:
        for _ in range(100):
            key._write_table(package, table)

    def read() -> None:
        seen.extend(key._read_table(package) for _ in range(100))

    workers = [threading.Thread(target=f, args=a) for f, a in
               ((write, (full,)), (write, (part,)), (read, ()), (read, ()))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(seen) == 200 and all(table in (full, part) for table in seen)
    assert not list(_table(package).parent.glob(".tmp-*"))
