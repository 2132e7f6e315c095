"""The CPU features an export's code needs, and where CPUID reports each one, so that the
exported library can check them at `name_create` and refuse a CPU that lacks one with a
message (running the code there would die of an illegal instruction).

Which features a target's code may use: for "host", every feature LLVM enabled for this
CPU (so the export runs on CPUs with the same features); for an x86-64 level, the features
the psABI lists for it; for an LLVM CPU name, the vector extensions its vector width and
FMA imply (LLVM does not say which other features a CPU name turns on, so the check is
partial there: prefer "host" or a level for code meant to travel).
"""

from __future__ import annotations

from dataclasses import dataclass

from graphc.backends.llvm.runtime.target import Target

# Registers of a CPUID answer, in the order the exported runtime's table indexes them.
EAX, EBX, ECX, EDX = range(4)
EXTENDED = 0x80000000


@dataclass(frozen=True)
class Feature:
    """An LLVM feature name and the CPUID bit that reports it: leaf, subleaf, register
    (EAX..EDX) and bit; `xcr0`: the XCR0 bits the OS must set for its registers to be
    saved (AVX: 0x6, AVX-512: 0xE6), 0 for none."""

    name: str
    leaf: int
    subleaf: int
    register: int
    bit: int
    xcr0: int = 0


_AVX_STATE, _AVX512_STATE = 0x6, 0xE6


def _table() -> dict[str, Feature]:
    rows = [
        # leaf 1
        ("sse3", 1, 0, ECX, 0), ("pclmul", 1, 0, ECX, 1), ("ssse3", 1, 0, ECX, 9),
        ("fma", 1, 0, ECX, 12, _AVX_STATE), ("cx16", 1, 0, ECX, 13), ("sse4.1", 1, 0, ECX, 19),
        ("sse4.2", 1, 0, ECX, 20), ("crc32", 1, 0, ECX, 20), ("movbe", 1, 0, ECX, 22),
        ("popcnt", 1, 0, ECX, 23), ("aes", 1, 0, ECX, 25), ("xsave", 1, 0, ECX, 26),
        ("avx", 1, 0, ECX, 28, _AVX_STATE), ("f16c", 1, 0, ECX, 29, _AVX_STATE),
        ("rdrnd", 1, 0, ECX, 30),
        ("cx8", 1, 0, EDX, 8), ("cmov", 1, 0, EDX, 15), ("mmx", 1, 0, EDX, 23),
        ("fxsr", 1, 0, EDX, 24), ("sse", 1, 0, EDX, 25), ("sse2", 1, 0, EDX, 26),
        # leaf 7
        ("fsgsbase", 7, 0, EBX, 0), ("sgx", 7, 0, EBX, 2), ("bmi", 7, 0, EBX, 3),
        ("hle", 7, 0, EBX, 4), ("avx2", 7, 0, EBX, 5, _AVX_STATE), ("bmi2", 7, 0, EBX, 8),
        ("invpcid", 7, 0, EBX, 10), ("rtm", 7, 0, EBX, 11),
        ("avx512f", 7, 0, EBX, 16, _AVX512_STATE), ("avx512dq", 7, 0, EBX, 17, _AVX512_STATE),
        ("rdseed", 7, 0, EBX, 18), ("adx", 7, 0, EBX, 19),
        ("avx512ifma", 7, 0, EBX, 21, _AVX512_STATE), ("clflushopt", 7, 0, EBX, 23),
        ("clwb", 7, 0, EBX, 24), ("avx512cd", 7, 0, EBX, 28, _AVX512_STATE),
        ("sha", 7, 0, EBX, 29), ("avx512bw", 7, 0, EBX, 30, _AVX512_STATE),
        ("avx512vl", 7, 0, EBX, 31, _AVX512_STATE),
        ("prefetchwt1", 7, 0, ECX, 0), ("avx512vbmi", 7, 0, ECX, 1, _AVX512_STATE),
        ("pku", 7, 0, ECX, 3), ("waitpkg", 7, 0, ECX, 5),
        ("avx512vbmi2", 7, 0, ECX, 6, _AVX512_STATE), ("shstk", 7, 0, ECX, 7),
        ("gfni", 7, 0, ECX, 8), ("vaes", 7, 0, ECX, 9, _AVX_STATE),
        ("vpclmulqdq", 7, 0, ECX, 10, _AVX_STATE), ("avx512vnni", 7, 0, ECX, 11, _AVX512_STATE),
        ("avx512bitalg", 7, 0, ECX, 12, _AVX512_STATE),
        ("avx512vpopcntdq", 7, 0, ECX, 14, _AVX512_STATE), ("rdpid", 7, 0, ECX, 22),
        ("kl", 7, 0, ECX, 23), ("cldemote", 7, 0, ECX, 25), ("movdiri", 7, 0, ECX, 27),
        ("movdir64b", 7, 0, ECX, 28), ("enqcmd", 7, 0, ECX, 29),
        ("uintr", 7, 0, EDX, 5), ("avx512vp2intersect", 7, 0, EDX, 8, _AVX512_STATE),
        ("serialize", 7, 0, EDX, 14), ("tsxldtrk", 7, 0, EDX, 16), ("pconfig", 7, 0, EDX, 18),
        ("avx512fp16", 7, 0, EDX, 23, _AVX512_STATE),
        ("avxvnni", 7, 1, EAX, 4, _AVX_STATE), ("avx512bf16", 7, 1, EAX, 5, _AVX512_STATE),
        ("cmpccxadd", 7, 1, EAX, 7), ("hreset", 7, 1, EAX, 22), ("avxifma", 7, 1, EAX, 23,
                                                                   _AVX_STATE),
        ("avxvnniint8", 7, 1, EDX, 4, _AVX_STATE), ("avxneconvert", 7, 1, EDX, 5, _AVX_STATE),
        ("prefetchi", 7, 1, EDX, 14),
        # leaf 0xD, subleaf 1
        ("xsaveopt", 0xD, 1, EAX, 0), ("xsavec", 0xD, 1, EAX, 1), ("xsaves", 0xD, 1, EAX, 3),
        # extended leaves
        ("sahf", EXTENDED + 1, 0, ECX, 0), ("lzcnt", EXTENDED + 1, 0, ECX, 5),
        ("sse4a", EXTENDED + 1, 0, ECX, 6), ("prfchw", EXTENDED + 1, 0, ECX, 8),
        ("xop", EXTENDED + 1, 0, ECX, 11, _AVX_STATE), ("lwp", EXTENDED + 1, 0, ECX, 15),
        ("fma4", EXTENDED + 1, 0, ECX, 16, _AVX_STATE), ("tbm", EXTENDED + 1, 0, ECX, 21),
        ("mwaitx", EXTENDED + 1, 0, ECX, 29), ("64bit", EXTENDED + 1, 0, EDX, 29),
        ("clzero", EXTENDED + 8, 0, EBX, 0), ("rdpru", EXTENDED + 8, 0, EBX, 4),
        ("wbnoinvd", EXTENDED + 8, 0, EBX, 9),
    ]
    return {row[0]: Feature(*row) for row in rows}


CPUID = _table()

# The x86-64 micro-architecture levels of the psABI, each adding to the one before.
_BASELINE = ("64bit", "cmov", "cx8", "fxsr", "mmx", "sse", "sse2")
_LEVELS = {
    "x86-64-v2": _BASELINE + ("cx16", "sahf", "popcnt", "sse3", "sse4.1", "sse4.2", "ssse3"),
}
_LEVELS["x86-64-v3"] = _LEVELS["x86-64-v2"] + ("avx", "avx2", "bmi", "bmi2", "f16c", "fma",
                                               "lzcnt", "movbe", "xsave")
_LEVELS["x86-64-v4"] = _LEVELS["x86-64-v3"] + ("avx512f", "avx512bw", "avx512cd",
                                               "avx512dq", "avx512vl")


@dataclass(frozen=True)
class Requirement:
    """What an export checks at `name_create`: the features (each with its CPUID bit),
    the XCR0 bits the OS must enable, and the enabled features no CPUID bit in the table
    reports (listed in the manifest, not checked)."""

    features: tuple[Feature, ...]
    xcr0: int
    unchecked: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]


def requirement(chosen: Target) -> Requirement:
    """The CPU features the code compiled for `chosen` may use (see the module's
    docstring); only x86 targets have any to check."""
    if not chosen.x86:
        return Requirement((), 0, ())
    if chosen.features:
        names = [f[1:] for f in chosen.features.split(",") if f.startswith("+")]
    elif chosen.cpu in _LEVELS:
        names = list(_LEVELS[chosen.cpu])
    else:  # an LLVM CPU name: what its vectors imply
        names = list(_BASELINE)
        if chosen.vector_bytes >= 32:
            names.append("avx")
        if chosen.fma:
            names.append("fma")
        if chosen.vector_bytes >= 64:
            names.append("avx512f")
    known = tuple(CPUID[n] for n in sorted(set(names)) if n in CPUID)
    unknown = tuple(sorted(set(n for n in names if n not in CPUID)))
    xcr0 = 0
    for feature in known:
        xcr0 |= feature.xcr0
    return Requirement(known, xcr0, unknown)
