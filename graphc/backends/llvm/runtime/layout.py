"""What a compiled variant needs at run time besides its object code: the argument table,
the arena, the outputs and the params it writes, read from a plan once; and its encoding
in a disk-cache entry, so that a later process runs the object without optimizing the
program or planning it again.

An entry refers to params by their position in `params_of(source program)` and holds the
constants' bytes, so it can be bound to another process's param nodes. Decoding checks
every field against the program it is bound to; anything that does not fit gives None
(the caller recompiles).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

import numpy as np

from graphc.ir.graph import topological_order
from graphc.ir.node import Node
from graphc.ir.program import Program

VERSION = 1
# What codegen/assemble.py names in the object: the entry, () -> i64 the value of the error a kernel
# reported, () -> ptr to one i64 tick count per step (profiling builds), () -> i64 the
# cycle counter (to calibrate the ticks).
ENTRY, ERROR_VALUE = "graphc_entry", "graphc_error_value"
CANCELLED = -1  # the entry's code for a call an interrupt stopped (a kernel's codes are > 0)
PROFILE_TICKS, CYCLES = "graphc_profile_ticks", "graphc_cycles"
_LENGTH = struct.Struct("<Q")
_KINDS = ("input", "output", "param", "constant")


@dataclass
class Layout:
    """slots: the argument table, ("input", k), ("output", k), ("param", node) or
    ("constant", array); outputs: (slot, shape, dtype) of each output; written: the params
    the code updates in place; steps: (op, shape) of each step, "copy" for copies."""

    slots: list[tuple[str, object]]
    outputs: list[tuple[int, tuple[int, ...], np.dtype]]
    arena_bytes: int
    work: int
    written: list[Node]
    steps: list[tuple[str, tuple[int, ...]]]
    intermediate_bytes: int
    in_place: int


def params_of(program: Program) -> list[Node]:
    """The program's params in a canonical order: as its graph reaches them, then the
    updated params it never reads."""
    params = [n for n in topological_order(program.results) if n.op == "param"]
    seen = set(params)
    return params + [p for p, _ in program.updates if p not in seen]


def layout_of(plan, program: Program) -> Layout:
    """The layout of a plan (graphc.backends.llvm.schedule.plan.Plan) of `program`."""
    slots: list[tuple[str, object]] = []
    outputs: list = [None] * len(program.outputs)
    for slot, (kind, key) in enumerate(plan.slots):
        if kind == "output":
            node = program.outputs[key]
            outputs[key] = (slot, tuple(plan.shape(node)), node.dtype)
        elif kind == "constant":
            key = np.ascontiguousarray(key.value)
        slots.append((kind, key))
    work = sum(math.prod(plan.shape(s.node)) for s in plan.steps if s.node is not None)
    steps = [(s.node.op, tuple(plan.shape(s.node))) if s.node is not None
             else ("copy", tuple(plan.shape(s.source))) for s in plan.steps]
    return Layout(slots, outputs, plan.arena_bytes, work, list(plan.inplace_params), steps,
                  plan.intermediate_bytes, plan.in_place)


def encode(layout: Layout, objects: list[bytes], params: list[Node]) -> bytes | None:
    """An entry's payload: the layout (params by position in `params`) and the object
    files; None if the layout uses a param that is not among `params`."""
    position = {p: k for k, p in enumerate(params)}
    blobs: list[bytes] = list(objects)
    slots = []
    for kind, key in layout.slots:
        if kind == "param":
            if key not in position:
                return None
            key = position[key]
        elif kind == "constant":
            blobs.append(key.tobytes())
            key = [len(blobs) - 1, key.dtype.str, list(key.shape)]
        slots.append([kind, key])
    if any(p not in position for p in layout.written):
        return None
    header = {
        "version": VERSION, "slots": slots,
        "outputs": [[s, list(shape), dtype.str] for s, shape, dtype in layout.outputs],
        "arena_bytes": layout.arena_bytes, "work": layout.work,
        "written": [position[p] for p in layout.written],
        "steps": [[op, list(shape)] for op, shape in layout.steps],
        "intermediate_bytes": layout.intermediate_bytes, "in_place": layout.in_place,
        "objects": len(objects), "blobs": [len(b) for b in blobs],
    }
    text = json.dumps(header, separators=(",", ":")).encode()
    return _LENGTH.pack(len(text)) + text + b"".join(blobs)


def is_variant(payload: bytes) -> bool:
    """Whether a cache payload is a compiled variant (encode's layout and objects), not
    another entry (a library object, the host's description)."""
    return payload[_LENGTH.size:_LENGTH.size + 1] == b"{"


def decode(payload: bytes, program: Program,
           params: list[Node]) -> tuple[Layout, list[bytes]] | None:
    """The layout, bound to this process's `params`, and the object files of an entry;
    None unless the entry fits `program` in every detail."""
    try:
        return _decode(payload, program, params)
    except (ValueError, TypeError, KeyError, IndexError, struct.error):
        return None


def _decode(payload: bytes, program: Program, params: list[Node]):
    (length,) = _LENGTH.unpack_from(payload)
    header = json.loads(payload[_LENGTH.size:_LENGTH.size + length])
    if header["version"] != VERSION:
        return None
    blobs, offset = [], _LENGTH.size + length
    for size in header["blobs"]:
        blobs.append(payload[offset:offset + _count(size)])
        offset += size
    objects = _count(header["objects"])
    if offset != len(payload) or not 1 <= objects <= len(blobs):
        return None
    slots: list[tuple[str, object]] = []
    for kind, key in header["slots"]:
        if kind not in _KINDS:
            return None
        if kind == "input":
            if not 0 <= _count(key) < len(program.inputs):
                return None
        elif kind == "output":
            if not 0 <= _count(key) < len(program.outputs):
                return None
        elif kind == "param":
            key = params[_count(key)]
        else:
            index, dtype, shape = key
            if _count(index) < objects:
                return None
            array = np.frombuffer(blobs[index], dtype=np.dtype(dtype))
            key = array.reshape([_count(d) for d in shape]).copy()  # aligned as numpy aligns
        slots.append((kind, key))
    outputs = []
    for (slot, shape, dtype), node in zip(header["outputs"], program.outputs, strict=True):
        shape = tuple(_count(d) for d in shape)
        if slots[_count(slot)] != ("output", len(outputs)) or np.dtype(dtype) != node.dtype \
                or len(shape) != len(node.shape):
            return None
        outputs.append((slot, shape, node.dtype))
    layout = Layout(slots, outputs, _count(header["arena_bytes"]), _count(header["work"]),
                    [params[_count(k)] for k in header["written"]],
                    [(str(op), tuple(_count(d) for d in shape)) for op, shape in header["steps"]],
                    _count(header["intermediate_bytes"]), _count(header["in_place"]))
    return layout, blobs[:objects]


def _count(value) -> int:
    """A non-negative int read from an entry (anything else is damage)."""
    if type(value) is not int or value < 0:
        raise ValueError(f"not a count: {value!r}")
    return value
