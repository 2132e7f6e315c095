"""Where a compiled step's time goes: the wall time of each kernel, measured by the
backend over repeated calls (`Executable.profile`), as a table, slowest first, or as a
trace for the standard viewers (Chrome's chrome://tracing, Perfetto's ui.perfetto.dev)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from graphc.shapes import shape_str


@dataclass(frozen=True)
class KernelTime:
    """One kernel's mean wall time per call (on the LLVM backend: the kernel and the
    barrier after it, as thread 0 sees them)."""

    index: int
    op: str
    shape: tuple
    seconds: float


@dataclass(frozen=True)
class Profile:
    """Per-kernel times of `calls` calls of one compiled function on one binding."""

    backend: str
    calls: int
    kernels: tuple[KernelTime, ...]
    name: str | None = None  # the compiled function's name (Executable.profile sets it)

    @property
    def seconds(self) -> float:
        """The summed kernel time of one call (the call's overhead excluded)."""
        return sum(k.seconds for k in self.kernels)

    def by_op(self) -> dict[str, float]:
        """Seconds per call spent in each op, slowest first."""
        totals: dict[str, float] = {}
        for k in self.kernels:
            totals[k.op] = totals.get(k.op, 0.0) + k.seconds
        return dict(sorted(totals.items(), key=lambda item: -item[1]))

    def format(self, top: int | None = 25) -> str:
        """A table of the `top` slowest kernels (None: all), then the time per op."""
        total = self.seconds or 1.0
        title = f"profile of {self.name}" if self.name else "profile"
        lines = [f"{title} ({self.backend} backend, mean of {self.calls} call(s)): "
                 f"{len(self.kernels)} kernels, {self.seconds * 1e3:.3f} ms per call",
                 f"{'#':>4}  {'op':<16} {'shape':<20} {'ms':>9} {'share':>6}"]
        ranked = sorted(self.kernels, key=lambda k: -k.seconds)
        for k in ranked[:top]:
            lines.append(f"{k.index:>4}  {k.op:<16} {shape_str(k.shape):<20} "
                         f"{k.seconds * 1e3:>9.4f} {k.seconds / total:>6.1%}")
        if top is not None and len(ranked) > top:
            rest = sum(k.seconds for k in ranked[top:])
            lines.append(f"{'':>4}  {f'({len(ranked) - top} more)':<37} {rest * 1e3:>9.4f} "
                         f"{rest / total:>6.1%}")
        lines.append("per op: " + ", ".join(f"{op} {s * 1e3:.3f} ms"
                                            for op, s in self.by_op().items()))
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.format()

    # ----- as a trace -----------------------------------------------------------------------
    def to_trace(self) -> dict:
        """The profile in the Trace Event Format that chrome://tracing and Perfetto load:
        one slice ("ph": "X", times in microseconds) for one call of the function, and
        inside it a slice per kernel, in execution order, each as long as the kernel's mean
        time per call. The backends measure each kernel's total over the calls, not when
        each call ran it, so the slices are laid end to end from 0 on one track: thread 0
        (on LLVM, a kernel's slice is its work and the barrier after it, as thread 0 saw
        them; the other threads do the same kernels between the same barriers)."""
        pid, tid = 1, 0
        title = self.name or "function"
        kernels, start, total = [], 0, self.seconds or 1.0
        for k in self.kernels:  # in whole nanoseconds: slices end exactly where the next starts
            dur = round(k.seconds * 1e9)
            kernels.append({"name": k.op, "cat": "kernel", "ph": "X", "ts": start / 1e3,
                            "dur": dur / 1e3, "pid": pid, "tid": tid,
                            "args": {"kernel": k.index, "shape": shape_str(k.shape),
                                     "ms": round(k.seconds * 1e3, 6),
                                     "share": f"{k.seconds / total:.1%}"}})
            start += dur
        events: list[dict] = [
            {"name": "process_name", "ph": "M", "pid": pid, "tid": tid,
             "args": {"name": f"graphc {title} ({self.backend} backend)"}},
            {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
             "args": {"name": "thread 0" if self.backend != "numpy" else "interpreter"}},
            {"name": title, "cat": "call", "ph": "X", "ts": 0.0, "dur": start / 1e3,
             "pid": pid, "tid": tid,
             "args": {"kernels": len(self.kernels), "calls averaged": self.calls}},
            *kernels,
        ]
        return {"traceEvents": events, "displayTimeUnit": "ms",
                "otherData": {"function": title, "backend": self.backend,
                              "calls": self.calls, "kernels": len(self.kernels),
                              "seconds per call": self.seconds}}

    def save(self, path: str | Path) -> Path:
        """Write the profile as a trace (`to_trace`) to a .json file: open it in
        https://ui.perfetto.dev or chrome://tracing. Returns the path."""
        path = Path(path)
        if path.suffix.lower() != ".json":
            raise ValueError(f"Profile.save: a trace is a .json file, got {str(path)!r}")
        import json  # only here: the module is imported by every call's runner
        path.write_text(json.dumps(self.to_trace(), indent=1) + "\n")
        return path
