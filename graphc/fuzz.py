"""Differential fuzzing: random well-typed graphs run on two configurations (backend,
optimization, threads) must agree with each other.

`python -m graphc.fuzz --minutes N` runs it from the command line (from a random seed it
prints; `--seed S --programs 1` rebuilds the program of seed S); tests/test_fuzz.py runs a
fixed number of programs from a new seed on every run, a short version under hypothesis,
and keeps every case it ever found as a regression test. A graph is built from a
`Chooser`, so the same generator serves a seeded NumPy generator (the CLI) and hypothesis
(the tests, which then shrink failures).

Programs are float32, float64, int32 or int64; some have zero-size dims (empty batches,
empty reduced axes, a momentum update over an empty batch), long elementwise chains (up
to CHAIN_MAX ops) and powers with bases at or near 0 and negative. Both configurations
raising the same ValueError (a max over nothing, a negative integer exponent) agree.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from graphc import compiler
from graphc import dsl as gc
from graphc.autodiff import grad
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
        from hypothesis import strategies as st  # a test dependency, not a runtime one

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
         "leaky_relu", "sin", "clip", "erf", "sign", "pow_const_exponent", "pow_const_base"]
BINARY = ["add", "sub", "mul", "div_safe", "maximum", "minimum", "pow_safe", "where_greater",
          "pow", "pow_zero_base"]
# What int programs apply (float functions of ints give float64, which later steps mix in).
INT_UNARY = ["neg", "abs", "sign", "relu", "leaky_relu", "clip_int", "square", "tanh", "sigmoid",
             "erf", "sqrt_abs"]
INT_BINARY = ["add", "sub", "mul", "maximum", "minimum", "where_greater", "pow_int", "div_safe"]
# Steps of a long elementwise chain: each keeps values bounded, so any number stay finite.
CHAIN = ["tanh_affine", "sigmoid", "sin", "relu_shift", "leaky_relu", "clip", "abs_affine",
         "mix"]
INT_CHAIN = ["add_one", "neg", "abs", "maximum", "minimum", "clip_int", "mix"]
CHAIN_MAX = 120  # ops in one chain: deeper than a fused kernel may be, so fusion splits it
EXPONENTS = [0, 1, 2, 3, -1, -2, 0.5, -0.5, 1.5, 0.0]
BASES = [0.0, -2.0, 2.0, 0.5, -0.5]


class Builder:
    """Builds one random program step by step from a Chooser."""

    def __init__(self, chooser: Chooser, dtype: str, max_steps: int = 8, empty: bool = False):
        self.c = chooser
        self.dtype = dtype
        self.floating = np.dtype(dtype).kind == "f"
        self.max_steps = max_steps
        self.empty = empty  # zero-size dims: the first input's leading dim, and others
        self.rng = np.random.default_rng(chooser.integer(0, 2**31 - 1))
        self.inputs: list[Node] = []
        self.arrays: list[np.ndarray] = []
        self.pool: list[Node] = []
        self.log: list[str] = []

    # ----- leaves -------------------------------------------------------------------------
    def new_input(self, shape: tuple[int, ...], dtype: str | None = None,
                  values: str = "normal") -> Node:
        """An input fed random values: "normal", or "near_zero" (exact zeros, tiny and
        negative values: the bases of powers)."""
        dtype = dtype or self.dtype
        node = gc.input(f"in{len(self.inputs)}", shape, dtype)
        if np.dtype(dtype).kind != "f":
            array = self.rng.integers(-3, 4, size=shape).astype(dtype)
        elif values == "near_zero":
            # No -0.0: x ** -0.5 there is +inf unfused but -inf fused on NumPy (sympy.cse
            # makes it 1 / x**0.5, and np.power(-0.0, 0.5) is -0.0), a fusion quirk of its own.
            choices = np.array([0.0, 0.0, 1e-3, -1e-3, 0.25, -0.5, 1.0, -2.0])
            array = self.rng.choice(choices, size=shape).astype(dtype)
        else:
            array = self.rng.normal(size=shape).astype(dtype)
        self.inputs.append(node)
        self.arrays.append(array)
        self.log.append(f"{node.name} = input{shape} {dtype} {values}")
        return node

    def dim(self) -> int:
        """A dim in 1..4, or in an empty program 0 about one time in four."""
        return 0 if self.empty and self.c.integer(0, 3) == 0 else self.c.integer(1, 4)

    def random_shape(self, rank: int | None = None) -> tuple[int, ...]:
        rank = self.c.integer(0, 4) if rank is None else rank
        return tuple(self.dim() for _ in range(rank))

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
    def unary(self, name: str | None = None) -> None:
        x = self.value()
        name = name or self.c.choice(UNARY if self.floating else INT_UNARY)
        if name == "pow_const_exponent":
            if self.c.boolean():
                x = self.new_input(x.shape, values="near_zero")  # bases at, near 0, negative
            exponent = self.c.choice(EXPONENTS)
            self.add(x ** exponent, f"{self._name(x)} ** {exponent!r}")
        elif name == "pow_const_base":
            base = self.c.choice(BASES)
            self.add(base ** gc.tanh(x), f"{base!r} ** tanh({self._name(x)})")
        else:
            self.add(self._unary(name, x), f"{name}({self._name(x)})")

    @staticmethod
    def _unary(name: str, v: Node) -> Node:
        ops: dict[str, Callable[[Node], Node]] = {
            "exp_tanh": lambda v: gc.exp(gc.tanh(v)), "log_abs": lambda v: gc.log(gc.abs(v) + 0.5),
            "sqrt_abs": lambda v: gc.sqrt(gc.abs(v)), "leaky_relu": lambda v: gc.leaky_relu(v, 0.1),
            "clip": lambda v: gc.clip(v, -0.5, 0.5), "neg": lambda v: -v, "abs": gc.abs,
            "clip_int": lambda v: gc.clip(v, -2, 3), "square": lambda v: v * v,
            # sin of a huge value (a power of a tiny base) turns the last-ulp differences
            # of two correct pows into different results: bounded arguments only
            "sin": lambda v: gc.sin(gc.clip(v, -8.0, 8.0)),
        }
        return (ops.get(name) or getattr(gc, name))(v)

    def binary(self, name: str | None = None) -> None:
        x = self.value()
        name = name or self.c.choice(BINARY if self.floating else INT_BINARY)
        if name in ("pow", "pow_zero_base") and self.c.integer(0, 3) > 0:
            # bases at and near 0 and negative, the pool value as the exponent
            x, y = self.new_input(self.broadcast_partner(x.shape), values="near_zero"), x
        elif self.c.boolean():
            y = self.c.choice(self.pool)
            try:
                np.broadcast_shapes(x.shape, y.shape)
            except ValueError:
                y = self.new_input(self.broadcast_partner(x.shape))
        else:
            y = self.new_input(self.broadcast_partner(x.shape))
        ops = {
            "div_safe": lambda a, b: a / (gc.abs(b) + 0.5),
            "pow_safe": lambda a, b: (gc.abs(a) + 0.5) ** gc.tanh(b),
            "pow": lambda a, b: a ** (gc.tanh(b) * 3.0),
            "pow_zero_base": lambda a, b: gc.where(gc.abs(a) < 0.5, 0.0, a) ** gc.tanh(b),
            "pow_int": lambda a, b: a ** gc.clip(b, 0, 3),
            "where_greater": lambda a, b: gc.where(a > b, a, b * 2),
        }
        fn = ops.get(name) or getattr(gc, name)
        self.add(fn(x, y), f"{name}({self._name(x)}, {self._name(y)})")

    def _name(self, v: Node) -> str:
        return v.name or (f"v{self.pool.index(v)}" if v in self.pool else "v")

    def power(self) -> None:
        """A power, most often of bases at or near 0 or negative (where gradients are inf,
        NaN or PyTorch's conventions); ints: a nonnegative exponent."""
        if not self.floating:
            return self.binary("pow_int")
        name = self.c.choice(["pow", "pow_zero_base", "pow_const_exponent", "pow_const_base"])
        return self.binary(name) if name.startswith("pow_zero") or name == "pow" \
            else self.unary(name)

    def chain(self) -> None:
        """A long elementwise chain on one value (what fusion turns into one deep
        expression): up to CHAIN_MAX bounded ops."""
        start = self.value()
        # a float chain starts from tanh: its bounded ops then stay well conditioned
        x = gc.tanh(start) if start.dtype.kind == "f" else start
        h, names = x, []
        for _ in range(self.c.integer(2, CHAIN_MAX)):
            name = self.c.choice(CHAIN if h.dtype.kind == "f" else INT_CHAIN)
            h = self._chain_step(name, h, x)
            names.append(name)
        if h.dtype.kind == "f":
            # a residual: sigmoids and sines contract every row toward one fixed point, and
            # a layer norm of such a row would turn float32 roundings into 1e-3 errors
            h = h + x
            names.append("+ residual")
        self.add(h, f"chain({self._name(start)}: {', '.join(names)})")

    @staticmethod
    def _chain_step(name: str, h: Node, x: Node) -> Node:
        steps: dict[str, Callable[[], Node]] = {
            "tanh_affine": lambda: gc.tanh(h) * 0.9 + 0.01, "sigmoid": lambda: gc.sigmoid(h),
            "sin": lambda: gc.sin(h), "relu_shift": lambda: gc.relu(h) - 0.1,
            "leaky_relu": lambda: gc.leaky_relu(h, 0.2), "clip": lambda: gc.clip(h, -1.0, 1.0),
            "abs_affine": lambda: gc.abs(h) * 0.5 - 0.25,
            "mix": lambda: h * 0.5 + x if h.dtype.kind == "f" else gc.minimum(h + x, 100),
            "add_one": lambda: h + 1, "neg": lambda: -h, "abs": lambda: gc.abs(h),
            "maximum": lambda: gc.maximum(h, -5), "minimum": lambda: gc.minimum(h, 50),
            "clip_int": lambda: gc.clip(h, -7, 7),
        }
        return steps[name]()

    def reduction(self) -> None:
        x = self.value()
        if x.ndim == 0:
            return self.unary()
        kind = self.c.choice(["sum", "mean", "max", "min"])
        axes = tuple(a for a in range(x.ndim) if self.c.boolean()) or None
        reduced = range(x.ndim) if axes is None else axes
        if kind in ("max", "min") and any(x.shape[a] == 0 for a in reduced) and self.c.boolean():
            kind = "sum"  # else both configurations must raise the same error
        keepdims = self.c.boolean()
        self.add(getattr(gc, kind)(x, axis=axes, keepdims=keepdims),
                 f"{kind}(axis={axes}, keepdims={keepdims})")

    def matmul(self) -> None:
        x = self.value()
        if x.ndim == 0:
            return self.unary()
        n = self.dim() if self.empty else self.c.integer(1, 5)
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
                          if d > 0 and self.c.boolean() else slice(None) for d in x.shape)
            self.add(x[index], f"getitem({index})")
        elif kind == "concat":
            axis = self.c.integer(0, x.ndim - 1)
            self.add(gc.concat([x, x * 2], axis=axis), f"concat(axis={axis})")
        else:
            self.add(gc.expand_dims(x, 0), "expand_dims(0)")

    def nn(self) -> None:
        x = self.value()
        if x.ndim == 0 or x.dtype.kind != "f":
            return self.unary()
        kind = self.c.choice(["softmax", "log_softmax", "layer_norm"])
        if kind == "layer_norm":
            self.add(gc.layer_norm(x), "layer_norm")
            return
        axes = [a for a in range(-x.ndim, 0) if x.shape[a] > 0]  # softmax over nothing raises
        if not axes:
            return self.unary()
        axis = self.c.choice(axes)
        self.add(getattr(gc, kind)(x, axis=axis), f"{kind}(axis={axis})")

    def image(self) -> None:
        """conv2d or pooling with random valid attributes on a new NCHW input."""
        if not self.floating:
            return self.binary()
        k = self.c.integer(1, 3)
        pad = self.c.integer(0, k // 2)
        stride = self.c.integer(1, 2)
        size = (self.c.integer(k, 6), self.c.integer(k, 6))
        channels = self.c.integer(1, 3)
        batch = self.c.integer(0 if self.empty else 1, 2)
        x = self.new_input((batch, channels) + size)
        kind = self.c.choice(["conv2d", "max_pool2d", "avg_pool2d"])
        if kind == "conv2d":
            w = self.new_input((self.c.integer(1, 3), channels, k,
                                self.c.integer(1, min(3, size[1]))))
            out = gc.conv2d(x, w, stride=stride, padding=(pad, 0))
        else:
            out = getattr(gc, kind)(x, k, stride=stride, padding=pad)
        self.add(out, f"{kind}(k={k}, stride={stride}, pad={pad})")

    def build(self) -> None:
        shape = self.random_shape()
        if self.empty and shape:
            shape = (0,) + shape[1:]  # an empty batch
        self.add(self.new_input(shape), "input")
        steps = [self.unary, self.binary, self.reduction, self.matmul, self.reshape_like,
                 self.nn, self.image, self.chain, self.power]
        for _ in range(self.c.integer(1, self.max_steps)):
            self.c.choice(steps)()


DTYPES = ["float32", "float64", "float32", "float64", "int32", "int64"]


def random_program(chooser: Chooser, with_gradient: bool = True) -> Program:
    """A random graph of floats or ints, one program in five with zero-size dims; with a
    gradient of a random scalar loss w.r.t. its float inputs."""
    dtype = chooser.choice(DTYPES)
    builder = Builder(chooser, dtype, empty=chooser.integer(0, 4) == 0)
    builder.log.append(f"# {dtype}{', zero-size dims' if builder.empty else ''}")
    builder.build()
    outputs = [builder.pool[-1]] + [v for v in builder.pool[:-1] if chooser.integer(0, 3) == 0]
    wrt = [n for n in builder.inputs if n.dtype.kind == "f"]
    if with_gradient and wrt and chooser.boolean():
        loss = gc.sum(gc.tanh(outputs[0]))
        for extra in outputs[1:]:
            loss = loss + gc.mean(extra * extra)
        outputs = outputs + [loss] + grad(loss, wrt, allow_unused=True)
        builder.log.append("+ loss and its gradient w.r.t. every input")
    updates = _momentum_updates(chooser, builder, outputs[0]) if chooser.boolean() else {}
    return Program(builder.inputs, builder.arrays, outputs, builder.log, updates)


def _momentum_updates(chooser: Chooser, builder: Builder, value: Node) -> dict:
    """A param trained by SGD with momentum on a loss that uses it: the updates the
    optimizer fuses into multi-output kernels. The param has value's shape or, like a
    bias, its shape without the leading (batch) axis, whose gradient sums over the batch
    (over nothing for an empty batch: the param must not change)."""
    if value.dtype.kind != "f" or any(not isinstance(d, int) for d in value.shape):
        return {}
    shape = tuple(value.shape)
    if shape and chooser.boolean():
        shape = shape[1:]
    p = gc.param("p", builder.rng.normal(size=shape).astype(value.dtype))
    velocity = gc.param("velocity", builder.rng.normal(size=shape).astype(value.dtype))
    loss = gc.sum(gc.tanh(p * value)) + gc.mean(p * p)
    (g,) = grad(loss, [p])
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
        return compiler.compile(program.inputs, program.outputs, updates=program.updates,
                          backend=self.backend, optimize=self.optimize, **options)


def tolerance(dtype: np.dtype) -> tuple[float, float]:
    """(rtol, atol) for comparing two runs: float32 results may differ by reassociation."""
    return (1e-4, 1e-5) if dtype == np.float32 else (1e-9, 1e-11)


def compare(program: Program, reference: Config, candidate: Config) -> None:
    """Raise AssertionError (with the program) where the two configurations disagree. Both
    raising ValueError with the same wording (numbers aside: which negative element a thread
    met first) is agreement: a clear error is the specified result."""
    expected = _outcome(program, reference)
    got = _outcome(program, candidate)
    if isinstance(expected, Exception) or isinstance(got, Exception):
        if isinstance(expected, ValueError) and isinstance(got, ValueError) \
                and _wording(expected) == _wording(got):
            return
        raise AssertionError(f"{reference} gave {_summary(expected)}, {candidate} gave "
                             f"{_summary(got)}\nprogram:\n" + "\n".join(program.description))
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


def _outcome(program: Program, config: Config) -> list[np.ndarray] | ValueError:
    """The program's results on `config`, or the ValueError a call raised."""
    try:
        return program.run(config)
    except ValueError as exc:
        return exc


def _wording(exc: Exception) -> str:
    return re.sub(r"-?\d+", "#", str(exc))


def _summary(outcome) -> str:
    if isinstance(outcome, Exception):
        return f"{type(outcome).__name__}: {outcome}"
    return f"{len(outcome)} results"


def default_pairs() -> list[tuple[Config, Config]]:
    """What the fuzzer compares: optimization on the reference, then each other backend."""
    pairs = [(Config("numpy"), Config("numpy", optimize=True))]
    try:
        compiler.compile([], gc.constant(np.zeros(1)), backend="llvm")
    except ValueError:
        return pairs
    for optimize in (False, True):
        for threads in (1, 2):
            pairs.append((Config("numpy"), Config("llvm", optimize, threads)))
    return pairs


def new_seed() -> int:
    """A seed no earlier run used (most likely): fuzzing explores new programs each run."""
    return int.from_bytes(os.urandom(4), "little")


def run(seed: int, programs: int | None = None, minutes: float | None = None,
        pairs: list[tuple[Config, Config]] | None = None,
        report: Callable[[str], None] = print) -> tuple[int, list[str]]:
    """Build and compare the programs of seeds seed, seed + 1, ... until `programs` ran or
    `minutes` passed. Returns how many ran and one text per failure, naming its seed
    (`--seed S --programs 1` rebuilds it); `report` gets each failure as it happens."""
    pairs = default_pairs() if pairs is None else pairs
    deadline = None if minutes is None else time.monotonic() + 60 * minutes
    failures: list[str] = []
    count = 0
    while (programs is None or count < programs) and \
            (deadline is None or time.monotonic() < deadline):
        program_seed = seed + count
        count += 1
        try:
            program = random_program(Chooser(program_seed))
            for reference, candidate in pairs:
                compare(program, reference, candidate)
        except Exception as exc:  # report every kind of failure with its seed
            failures.append(f"seed {program_seed}: {type(exc).__name__}: {exc}")
            report(failures[-1] + "\n")
    return count, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graphc.fuzz", description=__doc__)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--programs", type=int, default=None,
                        help="stop after this many programs (default: when the minutes end)")
    parser.add_argument("--seed", type=int, default=None,
                        help="the first program's seed (default: a new one, printed)")
    args = parser.parse_args(argv)
    seed = new_seed() if args.seed is None else args.seed
    print(f"seed {seed}", flush=True)
    pairs = default_pairs()
    minutes = None if args.programs is not None else args.minutes
    count, failures = run(seed, args.programs, minutes, pairs,
                          lambda text: print(text, flush=True))
    print(f"{count} programs from seed {seed}, {len(failures)} failures, "
          f"pairs: {', '.join(f'{a} vs {b}' for a, b in pairs)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
