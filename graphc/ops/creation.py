"""Creation ops, as PyTorch names them: zeros ones full (and their `_like`s), arange,
linspace, eye, and the triangle masks tril and triu.

Everything static and small is a constant: full values are a scalar constant broadcast to
the shape (constant folding makes a small one an array; a big one stays a broadcast, which
costs nothing), arange and linspace are constants up to CONSTANT_LIMIT elements, eye and
the triangle masks compare two aranges (folded to constants when small). Bigger ones, and
symbolic sizes (a batch N, a sequence length T), are computed at call time by an `arange`
node (start + i * step): `zeros_like(x)` of an (N, 10) value broadcasts to (N, 10) at
whatever N is bound to, `tril` of a (T, T) value masks it at whatever T is. So no argument
makes the graph hold a huge array. Defaults follow PyTorch: float results are float32,
integer aranges int64.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import sympy

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Op, register_class
from graphc.ops.elementwise import cast, equal, greater_equal, less, less_equal, where
from graphc.ops.leaf import as_weak, constant, is_weak, operands
from graphc.ops.shape import broadcast_to
from graphc.shapes import as_dim, as_shape, shape_str

__all__ = [  # the public builders (graphc/dsl.py)
    "zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "arange", "linspace",
    "eye", "tril", "triu",
]

DEFAULT_FLOAT = dtypes.FLOAT32  # PyTorch's default dtype, and gc.input's
CONSTANT_LIMIT = 1 << 16  # elements of the biggest arange or linspace kept as a constant
_DTYPE_NAMES = frozenset(d.name for d in dtypes.SUPPORTED) | {"float", "int", "double"}


def _dtype(op: str, dtype):
    try:
        return dtypes.as_dtype(dtype)
    except TypeError as exc:
        raise build_error(op, f"dtype: {exc}", dtype=True) from None


def _shape(op: str, dims):
    """A shape given as one sequence or as separate dims (zeros((2, 3)) or zeros(2, 3))."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    for dim in dims:
        if isinstance(dim, str) and dim in _DTYPE_NAMES:
            raise build_error(op, f"the dim {dim!r} is a dtype's name: give the dtype as "
                              f"dtype={dim!r}")
    try:
        return as_shape(tuple(dims))
    except (TypeError, ValueError) as exc:
        raise build_error(op, f"shape {tuple(dims)!r}: {exc}") from None


def _fill(op: str, value, dtype) -> Node:
    """The scalar constant `value` of `dtype` (None: PyTorch's choice for a Python value:
    bool, int64 or float32)."""
    if not is_weak(value):
        raise build_error(op, f"fill_value must be a Python number or a 0-d NumPy value, got "
                          f"{value!r}")
    value = as_weak(value)
    if dtype is None:
        dtype = dtypes.BOOL if isinstance(value, bool) else \
            dtypes.INT64 if isinstance(value, int) else DEFAULT_FLOAT
    dtype = _dtype(op, dtype)
    if dtypes.is_int(dtype) and isinstance(value, int) and not isinstance(value, bool):
        info = np.iinfo(dtype)
        if not info.min <= value <= info.max:
            raise build_error(op, f"fill_value {value} is out of bounds for {dtype.name}")
    if dtypes.is_int(dtype) and isinstance(value, float) and not math.isfinite(value):
        raise build_error(op, f"fill_value {value} has no {dtype.name} value")
    with np.errstate(all="ignore"):
        return constant(np.asarray(value).astype(dtype))


def full(shape, fill_value, dtype=None) -> Node:
    """A value of `shape` filled with fill_value (dtype: from the value as PyTorch, bool,
    int64 or float32, unless given). Dims may be symbolic ("N")."""
    shape = _shape("full", (shape,))
    return broadcast_to(_fill("full", fill_value, dtype), shape)


def zeros(*shape, dtype="float32") -> Node:
    """Zeros of a shape (zeros(2, 3) or zeros((2, 3)); dims may be symbolic)."""
    return broadcast_to(_fill("zeros", 0, dtype), _shape("zeros", shape))


def ones(*shape, dtype="float32") -> Node:
    """Ones of a shape (ones(2, 3) or ones((2, 3)); dims may be symbolic)."""
    return broadcast_to(_fill("ones", 1, dtype), _shape("ones", shape))


def _like(op: str, x, value, dtype) -> Node:
    (x,) = operands(x)
    return broadcast_to(_fill(op, value, x.dtype if dtype is None else dtype), x.shape)


def zeros_like(x, dtype=None) -> Node:
    """Zeros of x's shape (symbolic dims too) and dtype (or `dtype`); x's values unused."""
    return _like("zeros_like", x, 0, dtype)


def ones_like(x, dtype=None) -> Node:
    """Ones of x's shape and dtype (or `dtype`)."""
    return _like("ones_like", x, 1, dtype)


def full_like(x, fill_value, dtype=None) -> Node:
    """fill_value in x's shape and dtype (or `dtype`)."""
    return _like("full_like", x, fill_value, dtype)


# ----- arange ---------------------------------------------------------------------------------
@register_class
class Arange(Op):
    """attrs: start, step (Python numbers), size (a dim, symbolic), dtype. The values
    start + i * step for i < size, computed in float64 (int64 for ints) and converted, as
    PyTorch computes aranges. The static ones are constants; this op is the symbolic one."""

    name = "arange"
    differentiable = False

    def infer(self, inputs, attrs):
        if inputs:
            raise build_error(self.name, f"takes no inputs, got {len(inputs)}")
        return dtypes.as_dtype(attrs["dtype"]), (as_dim(attrs["size"]),)

    def numpy(self, node, args, env):
        (size,) = env.shape(node.shape)
        return arange_values(node.attrs["start"], node.attrs["step"], size, node.dtype)

    def grad(self, node, out_grad):
        return []


def arange_values(start, step, size: int, dtype: np.dtype) -> np.ndarray:
    """start + i * step for i < size, in float64 (int64 for ints), as `dtype`."""
    exact = isinstance(start, int) and isinstance(step, int)
    index = np.arange(size, dtype=np.int64 if exact else np.float64)
    with np.errstate(all="ignore"):
        return (start + index * step).astype(dtype)


def _is_dim_expr(value) -> bool:
    return isinstance(value, sympy.Basic) and not value.is_Number


def _number(op: str, name: str, value):
    if isinstance(value, bool) or not is_weak(value) and not _is_dim_expr(value):
        raise build_error(op, f"{name} must be a number or a dim, got {value!r}")
    value = value if _is_dim_expr(value) else as_weak(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise build_error(op, f"{name} must be finite, got {value!r}")
    return value


def arange(start, end=None, step=1, dtype=None) -> Node:
    """start, start + step, ... below end (arange(n): 0 .. n - 1), as torch.arange: int64
    for int arguments, float32 if any is a float (or `dtype`). `end` (or `start`) may be a
    symbolic dim such as x.shape[0]; then the arguments must be ints, and a range empty
    the wrong way round at call time is empty (NumPy's; PyTorch raises)."""
    if end is None:
        start, end = 0, start
    start, end, step = (_number("arange", name, v) for name, v in
                        (("start", start), ("end", end), ("step", step)))
    if step == 0:
        raise build_error("arange", "step must not be 0")
    symbolic = any(_is_dim_expr(v) for v in (start, end, step))
    floats = any(isinstance(v, float) for v in (start, end, step))
    dtype = _dtype("arange", dtype if dtype is not None else
                   DEFAULT_FLOAT if floats else dtypes.INT64)
    if not symbolic:
        size = math.ceil((end - start) / step)
        if size < 0:
            raise build_error("arange", f"the range from {start} to {end} by {step} is empty "
                              "the wrong way round (the sign of step)")
        if size <= CONSTANT_LIMIT:
            return constant(arange_values(start, step, size, dtype))
        return Node.make("arange", (), start=start, step=step, size=size, dtype=dtype.name)
    if floats or _is_dim_expr(step):
        raise build_error("arange", "with a symbolic bound, start and end must be ints or "
                          f"dims and step an int: got {start}, {end}, {step}")
    if start == 0 and step == 1:
        size = end
    else:
        size = sympy.Max(0, sympy.floor((end - start + step - (1 if step > 0 else -1)) / step))
    if _is_dim_expr(start):  # arange(N, 0, -1) and the like: count from the symbolic start
        return Node.make("arange", (), start=0, step=step, size=as_dim(size),
                         dtype=dtype.name) + cast_start(start, dtype)
    return Node.make("arange", (), start=start, step=step, size=as_dim(size), dtype=dtype.name)


def cast_start(start, dtype) -> Node:
    """A symbolic start as a scalar value of `dtype` (a dim_value)."""
    return Node.make("dim_value", (), dim=start, dtype=dtype.name)


def linspace(start, end, steps: int, dtype=None) -> Node:
    """`steps` evenly spaced values from start to end, both included (torch.linspace:
    computed from both ends, so the last is end exactly; float32 unless `dtype`)."""
    start, end = (_number("linspace", n, v) for n, v in (("start", start), ("end", end)))
    if any(_is_dim_expr(v) for v in (start, end)):
        raise build_error("linspace", "start and end must be numbers")
    if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 0:
        raise build_error("linspace", f"steps must be an int >= 0, got {steps!r}")
    dtype = _dtype("linspace", DEFAULT_FLOAT if dtype is None else dtype)
    steps = int(steps)
    if steps > CONSTANT_LIMIT:  # the same values, computed at call time
        step = (end - start) / (steps - 1)
        index = Node.make("arange", (), start=0, step=1, size=steps, dtype="float64")
        return cast(where(less(index, steps // 2), start + index * step,
                          end - (steps - 1 - index) * step), dtype)
    if steps == 1:
        values = np.array([start], np.float64)
    else:
        step = (end - start) / max(steps - 1, 1)
        index = np.arange(steps, dtype=np.float64)
        halfway = steps // 2
        values = np.where(index < halfway, start + step * index,
                          end - step * (steps - 1 - index))
    with np.errstate(all="ignore"):
        return constant(values.astype(dtype))


def eye(n, m=None, dtype="float32") -> Node:
    """The n x m identity (m defaults to n); n and m may be symbolic dims."""
    dtype = _dtype("eye", dtype)
    m = n if m is None else m
    try:
        n, m = as_dim(n), as_dim(m)
    except (TypeError, ValueError) as exc:
        raise build_error("eye", f"sizes {n!r}, {m!r}: {exc}") from None
    return cast(equal(_diagonal_offsets(n, m), 0), dtype)


# ----- triangles ------------------------------------------------------------------------------
def _diagonal_offsets(rows, cols) -> Node:
    """j - i for the (rows, cols) positions: 0 on the diagonal, > 0 above it (folded to a
    constant when small)."""
    return arange(cols)[None, :] - arange(rows)[:, None]


def _triangle(op: str, x, diagonal, lower: bool) -> Node:
    (x,) = operands(x)
    if x.ndim < 2:
        raise build_error(op, f"needs a value of at least 2 dims, got shape "
                          f"{shape_str(x.shape)}")
    if not isinstance(diagonal, numbers.Integral) or isinstance(diagonal, bool):
        raise build_error(op, f"diagonal must be an int, got {diagonal!r}")
    offsets = _diagonal_offsets(*x.shape[-2:])
    keep = (less_equal if lower else greater_equal)(offsets, int(diagonal))
    return where(keep, x, False if x.dtype == dtypes.BOOL else 0)


def tril(x, diagonal: int = 0) -> Node:
    """x's lower triangle over its last two axes: x[..., i, j] where j - i <= diagonal,
    else 0 (torch.tril); the gradient flows to the kept entries only."""
    return _triangle("tril", x, diagonal, lower=True)


def triu(x, diagonal: int = 0) -> Node:
    """x's upper triangle over its last two axes: x[..., i, j] where j - i >= diagonal,
    else 0 (torch.triu)."""
    return _triangle("triu", x, diagonal, lower=False)
