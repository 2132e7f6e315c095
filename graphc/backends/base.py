"""The interface every backend implements.

`gc.compile` hands a backend the program as the user wrote it and a function that
optimizes it (`Source`): a backend that caches compiled code can look it up by the
unoptimized program and skip optimizing altogether; the others call `optimized()`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import sympy

from graphc.ir.program import Program
from graphc.profile import Profile


@dataclass(frozen=True)
class Source:
    """What a backend prepares: the program as written, whether it is optimized, the
    compile options, and `optimized()`, the program to run (optimized on first call)."""

    program: Program
    optimize: bool
    options: dict
    optimized: Callable[[], Program]


class Runner(Protocol):
    """A prepared program. `run` gets arguments already checked against the inputs' dtypes
    and shapes, and returns the outputs followed by the update values (a backend that
    wrote a param in place returns the param's own array)."""

    def run(self, arguments: list[np.ndarray], binding: dict[sympy.Symbol, int],
            step: int) -> list[np.ndarray]: ...

    def profile(self, arguments: list[np.ndarray], binding: dict[sympy.Symbol, int],
                step: int, calls: int) -> Profile:
        """Each kernel's mean time over `calls` runs (params may be written: the caller
        restores them)."""
        ...

    def memory_report(self) -> dict:
        """Figures of the memory plan of the binding last run (empty: none planned)."""
        ...

    def compiled(self, binding: dict[sympy.Symbol, int] | None) -> Any:
        """What was compiled for a binding (the last one run when None): for inspection."""
        ...


class Backend(Protocol):
    name: str

    def prepare(self, source: Source) -> Runner: ...
