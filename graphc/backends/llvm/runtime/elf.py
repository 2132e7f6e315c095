"""Loading x86-64 ELF object files into this process without LLVM: what a disk-cache hit
needs, so that it does not import llvmlite's binding (50 ms, half of a hit).

graphc's objects are relocatable ELF files built for the JIT (LLVM's large code model):
their code reaches every symbol through 64-bit absolute addresses, so loading one is
mapping its sections, finding each symbol (in the objects loaded together, else in the
C library and libm) and writing the few kinds of relocation below. Anything else
(another machine, a GOT, thread-local or constructor sections) raises Unsupported, and
the caller loads through LLVM's MCJIT instead. Unwinding tables (.eh_frame) are not
registered: graphc's kernels neither throw nor are unwound through.
"""

from __future__ import annotations

import ctypes
import mmap
import struct
import sys
from dataclasses import dataclass

_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_SECTION = struct.Struct("<IIQQQQIIQQ")
_SYMBOL = struct.Struct("<IBBHQQ")
_RELOCATION = struct.Struct("<QQq")

EM_X86_64 = 62
SHT_PROGBITS, SHT_SYMTAB, SHT_RELA, SHT_NOBITS, SHT_REL = 1, 2, 4, 8, 9
SHT_X86_64_UNWIND = 0x70000001  # .eh_frame
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHF_TLS = 0x1, 0x2, 0x4, 0x400
SHN_UNDEF, SHN_ABS, SHN_COMMON = 0, 0xFFF1, 0xFFF2
STB_LOCAL = 0
R_X86_64_64, R_X86_64_PC32, R_X86_64_PLT32 = 1, 2, 4
R_X86_64_32, R_X86_64_32S, R_X86_64_PC64 = 10, 11, 24
PAGE = mmap.PAGESIZE


class Unsupported(Exception):
    """The objects need something this loader does not do (load them through MCJIT)."""


@dataclass
class _Section:
    index: int
    kind: int
    flags: int
    offset: int
    size: int
    align: int
    info: int
    link: int
    address: int = 0  # where it was placed (loaded sections only)


class _Object:
    """One parsed object file: its sections, symbols and relocations."""

    def __init__(self, data: bytes):
        if len(data) < _HEADER.size or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise Unsupported("not a 64-bit little-endian ELF file")
        (_, kind, machine, _, _, _, shoff, _, _, _, _, shentsize, shnum,
         _) = _HEADER.unpack_from(data)
        if kind != 1 or machine != EM_X86_64 or shentsize != _SECTION.size:
            raise Unsupported(f"not an x86-64 relocatable object (type {kind}, machine "
                              f"{machine})")
        self.data = data
        self.sections = []
        for k in range(shnum):
            (_, sh_type, flags, _, offset, size, link, info, align,
             _) = _SECTION.unpack_from(data, shoff + k * _SECTION.size)
            self.sections.append(_Section(k, sh_type, flags, offset, size, max(align, 1),
                                          info, link))
        self.loaded = [s for s in self.sections if s.flags & SHF_ALLOC
                       and s.kind != SHT_X86_64_UNWIND]
        for s in self.loaded:
            if s.kind not in (SHT_PROGBITS, SHT_NOBITS) or s.flags & SHF_TLS:
                raise Unsupported(f"a section of type {s.kind:#x}, flags {s.flags:#x}")
        if any(s.kind == SHT_REL for s in self.sections):
            raise Unsupported("REL relocations")
        tables = [s for s in self.sections if s.kind == SHT_SYMTAB]
        self.symbols = self._symbols(tables[0]) if tables else []

    def _symbols(self, table: _Section) -> list[tuple[str, int, int, int]]:
        """(name, binding, type, section index) and value of each symbol, in order."""
        names = self.sections[table.link]
        out = []
        for at in range(table.offset, table.offset + table.size, _SYMBOL.size):
            name_at, info, _, shndx, value, _ = _SYMBOL.unpack_from(self.data, at)
            end = self.data.index(b"\0", names.offset + name_at)
            name = self.data[names.offset + name_at:end].decode()
            out.append((name, info >> 4, info & 0xF, shndx, value))
        return out


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return libc


_LIBRARIES: list = []


def _external(name: str) -> int:
    """The address of a C library or libm function (erf, tanh, sched_yield, memset...)."""
    if not _LIBRARIES:
        _LIBRARIES.append(ctypes.CDLL(None))
        try:
            _LIBRARIES.append(ctypes.CDLL("libm.so.6"))
        except OSError:  # not glibc: what the process has loaded is all there is
            pass
    for library in _LIBRARIES:
        try:
            return ctypes.cast(getattr(library, name), ctypes.c_void_p).value
        except AttributeError:
            continue
    raise Unsupported(f"symbol {name} is in no library loaded here")


def supported_here() -> bool:
    """Whether this process can load objects this way: Linux on x86-64."""
    import platform
    return sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")


class Image:
    """Object files mapped into one block of memory, relocated, the code made executable;
    `address(name)` finds an exported symbol. The memory is freed with the image (keep
    it alive while its code may run)."""

    def __init__(self, *objects: bytes):
        self.base = 0
        if not supported_here():
            raise Unsupported("not Linux on x86-64")
        parsed = [_Object(data) for data in objects]
        code = [(o, s) for o in parsed for s in o.loaded if s.flags & SHF_EXECINSTR]
        rest = [(o, s) for o in parsed for s in o.loaded if not s.flags & SHF_EXECINSTR]
        code_bytes = _place(code, 0)
        start_rest = _round(code_bytes, PAGE)
        self.size = max(PAGE, _round(_place(rest, start_rest), PAGE))
        self._libc = _libc()
        base = self._libc.mmap(None, self.size, mmap.PROT_READ | mmap.PROT_WRITE,
                               mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
        if base in (None, ctypes.c_void_p(-1).value):
            raise MemoryError(f"mmap of {self.size} bytes failed (errno {ctypes.get_errno()})")
        self.base = base
        try:
            for o, s in code + rest:
                s.address += base
                if s.kind == SHT_PROGBITS and s.size:
                    ctypes.memmove(s.address, o.data[s.offset:s.offset + s.size], s.size)
            self.exports = _exports(parsed)
            for o in parsed:
                _relocate(o, self.exports)
            if code_bytes and self._libc.mprotect(base, _round(code_bytes, PAGE),
                                                  mmap.PROT_READ | mmap.PROT_EXEC):
                raise Unsupported(f"mprotect refused executable memory (errno "
                                  f"{ctypes.get_errno()})")
        except BaseException:
            self._free()
            raise

    def address(self, name: str) -> int:
        address = self.exports.get(name)
        if not address:
            raise RuntimeError(f"internal error: symbol {name} missing from compiled code")
        return address

    def _free(self) -> None:
        if self.base:
            self._libc.munmap(self.base, self.size)
            self.base = 0

    def __del__(self):
        self._free()


def _round(n: int, to: int) -> int:
    return -(-n // to) * to


def _place(sections: list, at: int) -> int:
    """Offsets (from the block's start) for `sections` from `at` on; the end offset."""
    for _, s in sections:
        at = _round(at, s.align)
        s.address = at
        at += s.size
    return at


def _exports(parsed: list[_Object]) -> dict[str, int]:
    """Addresses of the global symbols the objects define (they call each other's)."""
    exports: dict[str, int] = {}
    for o in parsed:
        for name, binding, _, shndx, value in o.symbols:
            if binding == STB_LOCAL or shndx == SHN_UNDEF or not name:
                continue
            if name in exports:
                raise Unsupported(f"symbol {name} is defined twice")
            exports[name] = _defined(o, shndx, value)
    return exports


def _defined(o: _Object, shndx: int, value: int) -> int:
    if shndx == SHN_ABS:
        return value
    if shndx == SHN_COMMON or shndx >= len(o.sections) or not o.sections[shndx].address:
        raise Unsupported(f"a symbol in section {shndx:#x}, which is not loaded")
    return o.sections[shndx].address + value


def _relocate(o: _Object, exports: dict[str, int]) -> None:
    """Write every relocation of the object's loaded sections."""
    loaded = {s.index for s in o.loaded}
    for table in o.sections:
        if table.kind != SHT_RELA or table.info not in loaded:
            continue
        target = o.sections[table.info]
        for at in range(table.offset, table.offset + table.size, _RELOCATION.size):
            offset, info, addend = _RELOCATION.unpack_from(o.data, at)
            kind, index = info & 0xFFFFFFFF, info >> 32
            name, _, _, shndx, value = o.symbols[index]
            s = _defined(o, shndx, value) if shndx != SHN_UNDEF \
                else exports.get(name) or _external(name)
            place = target.address + offset
            _write(kind, place, s + addend)


def _write(kind: int, place: int, value: int) -> None:
    """One relocation: value is S + A (P is subtracted here for the PC-relative kinds)."""
    if kind == R_X86_64_64:
        ctypes.c_uint64.from_address(place).value = value & (2 ** 64 - 1)
    elif kind == R_X86_64_PC64:
        ctypes.c_int64.from_address(place).value = value - place
    elif kind in (R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_32S, R_X86_64_32):
        relative = value - place if kind in (R_X86_64_PC32, R_X86_64_PLT32) else value
        low, high = (0, 2 ** 32) if kind == R_X86_64_32 else (-2 ** 31, 2 ** 31)
        if not low <= relative < high:
            raise Unsupported(f"a 32-bit relocation (kind {kind}) out of range")
        ctypes.c_int32.from_address(place).value = relative if relative < 2 ** 31 \
            else relative - 2 ** 32
    else:
        raise Unsupported(f"relocation kind {kind}")
