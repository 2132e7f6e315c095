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


def test_repeated_attention_layers_without_dropout_share_their_kernels():
    """Two layers' attentions of one shape differ only in their dropout seeds, which
    nothing reads without dropout: one forward and one backward kernel function serve
    both (each was compiled twice: ~0.4 s of LLVM in the transformer example)."""
    x = gc.input("x", (2, 4, 16, 8))
    h = x
    for seed in (1, 5):
        h = gc.scaled_dot_product_attention(h, h, h, dropout_p=0.0, seed=seed) + h
    (g,) = gc.grad(gc.sum(h * h), [x])
    step = gc.compile([x], [h, g], backend="llvm")
    variant = step.compiled(np.ones((2, 4, 16, 8), np.float32))
    ops = [s.node.op for s in variant.plan.steps if s.node is not None]
    assert ops.count("scaled_dot_product_attention") == 2
    assert ops.count("attention_backward") == 2
    defined = [line for line in variant.ir.splitlines() if line.startswith("define")]
    assert sum("scaled_dot_product_attention" in line for line in defined) == 1
    assert sum("attention_backward" in line for line in defined) == 1


def test_the_entry_is_not_optimized_and_runs_the_same(monkeypatch):
    """The entry only calls kernels and barriers: it is compiled without optimization
    (optnone; O3 on it was 15-28% of a module's LLVM time), segments too, and a program
    whose schedule is cut into segments computes what one entry computes."""
    x = gc.input("x", (64,))
    y = x
    for k in range(12):
        y = gc.sin(y) * (1.0 + 0.01 * k) if k % 2 else gc.exp(-y * y) + y
    arrays = np.linspace(-2.0, 2.0, 64).astype(np.float32)
    whole = gc.compile([x], [y], backend="llvm", optimize=False)
    expected = whole(arrays)
    monkeypatch.setattr(assembly, "SEGMENT_STEPS", 3)
    cut = gc.compile([x], [y], backend="llvm", optimize=False)
    np.testing.assert_array_equal(cut(arrays), expected)
    for step in (whole, cut):
        defined = [line for line in step.compiled(arrays).ir.splitlines()
                   if line.startswith("define") and ("graphc_entry" in line or "_segment" in line)]
        assert defined and all("optnone" in line and "noinline" in line for line in defined)
    assert len(defined) > 1
