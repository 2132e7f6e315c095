"""The disk cache keyed by the unoptimized program: a hit runs the stored object code with
neither the optimizer nor the lowerings, gives the same results as a compile without the
cache, and anything that could make the stored code wrong (graphc's source, options,
binding, a damaged entry) means a recompile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.runner import Stored
from graphc.backends.llvm.runtime import cache, elf, key, layout, target
from tests.backends.llvm.runtime.nets import conv_step, train


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    return tmp_path / "graphc"


def _entries(folder: Path) -> list[Path]:
    """The variants stored (a library object holds no layout)."""
    return sorted(e for e in folder.glob("*.o")
                  if layout.is_variant(cache.load(bytes.fromhex(e.stem)) or b""))


def _hit(step) -> bool:
    return step.memory_report()["cache_hit"]


def test_a_hit_gives_the_results_of_a_compile_without_the_cache(cache_dir, monkeypatch):
    first = train(*conv_step())
    assert len(_entries(cache_dir)) == 1
    step, params, data = conv_step()
    found = step.compiled()  # found at gc.compile: shapes are static
    assert isinstance(found, Stored)
    assert step._program is None  # nothing optimized
    hit = train(step, params, data)
    assert _hit(step)
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    uncached = train(*conv_step())
    for a, b, c in zip(first, hit, uncached, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def _symbolic_step():
    x = gc.input("x", ("N", 3))
    w = gc.param("w", np.arange(6, dtype=np.float32).reshape(3, 2))
    loss = gc.mean(gc.relu(x @ w))
    (g,) = gc.grad(loss, [w])
    return gc.compile([x], loss, updates={w: w - 0.1 * g}), w


def test_a_symbolic_batch_hits_without_optimizing(cache_dir):
    """Every batch size already stored loads without running a pass (the runner of the
    optimized program was once prepared at gc.compile whenever a dim was symbolic)."""
    first, _ = _symbolic_step()
    for n in (4, 7):
        first(np.ones((n, 3), np.float32))
    step, w = _symbolic_step()
    assert step._program is None
    for n in (4, 7):
        step(np.ones((n, 3), np.float32))
        assert _hit(step)
    assert step._program is None  # nothing optimized
    step(np.ones((5, 3), np.float32))  # a new batch size: optimized and compiled now
    assert not _hit(step) and step._program is not None


def test_a_hit_binds_this_processs_params(cache_dir):
    train(*conv_step(seed=0))
    step, params, data = conv_step(seed=1)  # same code, other param values and nodes
    assert _hit(step)
    got = train(step, params, data)
    reference, ref_params, _ = conv_step(seed=1, backend="numpy")
    expected = train(reference, ref_params, data)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


def test_the_optimized_program_is_built_when_asked_for(cache_dir):
    train(*conv_step())
    step, params, data = conv_step()
    assert _hit(step)
    assert "kernels left:" in step.report()  # optimizes now, measuring every pass
    assert len(step.pass_stats) > 0 and step.compiled().plan.steps  # the plan, rebuilt
    assert "digraph" in step.to_dot()
    ops = [s.node.op for s in step.compiled().plan.steps if s.node is not None]
    assert [op for op, _ in step.compiled().layout.steps][:len(ops)] == ops
    assert "graphc_entry" in step.compiled().ir
    profile = step.profile(*data, calls=2)
    assert len(profile.kernels) == len(step.compiled().layout.steps)


FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    import numpy as np
    import graphc as gc
    from tests.backends.llvm.runtime.nets import conv_step, train
    step, params, data = conv_step()
    results = train(step, params, data)
    print(json.dumps({
        "hit": step.memory_report()["cache_hit"],
        "passes": "graphc.passes" in sys.modules,
        "lowerings": "graphc.backends.llvm.lower.conv" in sys.modules,
        "ir": any(m in sys.modules for m in ("graphc.backends.llvm.codegen.assemble",
                                             "graphc.backends.llvm.schedule.plan")),
        "llvm": any(m in sys.modules for m in ("llvmlite.binding", "llvmlite.ir")),
        "results": [r.tolist() for r in results],
    }))
""")


def _fresh(cache_dir: Path) -> dict:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_dir.parent)}
    env.pop("GRAPHC_CACHE", None)
    root = Path(__file__).resolve().parents[4]
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS], env=env, cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_new_process_hits_without_optimizing_or_lowering(cache_dir):
    cold = _fresh(cache_dir)
    warm = _fresh(cache_dir)
    assert (cold["hit"], cold["passes"], cold["lowerings"], cold["ir"]) == (False, True, True,
                                                                            True)
    assert (warm["hit"], warm["passes"], warm["lowerings"], warm["ir"]) == (True, False, False,
                                                                            False)
    assert warm["results"] == cold["results"]
    # Nor LLVM, where graphc loads object files itself (half of a hit's time was
    # importing llvmlite's binding): the objects, the worker pool's and the host's
    # description all come from the cache.
    assert cold["llvm"] and warm["llvm"] is not elf.supported_here()


def test_a_changed_graphc_source_misses(cache_dir, monkeypatch):
    train(*conv_step())
    key._fingerprint.cache_clear()
    real = key.code_fingerprint()
    monkeypatch.setattr(key, "code_fingerprint", lambda: real[::-1])
    step, params, data = conv_step()
    train(step, params, data)
    assert not _hit(step)
    assert len(_entries(cache_dir)) == 2


@pytest.mark.parametrize("options", [{"optimize": False}, {"threads": 2}, {"threads": None}])
def test_other_options_are_other_entries_with_the_same_results(cache_dir, options):
    base = train(*conv_step(threads=1))
    step, params, data = conv_step(**options)
    other = train(step, params, data)
    assert not _hit(step)
    assert len(_entries(cache_dir)) == 2
    again, params, data = conv_step(**options)
    assert _hit(again)
    repeated = train(again, params, data)
    for a, b, c in zip(base, other, repeated, strict=True):
        np.testing.assert_array_equal(b, c)
        if "optimize" in options:  # optimizing may round differently
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        else:  # any thread count computes the same bits
            np.testing.assert_array_equal(a, b)


def test_each_binding_is_an_entry_of_its_own(cache_dir):
    def compiled():
        x = gc.input("x", ("N", 3), "float64")
        return gc.compile([x], gc.sum(gc.exp(x), axis=1))

    fn = compiled()
    a, b = np.ones((2, 3)), np.ones((5, 3))
    fn(a), fn(b)
    assert len(_entries(cache_dir)) == 2
    again = compiled()
    for arg in (b, a):
        np.testing.assert_allclose(again(arg), np.exp(1.0) * 3, rtol=1e-14)
        assert _hit(again)
    assert again.memory_report()["bindings_compiled"] == 2


def test_a_kernel_error_on_a_hit_reads_as_without_the_cache(cache_dir):
    def compiled():
        y = gc.input("y", (3,), "int32")
        return gc.compile([y], gc.one_hot(y, 4) * 2.0)

    bad = np.array([0, 4, 1], np.int32)
    with pytest.raises(ValueError) as miss:
        compiled()(bad)
    fn = compiled()
    assert _hit(fn)
    with pytest.raises(ValueError) as hit:
        fn(bad)
    assert str(hit.value) == str(miss.value) and "4" in str(hit.value)
    np.testing.assert_array_equal(fn(np.array([3, 0, 0], np.int32))[0], [0, 0, 0, 2])


def _stored_payload(cache_dir: Path) -> tuple[Path, bytes]:
    (entry,) = _entries(cache_dir)
    payload = cache.load(bytes.fromhex(entry.stem))
    assert payload is not None
    return entry, payload


def _header(payload: bytes) -> tuple[dict, bytes]:
    (length,) = layout._LENGTH.unpack_from(payload)
    start = layout._LENGTH.size
    return json.loads(payload[start:start + length]), payload[start + length:]


def _with_header(header: dict, rest: bytes) -> bytes:
    text = json.dumps(header).encode()
    return layout._LENGTH.pack(len(text)) + text + rest


DAMAGE = {
    "param index": lambda h: h["slots"].__setitem__(
        next(i for i, s in enumerate(h["slots"]) if s[0] == "param"), ["param", 99]),
    "negative slot": lambda h: h["outputs"][0].__setitem__(0, -1),
    "output dtype": lambda h: h["outputs"][0].__setitem__(2, "<f8"),
    "slot kind": lambda h: h["slots"][0].__setitem__(0, "weird"),
    "blob sizes": lambda h: h["blobs"].append(5),
    "version": lambda h: h.__setitem__("version", 0),
    "written": lambda h: h.__setitem__("written", [7]),
    "arena": lambda h: h.__setitem__("arena_bytes", -64),
    "not a count": lambda h: h.__setitem__("work", "many"),
    "missing field": lambda h: h.pop("steps"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_an_entry_that_does_not_fit_is_rebuilt(cache_dir, damage):
    expected = train(*conv_step())
    entry, payload = _stored_payload(cache_dir)
    header, rest = _header(payload)
    DAMAGE[damage](header)
    cache.store(bytes.fromhex(entry.stem), _with_header(header, rest))  # a valid file
    step, params, data = conv_step()
    for a, b in zip(expected, train(step, params, data), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not _hit(step)
    assert _entries(cache_dir) == [entry]
    assert layout.decode(_stored_payload(cache_dir)[1], step.source,
                         layout.params_of(step.source)) is not None  # rewritten



def test_programs_share_the_gemm_library_object(cache_dir, monkeypatch):
    def product(n: int):
        a = gc.input("a", (n, 32))
        w = gc.param("w", np.eye(32, dtype=np.float32)[:, :24] * 2)
        return gc.compile([a], gc.relu(a @ w))

    compiled: list[str] = []
    real = target.compile_object
    monkeypatch.setattr(target, "compile_object", lambda ir: compiled.append(ir) or real(ir))
    for n in (8, 5):  # two programs, one GEMM driver
        data = np.arange(n * 32, dtype=np.float32).reshape(n, 32) - 40
        np.testing.assert_array_equal(product(n)(data), np.maximum(data[:, :24] * 2, 0))
    first, second = compiled[:-1], compiled[-1:]
    libraries = [ir for ir in first if "graphc_entry" not in ir]
    assert len(first) == 2 and len(libraries) == 1 and "gc_gemm" in libraries[0]
    assert "graphc_entry" in second[0] and "define internal void @\"gc_gemm" not in second[0]
    assert len(list(cache_dir.glob("*.o"))) == 3  # two variants, one library


def test_split_modules_link_and_compute_what_one_module_does(monkeypatch):
    from graphc.backends.llvm.runtime import partition

    monkeypatch.setenv("GRAPHC_CACHE", "0")
    expected = train(*conv_step())
    monkeypatch.setattr(partition, "split_shared", lambda text: (text, []))
    for a, b in zip(expected, train(*conv_step()), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_damaged_library_entry_is_rebuilt(cache_dir):
    train(*conv_step())
    (library,) = set(cache_dir.glob("*.o")) - set(_entries(cache_dir))
    data = library.read_bytes()
    library.write_bytes(data[:100] + bytes(b ^ 0xFF for b in data[100:200]) + data[200:])
    assert cache.load(bytes.fromhex(library.stem)) is None
    expected = train(*conv_step(seed=3), calls=1)
    for entry in _entries(cache_dir):
        entry.unlink()  # a new compile of the same program needs the library again
    for a, b in zip(expected, train(*conv_step(seed=3), calls=1), strict=True):
        np.testing.assert_array_equal(a, b)
    assert cache.load(bytes.fromhex(library.stem)) is not None  # rewritten
