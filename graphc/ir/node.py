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
        from graphc.ops.registry import get_op

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
        fields = {"op": op, "inputs": tuple(inputs), "attrs": frozen, "dtype": np.dtype(dtype),
                  "shape": tuple(shape), "origin": user_location(), "serial": next(_serial),
                  "tag": _creation_tag.get(), "_value": None}
        for name, value in fields.items():
            object.__setattr__(node, name, value)
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

    def __bool__(self):
        raise TypeError("a graph value has no truth value; use gc.where for conditions")

    def __iter__(self):
        raise TypeError("a graph value is not iterable; index it or use gc.split-style slicing")

    def __reduce__(self):
        raise TypeError("graph values cannot be pickled")

    # ----- operators (the DSL functions do the work) ------------------------------------
    def __add__(self, other): return _dsl().add(self, other)
    def __radd__(self, other): return _dsl().add(other, self)
    def __sub__(self, other): return _dsl().sub(self, other)
    def __rsub__(self, other): return _dsl().sub(other, self)
    def __mul__(self, other): return _dsl().mul(self, other)
    def __rmul__(self, other): return _dsl().mul(other, self)
    def __truediv__(self, other): return _dsl().div(self, other)
    def __rtruediv__(self, other): return _dsl().div(other, self)
    def __pow__(self, other): return _dsl().pow(self, other)
    def __rpow__(self, other): return _dsl().pow(other, self)
    def __matmul__(self, other): return _dsl().matmul(self, other)
    def __rmatmul__(self, other): return _dsl().matmul(other, self)
    def __neg__(self): return _dsl().neg(self)
    def __pos__(self): return self
    def __abs__(self): return _dsl().abs(self)
    def __lt__(self, other): return _dsl().less(self, other)
    def __le__(self, other): return _dsl().less_equal(self, other)
    def __gt__(self, other): return _dsl().greater(self, other)
    def __ge__(self, other): return _dsl().greater_equal(self, other)
    def __getitem__(self, index): return _dsl().getitem(self, index)

    __hash__ = object.__hash__

    def sum(self, axis=None, keepdims=False): return _dsl().sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return _dsl().mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return _dsl().max(self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return _dsl().min(self, axis, keepdims)
    def argmax(self, axis=None, keepdims=False): return _dsl().argmax(self, axis, keepdims)
    def reshape(self, *shape):
        return _dsl().reshape(self, shape[0] if len(shape) == 1 else shape)
    def transpose(self, *axes):
        return _dsl().transpose(self, axes[0] if len(axes) == 1 else (axes or None))
    def astype(self, dtype): return _dsl().cast(self, dtype)

    @property
    def T(self):
        return _dsl().transpose(self)


def _dsl():
    import graphc.dsl as dsl
    return dsl
