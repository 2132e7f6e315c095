"""einsum: Einstein summation composed of existing ops, so gradients, fusion and lowering
come from those. A label repeated within an operand takes a diagonal (a strided slice of
the merged axes, traces included); a label no one else needs is summed out early; two
operands contract through one batched matmul (batch labels, then each side's own labels,
then the contracted ones, transposed and merged into three axes), or multiply elementwise
when nothing is contracted; more operands fold left to right. `...` stands for broadcast
axes, and a label of size 1 broadcasts against the same label's size elsewhere (PyTorch's
rules); without `->` the output is the ellipsis axes, then the labels used once, sorted."""

from __future__ import annotations

import builtins
from string import ascii_letters

from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.ops.arguments import values
from graphc.ops.linalg import matmul
from graphc.ops.reduction import sum
from graphc.ops.shape import broadcast_to, reshape, transpose
from graphc.shapes import as_dim, shape_str, size

__all__ = [  # the public builders (graphc/dsl.py)
    "einsum",
]

_ELLIPSIS_LABELS = "0123456789"  # labels the ellipsis axes get inside (never a user's)


class _Term:
    """An operand and the label of each of its axes."""

    def __init__(self, value: Node, labels: str):
        self.value, self.labels = value, labels

    def dim(self, label: str):
        return self.value.shape[self.labels.index(label)]


def einsum(equation: str, *operands) -> Node:
    """numpy.einsum / torch.einsum over one or more operands, e.g. "ij,jk->ik",
    "bij,bjk->bik", "ii->i" (diagonal), "ii" (trace), "...ij->...ji"."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise build_error("einsum", f"the equation must be a string, got {equation!r}")
    if not operands:
        raise build_error("einsum", "needs at least one operand")
    nodes = values("einsum", *operands)
    inputs, output = _parse(equation.replace(" ", ""), nodes)
    terms = [_diagonals(_Term(n, labels)) for n, labels in zip(nodes, inputs)]
    result = terms[0]
    for k in range(1, len(terms) + 1):
        later = set(output).union(*(t.labels for t in terms[k:]))
        result = _sum_out(result, later)
        if k == len(terms):
            break
        other = _sum_out(terms[k], later | set(result.labels))
        result = _contract(result, other, later)
    return _arrange(result, output)


def _parse(equation: str, nodes) -> tuple[list[str], str]:
    """The labels of each operand and of the output, ellipses spelled out as digits."""
    if equation.count("->") > 1:
        raise build_error("einsum", f"'{equation}' has more than one '->'")
    lhs, arrow, rhs = equation.partition("->")
    specs = lhs.split(",")
    if len(specs) != len(nodes):
        raise build_error("einsum", f"'{equation}' names {len(specs)} operands, got {len(nodes)}")
    for spec in specs + [rhs]:
        bad = set(spec.replace("...", "")) - set(ascii_letters)
        if bad or spec.count("...") > 1:
            raise build_error("einsum", f"bad subscripts '{spec}' in '{equation}': letters and "
                              "one '...' only")
    ellipsis_dims = 0
    for spec, node in zip(specs, nodes):
        letters = len(spec.replace("...", ""))
        if ("..." in spec and node.ndim < letters) or ("..." not in spec and node.ndim != letters):
            raise build_error("einsum", f"subscripts '{spec}' do not fit an operand of shape "
                              f"{shape_str(node.shape)}")
        if "..." in spec:
            ellipsis_dims = builtins.max(ellipsis_dims, node.ndim - letters)
    if ellipsis_dims > len(_ELLIPSIS_LABELS):
        raise build_error("einsum", f"'...' spans more than {len(_ELLIPSIS_LABELS)} axes")
    full = _ELLIPSIS_LABELS[:ellipsis_dims]
    inputs = []
    for spec, node in zip(specs, nodes):
        count = node.ndim - len(spec.replace("...", ""))
        inputs.append(spec.replace("...", full[ellipsis_dims - count:]))
    if arrow:  # ellipsis axes the output leaves out are summed
        output = rhs.replace("...", full)
        if len(set(output)) != len(output):
            raise build_error("einsum", f"output subscripts '{rhs}' repeat a label")
        missing = set(output) - set("".join(inputs))
        if missing:
            raise build_error("einsum", f"output labels {sorted(missing)} appear in no operand "
                              f"of '{equation}'")
    else:
        used = "".join(inputs)
        output = full + "".join(sorted(c for c in set(used) - set(full) if used.count(c) == 1))
    return inputs, output


def _diagonals(term: _Term) -> _Term:
    """The term with each label repeated within it reduced to its diagonal."""
    labels = term.labels
    for label in dict.fromkeys(labels):
        axes = [a for a, c in enumerate(labels) if c == label]
        if len(axes) == 1:
            continue
        value = term.value
        dims = {value.shape[a] for a in axes}
        n = next(iter(dims))
        if len(dims) != 1 or not isinstance(n, int):
            raise build_error("einsum", f"label '{label}' repeats over axes of sizes "
                              f"{[value.shape[a] for a in axes]}: a diagonal needs one static "
                              "size")
        rest = [a for a in range(value.ndim) if a not in axes]
        moved = transpose(value, tuple(rest) + tuple(axes))
        merged = reshape(moved, moved.shape[:len(rest)] + (n ** len(axes),))
        step = builtins.sum(n ** j for j in range(len(axes)))
        index = tuple((0, d, 1) if isinstance(d, int) else (None, None, 1)
                      for d in merged.shape[:-1]) + ((0, n ** len(axes), step),)
        value = Node.make("slice", (merged,), index=index) if n > 1 else merged
        labels = "".join(labels[a] for a in rest) + label
        term = _Term(value, labels)
    return term


def _sum_out(term: _Term, needed: set[str]) -> _Term:
    """The term with the labels nothing else needs summed out."""
    axes = tuple(a for a, c in enumerate(term.labels) if c not in needed)
    if not axes:
        return term
    return _Term(sum(term.value, axes), "".join(c for c in term.labels if c in needed))


def _aligned(term: _Term, order: str, sizes: dict) -> Node:
    """The term's value transposed to `order` (its own labels) and broadcast to `sizes`."""
    value = transpose(term.value, tuple(term.labels.index(c) for c in order))
    target = tuple(sizes[c] for c in order)
    try:
        return broadcast_to(value, target)
    except ValueError:
        raise build_error("einsum", f"label sizes {dict(zip(order, value.shape))} do not match "
                          f"{dict(zip(order, target))}") from None


def _contract(a: _Term, b: _Term, keep: set[str]) -> _Term:
    sizes: dict = {}
    for term in (a, b):
        for c in term.labels:
            d = term.dim(c)
            if c not in sizes or (isinstance(sizes[c], int) and sizes[c] == 1):
                sizes[c] = d
            elif not (isinstance(d, int) and d == 1) and d != sizes[c]:
                raise build_error("einsum", f"label '{c}' has sizes {sizes[c]} and {d}")
    shared = [c for c in a.labels if c in b.labels]
    batch = "".join(c for c in shared if c in keep)
    summed = "".join(c for c in shared if c not in keep)
    left = "".join(c for c in a.labels if c not in shared)
    right = "".join(c for c in b.labels if c not in shared)
    if not summed:  # an elementwise product, broadcast: no matmul with one-deep sums
        x = reshape(_aligned(a, batch + left, sizes), _dims(batch + left, sizes)
                    + (1,) * len(right))
        y = reshape(_aligned(b, batch + right, sizes), _dims(batch, sizes) + (1,) * len(left)
                    + _dims(right, sizes))
        return _Term(x * y, batch + left + right)
    x = _aligned(a, batch + left + summed, sizes)
    y = _aligned(b, batch + summed + right, sizes)
    rows = (_merged(batch, sizes), _merged(left, sizes), _merged(summed, sizes))
    cols = (rows[0], rows[2], _merged(right, sizes))
    product = matmul(reshape(x, rows), reshape(y, cols))
    out = reshape(product, _dims(batch, sizes) + _dims(left, sizes) + _dims(right, sizes))
    return _Term(out, batch + left + right)


def _dims(labels: str, sizes: dict) -> tuple:
    return tuple(sizes[c] for c in labels)


def _merged(labels: str, sizes: dict):
    return as_dim(size(_dims(labels, sizes)))


def _arrange(term: _Term, output: str) -> Node:
    """The final term's axes in the output's order."""
    return transpose(term.value, tuple(term.labels.index(c) for c in output))
