"""`graphc run`, `graphc info`, `graphc cache` and `graphc bench`: running a script, the
setup that decides how graphc compiles, the compiled-code cache, the benchmark suite."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from graphc.cli.base import CommandError, command
from graphc.cli.scripts import run_script, script_path
from graphc.cli.tune import target_lines

# ----- graphc run ---------------------------------------------------------------------------

def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", help="the Python script to run as __main__")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")


@command("run", "run a Python script as __main__ with the given arguments", _run_arguments)
def run(args: argparse.Namespace) -> int:
    run_script(script_path(args.script), args.args)
    return 0


# ----- graphc info --------------------------------------------------------------------------

def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def info_lines() -> list[str]:
    """The versions and host facts that decide how graphc compiles."""
    import llvmlite.binding as llvm

    import graphc
    from graphc.viz import dot_program

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    features = llvm.get_host_cpu_features().flatten().split(",")
    enabled = sorted(f[1:] for f in features if f.startswith("+"))
    return [
        f"graphc      {graphc.__version__}",
        f"python      {platform.python_version()} ({sys.executable})",
        f"numpy       {_version('numpy')}",
        f"sympy       {_version('sympy')}",
        f"llvmlite    {_version('llvmlite')}",
        f"LLVM        {'.'.join(str(v) for v in llvm.llvm_version_info)}",
        f"cpu         {llvm.get_host_cpu_name()} ({llvm.get_process_triple()})",
        f"features    {' '.join(enabled)}",
        *target_lines(),
        f"graphviz    {dot_program() or 'dot not found (only .dot files can be written)'}",
        _cache_line(),
    ]


def _cache_line() -> str:
    folder, entries = _cache_entries()
    size = _total_bytes(entries)
    state = _cache_off() or f"{len(entries)} entries, {size / 1e6:.1f} MB"
    return f"cache       {folder}: {state}"


def _cache_off() -> str | None:
    """Why the cache is off ("off (GRAPHC_CACHE=0)"), or None when it is on."""
    from graphc.backends.llvm.runtime import cache as disk

    if disk.enabled():
        return None
    return f"off (GRAPHC_CACHE={os.environ.get('GRAPHC_CACHE', '').strip()})"


@command("info", "print the versions of graphc and its dependencies, LLVM and the host CPU",
         lambda parser: None)
def info(args: argparse.Namespace) -> int:
    print("\n".join(info_lines()))
    return 0


# ----- graphc cache -------------------------------------------------------------------------

def _cache_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("clear", "info"),
                        help="clear: delete every cached object file, temporary file "
                             "and source-hash table; "
                             "info: location and size")


def _cache_entries() -> tuple[Path, list[Path]]:
    """The cache folder and its entries (only files named as the cache names them)."""
    from graphc.backends.llvm.runtime import cache as disk

    folder = disk.directory()
    return folder, disk.entries(folder)


def _total_bytes(paths: list[Path]) -> int:
    """The size of the files at `paths` (not of what a symlink points to; 0 for a file
    removed meanwhile)."""
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            total += path.lstat().st_size
    return total


@command("cache", "show the location and size of the compiled-code cache, or clear it",
         _cache_arguments)
def cache(args: argparse.Namespace) -> int:
    from graphc.backends.llvm.runtime import cache as disk

    folder, entries = _cache_entries()
    temps = disk.temp_files(folder)  # left by writers killed mid-write (or writing now)
    size, temp_size = _total_bytes(entries), _total_bytes(temps)
    if args.action == "info":
        off = _cache_off()
        if off is not None:
            print(f"the cache is {off}: compiling neither reads nor writes {folder}")
        print(f"{folder}: {len(entries)} entries, {size / 1e6:.1f} MB, {len(temps)} temporary "
              f"files ({temp_size / 1e6:.1f} MB)")
        return 0
    removed = [0, 0]
    # The source-hash tables go too (they only save hashing graphc's files).
    for k, paths in enumerate((entries, temps + disk.source_tables(folder))):
        for path in paths:
            with contextlib.suppress(FileNotFoundError):  # another process may clear it too
                path.unlink()
                removed[k] += 1
    print(f"removed {removed[0]} entries and {removed[1]} temporary files "
          f"({(size + temp_size) / 1e6:.1f} MB) from {folder}")
    return 0


# ----- graphc bench -------------------------------------------------------------------------

def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workloads", default=None,
                        help="comma list: mlp, lenet, digits-cnn, transformer, gemm, conv2d, "
                             "elementwise, or one row such as 'gemm 1024' (default: all)")
    parser.add_argument("--threads", default="1,2", help="comma list of thread counts "
                                                         "(default 1,2)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="timed calls per cell (default 20, 5 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer calls and gemm sizes: for trying changes, not for quoting")
    parser.add_argument("--json", default=None, metavar="FILE",
                        help="also write every figure behind the table to FILE")


def source_root() -> Path:
    """The folder holding the graphc package this runs from: a source checkout's root (with
    benchmarks/ beside graphc/), or site-packages for a wheel install."""
    return Path(__file__).resolve().parents[2]  # graphc/cli/system.py -> the root


def benchmark_suite(root: Path | None = None):
    """benchmarks.suite from the source checkout this graphc runs from (benchmarks/ is not
    installed with the package: a wheel install gets a CommandError saying what to do)."""
    root = source_root() if root is None else root
    if not (root / "benchmarks" / "suite.py").is_file():
        raise CommandError(
            f"graphc bench runs the benchmarks/ folder of a source checkout, which a wheel "
            f"install does not have (there is none in {root}). Clone graphc's repository, "
            "then in it: pip install -e '.[bench]' && graphc bench (or python -m benchmarks)")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks import suite

    return suite


@command("bench", "time the benchmark workloads on graphc, PyTorch and JAX at 1 and 2 threads "
         "(python -m benchmarks)", _bench_arguments)
def bench(args: argparse.Namespace) -> int:
    argv = ["--threads", args.threads]
    for flag, value in (("--workloads", args.workloads), ("--repeat", args.repeat),
                        ("--json", args.json)):
        if value is not None:
            argv += [flag, str(value)]
    return benchmark_suite().main(argv + (["--quick"] if args.quick else []), prog="graphc bench")
