"""Activation layers: elementwise functions as modules, with PyTorch's names, arguments and
defaults (PReLU alone has a param, its learned slope)."""

from __future__ import annotations

import warnings

import numpy as np

from graphc import dsl
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.nn.module import Module, check_sizes
from graphc.shapes import shape_str


class _Elementwise(Module):
    """An activation without params; `inplace` is accepted for PyTorch's signature (a
    graph value is never overwritten, so it changes nothing)."""

    def __init__(self, inplace: bool = False):
        self.inplace = inplace


class ReLU(_Elementwise):
    def forward(self, x: Node, training: bool) -> Node:
        return dsl.relu(x)


class Sigmoid(Module):
    def forward(self, x: Node, training: bool) -> Node:
        return dsl.sigmoid(x)


class Tanh(Module):
    def forward(self, x: Node, training: bool) -> Node:
        return dsl.tanh(x)


class GELU(Module):
    """x * Phi(x), exact (erf) form; approximate="tanh" for the tanh approximation."""

    def __init__(self, approximate: str = "none"):
        self.approximate = approximate

    def forward(self, x: Node, training: bool) -> Node:
        return dsl.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class LeakyReLU(_Elementwise):
    """x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__(inplace)
        self.negative_slope = float(negative_slope)

    def forward(self, x: Node, training: bool) -> Node:
        return dsl.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(_Elementwise):
    """x where x > 0, else alpha * (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        self.alpha = float(alpha)

    def forward(self, x: Node, training: bool) -> Node:
        return dsl.elu(x, alpha=self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class SELU(_Elementwise):
    """scale * ELU(x, alpha) with PyTorch's fixed self-normalizing constants."""

    def forward(self, x: Node, training: bool) -> Node:
        return dsl.selu(x)


class SiLU(_Elementwise):
    """x * sigmoid(x) (swish)."""

    def forward(self, x: Node, training: bool) -> Node:
        return dsl.silu(x)


class Mish(_Elementwise):
    """x * tanh(softplus(x))."""

    def forward(self, x: Node, training: bool) -> Node:
        return dsl.mish(x)


class Hardswish(_Elementwise):
    """x * relu6(x + 3) / 6."""

    def forward(self, x: Node, training: bool) -> Node:
        return dsl.hardswish(x)


class CELU(_Elementwise):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        self.alpha = float(alpha)

    def forward(self, x: Node, training: bool) -> Node:
        return dsl.celu(x, alpha=self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class ReLU6(_Elementwise):
    """min(max(0, x), 6)."""

    def forward(self, x: Node, training: bool) -> Node:
        return dsl.relu6(x)


class Hardsigmoid(_Elementwise):
    """relu6(x + 3) / 6."""

    def forward(self, x: Node, training: bool) -> Node:
        return dsl.hardsigmoid(x)


class Hardtanh(_Elementwise):
    """x limited to [min_val, max_val]."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        self.min_val, self.max_val = float(min_val), float(max_val)

    def forward(self, x: Node, training: bool) -> Node:
        return dsl.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class LogSigmoid(Module):
    """log(sigmoid(x)), in the stable form."""

    def forward(self, x: Node, training: bool) -> Node:
        return dsl.log_sigmoid(x)


class Softsign(Module):
    """x / (1 + |x|)."""

    def forward(self, x: Node, training: bool) -> Node:
        return dsl.softsign(x)


class Softplus(Module):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        self.beta, self.threshold = float(beta), float(threshold)

    def forward(self, x: Node, training: bool) -> Node:
        return dsl.softplus(x, beta=self.beta, threshold=self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class PReLU(Module):
    """x where x > 0, else a * x, with a learned slope `weight` of num_parameters values:
    one shared by all channels, or one per channel (axis 1 of the input, as PyTorch)."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype="float32"):
        check_sizes("PReLU", num_parameters=num_parameters)
        self.num_parameters = num_parameters
        self.weight = dsl.param(f"prelu{num_parameters}.weight",
                                np.full(num_parameters, init, dtype))

    def forward(self, x: Node, training: bool) -> Node:
        (x,) = dsl.operands(x)
        slope = self.weight
        if self.num_parameters > 1:
            if x.ndim < 2 or x.shape[1] != self.num_parameters:
                raise build_error("PReLU", f"{self.num_parameters} slopes need the input's "
                                  f"axis 1 to have that size, got {shape_str(x.shape)}")
            slope = dsl.reshape(slope, (self.num_parameters,) + (1,) * (x.ndim - 2))
        else:
            slope = dsl.reshape(slope, ())
        return dsl.where(dsl.greater(x, 0.0), x, dsl.cast(slope, x.dtype) * x)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


def _softmax_dim(layer: str, dim: int | None, ndim: int) -> int:
    """PyTorch's implicit dim for Softmax(dim=None): 0 for 0-, 1- and 3-D inputs, else 1."""
    if dim is not None:
        return dim
    warnings.warn(f"{layer}: implicit dimension choice (dim=None) is deprecated in PyTorch; "
                  "pass dim", UserWarning, stacklevel=4)
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Module):
    """exp(x) / sum(exp(x)) along `dim`."""

    def __init__(self, dim: int | None = None):
        self.dim = dim

    def forward(self, x: Node, training: bool) -> Node:
        (x,) = dsl.operands(x)
        return dsl.softmax(x, _softmax_dim(type(self).__name__, self.dim, x.ndim))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along `dim`, in the stable form."""

    def forward(self, x: Node, training: bool) -> Node:
        (x,) = dsl.operands(x)
        return dsl.log_softmax(x, _softmax_dim(type(self).__name__, self.dim, x.ndim))
