"""The spool's bulk paths: ``peek_payloads`` (one aggregate SQLite read, split by
lengths) returns exactly what ``peek`` returns, and the multi-row inserts
(chunks of 4096, 1024, 256, 64, 16, 4, 1 rows) store every record, whatever the count."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelmon.spool import Spool

MiB = 1024 * 1024
ALL = 10**6


def open_spool(path: Path) -> Spool:
    # A small journal: these tests open many spools.
    return Spool(path, max_bytes=64 * MiB, max_age=None, journal_bytes=256 * 1024)


def filled(path: Path, payloads: list[bytes]) -> tuple[Spool, list[int]]:
    spool = open_spool(path)
    seqs = spool.append_many(payloads) if payloads else []
    assert None not in seqs
    assert spool.flush_buffer()  # in SQLite, so peeks see them
    return spool, [s for s in seqs if s is not None]


def via_peek(spool: Spool, max_records: int = ALL, **kw: int) -> list[tuple[int, bytes]]:
    return [(r.seq, r.payload) for r in spool.peek(max_records, **kw)]


def assert_same_as_peek(spool: Spool, max_records: int = ALL, **kw: int) -> list[tuple[int, bytes]]:
    got = spool.peek_payloads(max_records, **kw)
    assert got == via_peek(spool, max_records, **kw)
    assert all(type(p) is bytes for _, p in got)
    return got


def varied_payload(i: int) -> bytes:
    """Different lengths (0 to 40 bytes), zero bytes, newlines and non-UTF-8 bytes:
    a split at a wrong offset or a row inserted out of line shows as a mismatch."""
    body = b"r%d\x00\n\xff" % i
    return (body * (i % 5))[: (i * 7) % 41]


# -- awkward payloads -------------------------------------------------------------


@pytest.mark.parametrize(
    "payloads",
    [
        [b""],
        [b"", b"", b""],
        [b"\x00"],
        [b"\x00\x00\x00", b"a\x00b", b"\x00"],
        [b"line one\nline two\n", b"\n", b"\r\n"],
        [b"\xff\xfe\xfd", b"\xc3", b"\xa9", b"\x80abc\xc3\x28"],  # invalid UTF-8, split sequences
        [b"", b"x", b"", b"\x00", b"", b"\xff"],  # empties between others
        [b'{"message": "ok"}', b"", b"\x00\n\xff" * 100, b"tail"],
        [bytes(range(256))],
    ],
    ids=["empty", "empties", "nul", "nuls", "newlines", "not-utf8", "mixed-empty", "mixed", "all-bytes"],
)
def test_peek_payloads_returns_the_bytes_peek_returns(tmp_path: Path, payloads: list[bytes]) -> None:
    spool, seqs = filled(tmp_path, payloads)
    with spool:
        got = assert_same_as_peek(spool)
        assert got == list(zip(seqs, payloads, strict=True))


def test_an_empty_spool_peeks_nothing(tmp_path: Path) -> None:
    with open_spool(tmp_path) as spool:
        assert spool.peek_payloads(100) == []
        assert spool.peek_payloads(100, max_bytes=10, after_seq=5) == []
        spool.append(b"x")
        spool.flush_buffer()
        assert spool.peek_payloads(100, after_seq=1) == []  # nothing after the only record


# -- counts across the insert chunk sizes, and a reopen --------------------------


@pytest.mark.parametrize(
    "count", [0, 1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 255, 256, 257, 341, 600, 1023, 1025, 4097,
              5461]
)
def test_every_record_of_one_ingest_is_stored_whatever_the_count(tmp_path: Path, count: int) -> None:
    payloads = [varied_payload(i) for i in range(count)]
    expected_total = sum(map(len, payloads))
    # append_many hands the writer all of them at once: one ingest of `count` rows.
    spool, seqs = filled(tmp_path, payloads)
    with spool:
        assert len(seqs) == count
        assert assert_same_as_peek(spool) == list(zip(seqs, payloads, strict=True))
        stats = spool.stats()
        assert (stats.accepted, stats.pending, stats.pending_bytes) == (count, count, expected_total)
        assert stats.balanced
        assert spool.verify() == (count, count)
    with open_spool(tmp_path) as spool:  # durable: the same records after a reopen
        assert assert_same_as_peek(spool) == list(zip(seqs, payloads, strict=True))
        stats = spool.stats()
        assert (stats.accepted, stats.pending, stats.pending_bytes) == (count, count, expected_total)
        assert stats.balanced and spool.verify() == (count, count)
        # Appends after the reopen continue the seqs and go through the same inserts.
        more = [varied_payload(i) for i in range(count, count + 70)]
        new_seqs = [s for s in spool.append_many(more) if s is not None]
        assert spool.flush_buffer()
        last = seqs[-1] if seqs else 0
        assert new_seqs == list(range(last + 1, last + 71))
        assert assert_same_as_peek(spool) == list(zip(seqs + new_seqs, payloads + more, strict=True))
        spool.ack(seqs)
        assert spool.peek_payloads(ALL) == list(zip(new_seqs, more, strict=True))
        stats = spool.stats()
        assert stats.delivered == count and stats.pending == 70 and stats.balanced


def test_records_still_in_memory_at_close_are_peekable_after_reopen(tmp_path: Path) -> None:
    payloads = [varied_payload(i) for i in range(300)]
    spool = open_spool(tmp_path)
    seqs = spool.append_many(payloads)
    spool.close()  # no flush_buffer: close itself moves them into SQLite
    with open_spool(tmp_path) as spool:
        assert assert_same_as_peek(spool) == list(zip(seqs, payloads, strict=True))
        assert spool.stats().balanced


# -- after_seq, max_records, max_bytes ----------------------------------------------


def test_after_seq_skips_up_to_and_including_that_seq(tmp_path: Path) -> None:
    payloads = [varied_payload(i) for i in range(40)]
    spool, seqs = filled(tmp_path, payloads)
    rows = list(zip(seqs, payloads, strict=True))
    with spool:
        for after in (0, seqs[0], seqs[4], seqs[-2], seqs[-1], seqs[-1] + 100):
            got = assert_same_as_peek(spool, after_seq=after)
            assert got == [r for r in rows if r[0] > after]
            assert assert_same_as_peek(spool, 3, after_seq=after) == [r for r in rows if r[0] > after][:3]
        # Gaps (acked records) in the middle: skipped, the order kept.
        gone = set(seqs[5:12]) | {seqs[20]}
        spool.ack(sorted(gone))
        left = [r for r in rows if r[0] not in gone]
        assert assert_same_as_peek(spool) == left
        assert assert_same_as_peek(spool, 5, after_seq=seqs[3]) == [
            r for r in left if r[0] > seqs[3]
        ][:5]


def test_max_records_limits_the_count(tmp_path: Path) -> None:
    payloads = [varied_payload(i) for i in range(30)]
    spool, seqs = filled(tmp_path, payloads)
    rows = list(zip(seqs, payloads, strict=True))
    with spool:
        for n in (0, 1, 2, 29, 30, 31, 1000):
            assert assert_same_as_peek(spool, n) == rows[:n]


@pytest.mark.parametrize(
    ("sizes", "max_bytes", "kept"),
    [
        ([5, 10, 0, 7, 20, 3], 15, 3),  # 5 + 10 + 0 fit; 7 more would not
        ([5, 10, 0, 7, 20, 3], 14, 1),
        ([5, 10, 0, 7, 20, 3], 22, 4),
        ([5, 10, 0, 7, 20, 3], 44, 5),  # the 3 after would make 48
        ([5, 10, 0, 7, 20, 3], 45, 6),
        ([5, 10, 0, 7, 20, 3], 10**9, 6),
        ([5, 20, 1, 1], 10, 1),  # a prefix: the small ones after a too-big one are not taken
        ([50, 1, 1], 10, 1),  # at least one record, even when it alone is too big
        ([50, 1, 1], 0, 1),
        ([0, 0, 0, 4], 0, 3),  # empty records fit in 0 bytes
        ([0, 0, 0, 4], 3, 3),
        ([3, 3, 3], 6, 2),
    ],
)
def test_max_bytes_keeps_the_longest_prefix_within_the_limit_and_at_least_one(
    tmp_path: Path, sizes: list[int], max_bytes: int, kept: int
) -> None:
    payloads = [(b"\x00\xffab" * 20)[:size] for size in sizes]
    spool, seqs = filled(tmp_path, payloads)
    with spool:
        got = assert_same_as_peek(spool, max_bytes=max_bytes)
        assert got == list(zip(seqs, payloads, strict=True))[:kept]
        # Combined with max_records and after_seq.
        assert assert_same_as_peek(spool, 2, max_bytes=max_bytes) == got[:2]
        later = assert_same_as_peek(spool, max_bytes=max_bytes, after_seq=seqs[0])
        assert later and later[0][0] == seqs[1]


# -- property: peek_payloads == peek ------------------------------------------------


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    payloads=st.lists(st.binary(max_size=24), max_size=300),
    acked=st.sets(st.integers(1, 300), max_size=40),
    max_records=st.integers(0, 320),
    max_bytes=st.none() | st.integers(0, 400),
    after_seq=st.integers(0, 310),
)
def test_peek_payloads_equals_peek_for_any_payloads(
    payloads: list[bytes], acked: set[int], max_records: int, max_bytes: int | None,
    after_seq: int,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        spool, seqs = filled(Path(tmp), payloads)
        with spool:
            rows = list(zip(seqs, payloads, strict=True))
            assert spool.peek_payloads(ALL) == rows
            spool.ack(sorted(acked))
            rows = [r for r in rows if r[0] not in acked]
            kw = {"after_seq": after_seq}
            if max_bytes is not None:
                kw["max_bytes"] = max_bytes
            got = assert_same_as_peek(spool, max_records, **kw)
            # And what that means, independently of peek:
            candidates = [r for r in rows if r[0] > after_seq][:max_records]
            if max_bytes is None:
                assert got == candidates
            else:
                assert got == candidates[: len(got)]
                if candidates:
                    assert len(got) >= 1
                    assert len(got) == 1 or sum(len(p) for _, p in got) <= max_bytes
                    if len(got) < len(candidates):
                        assert sum(len(p) for _, p in candidates[: len(got) + 1]) > max_bytes


def test_peek_payloads_falls_back_when_joined_payloads_exceed_sqlites_value_limit(
    tmp_path: Path,
) -> None:
    import sqlite3

    payloads = [bytes([65 + i]) * 400 for i in range(3)]
    spool, seqs = filled(tmp_path / "s", payloads)
    try:
        # SQLite refuses values above SQLITE_LIMIT_LENGTH (1 GB by default); a
        # lower limit makes the joined read fail the same way with small records.
        spool._store._conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1000)
        assert spool.peek_payloads(ALL) == list(zip(seqs, payloads, strict=True))
    finally:
        spool.close()


def test_inserts_stay_within_an_old_sqlites_limit_of_999_parameters(tmp_path: Path) -> None:
    import sqlite3

    spool = open_spool(tmp_path / "s")
    try:
        # SQLite before 3.32 allowed 999 parameters: 199 rows of 5 per statement.
        spool._store._conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        payloads = [varied_payload(i) for i in range(1300)]
        seqs = spool.append_many(payloads)
        assert spool.flush_buffer()
        assert spool.peek_payloads(ALL) == list(zip(seqs, payloads, strict=True))
        assert spool.stats().balanced
    finally:
        spool.close()


@pytest.mark.parametrize("fsync", ["interval", "always"])
def test_appends_larger_than_an_empty_journal_are_stored(tmp_path: Path, fsync: str) -> None:
    """A record (or one append_many) bigger than the whole journal, first thing
    after opening: the journal rotates to one its size (an IndexError before)."""
    spool = Spool(tmp_path / "s", max_bytes=64 * MiB, max_age=None, journal_bytes=256 * 1024,
                  fsync=fsync)  # type: ignore[arg-type]
    try:
        big = [bytes([i]) * 100_000 for i in range(5)]  # 500 kB in one append_many
        seqs = spool.append_many(big)
        single = spool.append(b"z" * 300_000)
        assert None not in seqs and single is not None
        assert spool.flush_buffer()
        assert [p for _, p in spool.peek_payloads(ALL)] == [*big, b"z" * 300_000]
    finally:
        spool.close()
    reopened = open_spool(tmp_path / "s")
    try:
        assert len(reopened.peek(ALL)) == 6
    finally:
        reopened.close()
