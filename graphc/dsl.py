"""The graph-building functions of the public API, gathered from the op modules that
define them (graphc/ops): leaves, elementwise ops, reductions, linear algebra, shapes and
indexing, convolution and pooling, and the composite neural-network functions. Each
function's rules live with its op."""

from graphc.ir.node import Node
from graphc.ops import operators as _operators  # registers every op
from graphc.ops.composite import (
    binary_cross_entropy_with_logits,
    dropout,
    layer_norm,
    log_softmax,
    mse_loss,
    softmax,
    softmax_cross_entropy,
)
from graphc.ops.conv import conv2d
from graphc.ops.elementwise import (
    abs,
    add,
    cast,
    clip,
    cos,
    div,
    equal,
    erf,
    exp,
    gelu,
    greater,
    greater_equal,
    leaky_relu,
    less,
    less_equal,
    log,
    logical_and,
    logical_not,
    logical_or,
    maximum,
    minimum,
    mul,
    neg,
    not_equal,
    pow,
    relu,
    sigmoid,
    sign,
    silu,
    sin,
    sqrt,
    sub,
    tanh,
    where,
)
from graphc.ops.indexing import embedding, one_hot
from graphc.ops.leaf import constant, input, operands, param
from graphc.ops.linalg import matmul
from graphc.ops.pool import avg_pool2d, max_pool2d
from graphc.ops.random import random_uniform
from graphc.ops.reduction import argmax, max, mean, min, sum
from graphc.ops.shape import (
    broadcast_to,
    concat,
    expand_dims,
    getitem,
    reshape,
    slice_axis,
    squeeze,
    stop_gradient,
    transpose,
)

Value = Node
