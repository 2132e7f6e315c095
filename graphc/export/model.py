"""What an export describes: the facts the header, the runtime's tables, the manifest and
the README are written from, gathered once from the compiled function, its binding, the
target and the compiled code."""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

import numpy as np
import sympy

from graphc import __version__
from graphc.backends.llvm.runtime.layout import params_of
from graphc.backends.llvm.runtime.target import Target
from graphc.compiler import Executable
from graphc.export import cpu, weights
from graphc.export.code import Code

C_TYPES = {"float32": "float", "float64": "double", "int32": "int32_t", "int64": "int64_t",
           "uint8": "uint8_t", "int8": "int8_t", "int16": "int16_t", "bool": "uint8_t"}
C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto "
    "if inline int long register restrict return short signed sizeof static struct switch "
    "typedef union unsigned void volatile while _Bool _Complex _Imaginary bool true false "
    "alignas alignof static_assert thread_local".split())


@dataclass(frozen=True)
class Tensor:
    """An input, output or param: its name, dtype and (fixed) shape; for a param, its
    place in the weights file and whether a run writes it."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    macro: str  # the name in the header's macros: MODEL_INPUT_<macro>, ...
    offset: int = 0
    written: bool = False

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def c_type(self) -> str:
        return C_TYPES[self.dtype.name]


@dataclass(frozen=True)
class Model:
    """Everything an export writes, in the order the C API takes it."""

    name: str
    target: Target
    requirement: cpu.Requirement
    dims: list[tuple[str, int, str]]  # (name, value, macro), in order of first use
    inputs: list[Tensor]
    outputs: list[Tensor]
    params: list[Tensor]
    slots: list[tuple[str, int]]  # ("input"|"output"|"param"|"constant", index)
    constants: list[tuple[int, int]]  # (offset, bytes) in `constant_blob`
    constant_blob: bytes
    arena_bytes: int
    work: int
    steps: int
    errors: dict[int, str]
    step: int  # the call count the context starts from (dropout streams)
    weights: bytes  # the weights file
    fingerprint: bytes
    embedded: bool
    graphc_version: str = __version__

    @property
    def training(self) -> bool:
        return any(p.written for p in self.params)

    @property
    def prefix(self) -> str:
        """The header's macro prefix (MODEL for a model named "model")."""
        return self.name.upper()


def check_name(name: str) -> str:
    """The export's name, which prefixes every C symbol: a C identifier, not a keyword."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"export: name must be a C identifier (letters, digits, _; not "
                         f"starting with a digit), got {name!r}")
    if name in C_KEYWORDS or keyword.iskeyword(name):
        raise ValueError(f"export: name {name!r} is a C or Python keyword; choose another")
    return name


def describe(name: str, executable: Executable, binding: dict[sympy.Symbol, int],
             chosen: Target, code: Code, embedded: bool) -> Model:
    """The Model of `executable` compiled as `code` for `binding` and `chosen`."""
    layout = code.layout
    dims = _dims(executable, binding)
    inputs = _unique([(n.name, n.dtype, tuple(_concrete(n.shape, binding)))
                      for n in executable.inputs])
    inputs = [Tensor(n, d, s, m) for n, d, s, m in inputs]
    outputs = [Tensor(f"out{k}", np.dtype(dtype), tuple(shape), str(k))
               for k, (_, shape, dtype) in enumerate(layout.outputs)]
    nodes = params_of(executable.source)
    _check_param_names(nodes)
    described = [(p.name, p.dtype, tuple(p.value.shape)) for p in nodes]
    entries, _ = weights.layout(described)
    written = {id(p) for p in layout.written} | {id(p) for p, _ in executable.source.updates}
    macros = _unique([(p.name, p.dtype, tuple(p.value.shape)) for p in nodes])
    params = [Tensor(e.name, e.dtype, e.shape, m[3], e.offset, id(p) in written)
              for e, p, m in zip(entries, nodes, macros)]
    index = {id(p): k for k, p in enumerate(nodes)}
    slots, constants, blob = [], [], bytearray()
    for kind, key in layout.slots:
        if kind == "param":
            if id(key) not in index:
                raise RuntimeError(f"internal error: param '{key.name}' of the compiled code "
                                   "is not among the function's params")
            slots.append(("param", index[id(key)]))
        elif kind == "constant":
            data = np.ascontiguousarray(key, dtype=key.dtype.newbyteorder("<")).tobytes()
            blob.extend(bytes(-len(blob) % weights.ALIGN))
            constants.append((len(blob), len(data)))
            blob.extend(data)
            slots.append(("constant", len(constants) - 1))
        else:
            slots.append((kind, int(key)))
    return Model(name=name, target=chosen, requirement=cpu.requirement(chosen), dims=dims,
                 inputs=inputs, outputs=outputs, params=params, slots=slots,
                 constants=constants, constant_blob=bytes(blob),
                 arena_bytes=layout.arena_bytes, work=layout.work, steps=len(layout.steps),
                 errors=dict(code.errors), step=int(executable.step),
                 weights=weights.encode([(p.name, p.value) for p in nodes]),
                 fingerprint=weights.fingerprint(described), embedded=embedded)


def _dims(executable: Executable, binding: dict) -> list[tuple[str, int, str]]:
    """The symbolic dims of the inputs, in order of first appearance, with their values."""
    seen: list[sympy.Symbol] = []
    for node in executable.inputs:
        for dim in node.shape:
            if not isinstance(dim, int):
                for symbol in sorted(sympy.sympify(dim).free_symbols, key=str):
                    if symbol not in seen:
                        seen.append(symbol)
    named = _unique([(str(s), None, ()) for s in seen])
    return [(str(s), int(binding[s]), m[3]) for s, m in zip(seen, named)]


def _concrete(shape, binding) -> list[int]:
    return [d if isinstance(d, int) else int(sympy.sympify(d).subs(binding)) for d in shape]


def _check_param_names(nodes) -> None:
    first: dict[str, int] = {}
    for k, p in enumerate(nodes):
        if p.name in first:
            raise ValueError(f"export: params {first[p.name]} and {k} are both named "
                             f"'{p.name}'; an export names each param (the C accessors and "
                             "the weights file look them up by name): give them distinct "
                             "names")
        first[p.name] = k


def _unique(items: list[tuple]) -> list[tuple]:
    """Each (name, ...) with a fourth field: its name as a macro word (upper case, _ for
    anything else), made unique with a suffix."""
    used: set[str] = set()
    out = []
    for item in items:
        word = re.sub(r"[^A-Z0-9]", "_", item[0].upper()) or "_"
        word = "_" + word if word[0].isdigit() else word
        candidate, k = word, 1
        while candidate in used:
            candidate, k = f"{word}_{k}", k + 1
        used.add(candidate)
        out.append((*item[:3], candidate))
    return out
