"""The compile-time schedule and memory plan of one program under one binding.

Every node gets a Storage: an argument slot (inputs, params, constants, outputs) or a
region of one arena. Views (reshape, stop_gradient) share their input's storage, and so
do transposes, slices and reshapes that only readers able to follow strides read
(matmuls, copies): they are offsets and strides into their source's buffer (views.py). A
multi-output kernel (fused_group, attention's backward) has one storage per output (of its
own shape: Op.output_types), and each of its projections is a view of its output's. Arena
regions are placed first-fit by liveness, an elementwise kernel writes over an input whose
last use it is, and a param update is written straight into the param when no later step
still reads the param's old value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import sympy

from graphc.backends.llvm.schedule.views import ALIGN, strided_views
from graphc.ir.node import Node
from graphc.ir.op import get_op
from graphc.ir.program import Program
from graphc.shapes import evaluate


@dataclass(eq=False)
class Storage:
    """Where values live. kind: "arena", "input", "param", "constant" or "output"."""

    kind: str
    nbytes: int
    slot: int = -1
    offset: int = -1
    first: int = 0
    last: int = -1


@dataclass(eq=False)
class Step:
    """One kernel: compute `node` into `outs` (a node step; several storages for a
    multi-output kernel), or copy `source` into `outs[0]`."""

    index: int
    outs: list[Storage]
    ins: list[Storage]
    node: Node | None = None
    source: Node | None = None  # copy steps: the value copied
    scratch: Storage | None = None

    @property
    def out(self) -> Storage:
        """The storage of a single-output step."""
        (out,) = self.outs
        return out

    def computes(self, value: Node, table: dict) -> bool:
        """Whether `value` is this step's node or a projection of it."""
        return self.node is not None and (value is self.node or (
            table[value.op].kind == "projection" and value.inputs[0] is self.node))


@dataclass
class Plan:
    steps: list[Step]
    storage: dict[Node, Storage]
    shapes: dict[Node, tuple[int, ...]]
    # The argument table: ("input", k), ("param", node), ("constant", node), ("output", k).
    slots: list[tuple[str, object]]
    arena_bytes: int
    intermediate_bytes: int
    in_place: int
    binding: dict = field(default_factory=dict)
    inplace_params: set = field(default_factory=set)
    strided: dict = field(default_factory=dict)  # node -> View (read in place, by strides)

    def shape(self, node: Node) -> tuple[int, ...]:
        return self.shapes[node]

    def output_shapes(self, node: Node, count: int) -> list[tuple[int, ...]]:
        """The concrete shape of each of a kernel node's `count` outputs."""
        return output_shapes(node, self.shapes[node], self.binding, count)


def output_shapes(node: Node, shape: tuple[int, ...], binding: dict,
                  count: int) -> list[tuple[int, ...]]:
    """The concrete shape of each of a kernel's `count` outputs: a multi-output op's own
    (Op.output_types), else the node's `shape` for each."""
    types = get_op(node.op).output_types(node)
    if types is None:
        return [shape] * count
    return [evaluate(s, binding) for _, s in types]


MAX_BYTES = 1 << 48  # 256 TiB: no buffer of a real program comes near; int64 math stays exact


def nbytes(dtype: np.dtype, shape: tuple[int, ...]) -> int:
    """Bytes of an array, in Python ints (no int64 overflow), refused past MAX_BYTES."""
    size = math.prod(shape) * np.dtype(dtype).itemsize
    if size > MAX_BYTES:
        raise ValueError(f"a value of shape {shape} ({np.dtype(dtype).name}) would need "
                         f"{size:,} bytes, which exceeds the {MAX_BYTES:,}-byte limit")
    return size


def make_plan(program: Program, binding: dict[sympy.Symbol, int], table: dict) -> Plan:
    """Schedule the program's nodes in topological order and place every buffer."""
    nodes = program.graph.nodes
    shapes = {n: evaluate(n.shape, binding) for n in (*program.inputs, *nodes)}
    slots: list[tuple[str, object]] = []
    storage: dict[Node, Storage] = {}

    def slot(kind, key, node) -> Storage:
        slots.append((kind, key))
        return Storage(kind, nbytes(node.dtype, shapes[node]), slot=len(slots) - 1)

    for k, node in enumerate(program.inputs):
        storage[node] = slot("input", k, node)
    steps: list[Step] = []
    outs_of: dict[Node, list[Storage]] = {}  # kernel node -> its output storages
    strided = strided_views(program, nodes, shapes, table)
    for node in nodes:
        lowering = table[node.op]
        if node in storage:
            continue
        if lowering.kind == "leaf":
            storage[node] = slot(node.op, node, node)
        elif lowering.kind == "view" or node in strided:
            storage[node] = storage[node.inputs[0]]
        elif lowering.kind == "projection":
            storage[node] = outs_of[node.inputs[0]][node.attrs["index"]]
        else:
            dtypes = lowering.output_dtypes(node)
            outs = [Storage("arena", nbytes(dtype, shape), first=len(steps)) for dtype, shape
                    in zip(dtypes, output_shapes(node, shapes[node], binding, len(dtypes)))]
            outs_of[node] = outs
            if len(outs) == 1:
                storage[node] = outs[0]
            step = Step(len(steps), outs, [storage[i] for i in node.inputs], node=node)
            if lowering.scratch is not None:
                size = lowering.scratch(node, [shapes[i] for i in node.inputs] + [shapes[node]])
                if size:
                    step.scratch = Storage("arena", size, first=len(steps), last=len(steps))
            steps.append(step)
    kernel_steps = len(steps)

    # Results: an output computed by a kernel is written straight into its output array.
    copies: list[tuple[Node, Storage]] = []
    bound: set[int] = set()
    for k, node in enumerate(program.outputs):
        s = storage[node]
        if s.kind == "arena" and id(s) not in bound:
            bound.add(id(s))
            slots.append(("output", k))
            s.kind, s.slot = "output", len(slots) - 1
        else:
            out = slot("output", k, node)
            copies.append((node, out))
    for node, out in copies:
        steps.append(Step(len(steps), [out], [storage[node]], source=node))

    _set_liveness(steps, storage)
    in_place_params = _update_params(program, steps, storage, shapes, table, kernel_steps, slots)
    in_place = _reuse_inputs(steps, storage, shapes, table)
    arena_bytes = _place(steps)
    if arena_bytes > MAX_BYTES:
        raise ValueError(f"the program's intermediates would need an arena of {arena_bytes:,} "
                         f"bytes, which exceeds the {MAX_BYTES:,}-byte limit")
    intermediate = sum(out.nbytes for s in steps[:kernel_steps]
                       if s.node is not None and table[s.node.op].kind == "kernel"
                       for out in s.outs)
    return Plan(steps, storage, shapes, slots, arena_bytes, intermediate,
                in_place + len(in_place_params), dict(binding), in_place_params, strided)



def _set_liveness(steps: list[Step], storage: dict[Node, Storage]) -> None:
    for step in steps:
        for i in step.ins:
            i.last = max(i.last, step.index)
        for out in step.outs:
            out.last = max(out.last, step.index)


def _elementwise_reads_ok(step: Step, target: Storage, written: np.dtype, shapes,
                          table) -> bool:
    """Whether the kernel of `step` reads `target` only at the index where it writes a
    value of dtype `written` (a multi-output kernel loads every operand of an element
    before it stores any output of it), and `target` is not one of its outputs."""
    node = step.node
    if node is None or not table[node.op].inplace or any(o is target for o in step.outs):
        return False
    for i, s in zip(node.inputs, step.ins):
        if s is target and (shapes[i] != shapes[node] or i.dtype.itemsize != written.itemsize):
            return False
    return True


def _update_params(program, steps, storage, shapes, table, kernel_steps, slots) -> set:
    """Write update values into their params (in place, or by copies at the end)."""
    param_storage = {p: storage.get(p) for p, _ in program.updates}
    for p, s in param_storage.items():
        if s is None:  # a param updated but never read
            slots.append(("param", p))
            param_storage[p] = Storage("param", nbytes(p.dtype, shapes.get(p) or p.shape),
                                       slot=len(slots) - 1)
    last_failing = max((s.index for s in steps[:kernel_steps]
                        if table[s.node.op].can_fail), default=-1)
    in_place: set = set()
    copies: list[tuple[Node, Node, Storage]] = []
    uses = _Uses(steps, storage)
    for param, value in program.updates:
        target = param_storage[param]
        source = storage[value]
        step = steps[source.first] if source.kind == "arena" else None
        if (step is not None and step.computes(value, table) and param not in in_place
                and shapes[value] == shapes.get(param, shapes[value])
                and step.index > last_failing and target.last <= step.index
                and _elementwise_reads_ok(step, target, value.dtype, shapes, table)):
            uses.merge(source, target)
            target.last = max(target.last, source.last)
            in_place.add(param)
            continue
        copies.append((param, value, target))
    # Copies read every source before writing any param: a source that is itself an
    # updated param is first copied aside.
    targets = {id(t) for _, _, t in copies}
    staged = []
    for _param, value, target in copies:
        source = storage[value]
        if id(source) in targets or source.kind == "param":
            temp = Storage("arena", source.nbytes, first=len(steps))
            steps.append(Step(len(steps), [temp], [source], source=value))
            source = temp
        staged.append((value, source, target))
    for value, source, target in staged:
        steps.append(Step(len(steps), [target], [source], source=value))
    _set_liveness(steps, storage)
    return in_place


def _reuse_inputs(steps, storage, shapes, table) -> int:
    """Let elementwise kernels write over an input buffer that dies with them."""
    count = 0
    uses = _Uses(steps, storage)
    for step in steps:
        if step.node is None or not table[step.node.op].inplace:
            continue
        for out, dtype in zip(list(step.outs), table[step.node.op].output_dtypes(step.node)):
            if out.kind != "arena":
                continue
            for s in step.ins:
                if (s.kind == "arena" and s.last == step.index and s.nbytes == out.nbytes
                        and _elementwise_reads_ok(step, s, dtype, shapes, table)):
                    uses.merge(out, s)
                    s.last = max(s.last, out.last)
                    count += 1
                    break
    return count


class _Uses:
    """The values and steps that use each storage, so that merging two storages costs
    their uses, not a scan of the whole plan (a long chain has thousands of steps)."""

    def __init__(self, steps: list[Step], storage: dict[Node, Storage]):
        self.storage = storage
        self.values: dict[Storage, list[Node]] = {}
        self.steps: dict[Storage, dict[int, Step]] = {}
        for node, s in storage.items():
            self.values.setdefault(s, []).append(node)
        for step in steps:
            for s in step.ins + step.outs:
                self.steps.setdefault(s, {})[id(step)] = step

    def merge(self, old: Storage, new: Storage) -> None:
        """Every use of storage `old` becomes a use of `new`."""
        values = self.values.pop(old, [])
        for node in values:
            self.storage[node] = new
        self.values.setdefault(new, []).extend(values)
        steps = self.steps.pop(old, {})
        for step in steps.values():
            step.ins = [new if s is old else s for s in step.ins]
            step.outs = [new if s is old else s for s in step.outs]
        self.steps.setdefault(new, {}).update(steps)


def _place(steps: list[Step]) -> int:
    """First-fit placement of arena storages by liveness; the arena's size."""
    free: list[tuple[int, int]] = []  # (offset, size), sorted, coalesced
    end = 0
    placed: set[int] = set()
    dying: dict[int, list[Storage]] = {}

    def allocate(size: int) -> int:
        nonlocal end
        size = _round(size)
        for k, (off, room) in enumerate(free):
            if room >= size:
                free[k:k + 1] = [(off + size, room - size)] if room > size else []
                return off
        off = end
        end += size
        return off

    def release(s: Storage) -> None:
        free.append((s.offset, _round(s.nbytes)))
        free.sort()
        merged: list[tuple[int, int]] = []
        for off, size in free:
            if merged and merged[-1][0] + merged[-1][1] == off:
                merged[-1] = (merged[-1][0], merged[-1][1] + size)
            else:
                merged.append((off, size))
        free[:] = merged

    for step in steps:
        for s in step.outs + ([step.scratch] if step.scratch else []):
            if s.kind == "arena" and id(s) not in placed:
                placed.add(id(s))
                s.offset = allocate(s.nbytes)
                dying.setdefault(max(s.last, step.index), []).append(s)
        for s in dying.pop(step.index, []):
            release(s)
    return end


def _round(size: int) -> int:
    return max(ALIGN, (size + ALIGN - 1) // ALIGN * ALIGN)
