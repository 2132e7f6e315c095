"""`graphc tune` and the target lines of `graphc info` (graphc/cli/tune.py)."""

from __future__ import annotations

import pytest

from graphc import tune as tuner
from graphc.backends.llvm.gemm import blocking
from graphc.backends.llvm.runtime import target
from graphc.cli import main


@pytest.fixture()
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    monkeypatch.delenv("GRAPHC_TARGET", raising=False)


def test_info_names_the_target_and_its_blocking(private_cache, capsys):
    assert main(["info"]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert lines["target"].startswith("host (") and "vector registers" in lines["target"]
    with target.using(target.resolve("host")):
        rows = blocking.mr()
    assert lines["blocking"].startswith(f"GEMM tile {rows} x ")
    assert lines["blocking"].endswith("(analytical; graphc tune measures)")


def test_tune_measures_stores_and_info_shows_it(private_cache, capsys, monkeypatch):
    # A fake measurement keeps the test fast: the smallest tile is "fastest".
    monkeypatch.setattr(tuner, "measure",
                        lambda chosen, tuning: 1.0 - 0.5 * (tuning.gemm_rows == 4))
    assert main(["tune"]) == 0
    out = capsys.readouterr().out
    assert 'chosen: {"gemm_rows": 4}' in out
    assert main(["info"]) == 0
    assert 'tuned: {"gemm_rows": 4}' in capsys.readouterr().out


def test_tune_refuses_an_unknown_target(private_cache, capsys):
    assert main(["tune", "--target", "pentium-9000"]) != 0
    assert "unknown target 'pentium-9000'" in capsys.readouterr().err


def test_tune_needs_the_cache(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    assert main(["tune"]) != 0
    assert "GRAPHC_CACHE" in capsys.readouterr().err
