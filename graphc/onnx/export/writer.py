"""The ONNX graph being written: unique tensor names, nodes, initializers, and run-time
tensors of symbolic dims (a dim is read from the shape of an input that has it, and
sympy arithmetic of dims becomes Add/Mul/Div nodes)."""

from __future__ import annotations

import numpy as np
import sympy
from onnx import TensorProto, helper, numpy_helper

from graphc.ir.node import Node
from graphc.shapes import Dim


class GraphWriter:
    """Collects the ONNX nodes and initializers of one graph."""

    def __init__(self, inputs: list[Node]):
        self.nodes: list = []
        self.initializers: list[TensorProto] = []
        self.names: dict[Node, str] = {}
        self._used: set[str] = set()
        self._constants: dict[tuple, str] = {}
        self._shapes: dict[str, str] = {}
        self._dims: dict[sympy.Basic, str] = {}
        # where each symbolic dim can be read at run time: (input name, axis)
        self.dim_sources: dict[sympy.Symbol, tuple[str, int]] = {}
        for node in inputs:
            self.names[node] = self.unique(node.name)
            for axis, d in enumerate(node.shape):
                if isinstance(d, sympy.Symbol):
                    self.dim_sources.setdefault(d, (self.names[node], axis))

    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self._used:
            k += 1
            name = f"{base}_{k}"
        self._used.add(name)
        return name

    def add(self, op_type: str, inputs: list[str], outputs: int = 1, name: str | None = None,
            **attrs) -> list[str]:
        """Append a node; returns its output names (fresh ones)."""
        out = [self.unique(f"{name or op_type.lower()}_out") for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, out,
                                           name=self.unique(name or op_type), **attrs))
        return out

    def one(self, op_type: str, inputs: list[str], **attrs) -> str:
        return self.add(op_type, inputs, **attrs)[0]

    def initializer(self, array: np.ndarray, base: str) -> str:
        name = self.unique(base)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def constant(self, array) -> str:
        """An initializer holding `array` (equal constants are one tensor)."""
        array = np.asarray(array)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._constants:
            self._constants[key] = self.initializer(array, "const")
        return self._constants[key]

    # ----- symbolic dims at run time -------------------------------------------------------
    def dim(self, d: Dim) -> str:
        """A 1-element int64 tensor holding dim d (an int or an expression of dims)."""
        if isinstance(d, int):
            return self.constant(np.array([d], np.int64))
        d = sympy.sympify(d)
        if d in self._dims:
            return self._dims[d]
        if d.is_Integer:
            out = self.constant(np.array([int(d)], np.int64))
        elif isinstance(d, sympy.Symbol):
            if d not in self.dim_sources:
                raise ValueError(f"the symbolic dim {d} is not a dim of any input")
            source, axis = self.dim_sources[d]
            if source not in self._shapes:
                self._shapes[source] = self.one("Shape", [source])
            out = self.one("Gather", [self._shapes[source],
                                      self.constant(np.array([axis], np.int64))], axis=0)
        elif isinstance(d, sympy.Add):
            terms = [self.dim(t) for t in d.args]
            out = terms[0]
            for t in terms[1:]:
                out = self.one("Add", [out, t])
        elif isinstance(d, sympy.Mul):
            factors = [self.dim(f) for f in d.args]
            out = factors[0]
            for f in factors[1:]:
                out = self.one("Mul", [out, f])
        elif isinstance(d, sympy.floor) and isinstance(d.args[0], sympy.Mul):
            numerator, denominator = d.args[0].as_numer_denom()
            out = self.one("Div", [self.dim(numerator), self.dim(denominator)])
        else:
            raise ValueError(f"cannot compute the dim {d} at run time")
        self._dims[d] = out
        return out

    def shape(self, shape) -> str:
        """An int64 shape tensor for a (possibly symbolic) shape."""
        if all(isinstance(d, int) for d in shape):
            return self.constant(np.array(shape, np.int64))
        return self.one("Concat", [self.dim(d) for d in shape], axis=0)


def value_info(name: str, node: Node):
    """The ValueInfoProto of a graph input or output: its dtype and dims (a symbolic dim by
    its name where it is a plain symbol, else left unnamed)."""
    dims = [d if isinstance(d, int) else str(d) if isinstance(d, sympy.Symbol) else None
            for d in node.shape]
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(node.dtype),
                                         dims)
