"""Immutable, hash-consed SSA nodes: one op applied to input nodes, with a dtype and a shape.

Structurally equal nodes are one object, so CSE is built in and nodes compare by identity
(`==` is deliberately not overloaded: nodes are dict keys, e.g. in `updates`).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import itertools
import weakref
from typing import Any

import numpy as np

from graphc.errors import user_location
from graphc.ir import display
from graphc.ir.op import get_op
from graphc.shapes import Shape, shape_str


class ArrayAttr:
    """A numpy array used as a node attribute: hashed and compared by dtype, shape and bytes."""

    __slots__ = ("array", "_digest")

    def __init__(self, array: np.ndarray):
        array = np.array(array, copy=True, order="C")  # a private, read-only copy
        array.setflags(write=False)
        self.array = array
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{array.dtype.str}{array.shape}".encode())
        h.update(array.tobytes())
        self._digest = h.digest()

    def __hash__(self) -> int:
        return hash(self._digest)

    def __eq__(self, other) -> bool:
        return isinstance(other, ArrayAttr) and self._digest == other._digest

    def __repr__(self) -> str:
        return f"ArrayAttr({self.array.dtype}{list(self.array.shape)})"


def freeze(value: Any) -> Any:
    """Make an attribute value hashable: lists become tuples, arrays become ArrayAttr."""
    if isinstance(value, np.ndarray):
        return ArrayAttr(value)
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


_interned: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_serial = itertools.count()
_creation_tag: contextvars.ContextVar[str | None] = contextvars.ContextVar("tag", default=None)


def next_serial() -> int:
    """A serial number no node has yet (serials only grow): nodes built after this call
    have larger ones, nodes built before it smaller ones."""
    return next(_serial)


@contextlib.contextmanager
def tagging(tag: str):
    """Tag every node first built inside this block (autodiff tags its nodes "grad")."""
    token = _creation_tag.set(tag)
    try:
        yield
    finally:
        _creation_tag.reset(token)


class Node:
    """One value of the graph. Build nodes with the DSL (`gc.add`, operators), not directly."""

    __slots__ = ("op", "inputs", "attrs", "dtype", "shape", "origin", "serial", "tag",
                 "_value", "__weakref__")
    __array_ufunc__ = None  # make numpy defer to our reflected operators

    op: str
    inputs: tuple[Node, ...]
    attrs: dict
    dtype: np.dtype
    shape: Shape

    @staticmethod
    def make(op: str, inputs: tuple[Node, ...] = (), **attrs) -> Node:
        """The node for `op(inputs, attrs)`, the existing one if it was built before."""

        frozen = {k: freeze(v) for k, v in attrs.items()}
        key = (op, tuple(id(i) for i in inputs), tuple(sorted(frozen.items())))
        try:
            existing = _interned.get(key)
        except TypeError as exc:
            raise TypeError(f"{op}: unhashable attribute in {frozen!r}") from exc
        if existing is not None:
            return existing
        dtype, shape = get_op(op).infer(inputs, frozen)
        node = object.__new__(Node)
        setattr_ = object.__setattr__  # Node's own __setattr__ refuses
        setattr_(node, "op", op)
        setattr_(node, "inputs", tuple(inputs))
        setattr_(node, "attrs", frozen)
        setattr_(node, "dtype", np.dtype(dtype))
        setattr_(node, "shape", tuple(shape))
        setattr_(node, "origin", user_location())
        setattr_(node, "serial", next(_serial))
        setattr_(node, "tag", _creation_tag.get())
        setattr_(node, "_value", None)
        _interned[key] = node
        return node

    # ----- introspection -------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def name(self) -> str | None:
        """The user's name of an input or param, else None."""
        return self.attrs.get("name")

    @property
    def value(self) -> np.ndarray:
        """The array a param owns (writable in place) or a constant holds (read-only)."""
        if self.op == "param":
            return self._value
        if self.op == "constant":
            return self.attrs["value"].array
        raise AttributeError(f"a {self.op} node has no value; only params and constants do")

    @value.setter
    def value(self, new) -> None:
        if self.op != "param":
            raise AttributeError(f"cannot set the value of a {self.op} node; only of a param")
        new = np.asarray(new)
        if new.shape != self._value.shape:
            raise ValueError(f"param '{self.name}': new value has shape {new.shape}, "
                             f"expected {self._value.shape}")
        if not np.can_cast(new.dtype, self.dtype, casting="same_kind"):
            raise TypeError(f"param '{self.name}': new value has dtype {new.dtype}, "
                            f"expected {self.dtype}")
        np.copyto(self._value, new, casting="same_kind")

    def __setattr__(self, name, value):
        if name == "value":
            return object.__setattr__(self, name, value)  # the param value setter
        raise AttributeError(f"graph values are immutable (cannot set {name!r})")

    def __repr__(self) -> str:
        label = f" '{self.name}'" if self.name is not None else ""
        return f"<{self.op}{label} {shape_str(self.shape)} {self.dtype.name}>"

    # ----- in a notebook ------------------------------------------------------------------
    def _repr_html_(self) -> str | None:
        """Jupyter: the graph computing this value in the HTML explorer (graphc/viz)."""
        return display.show("html", self)

    def _repr_svg_(self) -> str | None:
        """Jupyter: the graph as SVG where Graphviz is installed (else None)."""
        return display.show("svg", self)

    def __bool__(self):
        raise TypeError("a graph value has no truth value; use gc.where for conditions")

    def __iter__(self):
        raise TypeError("a graph value is not iterable; index it or use gc.split-style slicing")

    def __reduce__(self):
        raise TypeError("graph values cannot be pickled")

    # Operators (+ - * / ** @, comparisons, indexing) and the methods .sum .mean .max .min
    # .argmax .reshape .transpose .astype .T are the op builders', installed on this class
    # by graphc/ops/operators.py: the IR knows no op.

    __hash__ = object.__hash__
