"""The benchmark suite's driver: the FMA peak, each (framework, thread count) in a child
process, the lenet compile times, then one table (and optionally the JSON behind it).

    python -m benchmarks [--workloads mlp,gemm,...] [--threads 1,2] [--repeat N] [--quick]
                         [--frameworks graphc,torch,...] [--json FILE]

`graphc bench` runs the same.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from benchmarks import child, peak, table, workloads

ROOT = Path(__file__).resolve().parent.parent
FULL = {"repeat": 20, "budget": 3.0, "timeout": 1800}
QUICK = {"repeat": 5, "budget": 1.0, "timeout": 600}


def select(names: str | None, quick: bool) -> list[workloads.Workload]:
    """The workloads named in the comma list `names` (all when None). A name is a
    workload's name ("gemm 1024") or its first word, which selects the group ("gemm")."""
    every = workloads.reference(quick)
    if not names:
        return every
    wanted = [n.strip() for n in names.split(",")]
    for name in wanted:
        if not any(_matches(w, name) for w in every):
            known = sorted({w.name for w in every} | {w.name.split()[0] for w in every})
            raise ValueError(f"unknown workload {name!r}; known: {', '.join(known)}")
    return [w for w in every if any(_matches(w, name) for name in wanted)]


def _counts(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",")]
    except ValueError:
        raise ValueError(f"--threads takes a comma list of integers, got {text!r}") from None


def _matches(w: workloads.Workload, name: str) -> bool:
    return w.name == name or w.name.split()[0] == name


def missing_reason(framework: str) -> str | None:
    """Why `framework` cannot run here, or None (checked without importing it)."""
    module = child.MODULES[framework]
    return None if importlib.util.find_spec(module) else f"{module} is not installed"


def run_child(framework: str, threads: int, names: list[str], settings: dict,
              quick: bool, code: str = "host") -> dict:
    """One child's results by workload name (errors and timeouts reported per cell);
    `code`: the target graphc compiles for ($GRAPHC_TARGET in the child)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        command = [sys.executable, "-m", "benchmarks.child", framework, str(threads), str(out),
                   "--workloads", ",".join(names), "--repeat", str(settings["repeat"]),
                   "--budget", str(settings["budget"])] + (["--quick"] if quick else [])
        try:
            env = child.environment(threads)
            env["GRAPHC_TARGET"] = code
            done = subprocess.run(command, env=env, cwd=ROOT,
                                  capture_output=True, text=True, timeout=settings["timeout"])
        except subprocess.TimeoutExpired:
            return {n: {"error": f"timed out after {settings['timeout']} s"} for n in names}
        if not out.exists():
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return {n: {"error": f"child exited with {done.returncode}: {tail}"} for n in names}
        report = json.loads(out.read_text())
    if "missing" in report:
        return {n: {"missing": report["missing"]} for n in names}
    return report["results"]


def compile_times(timeout: float) -> dict:
    """The compile of each of compile_time.WORKLOADS (LeNet, the Transformer block, the
    transformer example's step): cold (an empty disk cache), warm (the same cache, a new
    process) and with only the libraries cached, each with a second batch size. graphc's
    modules are byte-compiled first (their __pycache__, as a pip
    install writes it): with PYTHONDONTWRITEBYTECODE set and an editable install, every
    process would otherwise compile graphc's Python source (~0.12 s) inside the measured
    span."""
    from benchmarks.compile_time import WORKLOADS

    results: dict = {}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "graphc")],
                   capture_output=True, timeout=timeout)
    for workload in WORKLOADS:
        # cold, warm, then "libraries" (the variants dropped, the library objects kept: a
        # new program on a machine where graphc ran before) in one cache; tiered (first
        # calls interpreted) in an empty one
        for kinds in (("cold", "warm", "libraries"), ("tiered",)):
            with tempfile.TemporaryDirectory() as cache:
                env = child.environment(1)
                env["XDG_CACHE_HOME"] = cache
                for kind in kinds:
                    if kind == "libraries":
                        _drop_variants(Path(cache) / "graphc")
                    results.setdefault(workload, {})[kind] = _compile_time(
                        workload, kind, Path(cache), env, timeout)
    return results


def _drop_variants(folder: Path) -> None:
    """Delete the compiled programs in a cache folder, keeping its other entries (the
    library objects, compiled once per machine: GEMM drivers, Winograd parts; the worker
    pool; the host's description)."""
    from graphc.backends.llvm.runtime import cache, layout

    for entry in cache.entries(folder):
        payload = cache.payload_of(entry)
        if payload is not None and layout.is_variant(payload):
            entry.unlink()


def _compile_time(workload: str, kind: str, cache: Path, env: dict, timeout: float) -> dict:
    """One run of benchmarks.compile_time in a new process (kind "tiered": --tiered)."""
    out = cache / f"{kind}.json"
    command = [sys.executable, "-m", "benchmarks.compile_time", str(out), "--workload",
               workload] + (["--tiered"] if kind == "tiered" else [])
    try:
        subprocess.run(command, env=env, cwd=ROOT, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    return json.loads(out.read_text()) if out.exists() else {
        "error": "the compile-time process wrote nothing"}


def machine(revision: str) -> dict:
    """What a reader needs to reproduce the figures: the CPU (model, LLVM's name, vector
    registers), the versions."""
    from graphc.backends.llvm.runtime import target

    host = target.host_target()
    versions = {p: _version(p) for p in ("numpy", "llvmlite", "torch", "jax")}
    return {"cpu": f"{_cpu_model()} ({host.cpu}, {host.vector_registers} x "
                   f"{host.vector_bytes * 8}-bit vectors) x{os.cpu_count()}",
            "python": platform.python_version(), "graphc": revision,
            **{k: v for k, v in versions.items() if v}}


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("" where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def default_targets() -> list[str]:
    """The host's own code, and AVX2 code (x86-64-v3) too where the host has AVX-512:
    most users' CPUs are AVX2 ones."""
    from graphc.backends.llvm.runtime import target

    return ["host", "x86-64-v3"] if target.host_target().avx512 else ["host"]


def _targets(text: str | None) -> list[str]:
    """--targets as names, each one this host can run (a ValueError names the others)."""
    if text is None:
        return default_targets()
    from graphc.backends.llvm.runtime import target

    names = [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        missing = target.resolve(name).missing_on_host()
        if missing:
            raise ValueError(f"--targets: {name} needs {', '.join(missing)}, which this CPU "
                             f"lacks")
    return names or default_targets()


def _load() -> float | None:
    """The 1-minute load average (other processes competing for the CPUs), where known."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git_revision() -> str:
    """HEAD, and a digest of uncommitted changes to graphc/ ("+dirty:1a2b3c4d"), so two
    revisions are equal only when the code measured was."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        diff = subprocess.run(["git", "diff", "HEAD", "--", "graphc"], cwd=ROOT,
                              capture_output=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    dirty = f"+dirty:{hashlib.sha256(diff).hexdigest()[:8]}" if diff else ""
    return (head or "unknown") + dirty


def run(selected: list[workloads.Workload], threads: list[int], frameworks: list[str],
        repeat: int | None = None, quick: bool = False, log=print,
        targets: list[str] | None = None) -> dict:
    """Measure everything and return the report that table.render prints: graphc once per
    target (default_targets()), a row set each."""
    targets = targets or default_targets()
    settings = dict(QUICK if quick else FULL)
    if repeat is not None:
        settings["repeat"] = repeat
    names = [w.name for w in selected]
    revision = _git_revision()
    loads = [_load()]
    peaks = [peak.measure(threads)]
    memory = [peak.bandwidth(threads)] if any(w.bytes() for w in selected) else []
    times: dict = {}
    for t in threads:
        for framework in frameworks:
            reason = missing_reason(framework)
            for code in targets if framework == "graphc" else ["host"]:
                log(f"{framework}{'' if code == 'host' else ' (' + code + ')'} at {t} "
                    f"thread{'s' if t > 1 else ''}: " + (reason or ", ".join(names)))
                times[(framework, t, code)] = (
                    {n: {"missing": reason} for n in names} if reason
                    else run_child(framework, t, names, settings, quick, code))
    compiled = compile_times(settings["timeout"]) if "graphc" in frameworks and any(
        w.name == "lenet" for w in selected) else {}
    peaks.append(peak.measure(threads))
    if memory:
        memory.append(peak.bandwidth(threads))
    loads.append(_load())
    rows = [{"workload": w.name, "threads": t, "code": code, "flops": w.flops(),
             "bytes": w.bytes(), "target": w.target,
             "times": {f: times[(f, t, code if f == "graphc" else "host")][w.name]
                       for f in frameworks}}
            for code in targets for w in selected for t in threads]
    warnings = []
    if _git_revision() != revision:
        warnings.append(f"graphc's code changed during the run ({revision} at the start, "
                        f"{_git_revision()} at the end): the figures may mix versions")
    return {"machine": machine(revision), "warnings": warnings, "threads": threads,
            "targets": targets,
            "repeat": settings["repeat"],
            "peak": {str(t): max(p[t] for p in peaks) for t in threads},
            "peak_probes": [{str(t): v for t, v in p.items()} for p in peaks],
            "bandwidth": {str(t): max(m[t] for m in memory) for t in threads} if memory else {},
            "load": loads,
            "compile": compiled, "rows": rows}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=(
        "Time the benchmark workloads on graphc (llvm, and its numpy reference), PyTorch eager, "
        "torch.compile and JAX, at each thread count, and print one table."))
    add_arguments(p)
    p.add_argument("--frameworks", default=",".join(child.FRAMEWORKS),
                   help="comma list among " + ", ".join(child.FRAMEWORKS) + " (default: all)")
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options `graphc bench` shares with `python -m benchmarks`."""
    p.add_argument("--workloads", default=None,
                   help="comma list of workloads or groups (mlp, lenet, digits-cnn, transformer, "
                        "gemm, conv2d, elementwise; or one row such as 'gemm 1024'); "
                        "default: all")
    p.add_argument("--threads", default="1,2", help="comma list of thread counts (default 1,2)")
    p.add_argument("--repeat", type=int, default=None,
                   help="timed calls per cell (default 20, or 5 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="fewer timed calls, a shorter time budget per cell, gemm 256 and 1024 "
                        "only: for trying changes, not for quoting")
    p.add_argument("--targets", default=None,
                   help="comma list of targets graphc compiles for, a row set each: host, "
                        "x86-64-v2, x86-64-v3, x86-64-v4 or an LLVM CPU name (default: host, "
                        "plus x86-64-v3 on an AVX-512 host)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write the report (every figure behind the table) to FILE")


def main(argv: list[str] | None = None, prog: str = "python -m benchmarks") -> int:
    """Run the suite as `prog ARGV...` and print the table; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    try:
        selected = select(args.workloads, args.quick)
        threads = _counts(args.threads)
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        if any(t < 1 or t > cpus for t in threads):
            raise ValueError(f"--threads {args.threads}: each count must be from 1 to the "
                             f"{cpus} CPUs this process may use")
        chosen = [f.strip() for f in args.frameworks.split(",")]
        unknown = [f for f in chosen if f not in child.FRAMEWORKS]
        if unknown:
            raise ValueError(f"unknown framework(s) {', '.join(unknown)}; one of "
                             f"{', '.join(child.FRAMEWORKS)}")
        if args.repeat is not None and args.repeat < 1:
            raise ValueError(f"--repeat must be positive, got {args.repeat}")
        targets = _targets(args.targets)
    except ValueError as exc:
        print(f"benchmarks: error: {exc}", file=sys.stderr)
        return 2
    report = run(selected, threads, chosen, args.repeat, args.quick,
                 log=lambda line: print(line, file=sys.stderr, flush=True), targets=targets)
    report["command"] = " ".join([prog, shlex.join(argv)]).strip()
    print(table.render(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0
