"""The per-op report of ONNX's node tests: each test is tagged with its op and graphc
backend (tests/onnx/node_suite.py), and the end of the run prints passed / failed /
excluded counts per op and backend."""

from __future__ import annotations

from collections import defaultdict

import pytest

_counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Tag every report of a node test with its op and graphc backend (before the report
    is made, so the setup report carries them too)."""
    cls = getattr(item, "cls", None)
    ops = getattr(cls, "onnx_test_ops", None)
    if ops is not None and call.when == "setup":
        op = ops.get(item.name.removesuffix("_cpu"))
        if op is not None:
            item.user_properties += [("onnx_op", op), ("graphc_backend", cls.graphc_backend)]
    yield


def pytest_runtest_logreport(report):
    props = dict(report.user_properties)
    if "onnx_op" not in props:
        return
    key = (props["graphc_backend"], props["onnx_op"])
    if report.when == "call":
        _counts[key]["passed" if report.passed else "skipped" if report.skipped
                     else "failed"] += 1
    elif report.when == "setup" and report.skipped:
        _counts[key]["skipped"] += 1
    elif report.when == "setup" and report.failed:
        _counts[key]["failed"] += 1


def pytest_terminal_summary(terminalreporter):
    if not _counts:
        return
    write = terminalreporter.write_line
    backends = sorted({b for b, _ in _counts})
    ops = sorted({op for _, op in _counts})
    terminalreporter.section("ONNX node tests per op (passed/failed/excluded)")
    write(f"{'op':<28}" + "".join(f"{b:>18}" for b in backends))
    totals = {b: defaultdict(int) for b in backends}
    for op in ops:
        cells = []
        for b in backends:
            c = _counts.get((b, op))
            if c is None:
                cells.append(f"{'-':>18}")
                continue
            for k, v in c.items():
                totals[b][k] += v
            cells.append(f"{c['passed']:>8}/{c['failed']}/{c['skipped']:<6}")
        write(f"{op:<28}" + "".join(cells))
    write(f"{'total':<28}" + "".join(
        f"{totals[b]['passed']:>8}/{totals[b]['failed']}/{totals[b]['skipped']:<6}"
        for b in backends))
