"""Gradient buckets: contiguous buffers that the compiled backward writes its gradients
into and that MPI all-reduces, one request per bucket.

Each model param gets a gradient param whose value is a view of a bucket's buffer. The
compiled gradient function updates those params (`updates={grad_param: gc.grad(...)}`),
so the backend writes each gradient straight into its bucket (in place where the plan
allows, else by a native copy at the end of the call), and the compiled update function
reads the averaged gradients back from the same memory as params. No gradient is copied
by Python: the buckets are the only gradient storage.

Buckets are filled in the order the backward pass completes the gradients, which
`completion_order` derives from the graph: reverse mode finishes a gradient once
everything it depends on is computed, so a gradient that depends on fewer nodes (the
last layer's) is ready before one that depends on more (the first layer's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from graphc import dsl
from graphc.ir.graph import topological_order
from graphc.ir.node import Node

ALIGN_BYTES = 64  # each gradient starts on a cache line (and a full vector) of its bucket
DEFAULT_BUCKET_MB = 25.0  # as PyTorch DDP's bucket_cap_mb


@dataclass(frozen=True)
class Slot:
    """One gradient in a bucket: the model param, the gradient param whose value is a
    view of the bucket's buffer, and where that view starts (in elements)."""

    param: Node
    grad: Node
    offset: int


class Bucket:
    """A contiguous, 64-byte aligned buffer of one dtype holding some gradients, each at
    a 64-byte aligned offset (the gaps are zeros and stay zeros: 0 + 0 = 0)."""

    def __init__(self, index: int, params: Sequence[Node]):
        self.index = index
        self.dtype = params[0].dtype
        itemsize = self.dtype.itemsize
        offsets, end = [], 0
        for p in params:
            offsets.append(end)
            end += -(-p.value.size * itemsize // ALIGN_BYTES) * ALIGN_BYTES // itemsize
        self.buffer = _aligned_zeros(end, self.dtype)
        self.slots = tuple(Slot(p, _gradient_param(p, self.buffer, offset), offset)
                           for p, offset in zip(params, offsets))

    @property
    def nbytes(self) -> int:
        return self.buffer.nbytes

    def __repr__(self) -> str:
        names = [s.param.name for s in self.slots]
        return f"<Bucket {self.index}: {self.nbytes:,} bytes {self.dtype.name} {names}>"


def plan_buckets(params: Sequence[Node], grads: Sequence[Node],
                 bucket_bytes: int) -> list[Bucket]:
    """Buckets of the params' gradients, in the order the backward completes `grads`
    (grads[k] is the gradient of params[k]). A bucket holds gradients of one dtype and
    closes when the next gradient would take it past `bucket_bytes` (a gradient bigger
    than that gets a bucket of its own)."""
    if len(params) != len(grads):
        raise ValueError(f"buckets: {len(params)} params but {len(grads)} gradients")
    if not isinstance(bucket_bytes, (int, np.integer)) or bucket_bytes < 1:
        raise ValueError(f"buckets: bucket_bytes must be a positive int, got {bucket_bytes!r}")
    open_buckets: dict[np.dtype, tuple[list[Node], int]] = {}
    closed: list[list[Node]] = []
    for k in completion_order(grads):
        p = params[k]
        members, size = open_buckets.get(p.dtype, ([], 0))
        if members and size + p.value.nbytes > bucket_bytes:
            closed.append(members)
            members, size = [], 0
        members.append(p)
        open_buckets[p.dtype] = (members, size + p.value.nbytes)
    closed.extend(members for members, _ in open_buckets.values())
    return [Bucket(i, members) for i, members in enumerate(closed)]


def completion_order(grads: Sequence[Node]) -> list[int]:
    """Indices of `grads` in the order a reverse-mode backward pass completes them: by
    the number of graph nodes each depends on, fewest first (ties: the later param
    first, as the backward meets it first)."""
    nodes = topological_order(grads)
    position = {id(n): i for i, n in enumerate(nodes)}
    ancestry: dict[int, int] = {}  # node id -> bit set of the nodes it depends on
    for node in nodes:
        bits = 1 << position[id(node)]
        for i in node.inputs:
            bits |= ancestry[id(i)]
        ancestry[id(node)] = bits
    work = [ancestry[id(g)].bit_count() for g in grads]
    return sorted(range(len(grads)), key=lambda k: (work[k], -k))


def _aligned_zeros(size: int, dtype: np.dtype) -> np.ndarray:
    raw = np.zeros(size * dtype.itemsize + ALIGN_BYTES, np.uint8)
    shift = (-raw.ctypes.data) % ALIGN_BYTES
    return raw[shift:shift + size * dtype.itemsize].view(dtype)


def _gradient_param(param: Node, buffer: np.ndarray, offset: int) -> Node:
    """A param named '<param>.grad' whose value is the view buffer[offset:...] shaped as
    `param`: what the gradient function writes and the update function reads.

    gc.param copies the array it is given, so the view is bound afterwards, as gc.param
    binds its own copy: a param's value is the one array the backends read and write."""
    view = buffer[offset:offset + param.value.size].reshape(param.shape)
    node = dsl.param(f"{param.name}.grad", np.zeros(param.shape, param.dtype))
    object.__setattr__(node, "_value", view)
    return node
