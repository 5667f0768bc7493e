"""The spool's promises, one test (or a few) each: durable when acknowledged,
bounded with counted drops, crash- and corruption-proof, accounted, and
memory that does not grow with the backlog."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import psutil
import pytest

from modelmon.spool import Spool, SpoolFull, SpoolLocked

CHILD = Path(__file__).with_name("spool_child.py")
MiB = 1024 * 1024


def open_spool(path: Path, **kw: object) -> Spool:
    options: dict[str, object] = {"max_bytes": 64 * MiB, "max_age": None}
    options.update(kw)
    return Spool(path, **options)  # type: ignore[arg-type]


def pending_payloads(spool: Spool) -> dict[int, bytes]:
    spool.flush_buffer()
    return {r.seq: r.payload for r in spool.peek(10**9)}


# -- 1. acknowledged == durable -------------------------------------------------


@pytest.mark.parametrize("fsync", ["interval", "always", "never"])
def test_sigkill_never_loses_an_acknowledged_record(tmp_path: Path, fsync: str) -> None:
    for round_no in range(3):
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(tmp_path), fsync, "1000000"],
            stdout=subprocess.PIPE, text=True,
        )
        assert proc.stdout is not None
        acked: dict[int, int] = {}
        deadline = time.monotonic() + 0.2 + 0.15 * round_no
        for line in proc.stdout:
            seq, i = line.split()
            acked[int(seq)] = int(i)
            if time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with open_spool(tmp_path) as spool:
            have = pending_payloads(spool)
            missing = [s for s in acked if s not in have]
            assert not missing, f"acknowledged seqs lost after SIGKILL: {missing[:10]}"
            for seq, i in acked.items():
                assert have[seq].startswith(b"event-%d." % i)
            stats = spool.stats()
            assert stats.balanced
            assert spool.verify()[0] == spool.verify()[1]
            # Drain so the next round starts from what the next child adds.
            spool.ack(list(have))
    assert len(acked) > 0


def test_always_mode_returns_only_after_fdatasync_covers_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[tuple[int, int]] = []  # (inode, size at fsync time)
    real = os.fdatasync

    def recording_fdatasync(fd: int) -> None:
        real(fd)
        st = os.fstat(fd)
        synced.append((st.st_ino, st.st_size))

    monkeypatch.setattr(os, "fdatasync", recording_fdatasync)
    with open_spool(tmp_path, fsync="always") as spool:
        for i in range(50):
            spool.append(b"r%d" % i)
            journal = max(tmp_path.glob("journal-*.log"))
            st = journal.stat()
            assert any(ino == st.st_ino and size >= st.st_size for ino, size in synced), (
                "append returned before the journal was fdatasync-ed past the record"
            )


def test_seqs_increase_strictly_and_survive_restarts(tmp_path: Path) -> None:
    seen: list[int] = []
    for _ in range(3):
        with open_spool(tmp_path) as spool:
            seqs = [spool.append(b"x") for _ in range(5)]
            seen += [s for s in seqs if s is not None]
            spool.flush_buffer()
            spool.ack(seqs[:2])  # type: ignore[arg-type]
    assert seen == sorted(seen) and len(set(seen)) == len(seen) == 15


# -- 2. bounded by bytes and age, every drop counted ------------------------------


def test_drop_oldest_keeps_the_newest_within_max_bytes(tmp_path: Path) -> None:
    with open_spool(tmp_path, max_bytes=10_000) as spool:
        seqs = [spool.append(b"%06d" % i + b"." * 94) for i in range(500)]  # 100 B each
        spool.flush_buffer()
        stats = spool.stats()
        assert stats.pending_bytes <= 10_000
        assert stats.dropped["max_bytes"] == 500 - stats.pending
        assert stats.balanced
        kept = [r.seq for r in spool.peek(1000)]
        assert kept == seqs[-len(kept):]  # the oldest went first


def test_drop_newest_refuses_new_records_when_full(tmp_path: Path) -> None:
    with open_spool(tmp_path, max_bytes=1_000, full_policy="drop_newest") as spool:
        results = [spool.append(b"." * 100) for _ in range(15)]
        assert all(r is not None for r in results[:10])
        assert results[10:] == [None] * 5
        stats = spool.stats()
        assert stats.dropped == {"full": 5} and stats.pending == 10 and stats.balanced


def test_block_waits_for_room_then_times_out_with_spool_full(tmp_path: Path) -> None:
    with open_spool(tmp_path, max_bytes=1_000, full_policy="block", block_timeout=0.3) as spool:
        for _ in range(10):
            spool.append(b"." * 100)
        start = time.monotonic()
        with pytest.raises(SpoolFull):
            spool.append(b"." * 100)
        assert time.monotonic() - start >= 0.3
        spool.flush_buffer()
        oldest = spool.peek(1)[0].seq
        threading.Timer(0.1, spool.ack, args=([oldest],)).start()
        assert spool.append(b"." * 100) is not None  # unblocked by the ack
        stats = spool.stats()
        assert stats.dropped == {"block_timeout": 1} and stats.balanced


def test_records_older_than_max_age_are_dropped(tmp_path: Path) -> None:
    with open_spool(tmp_path, max_age=60) as spool:
        spool.append(b"old", created=time.time() - 120)
        fresh = spool.append(b"fresh")
        deadline = time.monotonic() + 10
        while spool.stats().dropped.get("max_age", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.seq for r in spool.peek(10)] == [fresh]
        assert spool.stats().dropped == {"max_age": 1}


def test_oversized_record_is_refused_and_counted(tmp_path: Path) -> None:
    with open_spool(tmp_path, max_bytes=100) as spool:
        assert spool.append(b"." * 101) is None
        assert spool.stats().dropped == {"too_large": 1}


# -- 3. torn writes and corruption: detected, skipped, counted, no crash loop ----


def _fill(path: Path, n: int) -> list[int]:
    proc = subprocess.run(
        [sys.executable, "-c",
         "import os,sys; from modelmon.spool import Spool\n"
         f"s = Spool({str(path)!r}, max_bytes=1<<30, max_age=None)\n"
         f"print([s.append(b'rec-%d' % i) for i in range({n})], flush=True)\n"
         "os._exit(0)  # like a crash: nothing closed, journal left behind\n"],
        capture_output=True, text=True, check=True,
    )
    return eval(proc.stdout)  # a list literal we printed


def _frames_end(data: bytes | bytearray) -> int:
    """Where the frames end in a journal (a mapped journal's file is preallocated
    and zero-filled after them)."""
    from modelmon.spool import journal as spool_journal

    return sum(spool_journal.HEADER_SIZE + len(f.payload)
               for f in spool_journal.scan(bytes(data)) if isinstance(f, spool_journal.Frame))


def test_torn_journal_tail_is_skipped_and_counted(tmp_path: Path) -> None:
    seqs = _fill(tmp_path, 20)
    journal = max(tmp_path.glob("journal-*.log"))
    data = bytearray(journal.read_bytes())
    end = _frames_end(data)
    data[end - 3 : end] = bytes(3)  # the last frame is torn: its end never reached the file
    if end == len(data):  # a write(2) journal: the torn frame is the file's end
        del data[end - 3 :]
    journal.write_bytes(bytes(data))
    with open_spool(tmp_path) as spool:
        have = pending_payloads(spool)
        assert sorted(have) == seqs[:-1]
        stats = spool.stats()
        assert stats.dropped == {"corrupt": 1} and stats.balanced


def test_flipped_byte_in_journal_skips_only_that_record(tmp_path: Path) -> None:
    seqs = _fill(tmp_path, 20)
    journal = max(tmp_path.glob("journal-*.log"))
    data = bytearray(journal.read_bytes())
    frame = _frames_end(data) // 20
    data[frame * 10 + frame // 2] ^= 0xFF  # inside the 11th frame
    journal.write_bytes(bytes(data))
    with open_spool(tmp_path) as spool:
        have = pending_payloads(spool)
        assert sorted(have) == seqs[:10] + seqs[11:]
        assert spool.stats().dropped == {"corrupt": 1}


@pytest.mark.parametrize("damage", ["garbage", "truncated", "emptied"])
def test_corrupt_database_is_moved_aside_counted_and_never_crash_loops(
    tmp_path: Path, damage: str
) -> None:
    with open_spool(tmp_path) as spool:
        first = [spool.append(b"a%d" % i) for i in range(300)]
    later = _fill(tmp_path, 5)  # still in the journal when we damage the database
    db = tmp_path / "spool.db"
    if damage == "garbage":
        with open(db, "r+b") as f:
            f.write(os.urandom(4096))
    elif damage == "truncated":
        with open(db, "r+b") as f:
            f.truncate(db.stat().st_size // 2)
    else:
        db.write_bytes(b"")
    for _ in range(3):  # every later open works too
        with open_spool(tmp_path) as spool:
            have = pending_payloads(spool)
            stats = spool.stats()
            assert stats.balanced, stats
            assert set(later) <= set(have)  # the journal still replays
            lost = len(set(first) - set(have))
            if lost:
                assert stats.dropped.get("corrupt", 0) >= 1
    assert (tmp_path / "spool.db.corrupt").exists()


def test_second_owner_is_refused(tmp_path: Path) -> None:
    with open_spool(tmp_path):
        with pytest.raises(SpoolLocked, match="in use by another process"):
            open_spool(tmp_path)


# -- 4. accepted = delivered + dropped + dead_lettered + pending -----------------


def test_accounting_identity_holds_through_every_operation_and_restart(tmp_path: Path) -> None:
    with open_spool(tmp_path, max_bytes=20_000) as spool:
        for i in range(400):
            spool.append(b"%04d" % i + b"." * 60)
        spool.flush_buffer()
        recs = spool.peek(60)
        spool.ack([r.seq for r in recs[:20]])
        spool.drop([r.seq for r in recs[20:30]], "test")
        spool.dead_letter([r.seq for r in recs[30:40]], "mapper_parsing_exception")
        spool.ack([r.seq for r in recs[:20]])  # a repeated ack counts nothing twice
        assert spool.stats().balanced
        assert spool.replay_dead_letters() == 10
        stats = spool.stats()
        assert stats.balanced and stats.dead_lettered == 10 and stats.delivered == 20
        on_disk, counted = spool.verify()
        assert on_disk == counted
    with open_spool(tmp_path, max_bytes=20_000) as spool:
        again = spool.stats()
        assert again.balanced
        assert (again.accepted, again.delivered, again.dropped) == (
            stats.accepted, stats.delivered, stats.dropped)


def test_dead_letters_are_inspectable_and_replayable_with_their_seq(tmp_path: Path) -> None:
    with open_spool(tmp_path) as spool:
        seq = spool.append(b'{"bad": 1}')
        spool.flush_buffer()
        spool.dead_letter([seq], "mapper_parsing_exception: failed to parse [bad]")  # type: ignore[list-item]
        [letter] = spool.dead_letters()
        assert (letter.seq, letter.payload) == (seq, b'{"bad": 1}')
        assert letter.reason.startswith("mapper_parsing_exception")
        assert spool.peek(10) == []
        spool.replay_dead_letters([seq])  # type: ignore[list-item]
        assert [r.seq for r in spool.peek(10)] == [seq]
        assert spool.dead_letters() == []


# -- 5. memory does not grow with the backlog -----------------------------------


def test_memory_does_not_grow_with_the_backlog(tmp_path: Path) -> None:
    payload = b"." * 300
    with open_spool(tmp_path, max_bytes=1 << 30) as spool:
        rss = psutil.Process().memory_info().rss

        def python_heap_with_backlog(n: int) -> int:
            for _ in range(n // 1000):
                spool.append_many([payload] * 1000)
            spool.flush_buffer()
            tracemalloc.start()
            for _ in range(20):  # a worker's steady loop
                batch = spool.peek(500, max_bytes=256 * 1024)
                spool.ack([r.seq for r in batch[:10]])
            spool.stats()
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            return peak

        small = python_heap_with_backlog(10_000)
        large = python_heap_with_backlog(150_000)  # ~45 MiB of backlog on disk
        assert large < small * 1.5 + 256 * 1024
        grown = psutil.Process().memory_info().rss - rss
        assert grown < 24 * MiB, f"RSS grew {grown / MiB:.1f} MiB with a 48 MiB backlog"


def test_a_new_spool_directory_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    # It holds log messages before the shipper's worker redacts them.
    with Spool(tmp_path / "new" / "spool", max_bytes=1 << 20, max_age=None) as spool:
        spool.append(b'["mail jane@example.com"]')
        assert (spool.path.stat().st_mode & 0o777) == 0o700
