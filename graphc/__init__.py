"""graphc: a symbolic graph compiler for neural networks.

Declare a model as a graph with the DSL, differentiate it with `grad`, and `compile` it
with the LLVM backend (native code) or the NumPy reference backend.
"""

from graphc.autodiff import grad
from graphc.compiler import Executable, compile
from graphc.dsl import (
    abs,
    add,
    argmax,
    broadcast_to,
    cast,
    clip,
    concat,
    constant,
    cos,
    div,
    embedding,
    equal,
    erf,
    exp,
    expand_dims,
    gelu,
    getitem,
    greater,
    greater_equal,
    input,
    leaky_relu,
    less,
    less_equal,
    log,
    logical_and,
    logical_not,
    logical_or,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    not_equal,
    one_hot,
    param,
    pow,
    random_uniform,
    relu,
    reshape,
    sigmoid,
    sign,
    sin,
    slice_axis,
    sqrt,
    squeeze,
    stop_gradient,
    sub,
    sum,
    tanh,
    transpose,
    where,
)
from graphc.errors import GraphError, GraphTypeError
from graphc.ir import Graph, Node
from graphc.ops.conv import conv2d
from graphc.ops.nn import (
    binary_cross_entropy_with_logits,
    dropout,
    layer_norm,
    log_softmax,
    mse_loss,
    softmax,
    softmax_cross_entropy,
)
from graphc.ops.pool import avg_pool2d, max_pool2d
from graphc.viz import to_dot

Value = Node

__version__ = "0.1.0"

# The training stack: layers, optimizers, data tools (after the ops they build on).
from graphc import data, nn, optim, train  # noqa: E402
