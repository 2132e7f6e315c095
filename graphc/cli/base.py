"""The pieces every subcommand uses: the registry `@command` fills, and the two failures
`main` reports (a one-line error, or a user's script that failed)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


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
    script_args: bool = False  # `graphc NAME ... -- ARGS`: ARGS go to the script


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None],
            script_args: bool = False):
    """Register the decorated function as the subcommand `name`; with script_args, what
    follows a "--" is left out of parsing and given to it as args.script_args."""
    def register(run: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = Command(name, help, arguments, run, script_args)
        return run
    return register
