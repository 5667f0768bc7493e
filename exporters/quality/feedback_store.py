"""Where predictions wait for their ground truth: a bounded SQLite table.

One row per (model, version, request_id) with the normalized prediction and
the time it was made. Bounded two ways, both counted by the caller: entries
older than ``ttl_seconds`` are deleted by ``expire()``, and each (model,
version) keeps at most ``max_entries`` (the oldest go first). A file path
survives restarts and can be shared by the workers of one server (WAL mode);
``None`` keeps the table in memory.

Not thread-safe: the feedback worker serializes calls.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    request_id TEXT NOT NULL,
    pred_class TEXT,
    pred_value REAL,
    ts REAL NOT NULL,
    UNIQUE (model, version, request_id)
);
CREATE INDEX IF NOT EXISTS predictions_age ON predictions (model, version, ts);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
SCHEMA_VERSION = "1"


@dataclass(frozen=True, slots=True)
class StoredPrediction:
    pred_class: str | None
    pred_value: float | None
    timestamp: float
    expired: bool = False  # older than the TTL but not yet swept: not joinable


class FeedbackStore:
    def __init__(
        self,
        path: str | Path | None,
        *,
        ttl_seconds: float,
        max_entries: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"feedback_max_entries: expected at least 1, got {max_entries}")
        if ttl_seconds <= 0:
            raise ValueError(f"feedback_ttl: expected a positive duration, got {ttl_seconds}")
        self.path = None if path is None else Path(path)
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._pid = os.getpid()
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        if self.path is None:
            target = ":memory:"
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target = str(self.path)
        db = sqlite3.connect(target, timeout=5.0, isolation_level=None, check_same_thread=False)
        if self.path is not None:
            db.execute("PRAGMA journal_mode=WAL")
            # A crash may lose the last transactions, never corrupt the file;
            # losing a few pending predictions only means a few unmatched labels.
            db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise ValueError(
                f"feedback_db {target}: schema version {row[0]} is not supported by this modelmon "
                f"(expects {SCHEMA_VERSION}); point feedback_db at a new file"
            )
        return db

    def reopen_after_fork(self) -> None:
        """A forked child must not use its parent's SQLite connection."""
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._db = self._connect()

    def put_many(
        self,
        model: str,
        version: str,
        rows: Sequence[tuple[str, str | None, float | None, float]],
    ) -> int:
        """Store (request_id, class, value, timestamp) rows; return entries evicted by max_entries."""
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany(
                "INSERT OR REPLACE INTO predictions (model, version, request_id, pred_class, "
                "pred_value, ts) VALUES (?, ?, ?, ?, ?, ?)",
                [(model, version, *row) for row in rows],
            )
            (count,) = db.execute(
                "SELECT COUNT(*) FROM predictions WHERE model=? AND version=?", (model, version)
            ).fetchone()
            excess = int(count) - self.max_entries
            if excess > 0:
                db.execute(
                    "DELETE FROM predictions WHERE rowid IN (SELECT rowid FROM predictions "
                    "WHERE model=? AND version=? ORDER BY ts LIMIT ?)",
                    (model, version, excess),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return max(excess, 0)

    def take(self, model: str, version: str, request_id: str) -> StoredPrediction | None:
        """Remove and return the prediction stored under ``request_id`` (one label each)."""
        row = self._db.execute(
            "DELETE FROM predictions WHERE model=? AND version=? AND request_id=? "
            "RETURNING pred_class, pred_value, ts",
            (model, version, request_id),
        ).fetchone()
        if row is None:
            return None
        # Expired but not yet swept: the TTL promise holds anyway.
        return StoredPrediction(row[0], row[1], row[2], row[2] < self._clock() - self.ttl_seconds)

    def expire(self, model: str, version: str) -> int:
        """Delete entries older than the TTL; return how many."""
        cursor = self._db.execute(
            "DELETE FROM predictions WHERE model=? AND version=? AND ts < ?",
            (model, version, self._clock() - self.ttl_seconds),
        )
        return max(cursor.rowcount, 0)

    def count(self, model: str, version: str) -> int:
        (n,) = self._db.execute(
            "SELECT COUNT(*) FROM predictions WHERE model=? AND version=?", (model, version)
        ).fetchone()
        return int(n)

    def close(self) -> None:
        self._db.close()
