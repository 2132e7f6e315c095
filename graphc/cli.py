"""The `graphc` command: draw the graphs a script compiles, run scripts, report the setup.

Each subcommand is one function registered with `@command`; `graphc --help` lists them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import runpy
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

STAGES = ("forward", "backward", "optimized", "fused-before", "fused-after")


class CommandError(Exception):
    """A failure to report as one line `graphc: error: ...` with a nonzero exit status."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


class ScriptFailed(Exception):
    """The user's script raised or exited with a nonzero status (already reported)."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class Command:
    """A subcommand: `arguments` declares its options, `run` does the work and returns the
    exit status."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None]):
    """Register the decorated function as the subcommand `name`."""
    def register(run: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = Command(name, help, arguments, run)
        return run
    return register


# ----- running user scripts ---------------------------------------------------------------

def _script_path(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise CommandError(f"no such script: {text}")
    return path.resolve()


@contextlib.contextmanager
def _as_main(script: Path, args: Sequence[str]) -> Iterator[None]:
    """sys.argv and sys.path[0] as `python SCRIPT ARGS...` would set them, restored after."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(script), *args]
    sys.path.insert(0, str(script.parent))
    try:
        yield
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path


def run_script(script: Path, args: Sequence[str] = ()) -> None:
    """Run `script` as __main__; if it raises, print its traceback (without our frames) and
    raise ScriptFailed; a nonzero sys.exit of the script raises ScriptFailed too."""
    with _as_main(script, args):
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exc:
            status = _exit_status(exc.code)
            if status != 0:
                raise ScriptFailed(status) from None
        except KeyboardInterrupt:
            raise ScriptFailed(130) from None
        except Exception as exc:  # the script's own error: show it as Python would
            tb = exc.__traceback__
            while tb is not None and Path(tb.tb_frame.f_code.co_filename) != script:
                tb = tb.tb_next
            traceback.print_exception(type(exc), exc, tb)
            print(f"graphc: error: {script.name} raised {type(exc).__name__}",
                  file=sys.stderr)
            raise ScriptFailed(1) from None


def _exit_status(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message") prints the message, exits with 1
    return 1


@contextlib.contextmanager
def recording_compiles() -> Iterator[list]:
    """A list that receives every Executable that gc.compile builds inside the block."""
    from graphc import compiler

    recorder: list = []
    compiler._recorders.append(recorder)
    try:
        yield recorder
    finally:
        for k, item in enumerate(compiler._recorders):
            if item is recorder:  # by identity: == would match any other empty recorder
                del compiler._recorders[k]
                break


# ----- graphc viz ---------------------------------------------------------------------------

def stage_dot(executable, stage: str) -> str:
    """DOT text of one stage of a compiled function: "forward" (its outputs, before
    optimization), "backward" (outputs and update values, gradient nodes marked),
    "optimized" (what runs), or "fused-before"/"fused-after" (each fused kernel drawn as a
    cluster, on the graph fusion started from or on the graph that runs)."""
    from graphc.passes.report import fusion_dot
    from graphc.viz import to_dot

    if stage.startswith("fused-"):
        return fusion_dot(executable, stage.removeprefix("fused-"))
    if stage == "forward":
        return to_dot(list(executable.source.outputs), name="forward")
    program = executable.source if stage == "backward" else executable.program
    return to_dot(list(program.outputs), name=stage, updates=program.updates)


def _viz_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", help="a Python script that calls gc.compile")
    parser.add_argument("--stage", choices=(*STAGES, "all"), default="all",
                        help="which graph to draw (default: all of them)")
    parser.add_argument("--report", action="store_true",
                        help="also print each compiled function's optimization report")
    parser.add_argument("-o", "--output", default=None,
                        help="a directory for the files (default: the current directory); "
                             "with one graph to draw, may name the exact .dot/.svg/.png file")


def _output(output: str | None) -> tuple[Path, Path | None]:
    """The directory for the drawings and, if -o names a file, that file."""
    from graphc.viz import DOT_SUFFIXES, IMAGE_FORMATS, dot_program

    if output is None:
        return Path.cwd(), None
    out = Path(output)
    if out.suffix == "" or out.is_dir() or output.endswith(("/", "\\")):
        return out, None
    known = DOT_SUFFIXES + tuple("." + f for f in IMAGE_FORMATS)
    if out.suffix.lower() not in known:
        raise CommandError(f"-o {output}: a drawing is one of {', '.join(known)} (or give a "
                           "directory)")
    if out.suffix.lower() not in DOT_SUFFIXES and dot_program() is None:  # fail before running
        raise CommandError(f"-o {output}: writing a .{out.suffix[1:]} needs Graphviz's `dot` "
                           "program, which is not on PATH: install Graphviz or use -o FILE.dot")
    return out.parent, out


def _viz_targets(script: Path, count: int, stages: Sequence[str], directory: Path,
                 exact: Path | None) -> list[tuple[int, str, Path]]:
    """(function index, stage, file) of every drawing to write: `exact` when there is one
    drawing, else <script-stem>.<index>.<stage>.dot in `directory`."""
    if exact is not None and count * len(stages) == 1:
        return [(0, stages[0], exact)]
    return [(k, stage, directory / f"{script.stem}.{k}.{stage}.dot")
            for k in range(count) for stage in stages]


@command("viz", "draw the graphs a script compiles (forward, backward, optimized)",
         _viz_arguments)
def viz(args: argparse.Namespace) -> int:
    from graphc import viz as drawing

    script = _script_path(args.script)
    directory, exact = _output(args.output)
    with recording_compiles() as compiled:
        run_script(script)
    if not compiled:
        print(f"graphc viz: {script.name} compiled nothing (it made no gc.compile call)",
              file=sys.stderr)
        return 1
    if args.report:
        for k, executable in enumerate(compiled):
            print(f"# function {k}: {executable!r}\n{executable.report()}")
    stages = STAGES if args.stage == "all" else (args.stage,)
    images = drawing.dot_program() is not None
    for k, stage, path in _viz_targets(script, len(compiled), stages, directory, exact):
        text = stage_dot(compiled[k], stage)
        paths = [path]
        if images and path.suffix.lower() in drawing.DOT_SUFFIXES:
            paths.append(path.with_suffix(".svg"))  # a picture beside the .dot
        for target in paths:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                drawing.write(text, target)
            except (OSError, RuntimeError) as exc:  # no Graphviz, dot failed, unwritable
                raise CommandError(str(exc)) from None
            print(target)
    if not images:
        print("graphc viz: Graphviz's dot is not installed, so only .dot files were written",
              file=sys.stderr)
    return 0


# ----- graphc run ---------------------------------------------------------------------------

def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", help="the Python script to run as __main__")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")


@command("run", "run a Python script as __main__ with the given arguments", _run_arguments)
def run(args: argparse.Namespace) -> int:
    run_script(_script_path(args.script), args.args)
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
    from graphc.backends.llvm import cache as disk

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
                        help="clear: delete every cached object file and temporary file; "
                             "info: location and size")


def _cache_entries() -> tuple[Path, list[Path]]:
    """The cache folder and its entries (only files named as the cache names them)."""
    from graphc.backends.llvm import cache as disk

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
    from graphc.backends.llvm import cache as disk

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
    for k, paths in enumerate((entries, temps)):
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
    return Path(__file__).resolve().parent.parent


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


# ----- entry point ----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphc", description="graphc: a symbolic graph compiler for neural networks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS.values():
        cmd.arguments(sub.add_parser(cmd.name, help=cmd.help, description=cmd.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `graphc ARGV...`; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return COMMANDS[args.command].run(args)
    except ScriptFailed as exc:
        return exc.status
    except CommandError as exc:
        print(f"graphc: error: {exc}", file=sys.stderr)
        return exc.status


if __name__ == "__main__":
    sys.exit(main())
