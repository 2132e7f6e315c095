"""graphc's own loader of object files (runtime/elf.py): it computes the bits MCJIT's
loading does, refuses what it does not handle (so LLVM loads it instead), and the host's
LLVM description it needs comes from the disk cache."""

from __future__ import annotations

import ctypes
import math

import numpy as np
import pytest

import graphc as gc
from graphc.backends.llvm.runtime import elf, target
from graphc.backends.llvm.runtime.native import Native

pytestmark = pytest.mark.skipif(not elf.supported_here(), reason="loads x86-64 Linux objects")

CALLS_LIBM = """
declare double @tanh(double)
define double @call_tanh(double %x) {
  %y = call double @tanh(double %x)
  ret double %y
}
"""


READS_ENVIRON = """
@environ = external global ptr
define ptr @get_environ() {
  %p = load ptr, ptr @environ
  ret ptr %p
}
"""


def _program():
    x = gc.input("x", (4, 3, 9, 9))
    w = gc.param("w", np.random.default_rng(0).normal(size=(5, 3, 3, 3)).astype(np.float32))
    y = gc.max_pool2d(gc.gelu(gc.conv2d(x, w, padding=1)), 2)
    (gw,) = gc.grad(gc.sum(y * y), [w])
    args = [np.random.default_rng(1).normal(size=(4, 3, 9, 9)).astype(np.float32)]
    return gc.compile([x], [y, gw], threads=2), args


def test_a_program_loads_here_and_computes_the_bits_mcjit_loading_does():
    step, args = _program()
    got = step(*args)
    variant = step.compiled(*args)
    assert isinstance(variant.native.loaded, elf.Image)
    by_mcjit = Native(variant.layout, target.Loaded(*variant.objects), variant.error_message)
    expected = by_mcjit.run(list(args), 0, 2)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)


def test_objects_that_need_a_got_are_left_to_mcjit():
    """A system linker's objects read an external variable through the GOT, which this
    loader does not make: refused, and loaded by LLVM instead."""
    obj = target.compile_object(READS_ENVIRON, target.host_target(), linkable=True)
    with pytest.raises(elf.Unsupported, match="relocation kind"):
        elf.Image(obj)
    loaded = target.load(obj)
    assert isinstance(loaded, target.Loaded)
    call = ctypes.CFUNCTYPE(ctypes.c_void_p)(loaded.address("get_environ"))
    assert call() == ctypes.c_void_p.in_dll(ctypes.CDLL(None), "environ").value != 0


def test_the_jit_objects_call_libm_through_absolute_addresses():
    obj = target.compile_object(CALLS_LIBM, target.host_target())
    image = elf.Image(obj)
    call = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double)(image.address("call_tanh"))
    assert call(0.5) == math.tanh(0.5)
    with pytest.raises(RuntimeError, match="symbol nowhere missing"):
        image.address("nowhere")


def test_other_machines_and_non_objects_are_refused():
    arm = target.compile_object(CALLS_LIBM, target.resolve("aarch64"))
    for data in (arm, b"", b"\x7fELF" + bytes(60), b"not an object at all" * 4):
        with pytest.raises(elf.Unsupported):
            elf.Image(data)


def test_a_32_bit_relocation_out_of_reach_is_refused_before_writing():
    cell = ctypes.c_int32(7)
    place = ctypes.addressof(cell)
    for kind in (elf.R_X86_64_PC32, elf.R_X86_64_PLT32, elf.R_X86_64_32S):
        with pytest.raises(elf.Unsupported, match="out of range"):
            elf._write(kind, place, place + (1 << 40))
    assert cell.value == 7
    elf._write(elf.R_X86_64_PC32, place, place - 8)
    assert cell.value == -8
    with pytest.raises(elf.Unsupported, match="relocation kind"):
        elf._write(9, place, place)  # a GOT entry: not made here


def test_the_hosts_description_is_kept_in_the_disk_cache(tmp_path, monkeypatch):
    """Asked of LLVM once per CPU; then read back without it; a damaged entry is asked
    again."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    target.host.cache_clear()
    try:
        asked = target.host()
        assert target.cache.load(target._host_key()) is not None
        target.host.cache_clear()
        monkeypatch.setattr(target, "_initialize", lambda: pytest.fail("LLVM was asked"))
        assert target.host() == asked
        monkeypatch.undo()
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        target.cache.store(target._host_key(), b"[1, 2")
        target.host.cache_clear()
        assert target.host() == asked
    finally:
        target.host.cache_clear()
