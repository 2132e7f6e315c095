"""A process's resident memory, and its peak since a reset, from Linux's /proc: the memory
figures of the training-step rows (issue 15 B: graphc's peak RSS at most PyTorch eager's).

Writing 5 to /proc/self/clear_refs resets the peak (VmHWM) to the current RSS, so each
workload a child measures gets a peak of its own, not the process's peak so far. Where
/proc is missing (not Linux) every figure is None and the report says so."""

from __future__ import annotations

from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_bytes(field: str) -> int | None:
    """A `field:  N kB` line of /proc/self/status, in bytes (None without /proc)."""
    try:
        text = _STATUS.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return None


def resident() -> int | None:
    """The process's resident set size now, in bytes."""
    return _status_bytes("VmRSS")


def reset_peak() -> bool:
    """Start a new peak at the current RSS; False where the OS does not allow it."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak() -> int | None:
    """The most resident memory since the last reset_peak (or since the process began)."""
    return _status_bytes("VmHWM")


def measured(run) -> tuple[object, dict]:
    """run()'s result and {"base_rss", "peak_rss"} in bytes over it: the RSS before, and
    the peak while it ran (both None where they cannot be measured)."""
    fresh = reset_peak()
    base = resident()
    result = run()
    return result, {"base_rss": base, "peak_rss": peak() if fresh else None}
