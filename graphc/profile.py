"""Where a compiled step's time goes: the wall time of each kernel, measured by the
backend over repeated calls (`Executable.profile`), and a table of it, slowest first."""

from __future__ import annotations

from dataclasses import dataclass

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
