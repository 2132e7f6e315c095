"""output_part: one output of a multi-output op (an op whose `output_types` lists several,
e.g. attention's backward computing dq, dk and dv in one kernel). Backends read it as a
view of that output's storage."""

from __future__ import annotations

from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ir.op import Kind, Op, get_op, register_class


@register_class
class OutputPart(Op):
    """attrs: index. Output `index` of its one input, a multi-output node."""

    name = "output_part"
    kind = Kind.VIEW

    def infer(self, inputs, attrs):
        if len(inputs) != 1:
            raise build_error(self.name, "takes one multi-output node")
        types = get_op(inputs[0].op).output_types(inputs[0])
        if types is None:
            raise build_error(self.name, f"{inputs[0].op} has one output, not several")
        index = attrs.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or \
                not 0 <= index < len(types):
            raise build_error(self.name, f"index must be an int in [0, {len(types)}), got "
                              f"{index!r}")
        return types[index]

    def numpy(self, node, args, env):
        return args[0][node.attrs["index"]]

    def grad(self, node, out_grad):
        source = node.inputs[0].op
        raise NotImplementedError(f"output {node.attrs['index']} of {source} has no gradient "
                                  f"rule (second derivatives through {source} are not "
                                  "supported)")


def output_parts(node: Node) -> tuple[Node, ...]:
    """Every output of a multi-output node, as output_part nodes."""
    count = len(get_op(node.op).output_types(node))
    return tuple(Node.make("output_part", (node,), index=i) for i in range(count))
