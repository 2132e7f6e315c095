"""The system tools an export calls: the C compiler (the runtime, the shared library),
the linker (`ld -r`, merging object files into one) and objcopy (hiding every symbol but
the API). Exporting is a build step, so calling them is fine; running the result needs
none of them."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class ExportError(RuntimeError):
    """An export could not be built (a tool missing or failing), with what to do."""


@dataclass(frozen=True)
class Toolchain:
    """The commands found: `cc` (a list: $CC may carry flags), `ld` and `objcopy` (None
    where absent)."""

    cc: list[str] | None
    ld: str | None
    objcopy: str | None

    def require_cc(self) -> list[str]:
        if self.cc is None:
            raise ExportError("exporting a C library needs a C compiler to build its small "
                              "runtime (context, weights, worker threads) and the shared "
                              "library: none found (looked for $CC, cc, gcc, clang); install "
                              "one or set CC")
        return self.cc


def find() -> Toolchain:
    """The C compiler ($CC, else cc, gcc or clang), ld and objcopy on PATH (or, for ld and
    objcopy, the ones the compiler reports using)."""
    cc = None
    if os.environ.get("CC", "").strip():
        words = shlex.split(os.environ["CC"])
        if shutil.which(words[0]):
            cc = words
    if cc is None:
        found = next((shutil.which(n) for n in ("cc", "gcc", "clang") if shutil.which(n)), None)
        cc = [found] if found else None
    return Toolchain(cc, _program("ld", cc), _program("objcopy", cc))


def _program(name: str, cc: list[str] | None) -> str | None:
    found = shutil.which(name)
    if found or cc is None:
        return found
    try:  # the compiler's own, e.g. a cross toolchain's
        done = subprocess.run([*cc, f"-print-prog-name={name}"], capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    reported = done.stdout.strip()
    return shutil.which(reported) if reported else None


def run(command: Sequence[str], what: str, cwd: Path | None = None) -> None:
    """Run a build command; ExportError with its output if it fails."""
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, cwd=cwd,
                              timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExportError(f"{what}: could not run {shlex.join(command)}: {exc}") from None
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()
        raise ExportError(f"{what} failed (exit status {done.returncode}): "
                          f"{shlex.join(command)}\n{output}")
