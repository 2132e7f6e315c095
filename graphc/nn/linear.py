"""Linear: y = x @ W^T + b over the last axis, with PyTorch's (out, in) weight."""

from __future__ import annotations

from graphc import dsl
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.nn import init as initializers
from graphc.nn.module import Module, check_sizes
from graphc.shapes import shape_str


class Linear(Module):
    """A fully connected layer: weight (out_features, in_features) and bias
    (out_features,), as PyTorch's. init: "he" (normal, for ReLU; zero bias), "xavier"
    (for sigmoid/tanh; zero bias) or "torch" (PyTorch's uniform weight and bias)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init: str = "he", rng=None, dtype="float32"):
        check_sizes("Linear", in_features=in_features, out_features=out_features)
        initializers.check_init(init)
        self.in_features, self.out_features = in_features, out_features
        gen = initializers.generator(rng)
        name = initializers.unique_name("linear")
        self.weight = dsl.param(f"{name}.weight", initializers.weight(
            gen, init, (out_features, in_features), in_features, out_features, dtype))
        self.bias = dsl.param(f"{name}.bias", initializers.bias(
            gen, init, out_features, in_features, dtype)) if bias else None

    def forward(self, x: Node, training: bool) -> Node:
        (x,) = dsl.operands(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise build_error("Linear", f"expected input (..., {self.in_features}), got "
                              f"{shape_str(x.shape)}")
        y = x @ dsl.transpose(self.weight)  # the GEMM reads the transposed weight in place
        return y + self.bias if self.bias is not None else y

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
