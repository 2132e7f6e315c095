"""The op-test table's machinery: input generation, running a case on a backend, and
central finite differences in float64."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import graphc as gc
from graphc.ir.program import Program
from graphc.passes import optimize
from graphc.shapes import evaluate, symbol


@dataclass(frozen=True)
class In:
    """One input of a case. kind: "normal", "positive" (0.5..2), "unit" (0.05..0.95),
    "int:LO:HI" (integers in [LO, HI)), "bool", "distinct" (well-separated values, for
    max/sort-like ops whose finite differences must not cross ties), or "zeros" (normal,
    but row r of the last axis holds r % 3 exact zeros, for products' gradients at 0)."""

    shape: tuple
    dtype: str = "float64"
    kind: str = "normal"


@dataclass(frozen=True)
class Case:
    """One row of the op table: a graph built from inputs and an independent expected value.

    build: input nodes -> output node. expected: input arrays -> expected array, computed
    independently of graphc's references (None only where no independent formula exists,
    which the table must say why). grad: check d(sum(out * w))/d(float inputs) by finite
    differences. ops: the registered ops this case exercises (found from the built graph).
    """

    name: str
    build: Callable
    inputs: tuple
    expected: Callable | None
    grad: bool = True
    rtol64: float = 1e-12
    rtol32: float = 1e-5
    atol: float = 1e-12
    float32: bool = True  # also run with float inputs cast to float32
    fd_eps: float = 1e-6
    bindings: dict = field(default_factory=dict)  # shape symbol -> size for symbolic inputs
    # For ops whose gradient deliberately differs from finite differences (stop_gradient):
    # (input arrays, output weights) -> expected gradients of the float inputs.
    grad_expected: Callable | None = None


def make_array(spec: In, rng: np.random.Generator, dtype=None) -> np.ndarray:
    dtype = np.dtype(dtype or spec.dtype)
    shape = tuple(spec.shape)
    kind = spec.kind
    if kind == "normal":
        a = rng.normal(size=shape)
    elif kind == "positive":
        a = rng.uniform(0.5, 2.0, size=shape)
    elif kind == "unit":
        a = rng.uniform(0.05, 0.95, size=shape)
    elif kind == "distinct":
        n = int(np.prod(shape, dtype=np.int64))
        a = rng.permutation(n).reshape(shape) * 0.1 + rng.uniform(-0.02, 0.02, size=shape)
    elif kind == "zeros":
        a = rng.normal(size=shape)
        rows = a.reshape(-1, shape[-1]) if a.ndim else a.reshape(1, 1)
        for r, row in enumerate(rows):
            row[[(r + 2 * t) % row.size for t in range(r % 3)]] = 0.0
    elif kind == "bool":
        return rng.random(size=shape) < 0.5
    elif kind.startswith("int:"):
        lo, hi = (int(v) for v in kind.split(":")[1:])
        return rng.integers(lo, hi, size=shape).astype(dtype)
    else:
        raise ValueError(f"unknown input kind {kind}")
    return np.asarray(a).astype(dtype)


def float_dtype_of(spec: In, float_dtype: str) -> str:
    return float_dtype if np.dtype(spec.dtype).kind == "f" else spec.dtype


def case_inputs(case: Case, float_dtype: str = "float64", seed: int = 0, prefix: str = ""):
    """(input nodes, arrays) for a case, floats in `float_dtype`; inputs are named
    `prefix`in0, in1, ... (a prefix per case keeps several cases' inputs apart)."""
    rng = np.random.default_rng(seed)
    nodes, arrays = [], []
    for k, spec in enumerate(case.inputs):
        dtype = float_dtype_of(spec, float_dtype)
        shape = tuple(case.bindings.get(d, d) if isinstance(d, str) else d for d in spec.shape)
        arrays.append(make_array(In(shape, dtype, spec.kind), rng))
        nodes.append(gc.input(f"{prefix}in{k}", spec.shape, dtype=dtype))
    return nodes, arrays


def run_case(case: Case, backend: str = "numpy", float_dtype: str = "float64", seed: int = 0,
             **options):
    """(graphc's result, the arrays it was computed from)."""
    nodes, arrays = case_inputs(case, float_dtype, seed)
    out = case.build(*nodes)
    fn = gc.compile(nodes, out, backend=backend, **options)
    return fn(*arrays), arrays


def gradient_check(case: Case, seed: int = 0):
    """(analytic, numeric) gradients of sum(out * w) for every float input, float64."""
    nodes, arrays = case_inputs(case, "float64", seed)
    out = case.build(*nodes)
    rng = np.random.default_rng(seed + 1)
    shape = evaluate(out.shape, {symbol(k): v for k, v in case.bindings.items()})
    weights = rng.normal(size=shape)
    w = gc.input("weights", out.shape, dtype=out.dtype)
    loss = gc.sum(out * w)
    wrt = [n for n in nodes if n.dtype.kind == "f"]
    grads = gc.grad(loss, wrt)
    loss_fn = gc.compile(nodes + [w], loss, backend="numpy")
    grad_fn = gc.compile(nodes + [w], grads, backend="numpy")
    analytic = grad_fn(*arrays, weights)
    if case.grad_expected is not None:
        return analytic, case.grad_expected(*arrays, weights)
    numeric = []
    for node in wrt:
        k = nodes.index(node)
        base = arrays[k]
        g = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            plus, minus = base.copy(), base.copy()
            plus[idx] += case.fd_eps
            minus[idx] -= case.fd_eps
            args_p = arrays[:k] + [plus] + arrays[k + 1:]
            args_m = arrays[:k] + [minus] + arrays[k + 1:]
            g[idx] = (float(loss_fn(*args_p, weights)) - float(loss_fn(*args_m, weights))) \
                / (2 * case.fd_eps)
        numeric.append(g)
    return analytic, numeric


def ops_of(case: Case) -> set[str]:
    """The op names of the graph a case builds, and of its gradient graph."""
    nodes, _ = case_inputs(case)
    out = case.build(*nodes)
    names = {n.op for n in gc.Graph([out])}
    if case.grad:
        w = gc.input("weights", out.shape, dtype=out.dtype)
        wrt = [n for n in nodes if n.dtype.kind == "f"]
        if wrt:
            names |= {n.op for n in gc.Graph(gc.grad(gc.sum(out * w), wrt))}
    return names


def optimized(value):
    """The value as the optimizer rewrites it: how the fused ops' rows get their nodes."""
    return optimize(Program((), (value,), ())).outputs[0]


def optimized_outputs(*values):
    """The outputs of a program computing `values`, as the optimizer rewrites them."""
    return optimize(Program((), values, ())).outputs
