"""NaN debugging, like JAX's jax_debug_nans and PyTorch's anomaly detection.

With `gc.compile(..., debug_nans=True)` (or GRAPHC_DEBUG_NANS=1 for every compile), every
call checks what it computed, its outputs and the new values of its params, before any
param is written. When one holds a NaN, the call writes nothing (params and the call count
stay as they were) and raises `NonFiniteValueError` naming the op where the NaN began:

1. The function runs as compiled (optimized, fused, on its backend); only its results are
   checked, so a NaN that a `where` masks out (an intermediate no result depends on, such
   as the 0 * -inf of a masked softmax) is not an error.
2. When a result is bad, the graph as written (unoptimized, one op per kernel) runs once
   more on the same backend with every op's value as an output, and the NaN is followed
   back from the bad results through the values that hold NaN to where it began: an op
   whose inputs hold none (or an input, param or constant that already held it). Of
   these, the first in execution order is reported, with its inputs' ranges (min, max,
   and counts of NaN and infinities), the user's source line where it was built, and for
   a gradient node the forward op it differentiates. When the inputs of that op hold an
   infinity (inf - inf, 0 * inf), the op where the infinity began is named too.

Infinities are results too, but often deliberate (the -inf of masked attention logits,
log(0) of a probability that is 0): they are errors only with `debug_infs=True` (or
GRAPHC_DEBUG_INFS=1), as in JAX (jax_debug_infs), and then are followed back the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from graphc import dtypes
from graphc.backends.base import Source
from graphc.errors import NonFiniteValueError
from graphc.ir.graph import Graph
from graphc.ir.node import Node
from graphc.ir.program import Program
from graphc.ir.provenance import gradient_of

LEAVES = ("input", "param", "constant")
_ON, _OFF = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def flag(variable: str) -> bool:
    """Whether an environment variable such as GRAPHC_DEBUG_NANS turns its check on."""
    text = os.environ.get(variable, "").strip().lower()
    if text in _ON:
        return True
    if text in _OFF:
        return False
    raise ValueError(f"{variable}={os.environ[variable]!r}: expected 1 (on) or 0 (off)")


def settings(debug_nans: bool, debug_infs: bool) -> Checking | None:
    """The check gc.compile asked for (its arguments or the environment), None for none."""
    for name, value in (("debug_nans", debug_nans), ("debug_infs", debug_infs)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"compile: {name} must be True or False, got {value!r}")
    infs = bool(debug_infs) or flag("GRAPHC_DEBUG_INFS")
    if infs or debug_nans or flag("GRAPHC_DEBUG_NANS"):
        return Checking(infs)
    return None


@dataclass(frozen=True)
class Checking:
    """What a checked call refuses: NaN, and with `infs` infinities too."""

    infs: bool

    @property
    def what(self) -> str:
        return "NaN or infinity" if self.infs else "NaN"

    def holds(self, array, kind: str | None = None) -> bool:
        """Whether an array holds what is refused (or, given `kind`, "nan" or "inf")."""
        array = np.asarray(array)
        if array.dtype.kind not in "fc":
            return False
        with np.errstate(all="ignore"):
            if kind == "nan" or (kind is None and not self.infs):
                return bool(np.isnan(array).any())
            if kind == "inf":
                return bool(np.isinf(array).any())
            return not bool(np.isfinite(array).all())

    def bad_results(self, results: list[np.ndarray]) -> list[int]:
        """The indices of the results (outputs, then new param values) that are refused."""
        return [k for k, array in enumerate(results) if self.holds(array)]

    def error(self, name: str, source: Program, backend, options: dict,
              arrays: list[np.ndarray], binding: dict, step: int,
              bad: list[int], results: list[np.ndarray]) -> NonFiniteValueError:
        """The error for a call of function `name` whose results `bad` are refused: where
        their NaN (or infinity) began, found by running `source` op by op (step 2 of the
        module docstring). Call it with the params as they were before the call."""
        kind = "nan" if any(self.holds(results[k], "nan") for k in bad) else "inf"
        values = run_every_op(source, backend, options, arrays, binding, step)
        trace = Trace(values, kind)
        roots = [source.results[k] for k in bad]
        found = trace.origins([r for r in roots if trace.holds(r)])
        reached = results_named(source, bad)
        if not found:
            return NonFiniteValueError(
                f"{name}: {reached} hold(s) {_word(kind)} as compiled, but the graph as "
                f"written, run op by op on the {backend.name} backend, computes no "
                f"{_word(kind)} there: an optimization changed the value, which is a graphc "
                "bug (please report it; gc.compile(..., optimize=False) avoids it meanwhile). "
                + _UNCHANGED, name, None, kind, reached)
        origin = min(found, key=trace.order.__getitem__)
        lines = [f"{name}: {trace.began(origin)}"]
        if origin.op not in LEAVES:
            lines.append("  its inputs:")
            lines += [f"    {describe(i)}: {summarize(values.get(i))}" for i in origin.inputs]
            if kind == "nan":
                lines += trace.infinities_behind(origin)
        others = len(found) - 1
        lines.append(f"  it reaches {reached}"
                     + (f" ({others} other {_word(kind)}(s) began elsewhere)" if others else ""))
        lines.append(_UNCHANGED)
        return NonFiniteValueError("\n".join(lines), name, origin, kind, reached)


_UNCHANGED = ("The params and the call count are as they were before this call "
              "(debug_nans checks every call: gc.compile(..., debug_nans=True) or "
              "GRAPHC_DEBUG_NANS=1).")


def run_every_op(source: Program, backend, options: dict, arrays: list[np.ndarray],
                 binding: dict, step: int) -> dict[Node, np.ndarray]:
    """The value of every node of `source`'s graph for one call, the graph run as written
    (unoptimized) on `backend`, every float op's value an output; leaves as they are."""
    nodes = Graph(source.results).nodes
    ops = tuple(n for n in nodes if n.op not in LEAVES and dtypes.is_float(n.dtype))
    program = Program(source.inputs, ops, ())
    runner = backend.prepare(Source(program, False, dict(options), lambda: program))
    values: dict[Node, np.ndarray] = dict(zip(ops, runner.run(list(arrays), binding, step)))
    values.update(zip(source.inputs, arrays))
    for node in nodes:
        if node.op in ("param", "constant"):
            values[node] = node.value
    return values


class Trace:
    """Following a NaN (or infinity) back through the values of one call."""

    def __init__(self, values: dict[Node, np.ndarray], kind: str):
        self.values, self.kind = values, kind
        self.order = {node: k for k, node in enumerate(values)}
        self._checking = Checking(True)

    def holds(self, node: Node, kind: str | None = None) -> bool:
        value = self.values.get(node)
        return value is not None and self._checking.holds(value, kind or self.kind)

    def origins(self, roots: list[Node], kind: str | None = None) -> list[Node]:
        """Where the values of `roots` that hold `kind` began: the nodes reached back
        from them through values holding it, none of whose inputs holds it."""
        found, stack, seen = [], list(roots), set()
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            bad = [i for i in node.inputs if self.holds(i, kind)]
            if bad:
                stack.extend(bad)
            else:
                found.append(node)
        return found

    def began(self, origin: Node) -> str:
        """What the origin of the traced values did: produced them, or held them."""
        count = _count(self.values[origin], self.kind)
        if origin.op in LEAVES:
            users = [n for n in self.values if origin in n.inputs and self.holds(n)]
            first = f"; first used by {describe(users[0])}" if users else ""
            return (f"{describe(origin)} already held {count} when the call began{first}")
        return f"{describe(origin)} produced {count}"

    def infinities_behind(self, origin: Node) -> list[str]:
        """Lines naming where the infinities in the inputs of a NaN's origin began."""
        roots = [i for i in origin.inputs if self.holds(i, "inf")]
        if not roots:
            return []
        found = self.origins(roots, "inf")
        first = min(found, key=self.order.__getitem__)
        return [f"  the infinity in its inputs began at {describe(first)}, which "
                f"{'held' if first.op in LEAVES else 'produced'} "
                f"{_count(self.values[first], 'inf')}"]


def describe(node: Node) -> str:
    """A node as a user knows it: an input or param by name, an op by the line that built
    it; a gradient node with the forward op it differentiates."""
    if node.op in ("input", "param"):
        return f"{node.op} '{node.name}'"
    if node.op == "constant":
        return f"a constant {node.dtype.name}{list(node.shape)}"
    forward = gradient_of(node)
    if forward is not None:
        return (f"{node.op} in the gradient of {forward.op} (the {forward.op} built at "
                f"{forward.origin}; gradient built at {node.origin})")
    return f"{node.op} built at {node.origin}"


def summarize(value) -> str:
    """An array's dtype and shape, its range, and how many NaN and infinities it holds."""
    if value is None:
        return "(not a float value)"
    array = np.asarray(value)
    head = f"{array.dtype.name}{list(array.shape)}"
    if array.size == 0:
        return f"{head}, empty"
    if array.dtype.kind not in "fc":
        return f"{head}, min {array.min()}, max {array.max()}"
    with np.errstate(all="ignore"):
        finite = array[np.isfinite(array)]
        counts = [(int(np.isnan(array).sum()), "NaN"), (int(np.isposinf(array).sum()), "+inf"),
                  (int(np.isneginf(array).sum()), "-inf")]
    span = (f"min {finite.min():.6g}, max {finite.max():.6g}" if finite.size
            else "no finite values")
    held = ", ".join(f"{n} {label}" for n, label in counts if n)
    return f"{head}, {span}" + (f"; {held} of {array.size} values" if held else "")


def results_named(source: Program, indices: list[int], most: int = 4) -> str:
    """Results of a program as the user knows them: outputs by index (and name or op),
    then the params whose new values they are, `most` of each named."""
    outputs = len(source.outputs)
    parts = [f"output {k} ({source.outputs[k].name or source.outputs[k].op})"
             for k in indices if k < outputs]
    if len(parts) > most:
        parts[most:] = [f"{len(parts) - most} more outputs"]
    params = [f"'{source.updates[k - outputs][0].name}'" for k in indices if k >= outputs]
    if params:
        named = ", ".join(params[:most]) + (f" and {len(params) - most} more"
                                            if len(params) > most else "")
        parts.append(f"the new value{'s' if len(params) > 1 else ''} of "
                     f"param{'s' if len(params) > 1 else ''} {named}")
    return ", ".join(parts)


def _count(array, kind: str) -> str:
    array = np.asarray(array)
    with np.errstate(all="ignore"):
        n = int(np.isnan(array).sum() if kind == "nan" else np.isinf(array).sum())
    return f"{n} {_word(kind)} (of {array.size} values)"


def _word(kind: str) -> str:
    return "NaN" if kind == "nan" else "infinities"
