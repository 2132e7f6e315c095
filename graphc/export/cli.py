"""`graphc export SCRIPT.py -o DIR [-k K] [--name NAME] [--target T] [--dims N=32]
[--embed-weights] [-- SCRIPT ARGS]`: run a script as __main__, then export the k-th function
it compiled (gc.export) with the shapes of its last call (or --dims).

The command line package dispatches `graphc export ARGV...` to `export_command(ARGV)`
(the arguments after `--` go to the script, so it takes the raw list). This module imports
nothing of the command line (the layering: graphc.cli sits above graphc.export), so it
runs scripts itself."""

from __future__ import annotations

import argparse
import contextlib
import runpy
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

HELP = "export the k-th function a script compiles as a C library (header, object, .so)"


def parser(prog: str = "graphc export") -> argparse.ArgumentParser:
    """The command's options (the script's own arguments follow `--`)."""
    parser = argparse.ArgumentParser(prog=prog, description=HELP,
                                     epilog="Arguments after -- are the script's.")
    parser.add_argument("script", help="a Python script that calls gc.compile")
    parser.add_argument("-o", "--output", required=True, help="the directory for the files")
    parser.add_argument("-k", type=int, default=0,
                        help="which compiled function: the k-th gc.compile call (default 0)")
    parser.add_argument("--name", default="model",
                        help="the library's name, which prefixes every C symbol (default model)")
    parser.add_argument("--target", default="host",
                        help="the CPU to compile for: host (default), x86-64-v2, x86-64-v3, "
                             "x86-64-v4 or an LLVM CPU name")
    parser.add_argument("--dims", default=None, metavar="N=32,...",
                        help="the value of each symbolic dim (default: the shapes of the "
                             "function's last call in the script)")
    parser.add_argument("--embed-weights", action="store_true",
                        help="also put the weights in the object (NAME_create(NULL, ...))")
    return parser


class _Failed(Exception):
    """A failure already worded for the user, with the exit status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def export_command(argv: Sequence[str] | None = None, prog: str = "graphc export") -> int:
    """`graphc export ARGV...`: run the script, export the chosen function, list the files;
    returns the exit status (0; 1 when the script fails or compiles nothing; 2 for bad
    arguments or a failed export)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser(prog).parse_args(argv[:split])
    try:
        return _run(args, argv[split + 1:])
    except _Failed as failure:
        if str(failure):
            print(f"graphc export: error: {failure}", file=sys.stderr)
        return failure.status


def _run(args: argparse.Namespace, script_args: list[str]) -> int:
    from graphc import compiler  # the recorder of gc.compile calls
    from graphc.export.api import export
    from graphc.export.toolchain import ExportError

    script = Path(args.script)
    if not script.is_file():
        raise _Failed(f"no such script: {args.script}", 2)
    dims = _dims(args.dims)
    recorder: list = []
    compiler._recorders.append(recorder)
    try:
        _run_script(script.resolve(), script_args)
    finally:
        compiler._recorders[:] = [r for r in compiler._recorders if r is not recorder]
    if not recorder:
        raise _Failed(f"{script.name} compiled nothing (it made no gc.compile call)", 1)
    if not 0 <= args.k < len(recorder):
        raise _Failed(f"-k {args.k}: {script.name} compiled {len(recorder)} function(s), "
                      f"numbered 0 to {len(recorder) - 1}", 2)
    chosen = recorder[args.k]
    try:
        written = export(chosen, args.output, args.name, target=args.target,
                         embed_weights=args.embed_weights, dims=dims)
    except (ExportError, TypeError, ValueError) as exc:
        raise _Failed(str(exc), 2) from None
    print(f"exported function {args.k} of {script.name}, {chosen!r}, as {written.name}:")
    for path in written.files.values():
        print(f"  {path} ({path.stat().st_size:,} bytes)")
    return 0


def _dims(text: str | None) -> dict[str, int] | None:
    """--dims N=32,B=4 as a dict."""
    if text is None:
        return None
    dims = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if not name or not value.strip().lstrip("-").isdigit():
            raise _Failed(f"--dims {text}: expected NAME=INT,... such as N=32", 2)
        dims[name.strip()] = int(value)
    return dims


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


def _run_script(script: Path, args: Sequence[str]) -> None:
    """Run `script` as __main__; its error is shown as Python would (without our frames)
    and ends the command with status 1, as a nonzero sys.exit does."""
    with _as_main(script, args):
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (None, 0):
                if not isinstance(exc.code, int):
                    print(exc.code, file=sys.stderr)
                raise _Failed("", exc.code if isinstance(exc.code, int) else 1) from None
        except KeyboardInterrupt:
            raise _Failed("", 130) from None
        except Exception as exc:  # the script's own error
            tb = exc.__traceback__
            while tb is not None and Path(tb.tb_frame.f_code.co_filename) != script:
                tb = tb.tb_next
            traceback.print_exception(type(exc), exc, tb)
            raise _Failed(f"{script.name} raised {type(exc).__name__}", 1) from None


if __name__ == "__main__":  # python -m graphc.export.cli SCRIPT -o DIR ...
    sys.exit(export_command())
