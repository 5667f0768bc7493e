"""The side-by-side ratio table every ``benchmarks/bench_*.py`` script prints.

A row is ``(benchmark, ours, baseline, ratio, goal, passed)``: ``ours`` and
``baseline`` are already formatted (``"1.84 us"``), ``ratio`` is a float
printed as ``1.23x``, ``goal`` a string such as ``"<= 1.3x"`` and ``passed``
a bool (None for an informational row without a goal).
"""

from __future__ import annotations

from collections.abc import Sequence

HEADER = ("benchmark", "ours", "baseline", "ratio", "goal", "result")


def format_ns(ns: float) -> str:
    """A duration in nanoseconds with a readable unit: ``"812 ns"``, ``"1.84 us"``, ``"3.1 ms"``."""
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.2f} us"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.2f} ms"
    return f"{ns / 1_000_000_000:.2f} s"


Row = tuple[str, str, str, float, str, bool | None]


def print_table(rows: Sequence[Row], title: str = "") -> bool:
    """Print ``rows`` as an aligned table; True when no row failed its goal."""
    cells = [HEADER] + [
        (name, ours, base, f"{ratio:.2f}x", goal, "-" if ok is None else ("PASS" if ok else "FAIL"))
        for name, ours, base, ratio, goal, ok in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    if title:
        print(title)
    for i, row in enumerate(cells):
        padded = [
            cell.ljust(w) if j == 0 else cell.rjust(w)
            for j, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(padded))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return all(ok is not False for *_, ok in rows)
