"""The disk cache of object code: hits across compiles and processes, ignores and rebuilds
truncated, corrupt and foreign entries, survives concurrent writers, and is off with
GRAPHC_CACHE=0. One compiled variant per distinct binding of the symbolic dims."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import struct
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.runtime import cache


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    return tmp_path / "graphc"


def _function(scale: float = 3.0):
    x = gc.input("x", ("N", 4), "float64")
    return gc.compile([x], gc.sum(gc.tanh(x) * scale, axis=1))


def _call(fn, n=5):
    a = np.arange(n * 4, dtype=np.float64).reshape(n, 4) / 10
    out = fn(a)
    np.testing.assert_allclose(out, np.sum(np.tanh(a) * 3.0, axis=1), rtol=1e-12)
    return fn.memory_report()


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.o"))


def test_second_compile_loads_from_the_cache(cache_dir):
    assert _call(_function())["cache_hit"] is False
    (entry,) = _entries(cache_dir)
    assert cache.load(bytes.fromhex(entry.stem)) is not None
    assert _call(_function())["cache_hit"] is True


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign", "empty"])
def test_damaged_entry_is_ignored_and_rebuilt(cache_dir, damage):
    _call(_function())
    (entry,) = _entries(cache_dir)
    data = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        entry.write_bytes(data[:40] + bytes(b ^ 0x5A for b in data[40:]))
    elif damage == "foreign":  # a valid entry of another program under this key's name
        other = _function(2.5)
        other(np.zeros((2, 4)))
        foreign = [e for e in _entries(cache_dir) if e != entry][0]
        entry.write_bytes(foreign.read_bytes())
    else:
        entry.write_bytes(b"")
    assert _call(_function())["cache_hit"] is False
    assert cache.load(bytes.fromhex(entry.stem)) is not None  # rebuilt and rewritten
    assert _call(_function())["cache_hit"] is True


def test_cache_off(cache_dir, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    assert _call(_function())["cache_hit"] is False
    assert not cache_dir.exists() or not _entries(cache_dir)


def test_concurrent_processes_compiling_the_same_graph(cache_dir, tmp_path):
    script = textwrap.dedent("""
        import numpy as np
        import graphc as gc
        x = gc.input("x", (64, 64), "float32")
        fn = gc.compile([x], gc.relu(x @ x) + 1.0)
        a = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
        np.testing.assert_allclose(fn(a), np.maximum(a @ a, 0) + 1, rtol=1e-4, atol=1e-4)
        print("ok")
    """)
    def run(processes: int, cache_home: Path) -> None:
        env = {**__import__("os").environ, "XDG_CACHE_HOME": str(cache_home)}
        procs = [subprocess.Popen([sys.executable, "-c", script], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(processes)]
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            assert out.strip() == "ok"

    alone = tmp_path / "alone"
    run(1, alone)  # the entries one process writes: the variant and the libraries it links
    run(2, cache_dir.parent)
    entries = _entries(cache_dir)
    assert [e.name for e in entries] == [e.name for e in _entries(alone / "graphc")]
    assert all(cache.load(bytes.fromhex(e.stem)) is not None for e in entries)
    assert not list(cache_dir.glob(".tmp-*"))


def test_a_hit_builds_no_ir(cache_dir):
    """The key is computed from the program before any IR is built: a hit skips assembly,
    a program differing only in a constant, or params built anew, get their own keys."""
    _call(_function())
    fn = _function()
    assert _call(fn)["cache_hit"] is True
    assert "ir" not in vars(fn.compiled())
    other = _function(2.5)
    np.testing.assert_allclose(other(np.ones((5, 4))), np.full(5, 10 * np.tanh(1.0)))
    assert other.memory_report()["cache_hit"] is False

    def step(init):
        w = gc.param("w", np.full((3, 2), init, np.float32))
        x = gc.input("x", (4, 3), "float32")
        loss = gc.sum(gc.relu(x @ w))
        return gc.compile([x], [loss], updates={w: w - 0.1 * gc.grad(loss, [w])[0]})

    data = np.ones((4, 3), np.float32)
    first, second = step(1.0), step(-1.0)  # same code, different param values and identity
    first(data)
    second(data)
    assert first.memory_report()["cache_hit"] is False
    assert second.memory_report()["cache_hit"] is True
    (w1, _), (w2, _) = first.program.updates[0], second.program.updates[0]
    np.testing.assert_array_equal(w1.value, np.float32(1 - 0.1 * 4))
    np.testing.assert_array_equal(w2.value, -1.0)


def test_one_variant_per_binding(cache_dir):
    fn = _function()
    for n in (5, 3, 5, 3, 7):
        report = _call(fn, n)
    assert report["bindings_compiled"] == 3


# ----- hostile cache entries (issue 13, item 12) -----------------------------------------------

def _in_thread(fn, fifo: Path, seconds: float = 30):
    """fn() run in a daemon thread; fails (instead of hanging) if it is still blocked after
    `seconds`, after opening `fifo` for writing so that a reader blocked on it returns."""
    result = []
    worker = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(10)
        pytest.fail(f"blocked for {seconds} s on the FIFO {fifo}")
    assert result, "the thread raised"
    return result[0]


def _valid_entry(key: bytes, payload: bytes) -> bytes:
    """The bytes `cache.store` writes for `payload` under `key`."""
    digest = hashlib.sha256(payload).digest()
    return cache.MAGIC + struct.pack("<32sQ32s", key, len(payload), digest) + payload


def test_a_fifo_entry_is_a_miss_and_never_blocks(cache_dir):
    _call(_function())
    (entry,) = _entries(cache_dir)
    entry.unlink()
    os.mkfifo(entry)
    assert _in_thread(lambda: _call(_function())["cache_hit"], entry) is False
    assert entry.is_file() and not entry.is_symlink()  # replaced by the rebuilt entry
    assert _call(_function())["cache_hit"] is True


LOAD_IN_A_SMALL_PROCESS = textwrap.dedent("""
    import importlib.util, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # reading /dev/zero: MemoryError
    spec = importlib.util.spec_from_file_location("cache", sys.argv[1])
    cache = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cache)
    print(cache.load(bytes.fromhex(sys.argv[2])))
""")


def test_a_symlink_to_dev_zero_is_a_miss_read_no_further(cache_dir):
    """Run in a process of at most 1 GiB (only cache.py loaded), so that a regression
    fails with a MemoryError instead of exhausting the machine's memory."""
    key = bytes(range(32))
    cache_dir.mkdir(mode=0o700)
    cache.path_of(key).symlink_to("/dev/zero")
    done = subprocess.run([sys.executable, "-c", LOAD_IN_A_SMALL_PROCESS, cache.__file__,
                           key.hex()], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"


def test_a_symlink_to_a_valid_entry_is_not_followed(cache_dir, tmp_path):
    key, payload = bytes(range(32)), b"object code"
    target = tmp_path / "elsewhere.o"
    target.write_bytes(_valid_entry(key, payload))
    cache_dir.mkdir(mode=0o700)
    cache.path_of(key).symlink_to(target)
    assert cache.load(key) is None


def test_an_entry_beyond_the_size_bound_is_refused_unread(cache_dir, monkeypatch):
    key, payload = bytes(range(32)), bytes(3000)
    cache.store(key, payload)
    assert cache.load(key) == payload
    with monkeypatch.context() as patch:
        patch.setattr(cache, "MAX_ENTRY_BYTES", 2000)
        assert cache.load(key) is None
    with cache.path_of(key).open("r+b") as f:  # a sparse file just past the real bound
        f.truncate(cache.MAX_ENTRY_BYTES + 1)
    tracemalloc.start()
    try:
        assert cache.load(key) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"read {peak} bytes of an entry beyond the bound"


def test_a_payload_beyond_the_size_bound_is_not_stored(cache_dir, monkeypatch):
    monkeypatch.setattr(cache, "MAX_ENTRY_BYTES", 2000)
    cache.store(bytes(32), bytes(3000))
    cache.store(bytes(range(32)), bytes(100))
    assert [e.stem for e in _entries(cache_dir)] == [bytes(range(32)).hex()]


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_store_sweeps_stale_temp_files_once_per_process(cache_dir):
    """A writer killed between its temporary file and the rename leaves a .tmp-*.o file;
    the next store removes those older than an hour (a live writer's is milliseconds old)
    and leaves every other file alone."""
    cache_dir.mkdir(mode=0o700)
    stale, fresh = cache_dir / ".tmp-killed.o", cache_dir / ".tmp-writing.o"
    other = cache_dir / ".tmp-notes.txt"
    for path in (stale, fresh, other):
        path.write_bytes(b"half an entry")
    _age(stale, 2 * 3600)
    _age(other, 2 * 3600)
    cache.store(bytes(32), b"payload")
    assert not stale.exists() and fresh.exists() and other.exists()
    assert cache.load(bytes(32)) == b"payload"
    _age(fresh, 2 * 3600)
    cache.store(bytes(range(32)), b"payload")  # swept once per process: left to the next
    assert fresh.exists()


def test_a_temp_file_of_a_killed_compile_is_swept_by_a_later_process(cache_dir):
    cache_dir.mkdir(mode=0o700)
    orphan = cache_dir / ".tmp-k1ll3d.o"
    orphan.write_bytes(b"half an entry")
    _age(orphan, 2 * 3600)
    script = "import graphc.backends.llvm.runtime.cache as c; c.store(bytes(32), b'payload')"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120,
                   env={**os.environ, "XDG_CACHE_HOME": str(cache_dir.parent)})
    assert not orphan.exists()
    assert cache.load(bytes(32)) == b"payload"


@pytest.mark.parametrize("umask", [0o022, 0o002, 0])
def test_the_cache_folder_is_created_private(cache_dir, umask):
    """Its entries run as code in every process that compiles: only its owner may list,
    read or write them, whatever the umask."""
    old = os.umask(umask)
    try:
        cache.store(bytes(32), b"payload")
    finally:
        os.umask(old)
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(cache.path_of(bytes(32)).stat().st_mode) == 0o600


@pytest.mark.parametrize("problem", ["writable by every user", "owned by"])
def test_a_folder_others_could_plant_code_in_is_not_used(cache_dir, monkeypatch, problem):
    """An entry forged with the right digest runs its code: a cache folder that others can
    write (a squatted /tmp/graphc) is ignored, with one warning naming it."""
    key = bytes(range(32))
    cache_dir.mkdir()
    cache.path_of(key).write_bytes(_valid_entry(key, b"planted code"))
    if problem == "owned by":
        uid = os.geteuid()
        monkeypatch.setattr(os, "geteuid", lambda: uid + 1)
    else:
        cache_dir.chmod(0o777)
    with pytest.warns(UserWarning, match=f"{cache_dir}.*{problem}"):
        assert cache.load(key) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once
        cache.store(bytes(32), b"payload")
        assert cache.load(bytes(32)) is None
    assert not cache.path_of(bytes(32)).exists()


def test_a_group_writable_folder_of_its_owner_is_used(cache_dir):
    """A umask of 002 made folders of older versions 0775: still the user's own cache."""
    cache_dir.mkdir()
    cache_dir.chmod(0o775)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache.store(bytes(32), b"payload")
        assert cache.load(bytes(32)) == b"payload"
