"""The spool's bulk SQL: pending records out of SQLite (oldest or newest
first, bounded by count and bytes) and journalled rows in, in as few SQLite
steps as possible. Called by ``Store`` with its lock held."""

from __future__ import annotations

import itertools
import json
import operator
import sqlite3
from collections.abc import Sequence

Row = tuple[int, float, int, int, bytes]  # seq, created, items, size, payload: as stored
PeekRow = tuple[int, float, bytes, int]  # seq, created, payload, items
_payload_of = operator.itemgetter(2)


def peek_payloads(conn: sqlite3.Connection, max_records: int, max_bytes: int | None,
                  after_seq: int) -> list[tuple[int, bytes]]:
    """(seq, payload) rows in seq order, read with one SQLite step.

    ``fetchall`` steps SQLite once per row and each step gives up and takes
    back the GIL; while another thread computes (the model server logging
    in a loop) every take waits for it to yield, up to the 5 ms switch
    interval: measured, 175 ms to read 691 rows. One aggregate row instead:
    the seqs and lengths as JSON arrays, the payloads concatenated (as bytes,
    zero bytes included), both from the same scan so they line up.
    """
    try:
        return _peek_joined(conn, max_records, max_bytes, after_seq)
    except sqlite3.DataError:  # joined payloads above SQLite's 1 GB value limit
        return [(r[0], r[2]) for r in peek(conn, max_records, max_bytes, False, after_seq)]


def _peek_joined(conn: sqlite3.Connection, max_records: int, max_bytes: int | None,
                 after_seq: int) -> list[tuple[int, bytes]]:
    seqs, sizes, blob = conn.execute(
        "SELECT json_group_array(seq), json_group_array(length(payload)),"
        " CAST(group_concat(payload, '') AS BLOB) FROM (SELECT seq, payload"
        " FROM records WHERE seq > ? ORDER BY seq LIMIT ?)",
        (after_seq, max_records),
    ).fetchone()
    seq_list: list[int] = json.loads(seqs)
    if not seq_list:
        return []
    if any(map(int.__gt__, seq_list, itertools.islice(seq_list, 1, None))):
        # SQLite documents no aggregate order (it has always been the scan's).
        rows = [(r[0], r[2]) for r in peek(conn, max_records, max_bytes, False, after_seq)]
        return rows
    rows = []
    pos = total = 0
    for seq, size in zip(seq_list, json.loads(sizes), strict=True):
        if max_bytes is not None and rows and total + size > max_bytes:
            break
        end = pos + size
        rows.append((seq, blob[pos:end]))
        pos = end
        total += size
    return rows


def peek(conn: sqlite3.Connection, max_records: int, max_bytes: int | None, newest_first: bool,
         after_seq: int = 0) -> list[PeekRow]:
    order = "DESC" if newest_first else "ASC"
    rows: list[PeekRow] = conn.execute(
        "SELECT seq, created, payload, items FROM records WHERE seq > ?"
        f" ORDER BY seq {order} LIMIT ?",
        (after_seq, max_records),
    ).fetchall()
    if max_bytes is not None and rows:
        # Keep the longest prefix within max_bytes, and at least one row.
        sizes = itertools.accumulate(map(len, map(_payload_of, rows)))
        fits = sum(1 for _ in itertools.takewhile(max_bytes.__ge__, sizes))
        del rows[max(fits, 1):]
    return rows


_INSERT_CHUNKS = (4096, 1024, 256, 64, 16, 4, 1)
_INSERT_SQL = {
    n: "INSERT INTO records (seq, created, items, size, payload) VALUES "
    + ",".join(["(?, ?, ?, ?, ?)"] * n)
    for n in _INSERT_CHUNKS
}


def insert_rows(conn: sqlite3.Connection, rows: Sequence[Row]) -> None:
    """Insert with multi-row statements: ``executemany`` steps SQLite (and gives
    up the GIL, see ``peek_payloads``) once per row; this, once per up to 4,096
    rows (within the library's limit on parameters, 32,766 since SQLite 3.32).
    Fixed chunk sizes keep the statements in sqlite3's statement cache."""
    most = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // 5
    i, n = 0, len(rows)
    for size in _INSERT_CHUNKS:
        if size > most:
            continue
        sql = _INSERT_SQL[size]
        while n - i >= size:
            conn.execute(sql, [value for row in rows[i : i + size] for value in row])
            i += size
