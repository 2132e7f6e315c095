"""The `graphc` command: draw the graphs a script compiles, profile them, run scripts,
report the setup.

Each subcommand is one function registered with `@command` (graphc/cli/base.py) in the
module of its own job; `graphc --help` lists them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from graphc.cli import (  # noqa: F401  (registers their subcommands)
    export,
    onnx,
    profile,
    system,
    tune,
    viz,
)
from graphc.cli.base import COMMANDS, CommandError, ScriptFailed
from graphc.cli.scripts import recording_compiles, run_script
from graphc.cli.viz import STAGES, stage_dot

__all__ = ["main", "build_parser", "recording_compiles", "run_script", "stage_dot", "STAGES",
           "CommandError", "ScriptFailed"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphc", description="graphc: a symbolic graph compiler for neural networks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS.values():
        cmd.arguments(sub.add_parser(cmd.name, help=cmd.help, description=cmd.help))
    return parser


def _split_script_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """For a subcommand that runs a script (`graphc viz SCRIPT [options] -- ARGS`): the
    arguments before the first "--", and ARGS, which are the script's."""
    if argv and argv[0] in COMMANDS and COMMANDS[argv[0]].script_args and "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []


def main(argv: Sequence[str] | None = None) -> int:
    """Run `graphc ARGV...`; returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    argv, script_args = _split_script_args(argv)
    args = parser.parse_args(argv)
    args.script_args = script_args
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
