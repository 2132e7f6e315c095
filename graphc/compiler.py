"""gc.compile: check a program, optimize it, hand it to a backend, and guard every call."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import sympy

from graphc import collector, dtypes
from graphc.backends import get_backend
from graphc.backends.base import Source
from graphc.debug_nans import Checking, settings
from graphc.ir.graph import Graph
from graphc.ir.node import Node
from graphc.ir.program import Program, check_name
from graphc.locks import Group, group_of
from graphc.ops.state import collect as collect_attached
from graphc.profile import Profile
from graphc.shapes import dims_equal, is_static, shape_str
from graphc.viz import to_dot

_recorders: list[list] = []


def compile(inputs: Sequence[Node], outputs, updates: Mapping[Node, Node] | None = None,  # noqa: A001
            backend: str = "llvm", optimize: bool = True, name: str | None = None,
            debug_nans: bool = False, debug_infs: bool = False, **options) -> Executable:
    """A callable that computes `outputs` from `inputs`, then writes `updates` into params.

    outputs: a value (the call returns one array) or a list of values (it returns a list).
    updates: {param: new value}; every new value is computed from the old params first.
    Updates attached to the graph (gc.attach_update: BatchNorm's running statistics in
    training mode) are added to them; the user's own win for the same param.
    backend: "llvm" (native code) or "numpy" (the reference interpreter).
    name: what drawings, reports, profiles and file names call the function (default:
    derived from the outputs, e.g. "mean_step"; see Program.default_name).
    debug_nans: check every call's outputs and new param values; on a NaN, write nothing
    and raise NonFiniteValueError naming the op where it began, its inputs' ranges and
    the line that built it (graphc/debug_nans.py). GRAPHC_DEBUG_NANS=1 turns it on for
    every compile. debug_infs (GRAPHC_DEBUG_INFS=1): refuse infinities too.
    threads (option): the most threads a call uses (None: as many as pay, up to the CPUs);
    capped at the CPUs the process may run on (or GRAPHC_MAX_THREADS, if set).
    tiered (option, llvm backend): True runs the calls of a batch size whose native code is
    not compiled yet on the NumPy interpreter while it compiles in the background, so the
    first step costs one interpreted step, not a compile (equal to rounding, not bit for
    bit; default $GRAPHC_TIERED, else False).
    """
    if isinstance(inputs, Node):
        inputs = [inputs]
    inputs = tuple(inputs)
    single = isinstance(outputs, Node)
    outputs = (outputs,) if single else tuple(outputs)
    # Updates attached to the graph (BatchNorm's running statistics) join the user's.
    program = collect_attached(Program(inputs, outputs, _check_updates(updates or {})))
    _check_program(program)
    if "threads" in options:
        options = {**options, "threads": _checked_threads(options["threads"])}
    checking = settings(debug_nans, debug_infs)
    executable = Executable(program, get_backend(backend), single, options, optimize, name,
                            checking)
    for recorder in _recorders:  # graphc viz / profile: the script's functions, and calls
        recorder.append(executable)
        executable.keep_arguments = True
    return executable


def _checked_threads(threads: int | None) -> int | None:
    """threads= validated, and capped at max_threads() with a warning: more threads than
    CPUs only wait for each other at every barrier (1000 took 1.9 s for a 0.15 ms call)."""
    if threads is None:
        return None
    if not isinstance(threads, (int, np.integer)) or isinstance(threads, (bool, np.bool_)):
        raise TypeError(f"threads: expected a positive int or None, got {threads!r}")
    if threads < 1:
        raise ValueError(f"threads: expected a positive int or None, got {threads!r}")
    cap = max_threads()
    if threads > cap:
        warnings.warn(f"threads={threads} is capped at {cap} (the CPUs this process may run "
                      "on, or GRAPHC_MAX_THREADS if set)", stacklevel=3)
        return cap
    return int(threads)


def max_threads() -> int:
    """The most threads a call may use: GRAPHC_MAX_THREADS if set (a positive int), else
    the CPUs this process may run on."""
    text = os.environ.get("GRAPHC_MAX_THREADS", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _check_updates(updates: Mapping[Node, Node]) -> tuple[tuple[Node, Node], ...]:
    checked = []
    for target, value in updates.items():
        if not isinstance(target, Node) or target.op != "param":
            raise TypeError(f"updates: keys must be params, got {target!r}")
        if not isinstance(value, Node):
            raise TypeError(f"updates: the new value of param '{target.name}' must be a graph "
                            f"value, got {type(value).__name__}")
        if len(value.shape) != len(target.shape) or not all(
                dims_equal(a, b) for a, b in zip(value.shape, target.shape)):
            raise ValueError(f"updates: param '{target.name}' has shape "
                             f"{shape_str(target.shape)}, its new value {shape_str(value.shape)}")
        if value.dtype != target.dtype:
            raise TypeError(f"updates: param '{target.name}' is {target.dtype.name}, its new "
                            f"value {value.dtype.name} (cast it, or use Python scalars, which "
                            "keep the dtype)")
        checked.append((target, value))
    return tuple(checked)


def _check_program(program: Program) -> None:
    names = set()
    for node in program.inputs:
        if not isinstance(node, Node) or node.op != "input":
            raise TypeError(f"compile: inputs must be gc.input values, got {node!r}")
        if node.name in names:
            raise ValueError(f"compile: input '{node.name}' is listed twice")
        names.add(node.name)
    for node in program.outputs:
        if not isinstance(node, Node):
            raise TypeError(f"compile: outputs must be graph values, got {type(node).__name__}")
    given = set(program.inputs)
    missing = [n.name for n in program.graph.leaves("input") if n not in given]
    if missing:
        raise ValueError(f"compile: the graph needs input(s) {missing} that are not among the "
                         f"inputs {[n.name for n in program.inputs]}")


class Executable:
    """A compiled function: call it with one numpy array per input.

    Calls may come from any thread. Calls of one function take turns, on every backend,
    and so do calls of functions that share a param (one reads or writes a param another
    reads or writes, e.g. a training step writing W and an eval reading W): each call sees
    every param as a whole step left it and takes its own call count (`step`, the dropout
    stream). Functions over disjoint params run at once. Reading or replacing a param's
    `.value` from Python is not covered: do it while no call that uses the param runs.
    """

    def __init__(self, source: Program, backend, single: bool, options: dict,
                 optimize: bool = True, name: str | None = None,
                 checking: Checking | None = None):
        self.source = source
        self.checking = checking  # debug_nans: what every call checks (None: nothing)
        self.name = source.default_name() if name is None else check_name(name)
        self.backend = backend
        self.options = dict(options)  # as compiled: threads validated and capped
        self._single = single
        self._optimize = optimize
        self._program: Program | None = None
        self._pass_stats: list = []
        reached = source.graph.leaves("param")
        self._params = tuple(reached + [p for p, _ in source.updates if p not in reached])
        self.step = 0  # the call counter that random ops (dropout) draw from
        # With keep_arguments (set while `graphc profile` records a script), each call
        # keeps a copy of its arguments in last_arguments, to profile the function with.
        self.keep_arguments = False
        self.last_arguments: list[np.ndarray] | None = None
        self._written = tuple(p for p, _ in source.updates)
        # Calls hold this group's lock (the group of every function sharing a param).
        self._group = group_of(self._params) or Group()
        self._runner = backend.prepare(Source(source, optimize, dict(options),
                                              lambda: self.program))

    @property
    def program(self) -> Program:
        """The program that runs: the optimized one (optimized on first use, which a disk
        cache hit never needs)."""
        if self._program is None:
            program = self.source
            if self._optimize:
                # Imported here, not above: a disk-cache hit runs without the optimizer,
                # and a process that only loads compiled code never imports it.
                from graphc.passes import optimize as run_passes

                with collector.paused():
                    program = run_passes(program, self._pass_stats)
            self._program = program
        return self._program

    @property
    def pass_stats(self) -> list:
        """One PassStats per optimization pass."""
        self.program  # noqa: B018 (optimizes, measuring each pass, if it has not yet)
        return self._pass_stats

    @property
    def inputs(self) -> tuple[Node, ...]:
        return self.source.inputs

    @property
    def outputs(self) -> tuple[Node, ...]:
        return self.program.outputs

    @property
    def graph(self) -> Graph:
        """The graph that runs (after optimization)."""
        return self.program.graph

    def __call__(self, *arguments):
        arrays, binding = self.check_arguments(arguments)
        if self.keep_arguments:
            self.last_arguments = [np.array(a, copy=True) for a in arrays]
        return self._exclusive(self._call, arrays, binding)

    def _exclusive(self, run, *args):
        """run(*args) holding the lock of this function's param group (taken again if the
        group was merged into another while waiting for it)."""
        while True:
            group = self._group.root()
            with group.lock:
                if group.parent is None:
                    return run(*args)

    def _call(self, arrays: list[np.ndarray], binding: dict):
        """One call, its lock held: the call count is taken and advanced under it."""
        _check_writable(self._written)
        if self.checking is not None:
            saved = [(p.value, p.value.copy()) for p in self._written]
        results = self._runner.run(arrays, binding, self.step)
        if self.checking is not None:
            self._check_results(results, arrays, binding, saved)
        self.step += 1
        k = len(self.source.outputs)
        protected = {id(a) for a in arrays} | {id(p.value) for p in self._params}
        outputs = [_owned(out, protected) for out in results[:k]]
        targets = [param.value for param, _ in self.source.updates]
        # A backend that already wrote a param (in place) returns the param's own array.
        pending = [(t, new) for t, new in zip(targets, results[k:]) if new is not t]
        # Every new value is computed from the old params: copy any that aliases one
        # before the first write.
        news = [np.array(new) if any(np.may_share_memory(new, t) for t in targets) else new
                for _, new in pending]
        for (target, _), new in zip(pending, news):
            np.copyto(target, new)
        return outputs[0] if self._single else outputs

    def _check_results(self, results: list[np.ndarray], arrays: list[np.ndarray],
                       binding: dict, saved: list) -> None:
        """debug_nans: raise if a result is refused, once every param written in place is
        back as it was (the call count has not advanced yet)."""
        bad = self.checking.bad_results(results)
        if not bad:
            return
        results = [np.array(r) for r in results]  # before the params they may be go back
        for array, old in saved:
            np.copyto(array, old)
        raise self.checking.error(self.name, self.source, self.backend, self.options, arrays,
                                  binding, self.step, bad, results)

    def check_arguments(self, arguments) -> tuple[list[np.ndarray], dict[sympy.Symbol, int]]:
        """The arguments as arrays, and the binding of every symbolic dim; raises
        TypeError/ValueError naming the input, what was expected and what came."""
        inputs = self.source.inputs
        if len(arguments) != len(inputs):
            names = ", ".join(n.name for n in inputs)
            raise TypeError(f"expected {len(inputs)} argument(s) ({names}), got {len(arguments)}")
        binding: dict[sympy.Symbol, int] = {}
        bound_by: dict[sympy.Symbol, str] = {}
        arrays = []
        for node, arg in zip(inputs, arguments):
            array = _as_array(node, arg)
            # shape_str only on a refusal: printing a symbolic dim took ~20% of a call
            if array.ndim != len(node.shape):
                raise ValueError(f"input '{node.name}': expected shape {shape_str(node.shape)} "
                                 f"(rank {len(node.shape)}), got {array.shape}")
            for axis, (dim, got) in enumerate(zip(node.shape, array.shape)):
                if isinstance(dim, int):
                    if dim != got:
                        raise ValueError(f"input '{node.name}': expected shape "
                                         f"{shape_str(node.shape)}, got {array.shape} "
                                         f"(axis {axis} should be {dim})")
                elif dim in binding:
                    if binding[dim] != got:
                        raise ValueError(
                            f"input '{node.name}': axis {axis} is {dim}, which input "
                            f"'{bound_by[dim]}' bound to {binding[dim]}, but got {got} "
                            f"(shape {array.shape})")
                else:
                    binding[dim] = got
                    bound_by[dim] = node.name
            arrays.append(array)
        return arrays, binding

    def report(self) -> str:
        """What each optimization pass changed, the kernels left (graphc/passes/report.py),
        and, for a backend that plans memory, its arena against the intermediates' sum."""
        from graphc.passes.report import format_report  # not on a cache hit's path

        text = format_report(self.pass_stats, self.program, self.name)
        figures = self.memory_report()
        if not figures:
            return text
        if "arena_bytes" not in figures:
            return text + "\nmemory: planned at the first call (no call yet)\n"
        arena, total = figures["arena_bytes"], figures["intermediate_bytes"]
        return (text + f"\nmemory: arena {arena:,} bytes (intermediates reused by liveness, "
                f"plus kernel scratch); the intermediates alone would take {total:,} bytes; "
                f"{figures['in_place']} computed in place; {figures['kernels']} kernels; "
                f"{figures['bindings_compiled']} binding(s) compiled\n")

    def memory_report(self) -> dict:
        """The backend's memory plan of the last binding run: arena and intermediate bytes,
        values computed in place, kernels, bindings compiled (empty: the backend plans no
        memory; {"compiled": 0}: nothing has run yet)."""
        return self._runner.memory_report()

    def compiled(self, *arguments):
        """What the backend compiled for these arguments' shapes (compiling it now if it
        has not); without arguments, for the function's one binding when its shapes are
        static, else for the last call's (None before any call). On the LLVM backend: the
        variant, with its `plan`, `layout` and LLVM `ir`; on the NumPy backend: the program
        it interprets."""
        if arguments:
            binding = self.check_arguments(arguments)[1]
        else:
            binding = {} if all(is_static(n.shape) for n in self.inputs) else None
        return self._runner.compiled(binding)

    def compile_ahead(self, *arguments) -> threading.Thread | None:
        """Start compiling, on a background thread, the code for these arguments' shapes
        (an epoch's last, smaller batch; a validation set's), so that the call needing it
        later finds it ready: a call of those shapes meanwhile waits for this compile,
        never starts another, and runs the same code it would have compiled itself.
        Returns the thread, or None when there is nothing to compile (the code is ready,
        or the backend compiles nothing). A compile that fails here fails again, with its
        error, at the first call of those shapes."""
        binding = self.check_arguments(arguments)[1]
        runner = self._runner
        if not hasattr(runner, "build") or runner.ready(binding):
            return None
        thread = threading.Thread(target=_build_quietly, args=(runner, binding), daemon=True,
                                  name=f"graphc-compile-ahead-{self.name}")
        thread.start()
        return thread

    def profile(self, *arguments, calls: int = 10) -> Profile:
        """Where one call's time goes: each kernel's mean wall time over `calls` calls with
        these arguments (the LLVM backend times an instrumented build of the same code).
        Params are left as they were and the call counter does not advance."""
        if not isinstance(calls, int) or isinstance(calls, bool) or calls < 1:
            raise ValueError(f"profile: calls must be a positive int, got {calls!r}")
        arrays, binding = self.check_arguments(arguments)
        return self._exclusive(self._profile, arrays, binding, calls)

    def _profile(self, arrays: list[np.ndarray], binding: dict, calls: int) -> Profile:
        _check_writable(self._written)
        saved = [(p.value, p.value.copy()) for p in self._params]
        try:
            return replace(self._runner.profile(arrays, binding, self.step, calls),
                           name=self.name)
        finally:
            for array, old in saved:
                np.copyto(array, old)

    def to_dot(self, **options) -> str:
        """Graphviz DOT text of the graph that runs."""
        return to_dot(list(self.program.outputs), **{"name": self.name, **options},
                      updates=self.program.updates)

    def stages(self) -> list:
        """The stages the HTML explorer draws (graphc/passes/report.py explorer_stages):
        forward, backward, optimized and fused."""
        from graphc.passes.report import explorer_stages

        return explorer_stages(self)

    def _repr_html_(self) -> str:
        """Jupyter: every stage of the function in the HTML explorer."""
        from graphc.viz.notebook import html

        return html(self)

    def _repr_svg_(self) -> str | None:
        """Jupyter: the optimized graph as SVG where Graphviz is installed (else None)."""
        from graphc.viz.notebook import svg

        return svg(self.to_dot(), len(self.graph))

    def __repr__(self) -> str:
        names = ", ".join(n.name for n in self.inputs)
        return (f"<graphc.Executable {self.name} ({names}) backend={self.backend.name} "
                f"nodes={len(self.graph)}>")


def _build_quietly(runner, binding: dict) -> None:
    """runner.build(binding); an error is left for the call that needs the code (it
    compiles again and raises it there, where the user looks)."""
    try:
        runner.build(binding)
    except Exception:  # noqa: S110 (reported by the call of these shapes)
        pass


def _check_writable(params: tuple[Node, ...]) -> None:
    """Refuse a call that would write a param whose array was made read-only (checked on
    every call, before anything is written: a flag can change between calls)."""
    for param in params:
        if not param._value.flags.writeable:
            raise ValueError(f"param '{param.name}': its value is read-only "
                             "(flags.writeable is False) and this function updates it")


def _as_array(node: Node, arg) -> np.ndarray:
    if isinstance(arg, np.ndarray):
        array = arg
    elif isinstance(arg, int) and not isinstance(arg, bool) and node.dtype.kind in "iu" \
            and len(node.shape) == 0:
        info = np.iinfo(node.dtype)  # a Python int: any that fits (5 for a uint8 input)
        if not info.min <= arg <= info.max:
            raise ValueError(f"input '{node.name}': {arg} is out of the range of "
                             f"{node.dtype.name} ({info.min}..{info.max})")
        array = np.asarray(arg, node.dtype)
    elif isinstance(arg, (bool, int, float, np.generic)) and len(node.shape) == 0:
        array = np.asarray(arg)
        if not np.can_cast(array.dtype, node.dtype, casting="same_kind"):
            raise TypeError(f"input '{node.name}': expected {node.dtype.name}, got {arg!r}")
        array = array.astype(node.dtype)
    else:
        raise TypeError(f"input '{node.name}': expected a numpy array of {node.dtype.name} "
                        f"with shape {shape_str(node.shape)}, got {type(arg).__name__}")
    if array.dtype != node.dtype:
        if array.dtype.newbyteorder("=") == node.dtype:
            raise TypeError(f"input '{node.name}': expected {node.dtype.name} in native byte "
                            f"order, got {dtypes.byte_order_words(array.dtype)}")
        raise TypeError(f"input '{node.name}': expected dtype {node.dtype.name}, got "
                        f"{array.dtype.name}")
    try:
        dtypes.as_dtype(array.dtype)
    except TypeError as exc:
        raise TypeError(f"input '{node.name}': {exc}") from None
    return array


def _owned(out: np.ndarray, protected: set[int]) -> np.ndarray:
    """An output array the caller may keep and modify: a copy unless it is fresh."""
    if id(out) in protected or not out.flags.owndata or not out.flags.writeable \
            or not out.flags.c_contiguous:
        return np.array(out, copy=True, order="C")
    return out
