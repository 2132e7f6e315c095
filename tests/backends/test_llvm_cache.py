"""The disk cache of object code: hits across compiles and processes, ignores and rebuilds
truncated, corrupt and foreign entries, survives concurrent writers, and is off with
GRAPHC_CACHE=0. One compiled variant per distinct binding of the symbolic dims."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm import cache


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
    return fn._runner.memory_report()


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
    assert "ir" not in vars(fn._runner.last)
    other = _function(2.5)
    np.testing.assert_allclose(other(np.ones((5, 4))), np.full(5, 10 * np.tanh(1.0)))
    assert other._runner.memory_report()["cache_hit"] is False

    def step(init):
        w = gc.param("w", np.full((3, 2), init, np.float32))
        x = gc.input("x", (4, 3), "float32")
        loss = gc.sum(gc.relu(x @ w))
        return gc.compile([x], [loss], updates={w: w - 0.1 * gc.grad(loss, [w])[0]})

    data = np.ones((4, 3), np.float32)
    first, second = step(1.0), step(-1.0)  # same code, different param values and identity
    first(data)
    second(data)
    assert first._runner.memory_report()["cache_hit"] is False
    assert second._runner.memory_report()["cache_hit"] is True
    (w1, _), (w2, _) = first._runner.program.updates[0], second._runner.program.updates[0]
    np.testing.assert_array_equal(w1.value, np.float32(1 - 0.1 * 4))
    np.testing.assert_array_equal(w2.value, -1.0)


def test_one_variant_per_binding(cache_dir):
    fn = _function()
    for n in (5, 3, 5, 3, 7):
        report = _call(fn, n)
    assert report["bindings_compiled"] == 3
