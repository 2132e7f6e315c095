"""`graphc profile`: run a script, then profile one function it compiled with the arguments
of that function's last call, print where the time goes and write a trace for the
standard viewers (https://ui.perfetto.dev, chrome://tracing)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from graphc.cli.base import CommandError, command
from graphc.cli.scripts import recording_compiles, run_script, script_path

VIEWERS = "open it in https://ui.perfetto.dev or chrome://tracing"


def _profile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", help="a Python script that calls gc.compile and the "
                                       "compiled function; arguments for it go after a "
                                       "'--': graphc profile SCRIPT -- ARGS")
    parser.add_argument("-k", "--function", default="0", metavar="K",
                        help="which compiled function: its index in the order the script "
                             "compiled them (default 0, the first), or its name")
    parser.add_argument("-o", "--output", default=None,
                        help="the trace file (.json), or a directory for it (default: "
                             "<script>.<k>.<function>.trace.json in the current directory)")
    parser.add_argument("--calls", type=int, default=10,
                        help="calls to average each kernel's time over (default 10)")
    parser.add_argument("--top", type=int, default=25,
                        help="kernels to list, slowest first (default 25)")


def pick(compiled: Sequence, which: str) -> int:
    """The index of the function `which` names: an index, or a name (the first of it)."""
    listing = "; ".join(f"{k}: {e.name}" for k, e in enumerate(compiled))
    if which.lstrip("-").isdigit():
        k = int(which)
        if not 0 <= k < len(compiled):
            raise CommandError(f"-k {which}: the script compiled {len(compiled)} function(s) "
                               f"({listing})")
        return k
    for k, executable in enumerate(compiled):
        if executable.name == which:
            return k
    raise CommandError(f"-k {which}: no compiled function has that name ({listing})")


def trace_path(output: str | None, script: Path, k: int, name: str) -> Path:
    """Where the trace goes: -o FILE.json, or <script>.<k>.<function>.trace.json in -o DIR
    (default: the current directory)."""
    from graphc.ir.program import file_stem

    default = f"{script.stem}.{k}.{file_stem(name)}.trace.json"
    if output is None:
        return Path.cwd() / default
    out = Path(output)
    if out.is_dir() or out.suffix == "" or output.endswith(("/", "\\")):
        return out / default
    return out


@command("profile", "profile a function a script compiles; write a Chrome/Perfetto trace",
         _profile_arguments, script_args=True)
def profile(args: argparse.Namespace) -> int:
    script = script_path(args.script)
    if args.calls < 1:
        raise CommandError(f"--calls must be at least 1, got {args.calls}")
    if args.output is not None and Path(args.output).suffix not in ("", ".json") \
            and not Path(args.output).is_dir():
        raise CommandError(f"-o {args.output}: a trace is a .json file (or give a directory)")
    with recording_compiles() as compiled:
        run_script(script, args.script_args)
    if not compiled:
        print(f"graphc profile: {script.name} compiled nothing (it made no gc.compile call)",
              file=sys.stderr)
        return 1
    k = pick(compiled, args.function)
    executable = compiled[k]
    if executable.last_arguments is None:
        raise CommandError(f"function {k} ({executable.name}) was compiled but never called: "
                           "there are no arguments to profile it with")
    result = executable.profile(*executable.last_arguments, calls=args.calls)
    print(result.format(top=args.top), end="")
    path = trace_path(args.output, script, k, executable.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        result.save(path)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc}") from None
    print(f"wrote {path} ({VIEWERS})")
    return 0
