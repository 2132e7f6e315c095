"""graphc tune (graphc/tune.py): the search keeps the fastest blocking per knob beyond
noise, stores it per target in the disk cache, later compiles use it (and key on it), a
damaged entry is ignored, and a target this CPU cannot run is refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import graphc as gc
from graphc import tune
from graphc.backends.llvm.gemm import blocking
from graphc.backends.llvm.runtime import cache, target


@pytest.fixture()
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    return tmp_path


def _timer(costs: dict):
    """A fake measurement: seconds from the tuning's knobs (defaults cost 1.0)."""
    def timer(chosen, tuning):
        return 1.0 + sum(costs.get((k, v), 0.0) for k, v in tuning.__dict__.items())
    return timer


def _host_without_tuning() -> target.Target:
    return dataclasses.replace(target.host_target(), tuning=target.Tuning())


def test_the_search_keeps_what_beats_the_current_choice_beyond_noise(private_cache):
    rows = tune.candidates(_host_without_tuning())[0][1]
    costs = {("gemm_rows", rows[0]): -0.2,          # 20% faster: taken
             ("gemm_depth", 384): -0.01,             # 1%: noise, not taken
             ("gemm_block_rows", 64): -0.25}         # taken on top of the rows
    trials = tune.tune(_host_without_tuning(), progress=False, timer=_timer(costs))
    chosen = trials[-1].tuning
    assert chosen == target.Tuning(gemm_rows=rows[0], gemm_block_rows=64)
    assert len(trials) == 2 + sum(len(v) for _, v in tune.candidates(_host_without_tuning()))
    assert "chosen: " + chosen.to_json() in tune.report(target.host_target(), trials)


def test_a_stored_tuning_reaches_later_compiles(private_cache):
    rows = tune.candidates(_host_without_tuning())[0][1][0]
    tune.tune(_host_without_tuning(), progress=False, timer=_timer({("gemm_rows", rows): -0.5}))
    resolved = target.resolve("host")
    assert resolved.tuning.gemm_rows == rows
    assert "tuning" in resolved.fingerprint() and str(rows) in resolved.fingerprint()
    with target.using(resolved):
        assert blocking.mr() == rows
    a, b = gc.input("a", (37, 50)), gc.input("b", (50, 29))
    f = gc.compile([a, b], a @ b)
    x = np.random.default_rng(0).normal(size=(37, 50)).astype(np.float32)
    y = np.random.default_rng(1).normal(size=(50, 29)).astype(np.float32)
    np.testing.assert_allclose(f(x, y), x @ y, rtol=1e-4, atol=1e-5)
    assert f.compiled(x, y).target.tuning.gemm_rows == rows


def test_a_damaged_or_absurd_tuning_is_ignored(private_cache):
    host = _host_without_tuning()
    cache.store(host.tuning_key(), b'{"gemm_rows": "six"}')
    target._stored.cache_clear()
    assert target.resolve("host").tuning == target.Tuning()
    cache.store(host.tuning_key(), b'{"gemm_rows": 500}')  # more rows than registers
    target._stored.cache_clear()
    with target.using(target.resolve("host")):
        assert blocking.mr() <= blocking.MAX_MR
    target._stored.cache_clear()


@pytest.mark.skipif(target.host_target().avx512 or not target.host_target().x86,
                    reason="the host runs AVX-512 code")
def test_a_target_this_cpu_cannot_run_is_refused():
    with pytest.raises(ValueError, match="graphc tune: target 'x86-64-v4' needs"):
        tune.tune(target.resolve("x86-64-v4"), progress=False, timer=_timer({}))


def test_the_candidates_fit_the_register_file():
    for name in ("x86-64-v3", "x86-64-v4"):
        chosen = target.resolve(name)
        rows = dict(tune.candidates(chosen))["gemm_rows"]
        assert max(rows) * blocking.TILE_VECTORS + blocking.TILE_VECTORS + 1 \
            <= chosen.vector_registers
