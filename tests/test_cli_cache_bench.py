"""`graphc cache info|clear` and `graphc bench`."""

import os

from graphc.cli import main, system

ENTRY = "ab" * 32 + ".o"


def test_cache_info_and_clear_touch_only_cache_entries(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "graphc"
    folder.mkdir()
    (folder / ENTRY).write_bytes(b"x" * 1000)
    (folder / "notes.txt").write_text("not a cache entry")
    assert main(["cache", "info"]) == 0
    assert f"{folder}: 1 entries" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_cache_info_counts_and_clear_removes_temp_files(tmp_path, monkeypatch, capsys):
    """Temporary files left by killed writers (.tmp-*.o) are counted by info and removed by
    clear, whatever their age; other files stay."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "graphc"
    folder.mkdir()
    (folder / ENTRY).write_bytes(b"x" * 1000)
    (folder / ".tmp-k1ll3d.o").write_bytes(b"x" * 3_000_000)
    (folder / ".tmp-notes.txt").write_text("not a temp file of the cache")
    assert main(["cache", "info"]) == 0
    assert f"{folder}: 1 entries, 0.0 MB, 1 temporary files (3.0 MB)" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    out = capsys.readouterr().out
    assert "removed 1 entries and 1 temporary files (3.0 MB)" in out
    assert sorted(p.name for p in folder.iterdir()) == [".tmp-notes.txt"]


def test_cache_info_survives_odd_entries(tmp_path, monkeypatch, capsys):
    """A dangling symlink or a FIFO under an entry's name is listed, not a crash or a hang."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "graphc"
    folder.mkdir()
    (folder / ENTRY).symlink_to(tmp_path / "gone")
    os.mkfifo(folder / ("cd" * 32 + ".o"))
    assert main(["cache", "info"]) == 0
    assert f"{folder}: 2 entries" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert "removed 2 entries" in capsys.readouterr().out
    assert not list(folder.iterdir())


def test_cache_clear_without_a_cache_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "none"))
    assert main(["cache", "clear"]) == 0
    assert "removed 0 entries" in capsys.readouterr().out




def test_cache_info_says_when_the_cache_is_off(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "graphc").mkdir()
    (tmp_path / "graphc" / ENTRY).write_bytes(b"x" * 10)
    assert main(["cache", "info"]) == 0
    assert "off" not in capsys.readouterr().out
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    assert main(["cache", "info"]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first == f"the cache is off (GRAPHC_CACHE=0): compiling neither reads nor writes " \
                    f"{tmp_path / 'graphc'}"
    assert second.startswith(f"{tmp_path / 'graphc'}: 1 entries")
    assert main(["info"]) == 0
    assert "off (GRAPHC_CACHE=0)" in capsys.readouterr().out


def test_bench_without_a_source_checkout_says_how_to_run_it(tmp_path, monkeypatch, capsys):
    """A wheel install has graphc/ in site-packages and no benchmarks/ beside it."""
    monkeypatch.setattr(system, "source_root", lambda: tmp_path)
    assert main(["bench", "--quick"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("graphc: error: graphc bench runs the benchmarks/ folder of a source "
                          "checkout, which a wheel install does not have")
    assert f"there is none in {tmp_path}" in err and "pip install -e '.[bench]'" in err


def test_cache_clear_removes_the_source_hash_tables(tmp_path, monkeypatch, capsys):
    """The tables of graphc's source hashes (runtime/key.py) are removed with the entries."""
    from graphc.backends.llvm.runtime import cache, key

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    key._fingerprint.cache_clear()
    key.code_fingerprint()  # writes this tree's table
    folder = tmp_path / "graphc"
    assert len(cache.source_tables(folder)) == 1
    (folder / "sources-notatable").write_text("not ours")
    assert main(["cache", "clear"]) == 0
    capsys.readouterr()
    assert [p.name for p in folder.iterdir() if p.name.startswith("sources-")] \
        == ["sources-notatable"]
