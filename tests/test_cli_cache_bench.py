"""`graphc cache info|clear` and `graphc bench`."""

import os

from graphc.cli import main

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


