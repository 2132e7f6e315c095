"""benchmarks/: the workloads build and compute the same thing in every framework (tiny
sizes), the FLOP formulas, the FMA probe's arithmetic, the table with missing frameworks,
and `graphc bench`'s plumbing. No time is asserted anywhere."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from benchmarks import child, impl_graphc, memory, peak, suite, table, workloads
from graphc.cli import main as graphc_main

TINY = workloads.tiny()
IDS = [w.name for w in TINY]


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def run_once(runner) -> list[np.ndarray]:
    runner.run()
    return runner.results()


def comparable(w: workloads.Workload, results: list[np.ndarray]) -> list[np.ndarray]:
    """A training step's loss and the gradients its SGD update applied; an op's outputs."""
    if w.kind != "train":
        return results
    before = w.params()
    n = len(before)
    loss, after = results[:-n], results[-n:]
    return [*loss, *((b.astype(np.float64) - a) / workloads.LEARNING_RATE
                     for b, a in zip(before, after))]


def assert_agree(w: workloads.Workload, got: list[np.ndarray], want: list[np.ndarray]) -> None:
    """float32 agreement. A gradient is read back from a float32 param update, so each
    element also carries the param's rounding, 2 ulp(|p|) / lr, on top of rtol 1e-4."""
    assert len(got) == len(want)
    params = w.params() if w.kind == "train" else []
    n_out = len(want) - len(params)
    for k, (g, r) in enumerate(zip(got, want)):
        assert g.shape == r.shape, (w.name, k)
        atol = 1e-5 * max(1.0, float(np.max(np.abs(r))))
        if k >= n_out:
            atol = atol + 2 * np.spacing(np.abs(params[k - n_out])) / workloads.LEARNING_RATE
        excess = np.abs(g - r) - (atol + 1e-4 * np.abs(r))
        assert np.all(excess <= 0), f"{w.name} output {k}: off by {np.max(excess):.3g} " \
                                    f"beyond the tolerance"


@pytest.fixture(scope="module")
def reference() -> dict[str, list[np.ndarray]]:
    """Each tiny workload on graphc's NumPy interpreter, the reference backend."""
    return {w.name: comparable(w, run_once(impl_graphc.build(w, 1, "numpy"))) for w in TINY}


def builders() -> list:
    out = [pytest.param(lambda w: impl_graphc.build(w, 2, "llvm"), id="graphc-llvm")]
    marks = {m: pytest.mark.skipif(not have(m), reason=f"{m} is an optional extra "
                                   "(pip install -e .[bench])") for m in ("torch", "jax")}

    def torch_build(compiled):
        def build(w):
            from benchmarks import impl_torch
            return impl_torch.build(w, 1, compiled=compiled)
        return build

    def jax_build(w):
        from benchmarks import impl_jax
        return impl_jax.build(w, 1)

    out.append(pytest.param(torch_build(False), id="torch", marks=marks["torch"]))
    out.append(pytest.param(torch_build(True), id="torch.compile",  # seconds per compile
                            marks=[marks["torch"], pytest.mark.slow]))
    out.append(pytest.param(jax_build, id="jax", marks=marks["jax"]))
    return out


@pytest.mark.parametrize("build", builders())
@pytest.mark.parametrize("w", TINY, ids=IDS)
def test_framework_agrees_with_the_numpy_reference(w, build, reference):
    assert_agree(w, comparable(w, run_once(build(w))), reference[w.name])


@pytest.mark.parametrize("w", [w for w in TINY if w.kind == "train"], ids=lambda w: w.name)
def test_a_training_step_moves_every_param(w, reference):
    grads = reference[w.name][1:]
    assert len(grads) == len(w.params())
    assert all(np.max(np.abs(g)) > 0 for g in grads)  # every param is in the loss


def test_reference_sizes_are_the_issue_s():
    by = workloads.by_name(workloads.reference())
    assert list(by) == ["mlp", "lenet", "digits-cnn", "transformer", "gemm 256", "gemm 512",
                        "gemm 1024", "gemm 2048", "conv2d fwd", "conv2d bwd", "elementwise"]
    assert by["mlp"].batch == 128 and by["lenet"].batch == 64 and by["transformer"].batch == 16
    assert by["transformer"].input_shape == (64, 128)
    assert by["conv2d fwd"].conv == (32, 64, 32, 32, 64, 3, 1)
    assert by["elementwise"].n == 4 * 2 ** 20


def test_flop_formulas():
    by = workloads.by_name(workloads.reference())
    dense = 2 * 128 * (784 * 256 + 256 * 128 + 128 * 10)
    assert by["mlp"].flops() == 3 * dense - 2 * 128 * 784 * 256
    conv1, conv2 = 2 * 64 * 6 * 25 * 28 * 28, 2 * 64 * 16 * 6 * 25 * 10 * 10
    fc = 2 * 64 * (400 * 120 + 120 * 84 + 84 * 10)
    assert by["lenet"].flops() == 3 * (conv1 + conv2 + fc) - conv1
    tokens = 16 * 64
    block = 2 * tokens * 128 * (3 * 128 + 128 + 2 * 512) + 2 * 2 * 16 * 64 * 64 * 128
    assert by["transformer"].flops() == 3 * (block + 2 * 16 * 128 * 10)
    assert by["gemm 1024"].flops() == 2 * 1024 ** 3
    forward = 2 * 32 * 64 * 64 * 9 * 32 * 32
    assert by["conv2d fwd"].flops() == forward and by["conv2d bwd"].flops() == 2 * forward
    assert by["elementwise"].bytes() == 20 * 4 * 2 ** 20


def test_fma_probe_runs_the_iterations_it_counts():
    probe = peak.Probe()
    n = 7
    accs = np.arange(1, peak.ACCUMULATORS + 1, dtype=np.float64)
    for _ in range(n):
        accs = accs * np.float32(0.999999) + np.float32(1e-7)
    assert probe(n) == pytest.approx(accs.sum(), rel=1e-6)
    assert probe.flops_per_iteration == peak.ACCUMULATORS * probe.width * 2
    assert math.isfinite(probe.gflops(1, seconds=0.01))


def test_triad_probe_computes_the_triad_each_thread_share_of_it():
    triad = peak.Triad(nbytes=4 * 1003)  # an odd count: uneven shares
    triad.arrays[1][:] = np.arange(1003)
    assert triad.gbs(2, repeat=1) > 0
    a, b, c = triad.arrays
    np.testing.assert_array_equal(a, b + np.float32(3.0) * c)


def test_memory_bound_rows_are_shown_against_the_triad():
    row = {"workload": "elementwise", "threads": 1, "flops": 1e6, "bytes": 8e7,
           "target": 0.9, "times": {"graphc": cell(10), "torch": cell(20)}}
    report = {"peak": {"1": 100.0}, "repeat": 5, "bandwidth": {"1": 10.0}, "rows": [row]}
    notes = " ".join(table.render(report).split())
    assert "graphc 8.0 GB/s (80% of the 10.0 GB/s STREAM triad)" in notes


def test_child_environment_sets_threads_for_every_library():
    one = child.environment(1, {"XLA_FLAGS": "--xla_foo=1 --xla_cpu_multi_thread_eigen=true"})
    assert one["OMP_NUM_THREADS"] == one["OPENBLAS_NUM_THREADS"] == "1"
    assert one["XLA_FLAGS"].split() == ["--xla_foo=1", "--xla_cpu_multi_thread_eigen=false",
                                        "intra_op_parallelism_threads=1"]
    two = child.environment(2, {"XLA_FLAGS": one["XLA_FLAGS"]})
    assert two["MKL_NUM_THREADS"] == "2" and two["XLA_FLAGS"] == "--xla_foo=1"


def test_select_by_name_or_group_in_table_order():
    names = [w.name for w in suite.select("elementwise,gemm,mlp", quick=True)]
    assert names == ["mlp", "gemm 256", "gemm 1024", "elementwise"]
    assert [w.name for w in suite.select("gemm 512", quick=False)] == ["gemm 512"]
    with pytest.raises(ValueError, match="unknown workload 'resnet'"):
        suite.select("resnet", quick=False)


def cell(ms: float, spread: float = 0.0) -> dict:
    s = ms / 1e3
    return {"median": s, "q1": s * (1 - spread / 2), "q3": s * (1 + spread / 2), "first": s,
            "samples": 5}


def test_table_renders_with_missing_and_failed_frameworks():
    gone = {"missing": "torch is not installed"}
    report = {
        "peak": {"1": 100.0}, "repeat": 5,
        "compile": {"lenet": {"cold": {"compile": 0.8, "rebatch": 0.05},
                              "warm": {"compile": 0.02},
                              "tiered": {"compile": 0.3, "rebatch": 0.04}},
                    "transformer": {"cold": {"error": "boom"}},
                    "transformer-example": {"cold": {"compile": 2.5, "rebatch": 1.5},
                                            "libraries": {"compile": 1.5, "rebatch": 1.2}}},
        "rows": [{"workload": "gemm 1024", "threads": 1, "flops": 2e9, "bytes": None,
                  "target": 1.05,
                  "times": {"numpy": cell(40), "graphc": cell(25), "torch": gone,
                            "torch.compile": gone, "jax": cell(20, spread=0.5)}},
                 {"workload": "lenet", "threads": 1, "flops": 1e8, "target": 0.35,
                  "times": {"numpy": cell(50), "graphc": cell(5), "torch": gone,
                            "torch.compile": gone, "jax": {"error": "boom"}}}]}
    text = table.render(report)
    lines = text.splitlines()
    header = lines[0].split()
    assert header[:8] == ["workload", "thr", "code", "numpy", "ms", "graphc", "ms", "torch"]
    gemm = lines[1].split()
    assert gemm[:10] == ["gemm", "1024", "1", "host", "40.0", "25.0", "missing", "missing",
                         "20.0*", "jax"]
    assert gemm[10:] == ["1.25", "MISS", "<=1.05", "80.0", "80%"]
    lenet = lines[2].split()
    assert lenet[5:9] == ["missing", "missing", "failed", "-"]  # no alternative: no best
    notes = " ".join(text.split())  # the notes are wrapped
    assert "jax failed on lenet at 1 thread(s): boom" in notes
    assert "torch: torch is not installed; its column says missing" in notes
    assert ("gemm 1024 at 1 thread: graphc's fastest call at 80% of peak (target >= 90%) "
            "MISS; its median call at 80%") in notes
    assert ("lenet training step compile (graphc llvm, 1 thread): cold 800 ms (target <= "
            "600 ms) MISS, a second batch size 50 ms (target <= 100 ms) ok, from the disk "
            "cache 20 ms (target <= 50 ms) ok, tiered (first calls interpreted): cold 300 ms "
            "(target <= 600 ms) ok, a second batch size 40 ms (target <= 100 ms) ok") in notes
    assert "transformer training step compile (graphc llvm, 1 thread): cold failed: boom" \
        in notes
    assert ("transformer-example training step compile (graphc llvm, 1 thread): cold 2.50 s "
            "(target <= 2.00 s) MISS, a second batch size 1.50 s (target <= 100 ms) MISS, "
            "cold but for the cached libraries 1.50 s (target <= 2.00 s) ok, a second batch "
            "size 1.20 s (target <= 100 ms) MISS") in notes


def test_suite_end_to_end_with_a_missing_framework(monkeypatch):
    monkeypatch.setattr(suite, "missing_reason",
                        lambda f: "torch is not installed" if f == "torch" else None)
    report = suite.run(suite.select("elementwise", quick=True), [1],
                       ["numpy", "graphc", "torch"], repeat=2, quick=True, log=lambda s: None)
    (row,) = report["rows"]
    assert row["times"]["torch"] == {"missing": "torch is not installed"}
    for framework in ("numpy", "graphc"):
        timing = row["times"][framework]
        assert timing["samples"] >= 2 and timing["median"] > 0, timing
    text = table.render(report)
    assert "elementwise" in text.splitlines()[2] and "missing" in text.splitlines()[2]


def test_graphc_bench_forwards_its_options(monkeypatch):
    from graphc.cli import system

    calls = []
    fake = type("Suite", (), {"main": staticmethod(
        lambda argv, prog: calls.append((argv, prog)) or 0)})
    monkeypatch.setattr(system, "benchmark_suite", lambda: fake)
    assert graphc_main(["bench", "--workloads", "mlp,gemm", "--quick", "--repeat", "3"]) == 0
    assert calls == [(["--threads", "1,2", "--workloads", "mlp,gemm", "--repeat", "3",
                       "--quick"], "graphc bench")]


def test_bench_rejects_bad_options(capsys):
    assert suite.main(["--threads", "0"]) == 2
    assert "--threads 0" in capsys.readouterr().err
    assert suite.main(["--workloads", "resnet"]) == 2
    assert "unknown workload 'resnet'" in capsys.readouterr().err


def test_training_rows_report_peak_rss_against_torch_eager():
    def step(ms, peak_mb, base_mb):
        return {**cell(ms), "peak_rss": peak_mb * 2**20, "base_rss": base_mb * 2**20}
    rows = [{"workload": "mlp", "threads": t, "flops": 1e6, "bytes": None, "target": 1.0,
             "times": {"graphc": step(1, ours, 100), "torch": step(2, 300, 250)}}
            for t, ours in ((1, 180), (2, 320))]
    notes = " ".join(table.render({"peak": {}, "repeat": 5, "rows": rows}).split())
    assert ("peak RSS of the training steps, MB (+ added by the step): mlp at 1 thr: graphc "
            "180 (+80), torch 300 (+50) ok; mlp at 2 thr: graphc 320 (+220), torch 300 (+50) "
            "MISS") in notes


def test_the_memory_probe_sees_a_workload_s_own_peak():
    big = 64 * 2**20
    _, first = memory.measured(lambda: np.ones(big // 8).sum())
    _, second = memory.measured(lambda: None)
    if first["peak_rss"] is None:
        pytest.skip("no /proc/self/clear_refs here (not Linux)")
    assert first["peak_rss"] - first["base_rss"] >= big * 0.9
    assert second["peak_rss"] - second["base_rss"] < big / 2  # the peak was reset


def test_peak_fractions_set_the_fastest_call_against_the_best_probe():
    """The peak is a best-of-run figure: graphc's fastest call is set against it, and its
    median call is reported beside it."""
    row = {"workload": "gemm 1024", "threads": 1, "flops": 2e9,
           "times": {"graphc": {**cell(25), "min": 0.020}}}
    s = table.summarize(row, {"1": 100.0})
    assert s["peak_fraction"] == pytest.approx(1.0)
    assert s["median_peak_fraction"] == pytest.approx(0.8)
    assert s["gflops"] == pytest.approx(80.0)


def test_drop_variants_keeps_only_the_library_objects(tmp_path, monkeypatch):
    import numpy as np

    import graphc as gc
    from graphc.backends.llvm.runtime import cache, layout

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    a = gc.input("a", (4, 8))
    gc.compile([a], a @ gc.param("w", np.ones((8, 3), np.float32)))(np.ones((4, 8), np.float32))
    folder = tmp_path / "graphc"
    programs = {e for e in cache.entries(folder) if layout.is_variant(cache.payload_of(e))}
    others = set(cache.entries(folder)) - programs
    assert len(programs) == 1 and any(b"\x7fELF" in e.read_bytes()[:200] for e in others)
    suite._drop_variants(folder)
    assert set(cache.entries(folder)) == others  # the GEMM library, the pool, the host
