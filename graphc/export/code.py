"""The native code of an export: the program planned for one binding of its dims and
assembled for the export's target exactly as the LLVM backend does for a call (same plan,
same IR, same split into the program's own module and the shared GEMM library modules,
each optimized on its own), then emitted as position-independent objects for a system
linker. Only the relocation model and code model differ from the code a Python call runs
(MCJIT's static relocations and large code model cannot go into a shared library);
neither changes the arithmetic, so the results are the same bits (tests/export check)."""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from graphc.backends.llvm.lower import table
from graphc.backends.llvm.runtime import partition
from graphc.backends.llvm.runtime import target as targets
from graphc.backends.llvm.runtime.layout import Layout, layout_of
from graphc.ir.program import Program

# A value no kernel error message holds by chance: messages are worded with it, then it
# becomes the C format's %lld.
_SENTINEL = -7_340_412_963_580_417_723


@dataclass
class Code:
    """The objects (the program's own module first, then the libraries), the layout
    (argument table, arena, outputs, steps), and the printf format of each error a kernel
    can report, by its code (the step's index + 1)."""

    objects: list[bytes]
    layout: Layout
    errors: dict[int, str]
    ir: str


def build(program: Program, binding: dict[sympy.Symbol, int], chosen: targets.Target) -> Code:
    """Plan, assemble and compile `program` (optimized) for `binding` and `chosen`."""
    from graphc.backends.llvm.codegen.assemble import assemble  # compiling only
    from graphc.backends.llvm.schedule.plan import make_plan

    lowerings = table()
    with targets.using(chosen):
        plan = make_plan(program, binding, lowerings)
        ir = assemble(plan, lowerings)
        own, libraries = partition.split_shared(ir)
        objects = [targets.compile_object(text, chosen, linkable=True)
                   for text in [own, *libraries]]
    errors = {}
    for step in plan.steps:
        if step.node is not None and lowerings[step.node.op].can_fail:
            message = lowerings[step.node.op].error(step.node, _SENTINEL)
            errors[step.index + 1] = error_format(message)
    return Code(objects, layout_of(plan, program), errors, ir)


def error_format(message: str) -> str:
    """A kernel's error message as a printf format taking the reported value (%lld)."""
    text = message.replace("%", "%%")
    if str(_SENTINEL) in text:
        return text.replace(str(_SENTINEL), "%lld")
    return text + " (value %lld)"
