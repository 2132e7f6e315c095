"""The target code is compiled for (runtime/target.py): names resolve to a description
(vector width and registers, FMA, caches), gc.compile(target=) and $GRAPHC_TARGET choose
it, each target is its own cache entry, the register tiles follow it, the instructions
emitted stay within it, and code for a CPU this one is not is built but never run."""

from __future__ import annotations

import re

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.codegen import vector
from graphc.backends.llvm.gemm import blocking
from graphc.backends.llvm.runtime import target

HOST = target.host_target()
x86_only = pytest.mark.skipif(not HOST.x86, reason="the x86-64 levels need an x86-64 host")


@x86_only
@pytest.mark.parametrize("name,width,registers,fma", [
    ("x86-64-v2", 16, 16, False), ("x86-64-v3", 32, 16, True), ("x86-64-v4", 64, 32, True),
    ("haswell", 32, 16, True), ("skylake-avx512", 64, 32, True)])
def test_names_resolve_to_what_the_cpu_has(name, width, registers, fma):
    chosen = target.resolve(name)
    assert (chosen.vector_bytes, chosen.vector_registers, chosen.fma) == (width, registers, fma)
    assert chosen.cpu == name and name in chosen.describe()


def test_the_host_describes_itself():
    assert target.resolve("host") is HOST
    assert HOST.vector_bytes in (16, 32, 64) and HOST.vector_registers in (16, 32)
    assert all(size > 0 for size in HOST.caches)
    assert not HOST.missing_on_host()


@pytest.mark.parametrize("name,error,words", [
    ("pentium-9000", ValueError, "unknown target 'pentium-9000'"),
    ("", TypeError, "non-empty str"), (3, TypeError, "got 3")])
def test_a_bad_name_is_refused_naming_it(name, error, words):
    with pytest.raises(error, match=re.escape(words)):
        target.resolve(name)


def test_gc_compile_refuses_a_bad_target_before_compiling():
    x = gc.input("x", (4,))
    with pytest.raises(ValueError, match="unknown target 'nope'"):
        gc.compile([x], x * 2.0, target="nope")


@x86_only
@pytest.mark.parametrize("name,rows,accumulators", [("x86-64-v3", 6, 12), ("x86-64-v4", 8, 24),
                                                    ("aarch64", 8, 24)])
def test_register_tiles_follow_the_target(name, rows, accumulators):
    with target.using(target.resolve(name)):
        assert blocking.mr() == rows and vector.accumulators() == accumulators
        assert blocking.nr(np.float32) == 2 * target.resolve(name).vector_bytes // 4
    assert target.current() == target.resolve(target.default_name())


def test_the_environment_sets_the_default(monkeypatch):
    monkeypatch.setenv("GRAPHC_TARGET", "x86-64-v2" if HOST.x86 else "host")
    assert target.default_name() == ("x86-64-v2" if HOST.x86 else "host")
    monkeypatch.setenv("GRAPHC_TARGET", " ")
    assert target.default_name() == "host"


def _matmul(**options):
    a, b = gc.input("a", (40, 72)), gc.input("b", (72, 24))
    return gc.compile([a, b], gc.relu(a @ b), **options)


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 72)).astype(np.float32), rng.normal(size=(72, 24)).astype(
        np.float32)


@x86_only
@pytest.mark.parametrize("name,forbidden", [("x86-64-v2", r"%[yz]mm"), ("x86-64-v3", r"%zmm")])
def test_a_lower_level_emits_no_wider_instruction(name, forbidden):
    f = _matmul(target=name)
    a, b = _data()
    np.testing.assert_allclose(f(a, b), np.maximum(a @ b, 0), rtol=1e-4, atol=1e-5)
    variant = f.compiled(a, b)
    assert variant.target.name == name
    asm = target.assembly(variant.ir, variant.target)
    assert re.search(r"\bv?mulps\s|\bvfmadd", asm)  # it computes in vectors
    assert not re.search(r"call\w*\s+fmaf?\b", asm)  # no libm fma per element
    assert not re.search(forbidden, asm)


@x86_only
def test_the_environment_reaches_gc_compile(monkeypatch):
    monkeypatch.setenv("GRAPHC_TARGET", "x86-64-v2")
    a, b = _data()
    assert _matmul().compiled(a, b).target.name == "x86-64-v2"


@x86_only
@pytest.mark.skipif(HOST.avx512, reason="the host runs AVX-512 code")
def test_code_for_a_cpu_this_one_is_not_is_built_but_not_run():
    f = _matmul(target="x86-64-v4")
    a, b = _data()
    variant = f.compiled(a, b)  # built, to inspect or export
    assert variant.native is None and "<16 x float>" in variant.ir
    with pytest.raises(RuntimeError, match=r"compiled for target 'x86-64-v4'.*lacks"):
        f(a, b)


@x86_only
def test_each_target_is_its_own_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    a, b = _data()
    first = _matmul(target="x86-64-v2")
    first(a, b)
    again = _matmul(target="x86-64-v2")
    again(a, b)
    other = _matmul(target="x86-64-v3")
    other(a, b)
    assert again.memory_report()["cache_hit"] and not other.memory_report()["cache_hit"]
    # v2 multiplies then adds where v3 fuses them: sums of 72 float32 products of O(1)
    # values differ in their last bits (~72 ulps of O(1) at most).
    np.testing.assert_allclose(other(a, b), again(a, b), rtol=1e-4, atol=1e-5)
