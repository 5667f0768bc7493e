"""Promise 6 (files are owner-only) and the ledger as stored: named tallies in
memory, the same ``counters`` rows on disk as earlier versions wrote."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmon.spool import Ledger, Spool, Tally


@pytest.fixture
def lax_umask() -> Iterator[None]:
    old = os.umask(0o000)  # the worst case: everything would be world-writable
    try:
        yield
    finally:
        os.umask(old)


def modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}


def test_every_spool_file_is_owner_only_whatever_the_umask(tmp_path: Path, lax_umask: None) -> None:
    path = tmp_path / "new" / "spool"
    spool = Spool(path, max_bytes=1 << 20, max_age=None, fsync="interval")
    try:
        spool.append(b'{"message": "mail jane@example.com"}')
        spool.flush_buffer()
        spool.peek(10)
        seen = modes(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
        # While open: the journal, the database with its WAL and shared memory.
        assert {"lock", "spool.id", "spool.db", "spool.db-wal", "spool.db-shm"} <= set(seen)
        assert any(name.startswith("journal-") for name in seen)
        assert {name: mode for name, mode in seen.items() if mode != 0o600} == {}
    finally:
        spool.close()
    assert {name: mode for name, mode in modes(path).items() if mode != 0o600} == {}


def test_append_journal_of_fsync_always_is_owner_only(tmp_path: Path, lax_umask: None) -> None:
    with Spool(tmp_path, max_bytes=1 << 20, max_age=None, fsync="always") as spool:
        spool.append(b"x")
        journals = [p for p in tmp_path.iterdir() if p.name.startswith("journal-")]
        assert journals and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in journals)


def test_a_spool_an_earlier_version_left_world_readable_is_made_owner_only(
    tmp_path: Path, lax_umask: None
) -> None:
    with Spool(tmp_path, max_bytes=1 << 20, max_age=None) as spool:
        spool.append(b"kept")
    os.chmod(tmp_path, 0o755)
    for p in tmp_path.iterdir():
        os.chmod(p, 0o644)
    with Spool(tmp_path, max_bytes=1 << 20, max_age=None) as spool:
        assert [r.payload for r in spool.peek(10)] == [b"kept"]
        assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
        assert {name: mode for name, mode in modes(tmp_path).items() if mode != 0o600} == {}


def test_the_ledger_is_stored_as_the_counters_rows_earlier_versions_wrote(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1 << 20, max_age=None, full_policy="drop_newest") as spool:
        seqs = [spool.append(b"abcd") for _ in range(4)]
        spool.flush_buffer()
        spool.ack(seqs[:1])
        spool.drop(seqs[1:2], "too_old")
        spool.dead_letter(seqs[2:3], "mapping conflict")
        spool.count_drop("error", size=7)
    conn = sqlite3.connect(tmp_path / "spool.db")
    rows = dict(((name, (r, i, b)) for name, r, i, b in conn.execute("SELECT * FROM counters")))
    conn.close()
    assert rows == {
        "accepted": (5, 5, 23), "delivered": (1, 1, 4), "dropped:too_old": (1, 1, 4),
        "dead_lettered": (1, 1, 4), "dropped:error": (1, 1, 7),
    }


def test_a_spool_db_written_by_the_flat_modules_opens_with_its_counts(tmp_path: Path) -> None:
    # The counters of a spool written before the package existed: same table.
    with Spool(tmp_path, max_bytes=1 << 20, max_age=None) as spool:
        spool.append(b"pending")
    conn = sqlite3.connect(tmp_path / "spool.db")
    with conn:
        conn.executemany(
            "INSERT INTO counters VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
            " records = records + excluded.records, items = items + excluded.items,"
            " bytes = bytes + excluded.bytes",
            [("accepted", 3, 30, 300), ("delivered", 1, 10, 100), ("dropped:max_age", 2, 20, 200)],
        )
    conn.close()
    with Spool(tmp_path, max_bytes=1 << 20, max_age=None) as spool:
        stats = spool.stats()
        assert stats.dropped == {"max_age": 2} and stats.dropped_items == {"max_age": 20}
        assert stats.pending == 1 and stats.balanced


def test_tallies_add_up_by_name() -> None:
    ledger = Ledger()
    ledger.accepted.add(5, 50, 500)
    ledger.delivered += Tally(2, 20, 200)
    ledger.count_drop("full", Tally(1, 10, 100))
    ledger.ended("dead_lettered").add(1, 10, 100)
    assert ledger.pending() == Tally(2, 20, 200)  # 6 accepted (one dropped on arrival), 4 ended
    assert Ledger.from_rows(ledger.rows()) == ledger
    with pytest.raises(ValueError):
        ledger.ended("dropped")
