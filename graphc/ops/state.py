"""In-step state updates: a value that carries "param P gets value V", which gc.compile
collects from the graph it compiles and writes like one of its own `updates`.

A layer whose forward pass changes state (BatchNorm's running mean and variance in
training mode) returns `attach_update(y, running_mean, new_mean)`: the value is y, and
any function compiled from a graph that reaches it also writes new_mean into
running_mean, in the same step, with no `updates` entry from the user. The fact lives on
the graph (an `attach_update` node), so every path that compiles a graph finds it: a
plain gc.compile, the Trainer's step, DataParallel's gradient function, an export.

Rules (`collect`): updates the user passes to gc.compile win over attached ones for the
same param; one param updated by several attached values (a layer applied twice in one
step) gets them in the order they were built, each one reading the param as the one
before left it, as PyTorch's module calls would; an update value never sees the step's
other updates (all read the params' old values, as gc.compile's own updates do).
The gradient of an attached value is that of y, and carries the same update, so a
function compiled from gradients alone still updates the state.
"""

from __future__ import annotations

import itertools

from graphc.errors import build_error
from graphc.ir.graph import Graph
from graphc.ir.node import Node, tagging
from graphc.ir.op import Kind, Op, register_class
from graphc.ir.program import Program
from graphc.ir.provenance import record_rebuilt
from graphc.ops.leaf import operands
from graphc.shapes import dims_equal, shape_str

__all__ = [  # the public builders (graphc/dsl.py)
    "attach_update", "attached_updates",
]


_updates = itertools.count()


@register_class
class AttachUpdate(Op):
    """inputs: (value, param, new value); attrs: update (an int naming this update: a
    gradient carries its value's, so one update reached twice is applied once, and two
    built apart, even equal, twice). The value itself; compiling a graph that reaches it
    also writes the new value into the param (see the module docstring)."""

    name = "attach_update"
    kind = Kind.VIEW

    def infer(self, inputs, attrs):
        value, target, new = inputs
        if target.op != "param":
            raise build_error(self.name, f"the target must be a gc.param, got {target!r}")
        if new.dtype != target.dtype:
            raise build_error(self.name, f"param '{target.name}' is {target.dtype.name}, its "
                              f"new value {new.dtype.name}", dtype=True)
        if len(new.shape) != len(target.shape) or not all(
                dims_equal(a, b) for a, b in zip(new.shape, target.shape)):
            raise build_error(self.name, f"param '{target.name}' has shape "
                              f"{shape_str(target.shape)}, its new value {shape_str(new.shape)}")
        return value.dtype, value.shape

    def numpy(self, node, args, env):
        return args[0]

    def grad(self, node, out_grad):
        """The value's gradient, carrying the same update (see the module docstring)."""
        return [Node.make(self.name, (out_grad,) + node.inputs[1:], **node.attrs), None, None]


def attach_update(value, param: Node, new_value) -> Node:
    """`value`, carrying the update param <- new_value: a function gc.compile builds from
    a graph that reaches the result also writes new_value into param, in the same step
    (new_value is computed from the params' old values, like any update)."""
    if not isinstance(param, Node) or param.op != "param":
        raise build_error("attach_update", f"the target must be a gc.param, got {param!r}")
    (value,) = operands(value)
    (new_value,) = operands(new_value, reference=param.dtype)
    return Node.make("attach_update", (value, param, new_value), update=next(_updates))


def attached_updates(values) -> dict[Node, Node]:
    """{param: new value} of the updates the graph computing `values` carries (the
    updates gc.compile would add for it), with the values' attached updates removed
    from the new values themselves."""
    values = [values] if isinstance(values, Node) else list(values)
    program = collect(Program((), tuple(values), ()))
    return dict(program.updates)


def collect(program: Program) -> Program:
    """The program with its attached updates added to its updates (the user's own win) and
    every attach_update node replaced by its value, so nothing downstream sees one."""
    graph = Graph(program.results)
    markers = [n for n in graph.nodes if n.op == "attach_update"]
    if not markers:
        return program
    memo: dict[Node, Node] = {}
    for node in graph.nodes:  # strip: each marker becomes its value
        if node.op == "attach_update":
            memo[node] = memo[node.inputs[0]]
        else:
            memo[node] = _rebuilt(node, tuple(memo[i] for i in node.inputs))
    stripped = program.replace_results([memo[r] for r in program.results])
    attached = _chained(markers, memo)
    own = {p for p, _ in stripped.updates}
    extra = tuple((p, v) for p, v in attached.items() if p not in own)
    return Program(stripped.inputs, stripped.outputs, stripped.updates + extra)


def _chained(markers: list[Node], memo: dict[Node, Node]) -> dict[Node, Node]:
    """{param: final value}: a param's distinct updates applied in build order, each
    reading the param as the previous one left it."""
    by_param: dict[Node, list[Node]] = {}
    seen: set[int] = set()
    for marker in sorted(markers, key=lambda m: m.attrs["update"]):  # build order
        if marker.attrs["update"] not in seen:
            seen.add(marker.attrs["update"])
            by_param.setdefault(marker.inputs[1], []).append(memo[marker.inputs[2]])
    result = {}
    for param, chain in by_param.items():
        value = chain[0]
        for later in chain[1:]:
            value = _substitute(later, param, value)
        result[param] = value
    return result


def _substitute(root: Node, old: Node, new: Node) -> Node:
    """`root` computed with `new` wherever it reads `old`."""
    memo: dict[Node, Node] = {old: new}
    for node in Graph([root]).nodes:
        if node not in memo:
            memo[node] = _rebuilt(node, tuple(memo[i] for i in node.inputs))
    return memo[root]


def _rebuilt(node: Node, inputs: tuple[Node, ...]) -> Node:
    """`node` over new inputs (itself if none changed), keeping its tag and provenance."""
    if all(a is b for a, b in zip(inputs, node.inputs)):
        return node
    with tagging(node.tag):
        new = Node.make(node.op, inputs, **node.attrs)
    record_rebuilt(new, node)
    return new
