"""Ops that make values: Constant, ConstantOfShape, Range (known at import: they fold into
static values), and Dropout: the identity in inference, graphc's dropout mask (its own
random stream, not ONNX Runtime's) in training mode."""

from __future__ import annotations

import zlib

import numpy as np
from onnx import numpy_helper

from graphc.onnx.converters.common import require_float
from graphc.onnx.errors import Unsupported
from graphc.onnx.registry import converter
from graphc.onnx.static import as_dims
from graphc.ops.elementwise import where
from graphc.ops.leaf import constant
from graphc.ops.random import random_uniform
from graphc.ops.shape import broadcast_to


@converter("Constant")
def constant_(ctx):
    for name in ("sparse_value", "value_string", "value_strings"):
        if ctx.has_attr(name):
            raise Unsupported(f"a Constant given by '{name}' (graphc has no sparse or string "
                              "tensors)")
    if ctx.has_attr("value"):
        return np.array(numpy_helper.to_array(ctx.attr("value")))
    for name, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                        ("value_int", np.int64), ("value_ints", np.int64)):
        if ctx.has_attr(name):
            return np.array(ctx.attr(name), dtype=dtype)
    raise ctx.error("a Constant node sets none of its value attributes")


@converter("ConstantOfShape")
def constant_of_shape(ctx):
    dims = as_dims(ctx.static(0, "shape"))
    fill = np.zeros(1, np.float32)
    if ctx.has_attr("value"):
        fill = np.array(numpy_helper.to_array(ctx.attr("value"))).reshape(-1)
        if fill.size != 1:
            raise ctx.error(f"value must hold one element, it holds {fill.size}")
    if any(isinstance(d, int) and d < 0 for d in dims):
        raise ctx.error(f"shape {dims} has a negative dim")
    if all(isinstance(d, int) for d in dims):
        return np.full(dims, fill[0], dtype=fill.dtype)
    return broadcast_to(constant(fill.reshape(())), dims)


@converter("Range")
def range_(ctx):
    start, limit, delta = (ctx.static(i, what) for i, what in
                           enumerate(("start", "limit", "delta")))
    if any(v.dtype == object for v in (start, limit, delta)):
        raise Unsupported("its start, limit or delta depends on a symbolic dim, which would "
                          "give a value of symbolic length")
    start, limit, delta = (v.reshape(()) for v in (start, limit, delta))
    if delta == 0:
        raise ctx.error("delta is 0")
    count = max(int(np.ceil((float(limit) - float(start)) / float(delta))), 0)
    return (start + delta * np.arange(count)).astype(start.dtype)


@converter("Dropout")
def dropout(ctx):
    x = ctx.input(0)
    training = ctx.has_input(2) and bool(ctx.static(2, "training_mode").reshape(-1)[0])
    if not training:
        outputs = [x]
        if ctx.wants_output(1):
            outputs.append(broadcast_to(constant(np.array(True)), x.shape))
        return outputs
    # training mode: graphc's dropout stream (the same in every backend, new at each call)
    ratio = float(ctx.static(1, "ratio", np.array(0.5)).reshape(-1)[0])
    if not 0.0 <= ratio < 1.0:
        raise ctx.error(f"ratio must be in [0, 1), got {ratio}")
    require_float(ctx, x)
    seed = ctx.attr("seed", None)
    seed = zlib.crc32(ctx.node.output[0].encode()) if seed is None else int(seed)
    keep = random_uniform(x.shape, seed, x.dtype) >= ratio
    out = where(keep, x * (1.0 / (1.0 - ratio)), 0.0)
    return [out, keep] if ctx.wants_output(1) else [out]
