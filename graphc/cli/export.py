"""`graphc export SCRIPT.py -o DIR [-k K] [--name NAME] [--target T] [--dims N=32]
[--embed-weights] [-- SCRIPT ARGS]`: run a script as __main__, then export the k-th function
it compiled (gc.export) with the shapes of its last call (or --dims)."""

from __future__ import annotations

import argparse

from graphc.cli.base import CommandError, command
from graphc.cli.scripts import recording_compiles, run_script, script_path

HELP = "export the k-th function a script compiles as a C library (header, object, .so)"


def _arguments(parser: argparse.ArgumentParser) -> None:
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
    parser.epilog = "Arguments after -- are the script's."


@command("export", HELP, _arguments, script_args=True)
def export_command(args: argparse.Namespace) -> int:
    """Run the script, export the chosen function, list the files. Exit status 0; 1 when
    the script fails or compiles nothing; 2 for bad arguments or a failed export."""
    from graphc.export.api import export
    from graphc.export.toolchain import ExportError

    script = script_path(args.script)
    dims = _dims(args.dims)
    with recording_compiles() as recorder:
        run_script(script, args.script_args)
    if not recorder:
        raise CommandError(f"{script.name} compiled nothing (it made no gc.compile call)", 1)
    if not 0 <= args.k < len(recorder):
        raise CommandError(f"-k {args.k}: {script.name} compiled {len(recorder)} function(s), "
                           f"numbered 0 to {len(recorder) - 1}")
    chosen = recorder[args.k]
    try:
        written = export(chosen, args.output, args.name, target=args.target,
                         embed_weights=args.embed_weights, dims=dims)
    except (ExportError, TypeError, ValueError) as exc:
        raise CommandError(str(exc)) from None
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
            raise CommandError(f"--dims {text}: expected NAME=INT,... such as N=32")
        dims[name.strip()] = int(value)
    return dims
