"""The model of N machines in benchmarks/ddp.py: compute plus a ring all-reduce."""

import pytest

from benchmarks import ddp


def test_ring_allreduce_model():
    out = ddp.model(compute=0.1, gradient_bytes=125_000_000, batch=10)
    assert out["compute"] == 0.1
    cell = out["table"]["1Gbit/s x2"]  # 2(N-1)/N x 125 MB / 125 MB/s = 1 s
    assert cell["allreduce"] == pytest.approx(1.0)
    assert cell["samples_per_second"] == pytest.approx(20 / 1.1)
    assert cell["efficiency"] == pytest.approx(0.1 / 1.1)
    big = out["table"]["100Gbit/s x64"]
    assert big["allreduce"] == pytest.approx(2 * 63 / 64 * 0.01)
    assert set(out["table"]) == {f"{g}Gbit/s x{n}" for g in ddp.LINKS_GBIT for n in ddp.MACHINES}
