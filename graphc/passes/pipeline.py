"""The optimization pipeline: the passes, in the order `optimize` runs them."""

from __future__ import annotations

from collections.abc import Callable

from graphc.ir.program import Program
from graphc.passes.constant_folding import constant_folding
from graphc.passes.cse import cse
from graphc.passes.epilogue import epilogue
from graphc.passes.fusion import fusion
from graphc.passes.group_fusion import group_fusion
from graphc.passes.reduce_fusion import reduce_fusion
from graphc.passes.simplify import simplify

PIPELINE: list[Callable[[Program], Program]] = [
    constant_folding, cse, simplify, reduce_fusion, fusion, group_fusion, epilogue,
]
