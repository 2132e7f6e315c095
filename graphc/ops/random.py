"""Counter-based random numbers: a pure function of (seed, step, index), the same in every
backend, so masks agree bit for bit. `step` is the compiled function's call counter."""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, register_class
from graphc.shapes import as_shape

__all__ = [  # the public builders (graphc/dsl.py)
    "random_uniform",
]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer of z + golden ratio, on uint64 arrays (wrapping arithmetic)."""
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def stream_key(seed: int, step: int) -> np.uint64:
    """The key of one (seed, step) stream."""
    with np.errstate(over="ignore"):
        s = splitmix64(np.array(seed % 2**64, dtype=np.uint64))
        return splitmix64(s ^ np.uint64(step % 2**64))


def uniform(seed: int, step: int, count: int) -> np.ndarray:
    """`count` float32-exact uniforms in [0, 1): 24 high bits of splitmix64(key + index)."""
    key = stream_key(seed, step)
    with np.errstate(over="ignore"):
        bits = splitmix64(key + np.arange(count, dtype=np.uint64))
    return (bits >> np.uint64(40)).astype(np.float64) * (1.0 / (1 << 24))


@register_class
class RandomUniform(Op):
    """attrs: shape, seed, dtype. Uniform [0, 1) values, new at every call of the function."""

    name = "random_uniform"
    differentiable = False

    def infer(self, inputs, attrs):
        dtype = dtypes.as_dtype(attrs["dtype"])
        if not dtypes.is_float(dtype):
            raise build_error(self.name, f"dtype must be float, got {dtype.name}", dtype=True)
        if not isinstance(attrs["seed"], int) or attrs["seed"] < 0:
            raise build_error(self.name, f"seed must be a nonnegative int, got {attrs['seed']!r}")
        return dtype, attrs["shape"]

    def numpy(self, node, args, env):
        shape = env.shape(node.shape)
        count = int(np.prod(shape, dtype=np.int64))
        return uniform(node.attrs["seed"], env.step, count).astype(node.dtype).reshape(shape)


def random_uniform(shape, seed: int, dtype="float32") -> Node:
    """Uniform [0, 1) values drawn anew at each call (a function of seed, call count, index)."""
    return Node.make("random_uniform", (), shape=as_shape(shape), seed=seed,
                     dtype=dtypes.as_dtype(dtype).name)
