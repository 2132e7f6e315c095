"""Multi-output elementwise kernels: "fused_group" computes several values over one
iteration space in one loop, "group_output" picks one of them out.

Format (an interface: the optimizer builds it, every backend lowers it):

- op ``"fused_group"``; ``inputs``: the distinct outside operands, as for ``fused``
  (graphc/ops/fused.py), broadcasting to the common shape.
- ``attrs["exprs"]``: one sympy expression per output, with ``fused``'s conventions
  (symbols ``x0, x1, ...`` for the inputs, unevaluated, weak numbers) plus the symbols
  ``y0, y1, ...`` (`output_symbols`): ``y_j`` in ``exprs[i]``, only for ``j < i``, is
  output j's element *as stored* (converted to its dtype). A consumer kernel read exactly
  that value before the two were merged, so each output equals the separate kernel's.
- ``attrs["dtypes"]``: the output dtype names; ``attrs["shape"]``: the common shape of
  every output. Output i is computed in its operands' dtypes and converted to
  ``dtypes[i]``, as a ``fused`` node does.
- Backends evaluate ``group_body(exprs)``: one sympy.cse over all outputs, so a
  subexpression several outputs share is computed once per element. An assignment that
  uses ``y_j`` can be evaluated once output j is.
- The group node itself is read only through projections: its NumPy value is the tuple
  of outputs; its own dtype and shape are its first output's.
- op ``"group_output"``: input the group node, ``attrs["index"]``; the dtype and shape of
  that output. Backends treat it as a view of the output's storage.

Neither op has a gradient: the optimizer builds groups after gc.grad has run, so
differentiating one raises a clear error instead of guessing a tuple-valued rule.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy

from graphc import dtypes
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Kind, Op, Pattern, register_class
from graphc.ops.fused import elementwise_shape
from graphc.ops.scalar import (
    Evaluator,
    bool_arithmetic_dtype,
    check_expression,
    inline_reciprocals,
    input_symbols,
)
from graphc.shapes import as_shape

Body = tuple[tuple[tuple[sympy.Symbol, sympy.Basic], ...], tuple[sympy.Basic, ...]]


@functools.cache
def output_symbols(n: int) -> tuple[sympy.Symbol, ...]:
    """The symbols y0 .. y{n-1} that stand for a group's earlier outputs."""
    return tuple(sympy.Symbol(f"y{i}", real=True) for i in range(n))


@functools.lru_cache(maxsize=1024)
def group_body(exprs: tuple[sympy.Basic, ...]) -> Body:
    """One sympy.cse over every output, without re-evaluating: (assignments, results)."""
    with sympy.evaluate(False):
        assignments, results = sympy.cse(list(exprs), symbols=sympy.numbered_symbols("t"))
        return inline_reciprocals(assignments, results)


def ready(assignments, known) -> list[tuple[sympy.Symbol, sympy.Basic]]:
    """The assignments, in order, that can be evaluated once the symbols in `known` are:
    those whose free symbols are known or made by an earlier ready assignment."""
    known = set(known)
    out = []
    for temp, value in assignments:
        if value.free_symbols <= known:
            out.append((temp, value))
            known.add(temp)
    return out


@register_class
class FusedGroup(Op):
    """Several elementwise outputs over one shape in one kernel (format in the module
    docstring)."""

    name = "fused_group"
    pattern = Pattern.ELEMENTWISE
    fused = True

    def infer(self, inputs, attrs):
        exprs, names = attrs.get("exprs"), attrs.get("dtypes")
        if not isinstance(exprs, tuple) or not exprs:
            raise build_error(self.name, "exprs must be a non-empty tuple of expressions")
        if not isinstance(names, tuple) or len(names) != len(exprs):
            raise build_error(self.name, f"dtypes must be a tuple of {len(exprs)} dtype names")
        if attrs.get("shape") is None:
            raise build_error(self.name, "attrs['shape'] (the common output shape) is required")
        for i, expr in enumerate(exprs):
            check_expression(self.name, expr, input_symbols(len(inputs)) + output_symbols(i))
        out_dtypes = [dtypes.as_dtype(n) for n in names]
        return out_dtypes[0], elementwise_shape(self.name, inputs, attrs)

    def numpy(self, node, args, env):
        exprs = node.attrs["exprs"]
        assignments, results = group_body(exprs)
        shape = env.shape(node.shape)
        values: dict = dict(zip(input_symbols(len(args)), args))
        outputs = []
        with np.errstate(all="ignore"):
            for i, (result, name) in enumerate(zip(results, node.attrs["dtypes"])):
                float_dtype = output_float_dtype(node, i)
                bool_as = bool_arithmetic_dtype(np.dtype(name), _operand_dtypes(node, i))
                for temp, sub in ready(assignments, values):
                    if temp not in values:
                        values[temp] = Evaluator(values, float_dtype, bool_as).run(sub)
                out = np.asarray(Evaluator(values, float_dtype, bool_as).run(result))
                out = np.broadcast_to(out.astype(name, copy=False), shape)
                values[output_symbols(i + 1)[-1]] = out
                outputs.append(out)
        return tuple(outputs)

    def grad(self, node, out_grad):
        raise NotImplementedError("fused_group: the optimizer's multi-output kernel has no "
                                  "gradient rule; differentiate the program before optimizing")

    def output_types(self, node):
        return tuple((np.dtype(name), node.shape) for name in node.attrs["dtypes"])


def output_float_dtype(node: Node, i: int) -> np.dtype:
    """The float dtype numbers take in output i's expression, as in a fused node of it:
    its own dtype, else that of the first float operand it uses (inputs, then outputs)."""
    own = np.dtype(node.attrs["dtypes"][i])
    floats = [d for d in (own, *_operand_dtypes(node, i)) if dtypes.is_float(d)]
    return floats[0] if floats else dtypes.FLOAT64


def _operand_dtypes(node: Node, i: int) -> list[np.dtype]:
    """The dtypes of the operands output i's expression uses: inputs, then outputs."""
    names = node.attrs["dtypes"]
    used = node.attrs["exprs"][i].free_symbols
    operands = [x.dtype for x, s in zip(node.inputs, input_symbols(len(node.inputs)))
                if s in used]
    return operands + [np.dtype(names[j]) for j, s in enumerate(output_symbols(i)) if s in used]


@register_class
class GroupOutput(Op):
    """Output `index` of a fused_group."""

    name = "group_output"
    kind = Kind.VIEW

    def infer(self, inputs, attrs):
        if len(inputs) != 1 or inputs[0].op != "fused_group":
            raise build_error(self.name, "its one input must be a fused_group node")
        (group,) = inputs
        index, count = attrs.get("index"), len(group.attrs["exprs"])
        if not isinstance(index, int) or not 0 <= index < count:
            raise build_error(self.name, f"index must be an int in [0, {count}), got {index!r}")
        return dtypes.as_dtype(group.attrs["dtypes"][index]), as_shape(group.attrs["shape"])

    def numpy(self, node, args, env):
        return args[0][node.attrs["index"]]

    def grad(self, node, out_grad):
        raise NotImplementedError("group_output: a fused_group's outputs have no gradient "
                                  "rule; differentiate the program before optimizing")
