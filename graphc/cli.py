"""The `graphc` command: draw the graphs a script compiles, run scripts, report the setup.

Each subcommand is one function registered with `@command`; `graphc --help` lists them.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import runpy
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

STAGES = ("forward", "backward", "optimized")


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
    optimization), "backward" (outputs and update values, gradient nodes marked) or
    "optimized" (what runs)."""
    from graphc.viz import to_dot

    if stage == "forward":
        return to_dot(list(executable.source.outputs), name="forward")
    program = executable.source if stage == "backward" else executable.program
    return to_dot(list(program.outputs), name=stage, updates=program.updates)


def _viz_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", help="a Python script that calls gc.compile")
    parser.add_argument("--stage", choices=(*STAGES, "all"), default="all",
                        help="which graph to draw (default: all three)")
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
    ]


@command("info", "print the versions of graphc and its dependencies, LLVM and the host CPU",
         lambda parser: None)
def info(args: argparse.Namespace) -> int:
    print("\n".join(info_lines()))
    return 0


# ----- graphc cache -------------------------------------------------------------------------

def _cache_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("clear", "info"),
                        help="clear: delete every cached object file; info: location and size")


def _cache_entries() -> tuple[Path, list[Path]]:
    """The cache folder and its entries (only files named as the cache names them)."""
    from graphc.backends.llvm import cache as disk

    folder = disk.directory()
    entries = [p for p in folder.glob("*.o") if len(p.stem) == 64
               and all(c in "0123456789abcdef" for c in p.stem)] if folder.is_dir() else []
    return folder, sorted(entries)


@command("cache", "show the location and size of the compiled-code cache, or clear it",
         _cache_arguments)
def cache(args: argparse.Namespace) -> int:
    folder, entries = _cache_entries()
    size = sum(p.stat().st_size for p in entries)
    if args.action == "info":
        print(f"{folder}: {len(entries)} entries, {size / 1e6:.1f} MB")
        return 0
    removed = 0
    for entry in entries:
        with contextlib.suppress(FileNotFoundError):  # another process may clear it too
            entry.unlink()
            removed += 1
    print(f"removed {removed} entries ({size / 1e6:.1f} MB) from {folder}")
    return 0


# ----- graphc bench -------------------------------------------------------------------------

def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="time spent timing each model on each backend (default 1)")
    parser.add_argument("--backends", nargs="+", default=["numpy", "llvm"],
                        choices=["numpy", "llvm"])


def _bench_models():
    """(name, model, x, y): small training problems with the shapes of the examples."""
    import numpy as np

    from graphc import nn

    rng = np.random.default_rng(0)
    nn.manual_seed(0)
    images = rng.random((64, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 10, 64).astype(np.int32)
    mlp = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))
    cnn = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Dropout(0.3), nn.Linear(128, 10))
    encoder = nn.Sequential(nn.Embedding(10, 64), nn.TransformerEncoderLayer(64, 4, 128, 0.0),
                            nn.Linear(64, 10))
    ids = rng.integers(0, 10, (64, 8)).astype(np.int32)
    return [("mlp 64-128-10, batch 64", mlp, images.reshape(64, 64), labels),
            ("cnn digits, batch 64", cnn, images, labels),
            ("transformer layer d=64, batch 64x8", encoder, ids, ids)]


@command("bench", "time one compiled training step of small models on each backend",
         _bench_arguments)
def bench(args: argparse.Namespace) -> int:
    import time

    import graphc as gc

    backends = list(dict.fromkeys(args.backends))
    print(f"{'training step':36s}" + "".join(f"{b + ' ms':>12s}" for b in backends)
          + ("   numpy/llvm" if backends == ["numpy", "llvm"] else ""))
    for name, model, x, y in _bench_models():
        xs = gc.input("x", ("N",) + x.shape[1:], x.dtype)
        ys = gc.input("y", ("N",) + y.shape[1:], y.dtype)
        loss = gc.softmax_cross_entropy(model(xs, training=True), ys)
        updates = gc.optim.Adam(model.params()).updates(loss)
        times = []
        for backend in backends:
            step = gc.compile([xs, ys], loss, updates=updates, backend=backend)
            step(x, y)  # warm up
            calls, start = 0, time.perf_counter()
            while calls < 3 or time.perf_counter() - start < args.seconds:
                step(x, y)
                calls += 1
            times.append((time.perf_counter() - start) / calls * 1e3)
        ratio = f"{times[0] / times[1]:12.1f}x" if len(times) == 2 and backends[1] == "llvm" \
            else ""
        print(f"{name:36s}" + "".join(f"{t:12.3f}" for t in times) + ratio)
    return 0


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
