"""Module assembly (codegen/assemble.py): the fused kernels' bodies, computed up front in
one unevaluated block, give the IR that computing each where its kernel is emitted gives."""

import numpy as np

import graphc as gc
from graphc.backends.llvm.codegen import assemble as assembly
from graphc.backends.llvm.lower import table
from graphc.backends.llvm.runtime import target
from graphc.ops.fused_group import group_body
from graphc.ops.scalar import kernel_body


def _clear() -> None:
    kernel_body.cache_clear()
    group_body.cache_clear()


def test_kernel_bodies_up_front_give_the_ir_of_bodies_per_kernel(monkeypatch):
    x = gc.input("x", ("N", 8))
    w = gc.param("w", np.linspace(-1.0, 1.0, 8).astype(np.float32))
    z = gc.exp(x * w - 1.0)
    probs = z / gc.sum(z, axis=1, keepdims=True)
    loss = gc.mean(gc.where(probs > 0.1, probs * probs, -probs))
    (g,) = gc.grad(loss, [w])
    step = gc.compile([x], [loss], updates={w: w - 0.1 * g}, backend="llvm", optimize=True)
    _clear()
    variant = step.compiled(np.ones((4, 8), np.float32))
    ops = {s.node.op for s in variant.plan.steps if s.node is not None}
    assert {"fused", "fused_reduce"} <= ops
    with target.using(variant.target):
        _clear()
        up_front = assembly.assemble(variant.plan, table())
        _clear()
        monkeypatch.setattr(assembly, "_kernel_bodies", lambda plan: None)
        per_kernel = assembly.assemble(variant.plan, table())
    assert up_front == per_kernel
