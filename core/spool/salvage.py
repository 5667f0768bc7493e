"""Reading what is left of a damaged ``spool.db``: its ledger, meta, pending
records and dead letters, each table as far as SQLite can read it. Used by
``Store`` when the database fails to open or its ``quick_check``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .ledger import Ledger

# seq, created, items, payload
SalvagedRow = tuple[int, float, int, bytes]
# seq, created, items, size, reason, dead_at, payload: as stored
DeadRow = tuple[int, float, int, int, str, float, bytes]


def read_what_you_can(
    path: Path,
) -> tuple[Ledger | None, dict[str, str], list[SalvagedRow], list[DeadRow]]:
    """(ledger or None when it cannot be trusted, meta, records, dead letters)."""
    counters: list[tuple[str, int, int, int]] = []
    meta: dict[str, str] = {}
    rows: list[SalvagedRow] = []
    dead: list[DeadRow] = []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return None, meta, rows, dead
    queries: list[tuple[str, Callable[[Any], object]]] = [
        ("SELECT key, value FROM meta", lambda r: meta.__setitem__(r[0], r[1])),
        ("SELECT name, records, items, bytes FROM counters", counters.append),
        ("SELECT seq, created, items, payload FROM records ORDER BY seq", rows.append),
        ("SELECT * FROM dead_letters ORDER BY seq", dead.append),
    ]
    try:
        for query, sink in queries:
            try:
                for row in conn.execute(query):
                    sink(row)
            except sqlite3.Error:
                continue
    finally:
        conn.close()
    # Counters without meta are not trustworthy.
    ledger = Ledger.from_rows(counters) if counters and meta else None
    return ledger, meta, rows, dead
