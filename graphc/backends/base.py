"""The interface every backend implements."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import sympy

from graphc.ir.program import Program


class Runner(Protocol):
    """A prepared program. `run` gets arguments already checked against the inputs' dtypes
    and shapes, and returns the outputs followed by the update values (nothing written)."""

    def run(self, arguments: list[np.ndarray], binding: dict[sympy.Symbol, int],
            step: int) -> list[np.ndarray]: ...


class Backend(Protocol):
    name: str

    def prepare(self, program: Program, **options) -> Runner: ...
