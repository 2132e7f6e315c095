"""Module assembly: the kernels of a plan as internal functions (one per distinct kernel:
steps that compute the same way share it), and the one exported entry
`graphc_entry(args, arena, tid, nthreads, step) -> i32` that runs them all, with a
barrier between serial runs (schedule/serial.py) and an early exit when a kernel reports
an error (a schedule of more than SEGMENT_STEPS steps runs as segments the entry calls in
turn). A profiling build counts each step's cycles.
"""

from __future__ import annotations

import numpy as np
import sympy
from llvmlite import ir

from graphc.backends.llvm.codegen.irtypes import I8, I32, I64, PTR, i64
from graphc.backends.llvm.codegen.kernel import Kernel, Operand
from graphc.backends.llvm.codegen.module import ModuleContext
from graphc.backends.llvm.runtime.layout import CYCLES, ENTRY, ERROR_VALUE, PROFILE_TICKS
from graphc.backends.llvm.schedule.plan import Plan, Step, Storage
from graphc.backends.llvm.schedule.serial import serial, serial_runs
from graphc.ir.node import Node
from graphc.ops.fused_group import group_body
from graphc.ops.scalar import kernel_body

# Steps per function the schedule is cut into. LLVM takes time superlinear in the length
# of a function calling kernels in other modules (partition.split_kernels; figures in
# benchmarks/results/NOTES.md). Real programs have far fewer steps: their entry is one
# function.
SEGMENT_STEPS = 500


def assemble(plan: Plan, table: dict, profile: bool = False) -> str:
    """The LLVM IR text of a plan's module. With `profile`, thread 0 adds the cycles of
    each step (its kernel, and the barrier after it if any: the step's wall time) to a
    counter; the schedule is the same as without."""
    mc = ModuleContext()
    _kernel_bodies(plan)
    kernels = _kernels(mc, plan, table)
    segments = _segments(serial_runs(plan, table), SEGMENT_STEPS)

    entry = _schedule_function(mc, ENTRY)
    args, arena, tid, n, call = entry.args
    b = ir.IRBuilder(entry.append_basic_block("entry"))
    exit_block = entry.append_basic_block("exit")
    ticks = _ProfileTicks(mc, len(plan.steps)) if profile else None
    if len(segments) == 1:
        if ticks is not None:
            ticks.begin(b, tid)
        _schedule(mc, plan, table, kernels, segments[0], b, entry.args, exit_block, ticks)
    else:
        for k, groups in enumerate(segments):
            segment = _segment(mc, plan, table, kernels, groups, k, ticks)
            status = b.call(segment, list(entry.args))
            next_block = entry.append_basic_block(f"after_segment{k}")
            b.cbranch(b.icmp_signed("!=", status, ir.Constant(I32, 0)), exit_block, next_block)
            b.position_at_end(next_block)
    b.branch(exit_block)
    b.position_at_end(exit_block)
    code = b.call(mc.barrier, [n, ir.Constant(PTR, None)])  # all done before the reset
    with b.if_then(b.icmp_signed("==", tid, i64(0))):
        b.store_atomic(ir.Constant(I32, 0), mc.error_code, "monotonic", 4)
    b.ret(code)

    # The error value is read by the runner through a tiny accessor.
    getter = ir.Function(mc.module, ir.FunctionType(I64, []), name=ERROR_VALUE)
    gb = ir.IRBuilder(getter.append_basic_block("entry"))
    gb.ret(gb.load_atomic(mc.error_value, "monotonic", 8, typ=I64))
    return str(mc.module)


def _kernel_bodies(plan: Plan) -> None:
    """Compute (into their caches) the sympy.cse bodies the lowerings of fused kernels ask
    for (graphc/ops/fused.py, fused_group.py), all in one unevaluated block: entering and
    leaving one clears sympy's cache, which cse would otherwise start cold for every
    kernel (transformer_reverse's 48 bodies: ~90 -> ~45 ms)."""
    with sympy.evaluate(False):
        for step in plan.steps:
            attrs = step.node.attrs if step.node is not None else {}
            if "expr" in attrs:
                kernel_body(attrs["expr"])
            elif "exprs" in attrs:
                group_body(attrs["exprs"])


def _schedule_function(mc: ModuleContext, name: str) -> ir.Function:
    """A function `(args, arena, tid, nthreads, step) -> i32` (the entry, a segment). Not
    optimized (optnone): it only calls kernels and barriers, and O3 on its hundreds of
    blocks took 15-28% of the own module's LLVM time (transformer example: 2.3-2.6 s ->
    1.9-2.1 s of CPU); the kernels' code is the same either way."""
    fn = ir.Function(mc.module, ir.FunctionType(I32, [PTR, PTR, I64, I64, I64]), name=name)
    for a in fn.args[:2]:
        a.add_attribute("noalias")
    fn.attributes.add("optnone")
    fn.attributes.add("noinline")
    return fn


def _segments(groups: list[list[Step]], size: int) -> list[list[list[Step]]]:
    """The serial runs cut into segments of at most `size` steps (a longer run into
    several runs, each ending at a barrier)."""
    segments: list[list[list[Step]]] = [[]]
    count = 0
    for group in groups:
        for start in range(0, len(group), size):
            part = group[start:start + size]
            if count and count + len(part) > size:
                segments.append([])
                count = 0
            segments[-1].append(part)
            count += len(part)
    return segments


def _segment(mc: ModuleContext, plan: Plan, table: dict, kernels: list,
             groups: list[list[Step]], k: int, ticks: _ProfileTicks | None) -> ir.Function:
    """A function running `groups` as the entry would; it returns 1 when a barrier
    reported an error (the entry then stops), else 0."""
    fn = _schedule_function(mc, f"s{k}_segment")
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    stop = fn.append_basic_block("stop")
    if ticks is not None:
        ticks.begin(b, fn.args[2])
    _schedule(mc, plan, table, kernels, groups, b, fn.args, stop, ticks)
    b.ret(ir.Constant(I32, 0))
    b.position_at_end(stop)
    b.ret(ir.Constant(I32, 1))
    return fn


def _schedule(mc: ModuleContext, plan: Plan, table: dict, kernels: list,
              groups: list[list[Step]], b: ir.IRBuilder, values, exit_block: ir.Block,
              ticks: _ProfileTicks | None) -> None:
    """Call the kernels of `groups` (serial runs), a barrier after each run, branching to
    `exit_block` when a barrier reports an error. `values`: the function's (args, arena,
    tid, nthreads, step)."""
    args, arena, tid, n, call = values
    fn = b.function
    pointers: dict[int, ir.Value] = {}

    def pointer(s: Storage) -> ir.Value:
        if id(s) not in pointers:
            if s.kind == "arena":
                pointers[id(s)] = b.gep(arena, [i64(s.offset)], inbounds=True, source_etype=I8)
            else:
                slot = b.gep(args, [i64(s.slot)], inbounds=True, source_etype=PTR)
                pointers[id(s)] = b.load(slot, typ=PTR)
        return pointers[id(s)]

    commit = _first_param_write(plan)
    # The cancel cell's address follows the argument table's slots (runtime/native.py).
    cell = b.load(b.gep(args, [i64(len(plan.slots))], source_etype=PTR), typ=PTR)
    for group in groups:
        if len(group) == 1 and not serial(plan, group[0], table):
            (step,) = group
            kernel, storages = kernels[step.index]
            b.call(kernel, [pointer(s) for s in storages] + [tid, n, call])
        else:
            # Serial kernels in a row run on thread 0 alone (as one thread of one), with no
            # barrier between them; an error skips the rest of the run.
            pointers_before = dict(pointers)
            serial_end = fn.append_basic_block(f"serial_end{group[-1].index}")
            with b.if_then(b.icmp_signed("==", tid, i64(0))):
                for step in group:
                    kernel, storages = kernels[step.index]
                    b.call(kernel, [pointer(s) for s in storages] + [i64(0), i64(1), call])
                    if ticks is not None:
                        ticks.count(b, step.index)
                    go_on = fn.append_basic_block(f"after{step.index}")
                    b.cbranch(b.icmp_signed("!=", mc.load_error(b), ir.Constant(I32, 0)),
                              serial_end, go_on)
                    b.position_at_end(go_on)
                b.branch(serial_end)
            # Pointers loaded inside the branch do not dominate what follows it.
            pointers.clear()
            pointers.update(pointers_before)
            b.branch(serial_end)
            b.position_at_end(serial_end)
        # Before the first step that writes a param, an interrupt may stop the call here.
        status = b.call(mc.barrier, [n, cell if group[-1].index < commit else
                                     ir.Constant(PTR, None)])
        if ticks is not None:  # the barrier's wait counts to the run's last step
            ticks.count(b, group[-1].index)
        next_block = fn.append_basic_block(f"after_barrier{group[-1].index}")
        b.cbranch(b.icmp_signed("!=", status, ir.Constant(I32, 0)), exit_block, next_block)
        b.position_at_end(next_block)


def _first_param_write(plan: Plan) -> int:
    """The index of the first step that writes a param (in place or by a copy); the
    number of steps when none does."""
    return next((s.index for s in plan.steps if any(o.kind == "param" for o in s.outs)),
                len(plan.steps))


class _ProfileTicks:
    """Per-step cycle counters: a global array, its accessor, and the counting code."""

    def __init__(self, mc: ModuleContext, steps: int):
        typ = ir.ArrayType(I64, max(1, steps))
        self.array = ir.GlobalVariable(mc.module, typ, "gc_profile_ticks")
        self.array.linkage = "internal"
        self.array.initializer = ir.Constant(typ, None)
        self.array.align = 64
        clock = mc.function("llvm.readcyclecounter", I64, [])
        for name, ret in ((PROFILE_TICKS, PTR), (CYCLES, I64)):
            fb = ir.IRBuilder(ir.Function(mc.module, ir.FunctionType(ret, []), name=name)
                              .append_basic_block("entry"))
            fb.ret(fb.bitcast(self.array, PTR) if ret is PTR else fb.call(clock, []))
        self.clock = clock

    def begin(self, b: ir.IRBuilder, tid: ir.Value) -> None:
        """Start counting in the function `b` builds (the entry, or a segment of it)."""
        self.tid = tid
        # The last reading lives in a stack slot: counts are made inside serial runs'
        # branches too, whose values do not dominate what follows them.
        self.last = b.alloca(I64)
        b.store(b.call(self.clock, []), self.last)

    def count(self, b: ir.IRBuilder, index: int) -> None:
        now = b.call(self.clock, [])
        with b.if_then(b.icmp_signed("==", self.tid, i64(0))):
            slot = b.gep(self.array, [i64(0), i64(index)], inbounds=True)
            spent = b.sub(now, b.load(self.last, typ=I64))
            b.store(b.add(b.load(slot, typ=I64), spent), slot)
        b.store(now, self.last)


def _kernels(mc: ModuleContext, plan: Plan, table: dict) -> list[tuple[ir.Function,
                                                                      list[Storage]]]:
    """Each step's kernel function and the storages it takes, in parameter order. Steps
    with equal signatures (`_signature`) share the first one's function: a chain of equal
    ops, or a model's repeated layers, is emitted and compiled once."""
    shared: dict[tuple, ir.Function] = {}
    kernels = []
    for step in plan.steps:
        storages = _storages(step)
        signature = _signature(plan, step, storages, table)
        fn = shared.get(signature) if signature is not None else None
        if fn is None:
            fn = _emit_step(mc, plan, step, table, storages)
            if signature is not None:
                shared[signature] = fn
        kernels.append((fn, storages))
    return kernels


def _storages(step: Step) -> list[Storage]:
    """The distinct storages a step's kernel takes, in parameter order."""
    storages: list[Storage] = []
    for s in _buffers(step):
        if all(s is not t for t in storages):
            storages.append(s)
    return storages


def _buffers(step: Step) -> list[Storage]:
    return step.outs + step.ins + ([step.scratch] if step.scratch else [])


def _signature(plan: Plan, step: Step, storages: list[Storage], table: dict) -> tuple | None:
    """Everything a step's kernel function is made from (what _emit_step hands the
    lowering, but the pointers): the op and its attributes; the dtype, concrete shape,
    view (offset and strides) and constant value of each output and operand; which of
    them share a buffer; the scratch size. None for a kernel that can fail: its error
    code is its step's own."""
    node = step.node if step.node is not None else step.source
    if step.node is not None and table[node.op].can_fail:
        return None

    def value(v: Node, dtype: np.dtype | None = None, shape=None) -> tuple:
        constant = v.attrs["value"] if v.op == "constant" else None  # an ArrayAttr
        return (np.dtype(dtype or v.dtype).str, shape or plan.shape(v), plan.strided.get(v),
                constant)

    if step.node is None:
        head: tuple = ("copy",)
        operands = (value(node), value(node))
    else:
        head = (node.op, node.dtype.str, tuple(sorted(node.attrs.items())))
        dtypes = table[node.op].output_dtypes(node)
        operands = (tuple(value(node, d, s) for d, s in
                          zip(dtypes, plan.output_shapes(node, len(dtypes))))
                    + tuple(value(i) for i in node.inputs))
    sharing = tuple(next(k for k, t in enumerate(storages) if t is s) for s in _buffers(step))
    return head + (operands, sharing, step.scratch.nbytes if step.scratch else None)


def _emit_step(mc: ModuleContext, plan: Plan, step: Step, table: dict,
               storages: list[Storage]) -> ir.Function:
    """The kernel function of one step, taking `storages` in order."""
    node = step.node if step.node is not None else step.source
    op = node.op if step.node is not None else "copy"
    k = Kernel(mc, f"k{step.index}_{op}", len(storages))
    ptr = {id(s): p for s, p in zip(storages, k.buffers)}
    k.error_code = step.index + 1
    k.binding = plan.binding

    def operand(s: Storage, value: Node, dtype: np.dtype | None = None,
                shape=None) -> Operand:
        constant = value.value if value.op == "constant" else None
        view = plan.strided.get(value)
        if view is None:
            return Operand(ptr[id(s)], value, shape or plan.shape(value),
                           dtype or value.dtype, constant)
        at = k.b.gep(ptr[id(s)], [i64(view.offset * value.dtype.itemsize)], inbounds=True,
                     source_etype=I8) if view.offset else ptr[id(s)]
        return Operand(at, value, plan.shape(value), dtype or value.dtype, constant,
                       view.strides)

    if step.node is not None:
        dtypes = table[node.op].output_dtypes(node)
        outs = [operand(s, node, d, shape) for s, d, shape in
                zip(step.outs, dtypes, plan.output_shapes(node, len(dtypes)))]
        ins = [operand(s, i) for s, i in zip(step.ins, node.inputs)]
        scratch = ptr[id(step.scratch)] if step.scratch else None
        table[node.op].emit(k, node, outs[0] if len(outs) == 1 else tuple(outs), ins, scratch)
    else:
        table["copy"].emit(k, node, operand(step.out, node), [operand(step.ins[0], node)], None)
    k.finish()
    return k.function
