"""`graphc cache info|clear` and `graphc bench`."""

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


def test_cache_clear_without_a_cache_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "none"))
    assert main(["cache", "clear"]) == 0
    assert "removed 0 entries" in capsys.readouterr().out


