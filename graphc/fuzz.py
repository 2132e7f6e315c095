"""Differential fuzzing: random well-typed graphs run on two configurations (backend,
optimization, threads) must agree with each other.

`python -m graphc.fuzz --minutes N` runs it from the command line; tests/test_fuzz.py runs
a short version under hypothesis and keeps every case it ever found as a regression test.
A graph is built from a `Chooser`, so the same generator serves a seeded NumPy generator
(the CLI) and hypothesis (the tests, which then shrink failures).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

import graphc as gc
from graphc.ir.node import Node


class Chooser:
    """Where randomness comes from: a seeded NumPy generator by default."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def integer(self, lo: int, hi: int) -> int:
        """An int in [lo, hi]."""
        return int(self.rng.integers(lo, hi + 1))

    def choice(self, options: Sequence):
        return options[self.integer(0, len(options) - 1)]

    def boolean(self) -> bool:
        return self.integer(0, 1) == 1


class HypothesisChooser(Chooser):
    """Choices drawn from hypothesis' `data` strategy, so failures shrink."""

    def __init__(self, data):
        from hypothesis import strategies as st

        self.data = data
        self.st = st

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(self.st.integers(lo, hi))


@dataclasses.dataclass
class Program:
    """A random graph: inputs with the arrays to feed them, and the values to compare."""

    inputs: list[Node]
    arrays: list[np.ndarray]
    outputs: list[Node]
    description: list[str]
    updates: dict = dataclasses.field(default_factory=dict)  # param -> new value

    def run(self, config: Config) -> list[np.ndarray]:
        """The outputs, then the params' new values, of one call; the params are put back
        afterwards so every configuration starts from the same values."""
        params = list(self.updates)
        saved = [p.value.copy() for p in params]
        try:
            results = config.compile(self).__call__(*self.arrays)
            return results + [p.value.copy() for p in params]
        finally:
            for p, value in zip(params, saved):
                p.value = value

    @property
    def compared(self) -> list[Node]:
        """What `run` returns values of: the outputs, then the updated params."""
        return self.outputs + list(self.updates)


UNARY = ["neg", "abs", "exp_tanh", "log_abs", "sqrt_abs", "tanh", "sigmoid", "relu", "gelu",
         "leaky_relu", "sin", "clip", "erf", "sign"]
BINARY = ["add", "sub", "mul", "div_safe", "maximum", "minimum", "pow_safe", "where_greater"]


class Builder:
    """Builds one random program step by step from a Chooser."""

    def __init__(self, chooser: Chooser, dtype: str, max_steps: int = 8):
        self.c = chooser
        self.dtype = dtype
        self.max_steps = max_steps
        self.rng = np.random.default_rng(chooser.integer(0, 2**31 - 1))
        self.inputs: list[Node] = []
        self.arrays: list[np.ndarray] = []
        self.pool: list[Node] = []
        self.log: list[str] = []

    # ----- leaves -------------------------------------------------------------------------
    def new_input(self, shape: tuple[int, ...], dtype: str | None = None) -> Node:
        dtype = dtype or self.dtype
        node = gc.input(f"in{len(self.inputs)}", shape, dtype)
        if np.dtype(dtype).kind == "f":
            array = self.rng.normal(size=shape).astype(dtype)
        else:
            array = self.rng.integers(-3, 4, size=shape).astype(dtype)
        self.inputs.append(node)
        self.arrays.append(array)
        self.log.append(f"{node.name} = input{shape} {dtype}")
        return node

    def random_shape(self, rank: int | None = None) -> tuple[int, ...]:
        rank = self.c.integer(0, 4) if rank is None else rank
        return tuple(self.c.integer(1, 4) for _ in range(rank))

    def broadcast_partner(self, shape) -> tuple[int, ...]:
        """A shape that broadcasts with `shape`: some leading axes dropped, some dims 1."""
        keep = self.c.integer(0, len(shape))
        return tuple(1 if self.c.integer(0, 3) == 0 else d for d in shape[len(shape) - keep:])

    def value(self) -> Node:
        return self.c.choice(self.pool)

    def add(self, node: Node, text: str) -> None:
        self.pool.append(node)
        self.log.append(f"v{len(self.pool) - 1} = {text} -> {node.shape}")

    # ----- steps --------------------------------------------------------------------------
    def unary(self) -> None:
        x, name = self.value(), self.c.choice(UNARY)
        ops: dict[str, Callable[[Node], Node]] = {
            "exp_tanh": lambda v: gc.exp(gc.tanh(v)), "log_abs": lambda v: gc.log(gc.abs(v) + 0.5),
            "sqrt_abs": lambda v: gc.sqrt(gc.abs(v)), "leaky_relu": lambda v: gc.leaky_relu(v, 0.1),
            "clip": lambda v: gc.clip(v, -0.5, 0.5), "neg": lambda v: -v, "abs": gc.abs,
        }
        fn = ops.get(name) or getattr(gc, name)
        self.add(fn(x), f"{name}(v{self.pool.index(x)})")

    def binary(self) -> None:
        x = self.value()
        if self.c.boolean():
            y = self.c.choice(self.pool)
            try:
                np.broadcast_shapes(x.shape, y.shape)
            except ValueError:
                y = self.new_input(self.broadcast_partner(x.shape))
        else:
            y = self.new_input(self.broadcast_partner(x.shape))
        name = self.c.choice(BINARY)
        ops = {
            "div_safe": lambda a, b: a / (gc.abs(b) + 0.5),
            "pow_safe": lambda a, b: (gc.abs(a) + 0.5) ** gc.tanh(b),
            "where_greater": lambda a, b: gc.where(a > b, a, b * 2.0),
        }
        fn = ops.get(name) or getattr(gc, name)
        self.add(fn(x, y), f"{name}(v{self.pool.index(x)}, {y.name or 'v'})")

    def reduction(self) -> None:
        x = self.value()
        if x.ndim == 0:
            return self.unary()
        kind = self.c.choice(["sum", "mean", "max", "min"])
        axes = tuple(a for a in range(x.ndim) if self.c.boolean()) or None
        keepdims = self.c.boolean()
        self.add(getattr(gc, kind)(x, axis=axes, keepdims=keepdims),
                 f"{kind}(axis={axes}, keepdims={keepdims})")

    def matmul(self) -> None:
        x = self.value()
        if x.ndim == 0:
            return self.unary()
        n = self.c.integer(1, 5)
        w = self.new_input((x.shape[-1], n) if x.ndim == 1 or self.c.boolean()
                           else x.shape[:-2][-1:] + (x.shape[-1], n))
        self.add(x @ w, f"matmul({w.shape})")

    def reshape_like(self) -> None:
        x = self.value()
        kind = self.c.choice(["flatten", "transpose", "slice", "concat", "expand"])
        if kind == "flatten" or x.ndim == 0:
            self.add(x.reshape(-1), "reshape(-1)")
        elif kind == "transpose":
            axes = list(range(x.ndim))
            axes = axes[::-1] if self.c.boolean() else axes[1:] + axes[:1]
            self.add(x.transpose(axes), f"transpose({axes})")
        elif kind == "slice":
            index = tuple(slice(self.c.integer(0, d - 1), None, self.c.choice([1, 2, -1]))
                          if self.c.boolean() else slice(None) for d in x.shape)
            self.add(x[index], f"getitem({index})")
        elif kind == "concat":
            axis = self.c.integer(0, x.ndim - 1)
            self.add(gc.concat([x, x * 0.5], axis=axis), f"concat(axis={axis})")
        else:
            self.add(gc.expand_dims(x, 0), "expand_dims(0)")

    def nn(self) -> None:
        x = self.value()
        if x.ndim == 0:
            return self.unary()
        kind = self.c.choice(["softmax", "log_softmax", "layer_norm"])
        if kind == "layer_norm":
            self.add(gc.layer_norm(x), "layer_norm")
        else:
            axis = self.c.integer(-x.ndim, x.ndim - 1)
            self.add(getattr(gc, kind)(x, axis=axis), f"{kind}(axis={axis})")

    def image(self) -> None:
        """conv2d or pooling with random valid attributes on a new NCHW input."""
        k = self.c.integer(1, 3)
        pad = self.c.integer(0, k // 2)
        stride = self.c.integer(1, 2)
        size = (self.c.integer(k, 6), self.c.integer(k, 6))
        channels = self.c.integer(1, 3)
        x = self.new_input((self.c.integer(1, 2), channels) + size)
        kind = self.c.choice(["conv2d", "max_pool2d", "avg_pool2d"])
        if kind == "conv2d":
            w = self.new_input((self.c.integer(1, 3), channels, k,
                                self.c.integer(1, min(3, size[1]))))
            out = gc.conv2d(x, w, stride=stride, padding=(pad, 0))
        else:
            out = getattr(gc, kind)(x, k, stride=stride, padding=pad)
        self.add(out, f"{kind}(k={k}, stride={stride}, pad={pad})")

    def build(self) -> None:
        self.add(self.new_input(self.random_shape()), "input")
        steps = [self.unary, self.binary, self.reduction, self.matmul, self.reshape_like,
                 self.nn, self.image]
        for _ in range(self.c.integer(1, self.max_steps)):
            self.c.choice(steps)()


def random_program(chooser: Chooser, with_gradient: bool = True) -> Program:
    """A random graph of floats; with a gradient of a random scalar loss w.r.t. its inputs."""
    dtype = chooser.choice(["float32", "float64"])
    builder = Builder(chooser, dtype)
    builder.build()
    outputs = [builder.pool[-1]] + [v for v in builder.pool[:-1] if chooser.integer(0, 3) == 0]
    if with_gradient and chooser.boolean():
        loss = gc.sum(gc.tanh(outputs[0]))
        for extra in outputs[1:]:
            loss = loss + gc.mean(extra * extra)
        wrt = [n for n in builder.inputs if n.dtype.kind == "f"]
        outputs = outputs + [loss] + gc.grad(loss, wrt, allow_unused=True)
        builder.log.append("+ loss and its gradient w.r.t. every input")
    updates = _momentum_updates(chooser, builder, outputs[0]) if chooser.boolean() else {}
    return Program(builder.inputs, builder.arrays, outputs, builder.log, updates)


def _momentum_updates(chooser: Chooser, builder: Builder, value: Node) -> dict:
    """A param of value's shape trained by SGD with momentum on a loss that uses it: the
    updates the optimizer fuses into multi-output kernels."""
    if value.dtype.kind != "f" or any(not isinstance(d, int) for d in value.shape):
        return {}
    shape = tuple(value.shape)
    p = gc.param("p", builder.rng.normal(size=shape).astype(value.dtype))
    velocity = gc.param("velocity", builder.rng.normal(size=shape).astype(value.dtype))
    loss = gc.sum(gc.tanh(p * value)) + gc.mean(p * p)
    (g,) = gc.grad(loss, [p])
    new_velocity = velocity * 0.9 + g
    builder.log.append(f"+ momentum SGD updates of a param {shape}")
    return {velocity: new_velocity, p: p - 0.1 * new_velocity}


@dataclasses.dataclass(frozen=True)
class Config:
    """One way of running a graph."""

    backend: str = "numpy"
    optimize: bool = False
    threads: int | None = None

    def __str__(self) -> str:
        threads = "" if self.threads is None else f", threads={self.threads}"
        return f"{self.backend}(optimize={self.optimize}{threads})"

    def compile(self, program: Program):
        options = {} if self.threads is None else {"threads": self.threads}
        return gc.compile(program.inputs, program.outputs, updates=program.updates,
                          backend=self.backend, optimize=self.optimize, **options)


def tolerance(dtype: np.dtype) -> tuple[float, float]:
    """(rtol, atol) for comparing two runs: float32 results may differ by reassociation."""
    return (1e-4, 1e-5) if dtype == np.float32 else (1e-9, 1e-11)


def compare(program: Program, reference: Config, candidate: Config) -> None:
    """Raise AssertionError (with the program) where the two configurations disagree."""
    expected = program.run(reference)
    got = program.run(candidate)
    for k, (a, b, node) in enumerate(zip(expected, got, program.compared)):
        rtol, atol = tolerance(node.dtype)
        scale = max(1.0, float(np.max(np.abs(a[np.isfinite(a)]), initial=0.0)))
        try:
            assert a.shape == b.shape and a.dtype == b.dtype, f"{a.dtype}{a.shape} vs " \
                                                              f"{b.dtype}{b.shape}"
            np.testing.assert_allclose(b, a, rtol=rtol, atol=atol * scale, equal_nan=True)
        except AssertionError as exc:
            text = "\n".join(program.description)
            raise AssertionError(f"output {k} ({node!r}) differs between {reference} and "
                                 f"{candidate}:\n{exc}\nprogram:\n{text}") from None


def default_pairs() -> list[tuple[Config, Config]]:
    """What the fuzzer compares: optimization on the reference, then each other backend."""
    pairs = [(Config("numpy"), Config("numpy", optimize=True))]
    try:
        gc.compile([], gc.constant(np.zeros(1)), backend="llvm")
    except ValueError:
        return pairs
    for optimize in (False, True):
        for threads in (1, 2):
            pairs.append((Config("numpy"), Config("llvm", optimize, threads)))
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graphc.fuzz", description=__doc__)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    deadline = time.monotonic() + 60 * args.minutes
    pairs = default_pairs()
    seed, failures = args.seed, 0
    while time.monotonic() < deadline:
        program = random_program(Chooser(seed))
        for reference, candidate in pairs:
            try:
                compare(program, reference, candidate)
            except Exception as exc:  # report every kind of failure with its seed
                failures += 1
                print(f"seed {seed}: {type(exc).__name__}: {exc}\n", flush=True)
                break
        seed += 1
    print(f"{seed - args.seed} programs, {failures} failures, "
          f"pairs: {', '.join(f'{a} vs {b}' for a, b in pairs)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
