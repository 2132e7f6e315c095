"""Module assembly: the kernels of a plan as internal functions (one per distinct kernel:
steps that compute the same way share it), and the one exported entry
`graphc_entry(args, arena, tid, nthreads, step) -> i32` that runs them all, with a
barrier (LLVM atomics) between kernels and an early exit when a kernel reports an error
(a schedule of more than SEGMENT_STEPS steps runs as segments the entry calls in turn).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.irtypes import I8, I32, I64, PTR, i64
from graphc.backends.llvm.codegen.kernel import Kernel
from graphc.backends.llvm.runtime.layout import CYCLES, ENTRY, ERROR_VALUE, PROFILE_TICKS
from graphc.backends.llvm.schedule.plan import Plan, Step, Storage, output_dtypes
from graphc.ir.node import Node

SPINS_BEFORE_YIELD = 2000


@dataclass
class Operand:
    """A value a kernel reads or writes: its buffer pointer, concrete shape and dtype;
    `constant` holds a constant node's array (lowerings inline scalars); `strides` (in
    elements) are set when the value is a strided view of its buffer (plan.View: `ptr`
    then points at its first element), else None (contiguous)."""

    ptr: ir.Value
    node: Node
    shape: tuple[int, ...]
    dtype: np.dtype
    constant: np.ndarray | None = None
    strides: tuple[int, ...] | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


class ModuleContext:
    """The module under construction and what kernels share: declared functions, the
    barrier, the error slot."""

    def __init__(self):
        self.module = ir.Module("graphc")
        self._count = self._global("gc_barrier_count", I32)
        self._generation = self._global("gc_barrier_generation", I32)
        self._error = self._global("gc_error_code", I32)
        self._error_value = self._global("gc_error_value", I64)
        self._status = self._global("gc_barrier_status", I32)
        self.barrier = self._build_barrier()

    def _global(self, name: str, typ: ir.Type) -> ir.GlobalVariable:
        g = ir.GlobalVariable(self.module, typ, name)
        g.linkage = "internal"
        g.initializer = ir.Constant(typ, 0)
        g.align = 64
        return g

    def function(self, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
        """An external (libm, libc) or intrinsic function, declared once."""
        existing = self.module.globals.get(name)
        if existing is not None:
            return existing
        return ir.Function(self.module, ir.FunctionType(ret, args), name=name)

    def intrinsic(self, base: str, typ: ir.Type, arity: int = 1) -> ir.Function:
        suffix = {"float": "f32", "double": "f64"}.get(str(typ), str(typ))
        return self.function(f"llvm.{base}.{suffix}", typ, [typ] * arity)

    def libm(self, name: str, typ: ir.Type, arity: int = 1) -> ir.Function:
        """A C math function (erf, erff, tanh, tanhf, ...) for a float type."""
        return self.function(name + ("f" if str(typ) == "float" else ""), typ, [typ] * arity)

    def record_error(self, b: ir.IRBuilder, code: int, value: ir.Value) -> None:
        pair = b.cmpxchg(self._error, ir.Constant(I32, 0), ir.Constant(I32, code), "monotonic",
                         "monotonic")
        with b.if_then(b.extract_value(pair, 1)):
            b.store_atomic(b.sext(value, I64) if value.type != I64 else value,
                           self._error_value, "monotonic", 8)

    def load_error(self, b: ir.IRBuilder) -> ir.Value:
        return b.load_atomic(self._error, "monotonic", 4, typ=I32)

    def _build_barrier(self) -> ir.Function:
        """A reusable barrier returning the error code as it stood when the last thread
        arrived, so every thread takes the same branch after it (a slow thread must not
        see an error raised after the barrier by a fast one). The last arrival resets the
        count and bumps the generation; the others spin on the generation, yielding the
        CPU after a while."""
        fn = ir.Function(self.module, ir.FunctionType(I32, [I64]), name="gc_barrier")
        fn.linkage = "internal"
        (n,) = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        alone = fn.append_basic_block("alone")
        sync = fn.append_basic_block("sync")
        b.cbranch(b.icmp_signed("<=", n, i64(1)), alone, sync)
        b.position_at_end(alone)
        b.ret(self.load_error(b))
        b.position_at_end(sync)
        generation = b.load_atomic(self._generation, "acquire", 4, typ=I32)
        arrived = b.atomic_rmw("add", self._count, ir.Constant(I32, 1), "acq_rel")
        last = b.icmp_signed("==", arrived, b.trunc(b.sub(n, i64(1)), I32))
        release = fn.append_basic_block("release")
        wait = fn.append_basic_block("wait")
        done = fn.append_basic_block("done")
        b.cbranch(last, release, wait)
        b.position_at_end(release)
        b.store_atomic(self.load_error(b), self._status, "monotonic", 4)
        b.store_atomic(ir.Constant(I32, 0), self._count, "monotonic", 4)
        b.atomic_rmw("add", self._generation, ir.Constant(I32, 1), "release")
        b.branch(done)
        b.position_at_end(wait)
        spins = b.phi(I64)
        spins.add_incoming(i64(0), sync)
        now = b.load_atomic(self._generation, "acquire", 4, typ=I32)
        back_off = fn.append_basic_block("back_off")
        b.cbranch(b.icmp_signed("!=", now, generation), done, back_off)
        b.position_at_end(back_off)
        with b.if_then(b.icmp_signed(">", spins, i64(SPINS_BEFORE_YIELD))):
            b.call(self.function("sched_yield", I32, []), [])
        spins.add_incoming(b.add(spins, i64(1)), b.block)
        b.branch(wait)
        b.position_at_end(done)
        b.ret(b.load_atomic(self._status, "monotonic", 4, typ=I32))
        return fn


# Steps per function the schedule is cut into. LLVM takes time superlinear in the length
# of a function calling kernels in other modules (module.split_kernels): the entry of a
# 3,000-step program took 7 s, of 20,000 steps 180 s, against 0.02 s per 500 steps. Real
# programs have far fewer steps: their entry is one function, as it always was.
SEGMENT_STEPS = 500


def assemble(plan: Plan, table: dict, profile: bool = False) -> str:
    """The LLVM IR text of a plan's module. With `profile`, thread 0 adds the cycles of
    each step (its kernel, and the barrier after it if any: the step's wall time) to a
    counter; the schedule is the same as without."""
    mc = ModuleContext()
    kernels = _kernels(mc, plan, table)
    segments = _segments(_serial_runs(plan), SEGMENT_STEPS)

    entry = _schedule_function(mc, ENTRY)
    args, arena, tid, n, call = entry.args
    b = ir.IRBuilder(entry.append_basic_block("entry"))
    exit_block = entry.append_basic_block("exit")
    ticks = _ProfileTicks(mc, len(plan.steps)) if profile else None
    if len(segments) == 1:
        if ticks is not None:
            ticks.begin(b, tid)
        _schedule(mc, plan, kernels, segments[0], b, entry.args, exit_block, ticks)
    else:
        for k, groups in enumerate(segments):
            segment = _segment(mc, plan, kernels, groups, k, ticks)
            status = b.call(segment, list(entry.args))
            next_block = entry.append_basic_block(f"after_segment{k}")
            b.cbranch(b.icmp_signed("!=", status, ir.Constant(I32, 0)), exit_block, next_block)
            b.position_at_end(next_block)
    b.branch(exit_block)
    b.position_at_end(exit_block)
    code = b.call(mc.barrier, [n])  # every thread is done before the code is reset
    with b.if_then(b.icmp_signed("==", tid, i64(0))):
        b.store_atomic(ir.Constant(I32, 0), mc._error, "monotonic", 4)
    b.ret(code)

    # The error value is read by the runner through a tiny accessor.
    getter = ir.Function(mc.module, ir.FunctionType(I64, []), name=ERROR_VALUE)
    gb = ir.IRBuilder(getter.append_basic_block("entry"))
    gb.ret(gb.load_atomic(mc._error_value, "monotonic", 8, typ=I64))
    return str(mc.module)


def _schedule_function(mc: ModuleContext, name: str) -> ir.Function:
    """A function `(args, arena, tid, nthreads, step) -> i32` (the entry, a segment)."""
    fn = ir.Function(mc.module, ir.FunctionType(I32, [PTR, PTR, I64, I64, I64]), name=name)
    for a in fn.args[:2]:
        a.add_attribute("noalias")
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


def _segment(mc: ModuleContext, plan: Plan, kernels: list, groups: list[list[Step]], k: int,
             ticks: _ProfileTicks | None) -> ir.Function:
    """A function running `groups` as the entry would; it returns 1 when a barrier
    reported an error (the entry then stops), else 0."""
    fn = _schedule_function(mc, f"s{k}_segment")
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    stop = fn.append_basic_block("stop")
    if ticks is not None:
        ticks.begin(b, fn.args[2])
    _schedule(mc, plan, kernels, groups, b, fn.args, stop, ticks)
    b.ret(ir.Constant(I32, 0))
    b.position_at_end(stop)
    b.ret(ir.Constant(I32, 1))
    return fn


def _schedule(mc: ModuleContext, plan: Plan, kernels: list, groups: list[list[Step]],
              b: ir.IRBuilder, values, exit_block: ir.Block,
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

    for group in groups:
        if len(group) == 1 and not _serial(plan, group[0]):
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
        status = b.call(mc.barrier, [n])
        if ticks is not None:  # the barrier's wait counts to the run's last step
            ticks.count(b, group[-1].index)
        next_block = fn.append_basic_block(f"after_barrier{group[-1].index}")
        b.cbranch(b.icmp_signed("!=", status, ir.Constant(I32, 0)), exit_block, next_block)
        b.position_at_end(next_block)


SERIAL_BELOW = 1 << 14  # elements a kernel touches, below which one thread runs it
SERIAL_GEMM_BELOW = 1 << 17  # multiply-adds of a matmul below which one thread runs it
_GEMM_OPS = frozenset({"matmul", "fused_matmul"})
_OWN_SPLIT = frozenset({"conv2d", "fused_conv2d", "conv2d_grad_input", "conv2d_grad_weight"})


def _serial(plan: Plan, step: Step) -> bool:
    """Whether a step is too small to share among threads: a barrier (and the other
    threads' caches) would cost more than it saves. The choice depends on shapes only,
    and every kernel computes the same bits on any number of threads."""
    node = step.node if step.node is not None else step.source
    if step.node is not None and node.op in _OWN_SPLIT:
        return False
    out = int(np.prod(plan.shape(node), dtype=np.int64))
    if step.node is not None and node.op in _GEMM_OPS:
        depth = plan.shape(node.inputs[0])[-1] if plan.shape(node.inputs[0]) else 1
        return out * depth < SERIAL_GEMM_BELOW
    inputs = node.inputs if step.node is not None else ()
    touched = out + sum(int(np.prod(plan.shape(i), dtype=np.int64)) for i in inputs)
    return touched < SERIAL_BELOW


def _serial_runs(plan: Plan) -> list[list[Step]]:
    """The steps in order, consecutive serial steps grouped (one barrier after each
    group)."""
    groups: list[list[Step]] = []
    for step in plan.steps:
        serial = _serial(plan, step)
        if serial and groups and _serial(plan, groups[-1][-1]):
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups


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

    def value(v: Node, dtype: np.dtype | None = None) -> tuple:
        constant = v.attrs["value"] if v.op == "constant" else None  # an ArrayAttr
        return (np.dtype(dtype or v.dtype).str, plan.shape(v), plan.strided.get(v), constant)

    if step.node is None:
        head: tuple = ("copy",)
        operands = (value(node), value(node))
    else:
        head = (node.op, node.dtype.str, tuple(sorted(node.attrs.items())))
        operands = (tuple(value(node, d) for d in output_dtypes(node))
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

    def operand(s: Storage, value: Node, dtype: np.dtype | None = None) -> Operand:
        constant = value.value if value.op == "constant" else None
        view = plan.strided.get(value)
        if view is None:
            return Operand(ptr[id(s)], value, plan.shape(value), dtype or value.dtype,
                           constant)
        at = k.b.gep(ptr[id(s)], [i64(view.offset * value.dtype.itemsize)], inbounds=True,
                     source_etype=I8) if view.offset else ptr[id(s)]
        return Operand(at, value, plan.shape(value), dtype or value.dtype, constant,
                       view.strides)

    if step.node is not None:
        outs = [operand(s, node, d) for s, d in zip(step.outs, output_dtypes(node))]
        ins = [operand(s, i) for s, i in zip(step.ins, node.inputs)]
        scratch = ptr[id(step.scratch)] if step.scratch else None
        table[node.op].emit(k, node, outs[0] if len(outs) == 1 else tuple(outs), ins, scratch)
    else:
        table["copy"].emit(k, node, operand(step.out, node), [operand(step.ins[0], node)], None)
    k.finish()
    return k.function




_REFERENCE = re.compile(r'@"([^"]+)"')


def split_shared(text: str) -> tuple[str, list[str]]:
    """Split a module's IR into the program's own part and library modules. Helpers (the
    functions named gc_*, not the steps' kernels k*_*) that read no global variable and
    call only such helpers or declarations (the GEMM driver and its micro-kernel) do not
    depend on the program, so their object code can be shared by every program that emits
    the same IR (the runner caches it by its text). One library module per group of
    helpers that call each other; a helper the program calls is exported from its library
    and declared in the program's part."""
    head, definitions = _parse(text)
    globals_ = {name for name, line in head.items() if line.startswith("@")}
    refs = {name: set(_REFERENCE.findall(body)) - {name} for name, body in definitions.items()}
    shared = {name for name in definitions if name.startswith("gc_")}
    changed = True
    while changed:  # drop every function that reads a global or calls a program function
        changed = False
        for name in sorted(shared):
            if refs[name] & globals_ or any(r in definitions and r not in shared
                                            for r in refs[name]):
                shared.discard(name)
                changed = True
    called = {r for name in definitions if name not in shared for r in refs[name]}
    libraries = []
    for group in _groups(shared, refs):
        body = []
        for name in sorted(group):
            text_ = definitions[name]
            if name in called:  # exported: the program's part calls it
                text_ = text_.replace("define internal ", "define ", 1)
            body.append(text_)
        needed = {r for name in group for r in refs[name] if r not in group}
        libraries.append("\n".join([head[HEADER]] + [head[r] for r in sorted(needed)] + body))
    main = [line for name, line in head.items()]
    main += [_declaration(definitions[name]) for name in sorted(shared & called)]
    main += [body for name, body in definitions.items() if name not in shared]
    return "\n".join(main), libraries


HEADER = "\0header"


def _parse(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(module-level lines by name, the header under HEADER; definitions by name) of IR
    text as llvmlite prints it: one line per global and declaration, `define ... {` to
    a line `}` per function."""
    head: dict[str, str] = {}
    header: list[str] = []
    definitions: dict[str, str] = {}
    lines = iter(text.split("\n"))
    for line in lines:
        if line.startswith("define "):
            body = [line]
            for more in lines:
                body.append(more)
                if more == "}":
                    break
            definitions[_REFERENCE.search(line).group(1)] = "\n".join(body)
        elif line.startswith(("@", "declare ")):
            head[_REFERENCE.search(line).group(1)] = line
        elif line.strip():
            header.append(line)
    return {HEADER: "\n".join(header), **head}, definitions


def _declaration(definition: str) -> str:
    first = definition.split("\n", 1)[0]
    return "declare " + first.removeprefix("define internal ").removeprefix("define ")


def _groups(names: set[str], refs: dict[str, set[str]]) -> list[set[str]]:
    """The connected groups of `names` under calls among them."""
    groups: list[set[str]] = []
    for name in sorted(names):
        linked = [g for g in groups if name in g or refs[name] & g
                  or any(name in refs[other] for other in g)]
        merged = {name}.union(*linked)
        groups = [g for g in groups if not any(g is h for h in linked)] + [merged]
    return groups


_KERNEL = re.compile(r"[ks]\d+_")  # kernels k*_* and the schedule's segments s*_*
_MUTABLE = re.compile(r'(@"[^"]+" = )internal ((?:[a-z_]+ )*global )')  # not constant


def split_kernels(text: str, parts: int) -> list[str]:
    """The program's own module (split_shared's first part) as up to `parts` modules of
    similar size, compiled apart (in parallel) and linked into one engine. Kernels (k*_*,
    independent functions; and s*_*, the segments of a long schedule) are dealt out
    biggest first to the smallest part. The first part keeps every other exported function
    (the entry, the accessors) and defines the mutable globals (error slot, barrier,
    profile ticks), which the others declare; each part gets its own copy of the internal
    constants and helpers it uses (so it optimizes as before), and a kernel called from
    another part is exported and declared there."""
    head, definitions = _parse(text)
    kernels = sorted((n for n in definitions if _KERNEL.match(n)),
                     key=lambda n: -len(definitions[n]))
    if parts < 2 or len(kernels) < 2:
        return [text]
    roots = [[n for n, body in definitions.items()
              if not _KERNEL.match(n) and not body.startswith("define internal ")]]
    roots += [[] for _ in range(min(parts, len(kernels)) - 1)]
    sizes = [sum(len(definitions[n]) for n in roots[0])] + [0] * (len(roots) - 1)
    for name in kernels:
        k = sizes.index(min(sizes))
        roots[k].append(name)
        sizes[k] += len(definitions[name])
    refs = {name: set(_REFERENCE.findall(body)) - {name} for name, body in definitions.items()}
    members = [_with_helpers(r, refs, definitions) for r in roots]
    home = {name: k for k, names in enumerate(roots) for name in names}
    called = {r for k, names in enumerate(members) for n in names for r in refs[n]
              if home.get(r, k) != k}
    sites = _call_sites(definitions, called)
    return [_part(k, names, head, definitions, refs, home, sites)
            for k, names in enumerate(members)]


_CALL = re.compile(r'call void @"([^"]+)"\((.*)\)$', re.M)


def _call_sites(definitions: dict[str, str], names: set[str]) -> dict[str, list[list[str]]]:
    """The argument lists of every call of each function in `names` (one scan of every
    body, so splitting costs time linear in the module)."""
    sites: dict[str, list[list[str]]] = {name: [] for name in names}
    for body in definitions.values():
        for m in _CALL.finditer(body):
            if m.group(1) in sites:
                sites[m.group(1)].append(_arguments(m.group(2)))
    return sites


def _with_helpers(roots: list[str], refs: dict[str, set[str]],
                  definitions: dict[str, str]) -> list[str]:
    """`roots` and the internal helpers (neither kernels nor exported) they call,
    transitively."""
    found, todo = list(roots), list(roots)
    while todo:
        for r in sorted(refs[todo.pop()]):
            body = definitions.get(r)
            if (body is not None and r not in found and not _KERNEL.match(r)
                    and body.startswith("define internal ")):
                found.append(r)
                todo.append(r)
    return found


def _part(k: int, names: list[str], head: dict[str, str], definitions: dict[str, str],
          refs: dict[str, set[str]], home: dict[str, int],
          sites: dict[str, list[list[str]]]) -> str:
    used = {r for n in names for r in refs[n]}
    lines = [head[HEADER]]
    for name, line in head.items():
        mutable = _MUTABLE.match(line)
        if name == HEADER or (name not in used and not (k == 0 and mutable)):
            continue
        if mutable:  # defined by the first part, declared by the others
            line = (mutable.expand(r"\1\2") + line[mutable.end():] if k == 0 else
                    mutable.expand(r"\1external \2") + _type_and_align(line[mutable.end():]))
        lines.append(line)
    lines += [_declaration(definitions[r]) for r in sorted(used)
              if r in home and home[r] != k]
    for name in names:
        body = definitions[name]
        if name in sites and home.get(name) == k:
            lines.append(_stub(name, body, sites[name]))
            body = body.replace(f'@"{name}"(', f'@"{name}.body"(', 1)
        lines.append(body)
    return "\n".join(lines)


def _stub(name: str, definition: str, sites: list[list[str]]) -> str:
    """An exported function under a kernel's name that calls the (renamed, internal)
    kernel with the constants every call site (`sites`: their argument lists) passes (a
    serial kernel's thread 0 of 1), so the optimizer specializes the kernel as it does in
    one module; a segment's stub returns what it returns."""
    first = definition.split("\n", 1)[0]
    start = first.index(f'@"{name}"(') + len(name) + 4
    depths = itertools.accumulate((c in "([<{") - (c in ")]>}") for c in first[start:])
    end = start + next(k for k, d in enumerate(depths) if d < 0)
    params = _arguments(first[start:end])
    args = []
    for k, param in enumerate(params):
        constants = {site[k] for site in sites if re.fullmatch(r"i64 -?\d+", site[k])}
        if sites and len(constants) == 1 and all(site[k] in constants for site in sites):
            args.append(constants.pop())
        else:
            args.append(param.split(" ", 1)[0] + " " + param.rsplit(" ", 1)[1])
    returns = first.split(f'@"{name}"(', 1)[0].split()[-1]  # void, or a segment's i32
    call = f'call {returns} @"{name}.body"({", ".join(args)})'
    body = ([f"  {call}", "  ret void"] if returns == "void"
            else [f'  %"result" = {call}', f'  ret {returns} %"result"'])
    return "\n".join([first.replace("define internal ", "define ", 1), "{", "entry:", *body,
                      "}"])


def _arguments(text: str) -> list[str]:
    """The comma-separated items of an argument or parameter list."""
    items, depth, start = [], 0, 0
    for k, char in enumerate(text):
        depth += (char in "([<{") - (char in ")]>}")
        if char == "," and depth == 0:
            items.append(text[start:k].strip())
            start = k + 1
    return items + [text[start:].strip()] if text.strip() else items


def _type_and_align(rest: str) -> str:
    """`TYPE INIT, align N` (a global's definition after `global`) without INIT."""
    depths = itertools.accumulate((c in "[<{") - (c in "]>}") for c in rest)
    end = next((k for k, (c, d) in enumerate(zip(rest, depths)) if c == " " and d == 0),
               len(rest))
    align = re.search(r", align \d+$", rest)
    return rest[:end] + (align.group() if align else "")
