"""The spool's SQLite store: pending records, dead letters and the ledger.

Every change and the ledger entries that account for it are written in one
transaction, so the accounting identity survives any crash. Used only by
``Spool``, which serialises access through ``Store.lock``. Opening a damaged
database is ``salvage``'s job.
"""

from __future__ import annotations

import itertools
import logging
import operator
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from . import crypto, sql
from .files import make_private, write_private
from .ledger import Ending, Ledger, Tally
from .salvage import read_what_you_can
from .sql import Row

log = logging.getLogger(__name__)

DB_NAME = "spool.db"
ID_FILE = "spool.id"
_SYNC = {"always": "FULL", "interval": "NORMAL", "never": "OFF"}
_CHUNK = 500  # SQLite's default limit on host parameters is far above this
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY, records INTEGER NOT NULL, items INTEGER NOT NULL,
    bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY, created REAL NOT NULL, items INTEGER NOT NULL,
    size INTEGER NOT NULL, payload BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS records_created ON records (created);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY, created REAL NOT NULL, items INTEGER NOT NULL,
    size INTEGER NOT NULL, reason TEXT NOT NULL, dead_at REAL NOT NULL,
    payload BLOB NOT NULL);
"""
# seq, created, payload, items, reason, dead_at: a DeadLetter's fields
DeadLetterRow = tuple[int, float, bytes, int, str, float]
_items_of = operator.itemgetter(2)
_size_of = operator.itemgetter(3)
_T = TypeVar("_T")


class Store:
    def __init__(self, directory: Path, fsync: str) -> None:
        self.lock = threading.RLock()
        self._dir = directory
        self._db_path = directory / DB_NAME
        self._sync_mode = _SYNC[fsync]
        self._ledger = Ledger()
        self.ingested_seq = 0
        self.spool_id = ""
        try:
            self._conn = self._connect()
            self._load(check=True)
        except sqlite3.DatabaseError as exc:
            self._salvage(exc)

    # -- opening, checking, salvaging ----------------------------------------

    def _connect(self) -> sqlite3.Connection:
        make_private(self._db_path)
        conn = sqlite3.connect(self._db_path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._sync_mode}")
        # Bounded memory whatever the backlog: 4 MiB of page cache, WAL trimmed.
        conn.execute("PRAGMA cache_size=-4096")
        conn.execute("PRAGMA journal_size_limit=16777216")
        conn.executescript(_SCHEMA)
        return conn

    def _load(self, check: bool) -> None:
        conn = self._conn
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        id_file = self._dir / ID_FILE
        if "spool_id" not in meta:
            if id_file.exists():
                # The database vanished or was emptied under its journals.
                raise sqlite3.DatabaseError("spool.db has no metadata but spool.id exists")
            meta["spool_id"] = uuid.uuid4().hex[:16]
            self._set_meta(spool_id=meta["spool_id"], ingested_seq="0", clean="1")
            write_private(id_file, meta["spool_id"] + "\n")
        self.spool_id = meta["spool_id"]
        self.ingested_seq = int(meta.get("ingested_seq", "0"))
        self._ledger = Ledger.from_rows(
            conn.execute("SELECT name, records, items, bytes FROM counters"))
        if check and meta.get("clean") != "1":
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {result}")
            self._reconcile()

    def _reconcile(self) -> None:
        """After an unclean stop: the rows on disk are the truth for what is pending."""
        on_disk = self.count_rows()
        expected = self.pending().records
        if on_disk == expected:
            return
        log.warning(
            "modelmon spool %s: %d records pending on disk, counters say %d; "
            "the difference is counted as dropped 'corrupt'", self._dir, on_disk, expected,
        )
        if on_disk < expected:
            self.count_corrupt(expected - on_disk)
        else:
            self._tx(lambda d: d.accepted.add(on_disk - expected, 0, 0))

    def _salvage(self, exc: BaseException) -> None:
        aside = self._dir / (DB_NAME + ".corrupt")
        log.error(
            "modelmon spool %s: %s is unreadable (%s); moved to %s, salvaging what can be "
            "read; the rest is counted as dropped 'corrupt'", self._dir, DB_NAME, exc, aside,
        )
        try:
            self._conn.close()
        except Exception:
            pass
        for suffix in ("", "-wal", "-shm"):
            src = self._dir / (DB_NAME + suffix)
            if src.exists():
                src.replace(self._dir / (DB_NAME + ".corrupt" + suffix))
        (self._dir / ID_FILE).unlink(missing_ok=True)
        old_ledger, old_meta, rows, dead = read_what_you_can(aside)
        self._conn = self._connect()
        self._load(check=False)
        if old_meta.get("spool_id"):
            # Same id namespace: seqs continue after the highest one seen.
            self._set_meta(spool_id=old_meta["spool_id"])
            write_private(self._dir / ID_FILE, old_meta["spool_id"] + "\n")
            self.spool_id = old_meta["spool_id"]
        self.ingested_seq = max(
            [int(old_meta.get("ingested_seq", "0"))] + [r[0] for r in rows] + [d[0] for d in dead]
        )

        def restore(d: Ledger) -> None:
            c = self._conn
            c.executemany(
                "INSERT OR IGNORE INTO records (seq, created, items, size, payload)"
                " VALUES (?, ?, ?, ?, ?)",
                [(s, cr, it, len(p), p) for s, cr, it, p in rows],
            )
            c.executemany(
                "INSERT OR IGNORE INTO dead_letters VALUES (?, ?, ?, ?, ?, ?, ?)", dead
            )
            crypto.note_key_ids(c, crypto.key_ids_of(
                [(s, cr, it, len(p), p) for s, cr, it, p in rows]
                + [(row[0], row[1], row[2], row[3], row[6]) for row in dead]))
            c.execute(
                "INSERT OR REPLACE INTO meta VALUES ('ingested_seq', ?)", (str(self.ingested_seq),)
            )
            if old_ledger is not None:
                d.merge(old_ledger)
            else:
                d.accepted.add(len(rows), sum(r[2] for r in rows), sum(len(r[3]) for r in rows))

        self._tx(restore)
        on_disk, expected = self.count_rows(), self.pending().records
        lost = max(expected - on_disk, 0 if old_ledger is not None else 1)
        if on_disk > expected:
            self._tx(lambda d: d.accepted.add(on_disk - expected, 0, 0))
        if lost:
            self.count_corrupt(lost)

    # -- transactions --------------------------------------------------------

    def _tx(self, body: Callable[[Ledger], _T]) -> _T:
        """Run ``body`` in one transaction with the ledger entries it makes."""
        deltas = Ledger()
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(deltas)
            rows = deltas.rows()
            if rows:
                conn.executemany(
                    "INSERT INTO counters VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
                    " records = records + excluded.records, items = items + excluded.items,"
                    " bytes = bytes + excluded.bytes",
                    rows,
                )
            conn.execute("COMMIT")
        except BaseException:
            # SQLite has already rolled back a COMMIT that failed for want of
            # space; a second ROLLBACK would raise and hide the real error.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._ledger.merge(deltas)
        return result

    def _set_meta(self, **values: str) -> None:
        self._conn.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", list(values.items())
        )

    # -- writes --------------------------------------------------------------

    def ingest(self, rows: Sequence[Row], drops: dict[str, Tally], trim_to: int | None,
               key_id: str | None = None, scan_keys: bool = False) -> int:
        """Insert journalled rows, count caller-side drops; trim oldest to ``trim_to``
        bytes (drop_oldest). Returns bytes trimmed. ``key_id``: every row is
        sealed under that key; ``scan_keys``: look at each row (recovery)."""

        def body(d: Ledger) -> int:
            c = self._conn
            if rows:
                sql.insert_rows(c, rows)
                if key_id is not None:
                    crypto.note_key_ids(c, {key_id: rows[-1][0]})
                elif scan_keys:
                    crypto.note_key_ids(c, crypto.key_ids_of(rows))
                d.accepted.add(len(rows), sum(map(_items_of, rows)), sum(map(_size_of, rows)))
                last = max(self.ingested_seq, rows[-1][0])
                c.execute("INSERT OR REPLACE INTO meta VALUES ('ingested_seq', ?)", (str(last),))
            for reason, tally in drops.items():
                d.count_drop(reason, tally)
            if trim_to is None:
                return 0
            excess = self.pending().bytes + d.pending().bytes - trim_to
            return self._trim(d, excess) if excess > 0 else 0

        trimmed = self._tx(body)
        if rows:
            self.ingested_seq = max(self.ingested_seq, rows[-1][0])
        return trimmed

    def _trim(self, d: Ledger, excess: int) -> int:
        freed = n = items = 0
        cutoff = None
        for seq, it, size in self._conn.execute(
            "SELECT seq, items, size FROM records ORDER BY seq"
        ):
            freed += size
            n += 1
            items += it
            cutoff = seq
            if freed >= excess:
                break
        if cutoff is None:
            return 0
        self._conn.execute("DELETE FROM records WHERE seq <= ?", (cutoff,))
        d.dropped_for("max_bytes").add(n, items, freed)
        return freed

    def remove(self, seqs: Sequence[int], ending: Ending, reason: str | None = None) -> int:
        """Remove ``seqs`` and count them as ending so (a dead letter is kept, with
        ``reason``); returns the payload bytes freed."""
        dead_reason = (reason or "") if ending == "dead_lettered" else None

        def body(d: Ledger) -> int:
            counter = d.ended(ending, reason if ending == "dropped" else None)
            c = self._conn
            freed = 0
            now = time.time()
            if dead_reason is None and _contiguous(seqs):
                # The common ack: one batch delivered in order. A range is two
                # index lookups instead of a parameter list.
                lo, hi = seqs[0], seqs[-1]
                n, items, size = c.execute(
                    "SELECT COUNT(*), TOTAL(items), TOTAL(size) FROM records"
                    " WHERE seq BETWEEN ? AND ?", (lo, hi),
                ).fetchone()
                if n:
                    c.execute("DELETE FROM records WHERE seq BETWEEN ? AND ?", (lo, hi))
                    counter.add(n, int(items), int(size))
                return int(size)
            for i in range(0, len(seqs), _CHUNK):
                chunk = seqs[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                if dead_reason is not None:
                    c.execute(
                        "INSERT OR REPLACE INTO dead_letters SELECT seq, created, items, size, ?,"
                        f" ?, payload FROM records WHERE seq IN ({marks})",
                        (dead_reason[:4000], now, *chunk),
                    )
                gone = c.execute(
                    f"DELETE FROM records WHERE seq IN ({marks}) RETURNING items, size", chunk
                ).fetchall()
                if gone:
                    size = sum(g[1] for g in gone)
                    counter.add(len(gone), sum(g[0] for g in gone), size)
                    freed += size
            return freed

        return self._tx(body)

    def expire(self, cutoff: float) -> int:
        def body(d: Ledger) -> int:
            gone = self._conn.execute(
                "DELETE FROM records WHERE created < ? RETURNING items, size", (cutoff,)
            ).fetchall()
            if not gone:
                return 0
            size = int(sum(g[1] for g in gone))
            d.dropped_for("max_age").add(len(gone), sum(g[0] for g in gone), size)
            return size

        return self._tx(body)

    def replay(self, seqs: list[int] | None) -> tuple[int, int]:
        def body(d: Ledger) -> tuple[int, int]:
            c = self._conn
            where, params = _where_seqs(seqs)
            c.execute(
                "INSERT OR IGNORE INTO records SELECT seq, created, items, size, payload"
                f" FROM dead_letters {where}", params,
            )
            gone = c.execute(
                f"DELETE FROM dead_letters {where} RETURNING items, size", params
            ).fetchall()
            size = sum(g[1] for g in gone)
            if gone:
                d.accepted.add(len(gone), sum(g[0] for g in gone), size)
            return len(gone), size

        return self._tx(body)

    def purge(self, seqs: list[int] | None) -> int:
        with self.lock:
            where, params = _where_seqs(seqs)
            return self._tx(
                lambda d: int(self._conn.execute(f"DELETE FROM dead_letters {where}",
                                                 params).rowcount))

    def count_corrupt(self, n: int) -> None:
        self._tx(lambda d: d.count_drop("corrupt", Tally(n, n, 0)))

    def sync(self) -> None:
        """A commit with synchronous=FULL: everything committed so far is on disk."""
        self._conn.execute("PRAGMA synchronous=FULL")
        try:
            self._tx(lambda d: self._set_meta(synced_at=repr(time.time())))
        finally:
            self._conn.execute(f"PRAGMA synchronous={self._sync_mode}")

    def mark_open(self) -> None:
        self._tx(lambda d: self._set_meta(clean="0"))

    def close(self, clean: bool) -> None:
        with self.lock:
            if clean:
                self._conn.execute("PRAGMA synchronous=FULL")
                self._tx(lambda d: self._set_meta(clean="1"))
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()

    def check_keys(self, cipher: crypto.SpoolCipher | None) -> None:
        """Raise ``SpoolKeyMismatch`` when pending records need a key ``cipher`` lacks."""
        with self.lock:
            crypto.check_store_keys(self._conn, cipher, self._dir)

    def abandon(self) -> None:
        """Close without the clean mark (a close that failed): the next open
        checks the database and replays the journals."""
        with self.lock:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass

    # -- reads ---------------------------------------------------------------

    def peek_payloads(self, max_records: int, max_bytes: int | None,
                      after_seq: int) -> list[tuple[int, bytes]]:
        with self.lock:
            return sql.peek_payloads(self._conn, max_records, max_bytes, after_seq)

    def peek(self, max_records: int, max_bytes: int | None, newest_first: bool,
             after_seq: int = 0) -> list[sql.PeekRow]:
        with self.lock:
            return sql.peek(self._conn, max_records, max_bytes, newest_first, after_seq)

    def ledger(self) -> Ledger:
        """A copy of the ledger as committed."""
        return self._ledger.copy()

    def pending(self) -> Tally:
        return self._ledger.pending()

    def has_pending(self) -> bool:
        return self.pending().records > 0

    def oldest_created(self) -> float | None:
        oldest: float | None = self._conn.execute("SELECT MIN(created) FROM records").fetchone()[0]
        return oldest

    def count_rows(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def dead_letter_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])

    def dead_letters(self, limit: int, after_seq: int) -> list[DeadLetterRow]:
        with self.lock:
            rows: list[DeadLetterRow] = self._conn.execute(
                "SELECT seq, created, payload, items, reason, dead_at FROM dead_letters"
                " WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit),
            ).fetchall()
            return rows

    def max_seq(self) -> int:
        a = self._conn.execute("SELECT MAX(seq) FROM records").fetchone()[0] or 0
        b = self._conn.execute("SELECT MAX(seq) FROM dead_letters").fetchone()[0] or 0
        return max(a, b, self.ingested_seq)


def _contiguous(seqs: Sequence[int]) -> bool:
    """True when ``seqs`` is exactly lo, lo+1, ..., hi (sorted, no gaps, no repeats)."""
    n = len(seqs)
    return (n > 0 and seqs[-1] - seqs[0] == n - 1
            and all(map(int.__lt__, seqs, itertools.islice(seqs, 1, None))))


def _where_seqs(seqs: list[int] | None) -> tuple[str, list[int]]:
    if seqs is None:
        return "", []
    if not seqs:
        return "WHERE 0", []
    return f"WHERE seq IN ({','.join('?' * len(seqs))})", list(seqs)
