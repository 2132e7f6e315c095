"""The suite's report as one aligned text table, with its notes.

A report is the JSON-able dict benchmarks.suite builds: "rows" (one per workload and
thread count, with each framework's timing, an error, or why it is missing), "peak"
(GFLOP/s by thread count), "compile" (the compile times of
benchmarks.compile_time by workload), "machine".
"""

from __future__ import annotations

import textwrap

FRAMEWORK_COLUMNS = ("numpy", "graphc", "torch", "torch.compile", "jax")
ALTERNATIVES = ("torch", "torch.compile", "jax")   # graphc's ratio is to the best of these
NOISY = 0.2            # a cell whose interquartile range exceeds this fraction is starred
GEMM_PEAK_TARGET = 0.90
# seconds: issue 15 C (LeNet and the Transformer block cold, a cache hit, a new batch size)
# issue 15: LeNet and the Transformer block cold <= 0.6 s, every example <= 2 s
COMPILE_TARGETS = {"cold": 0.6, "example": 2.0, "warm": 0.05, "rebatch": 0.1}
WIDTH = 100            # notes are wrapped to this width


def median(cell: dict | None) -> float | None:
    return cell.get("median") if cell else None


def best_alternative(times: dict) -> tuple[str | None, float | None]:
    """The fastest of ALTERNATIVES that has a time in `times`."""
    found = [(t, name) for name in ALTERNATIVES if (t := median(times.get(name))) is not None]
    if not found:
        return None, None
    t, name = min(found)
    return name, t


def summarize(row: dict, peak: dict) -> dict:
    """The row's derived figures: best alternative, ratio, graphc's GFLOP/s (median call)
    and peak fractions (None where an input is missing). The peak is the best probe of the
    run (what the machine can do), so "peak_fraction" sets graphc's fastest call against
    it, like against like; "median_peak_fraction" its median call, which a shared machine
    pulls down further (here the peak probe's own median was 4-10% below its best)."""
    best, best_time = best_alternative(row["times"])
    cell = row["times"].get("graphc")
    ours = median(cell)
    ratio = ours / best_time if ours is not None and best_time else None
    gflops = row["flops"] / ours / 1e9 if ours else None
    fastest = (cell or {}).get("min", ours)
    top = peak.get(str(row["threads"]))
    return {"best": best, "ratio": ratio, "gflops": gflops,
            "peak_fraction": row["flops"] / fastest / 1e9 / top if fastest and top else None,
            "median_peak_fraction": gflops / top if gflops is not None and top else None}


def _time_cell(cell: dict | None) -> str:
    if cell is None:
        return "-"
    if "missing" in cell:
        return "missing"
    if "error" in cell:
        return "failed"
    ms = cell["median"] * 1e3
    text = f"{ms:#.3g}" if ms < 100 else f"{ms:.0f}"
    spread = (cell["q3"] - cell["q1"]) / cell["median"] if cell["median"] > 0 else 0
    return text + ("*" if spread > NOISY else "")


def _verdict(value: float | None, bound: float | None, at_most: bool = True) -> str:
    if value is None or bound is None:
        return ""
    return " ok" if (value <= bound if at_most else value >= bound) else " MISS"


def rows(report: dict) -> list[list[str]]:
    """The table's cells: a header, then one line per row of the report."""
    header = ["workload", "thr", "code", *(f"{f} ms" for f in FRAMEWORK_COLUMNS), "best",
              "ratio", "target", "GFLOP/s", "of peak"]
    lines = [header]
    for row in report["rows"]:
        s = summarize(row, report.get("peak", {}))
        target = row.get("target")
        lines.append([
            row["workload"], str(row["threads"]), row.get("code", "host"),
            *(_time_cell(row["times"].get(f)) for f in FRAMEWORK_COLUMNS),
            s["best"] or "-",
            f"{s['ratio']:.2f}{_verdict(s['ratio'], target)}" if s["ratio"] else "-",
            f"<={target:g}" if target else "",
            f"{s['gflops']:.1f}" if s["gflops"] is not None else "-",
            f"{100 * s['peak_fraction']:.0f}%" if s["peak_fraction"] is not None else "-",
        ])
    return lines


def align(lines: list[list[str]]) -> str:
    """Columns padded to their widest cell: text left, figures right."""
    widths = [max(len(line[k]) for line in lines) for k in range(len(lines[0]))]
    out = []
    for line in lines:
        cells = [c.ljust(w) if k == 0 else c.rjust(w)
                 for k, (c, w) in enumerate(zip(line, widths))]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def notes(report: dict) -> list[str]:
    """Lines under the table: the peak, the targets outside the table, compile times,
    missing frameworks and failures."""
    out = [f"WARNING: {w}" for w in report.get("warnings", [])]
    peak = report.get("peak", {})
    if peak:
        out.append("FMA peak (benchmarks.peak, best probe of the run): " + ", ".join(
            f"{v:.0f} GFLOP/s at {k} thread{'s' if k != '1' else ''}" for k, v in peak.items())
            + "; GFLOP/s is graphc's median call, \"of peak\" its fastest call against the "
            "best probe (best against best)")
    for row in report["rows"]:
        if row["workload"] == "gemm 1024" and row["threads"] == 1:
            s = summarize(row, peak)
            fraction = s["peak_fraction"]
            if fraction is not None:
                out.append(f"gemm 1024 at 1 thread: graphc's fastest call at "
                           f"{100 * fraction:.0f}% of peak (target >= "
                           f"{100 * GEMM_PEAK_TARGET:.0f}%)"
                           + _verdict(fraction, GEMM_PEAK_TARGET, at_most=False)
                           + f"; its median call at {100 * s['median_peak_fraction']:.0f}%")
    out += _compile_notes(report)
    out += _contention_notes(report)
    out += _bandwidth_notes(report)
    out += _memory_notes(report)
    missing, failures = {}, []
    for row in report["rows"]:
        for framework, cell in row["times"].items():
            if "missing" in cell:
                missing[framework] = cell["missing"]
            elif "error" in cell:
                failures.append(f"{framework} failed on {row['workload']} at {row['threads']} "
                                f"thread(s): {cell['error']}")
    out += [f"{name}: {why}; its column says missing (pip install -e .[bench])"
            for name, why in missing.items()]
    out += sorted(set(failures))
    out.append(f"times: median ms per call over up to {report.get('repeat', '?')} timed calls "
               f"after a warm-up; * marks an interquartile spread over {NOISY:.0%} of the "
               "median. ratio = graphc / best of torch, torch.compile, jax (lower is better); "
               "numpy is graphc's reference interpreter. The machine is shared and noisy: "
               "rerun before trusting a difference of a few percent.")
    return out


def _compile_notes(report: dict) -> list[str]:
    """One line per workload of benchmarks.compile_time: cold and warm compiles and a new
    batch size, against issue 15's targets."""
    out = []
    for workload, kinds in (report.get("compile") or {}).items():
        parts = []
        for kind in ("cold", "libraries", "warm", "tiered"):
            result = kinds.get(kind)
            if result is None:
                continue
            if "error" in result:
                parts.append(f"{kind} failed: {result['error']}")
                continue
            label = {"cold": "cold", "libraries": "cold but for the cached libraries",
                     "warm": "from the disk cache",
                     "tiered": "tiered (first calls interpreted): cold"}[kind]
            bound = COMPILE_TARGETS["warm" if kind == "warm" else
                                    "example" if workload.endswith("example") else "cold"]
            parts.append(f"{label} {_seconds(result['compile'])} (target <= "
                         f"{_seconds(bound)})" + _verdict(result["compile"], bound))
            if kind != "warm" and "rebatch" in result:
                bound = COMPILE_TARGETS["rebatch"]
                parts.append(f"a second batch size {_seconds(result['rebatch'])} (target <= "
                             f"{_seconds(bound)})" + _verdict(result["rebatch"], bound))
        if parts:
            out.append(f"{workload} training step compile (graphc llvm, 1 thread): "
                       + ", ".join(parts) + _first_calls(report, workload))
    return out


def _first_calls(report: dict, workload: str) -> str:
    """The first call (compile included) of the compiling alternatives on the workload."""
    others = []
    for row in report["rows"]:
        if row["workload"] == workload and row["threads"] == 1:
            for name in ("torch.compile", "jax"):
                cell = row["times"].get(name) or {}
                if "first" in cell:
                    others.append(f"{name} {_seconds(cell['first'])}")
    return "; first call (compile included) of " + ", ".join(others) if others else ""


def _contention_notes(report: dict) -> list[str]:
    """The load average and the peak probes at the start and the end: a busy machine or
    two probes far apart mean other work competed for the CPUs during the run."""
    parts = []
    loads = [x for x in report.get("load", []) if x is not None]
    if len(loads) == 2:
        parts.append(f"load average {loads[0]:.1f} at the start, {loads[1]:.1f} at the end")
    probes = report.get("peak_probes", [])
    if len(probes) == 2:
        parts.append("peak probes (start/end) " + ", ".join(
            f"{probes[0][t]:.0f}/{probes[1][t]:.0f} GFLOP/s at {t} thread(s)"
            for t in probes[0] if t in probes[1]))
    return ["contention: " + "; ".join(parts)] if parts else []


def _bandwidth_notes(report: dict) -> list[str]:
    """GB/s of graphc and the best alternative on the memory-bound rows (those with bytes),
    where FLOPs and the fraction of FMA peak say little."""
    out = []
    for row in report["rows"]:
        if not row.get("bytes"):
            continue
        best, best_time = best_alternative(row["times"])
        figures = [(name, t) for name, t in (("graphc", median(row["times"].get("graphc"))),
                                             (best, best_time)) if name and t]
        triad = report.get("bandwidth", {}).get(str(row["threads"]))
        if figures:
            out.append(f"{row['workload']} at {row['threads']} thread(s) is memory-bound ("
                       f"{row['bytes'] / 1e6:.0f} MB a call): " + ", ".join(
                           f"{name} {row['bytes'] / t / 1e9:.1f} GB/s"
                           + (f" ({100 * row['bytes'] / t / 1e9 / triad:.0f}% of the "
                              f"{triad:.1f} GB/s STREAM triad)" if triad else "")
                           for name, t in figures))
    return out


def _memory_notes(report: dict) -> list[str]:
    """Peak RSS of each training step (building it and running it, in its framework's
    process) for graphc and PyTorch eager, the target being graphc's at most torch's; in
    parentheses, what the step added to the process's RSS before it."""
    entries = []
    for row in report["rows"]:
        ours, torch = (row["times"].get(f) or {} for f in ("graphc", "torch"))
        if ours.get("peak_rss") is None:
            continue
        entry = f"{row['workload']} at {row['threads']} thr: graphc {_megabytes(ours)}"
        if torch.get("peak_rss") is not None:
            entry += (f", torch {_megabytes(torch)}"
                      + _verdict(ours["peak_rss"], torch["peak_rss"]))
        entries.append(entry)
    if not entries:
        return []
    return ["peak RSS of the training steps, MB (+ added by the step): " + "; ".join(entries)]


def _megabytes(cell: dict) -> str:
    added = cell["peak_rss"] - cell["base_rss"] if cell.get("base_rss") is not None else None
    return f"{cell['peak_rss'] / 2**20:.0f}" + (f" (+{added / 2**20:.0f})" if added is not None
                                                 else "")


def _seconds(s: float) -> str:
    return f"{s * 1e3:.0f} ms" if s < 1 else f"{s:.2f} s"


def render(report: dict) -> str:
    """The whole printout: machine line, table, notes."""
    head = []
    machine = report.get("machine")
    if machine:
        head.append("  ".join(f"{k} {v}" for k, v in machine.items()))
    lines = [wrapped for note in notes(report)
             for wrapped in textwrap.wrap(note, WIDTH, subsequent_indent="  ")]
    return "\n".join([*head, align(rows(report)), "", *lines])
