"""Seeded parameter initialization: He for ReLU layers, Xavier/Glorot for sigmoid and tanh.

Layers draw from a generator they are given (an int seed or a numpy Generator) or, by
default, from graphc.nn's own generator, which `manual_seed` resets, so a script that builds
the same model twice after the same seed gets the same values."""

from __future__ import annotations

import itertools
import math

import numpy as np

_state = {"rng": np.random.default_rng(0), "dropout_seeds": itertools.count(1),
          "names": {}}


def manual_seed(seed: int) -> None:
    """Reset the default generator, and the counter that gives dropout layers their seeds."""
    _state["rng"] = np.random.default_rng(seed)
    _state["dropout_seeds"] = itertools.count(1)


def generator(rng: int | np.random.Generator | None = None) -> np.random.Generator:
    """A numpy Generator from a seed, a Generator, or None (graphc.nn's default one)."""
    if rng is None:
        return _state["rng"]
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be an int seed, a numpy Generator or None, got {rng!r}")


def next_dropout_seed() -> int:
    """A seed no other dropout layer built since the last manual_seed has."""
    return next(_state["dropout_seeds"])


def unique_name(base: str) -> str:
    """'linear1', 'linear2', ...: readable, distinct param-name prefixes for drawings."""
    count = _state["names"].get(base, 0) + 1
    _state["names"][base] = count
    return f"{base}{count}"


def he_normal(rng: np.random.Generator, shape, fan_in: int, dtype="float32") -> np.ndarray:
    """Normal with std sqrt(2 / fan_in) (He et al. 2015): keeps ReLU activations' scale."""
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), shape).astype(dtype)


def xavier_uniform(rng: np.random.Generator, shape, fan_in: int, fan_out: int,
                   dtype="float32") -> np.ndarray:
    """Uniform on +-sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010): for sigmoid/tanh."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(dtype)


def torch_uniform(rng: np.random.Generator, shape, fan_in: int, dtype="float32") -> np.ndarray:
    """Uniform on +-1/sqrt(fan_in): PyTorch's default for Linear and Conv weights
    (kaiming_uniform with a=sqrt(5)) and their biases."""
    limit = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
    return rng.uniform(-limit, limit, shape).astype(dtype)


INITS = ("he", "xavier", "torch")


def check_init(init: str) -> str:
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return init


def weight(rng: np.random.Generator, init: str, shape, fan_in: int, fan_out: int,
           dtype="float32") -> np.ndarray:
    """A weight array by the named scheme ("he", "xavier" or "torch")."""
    check_init(init)
    if init == "he":
        return he_normal(rng, shape, fan_in, dtype)
    if init == "xavier":
        return xavier_uniform(rng, shape, fan_in, fan_out, dtype)
    return torch_uniform(rng, shape, fan_in, dtype)


def bias(rng: np.random.Generator, init: str, size: int, fan_in: int,
         dtype="float32") -> np.ndarray:
    """A bias: zeros, or PyTorch's uniform on +-1/sqrt(fan_in) with init="torch"."""
    if init == "torch":
        return torch_uniform(rng, (size,), fan_in, dtype)
    return np.zeros(size, dtype)
