"""The `graphc` command: draw the graphs a script compiles, profile them, run scripts,
report the setup.

Each subcommand is one function registered with `@command` (graphc/cli/base.py) in the
module of its own job; `graphc --help` lists them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from graphc.cli import system, viz  # noqa: F401  (registers their subcommands)
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
