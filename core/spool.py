"""A durable, bounded, counted queue on local disk: what leaves a device waits here.

The log shipper and the edge forwarder both put what they must deliver in a
``Spool`` and ship it from a background worker::

    spool = Spool("/var/lib/modelmon/logs", max_bytes=512 * 2**20, max_age=7 * 86400)
    seq = spool.append(b'{"message": "hello"}')      # durable per the fsync mode
    records = spool.peek(500)                          # oldest first; not removed
    spool.ack([r.seq for r in records])                # delivered -> removed

Storage: an append journal written by the calling thread (``spool_journal``)
in front of SQLite in WAL mode. ``append`` frames the record and copies it
into the journal (a preallocated file mapped into memory; one ``write(2)`` in
fsync mode "always"); a writer thread moves journalled records
into SQLite in group commits and deletes a journal file once its records are
durable there. ``peek`` sees a record once the writer has moved it (within
100 ms, sooner when records come fast). Memory holds only records appended
since the last group commit: the backlog streams from disk.

Fsync modes: when ``append`` returns, the record is

``"interval"`` (default)
    in the kernel: it survives the death of the process (SIGKILL, OOM kill,
    crash). The journal and SQLite are fsynced every ``fsync_interval``
    seconds (1 s), so an operating-system crash or power loss can lose the
    records acknowledged in the last ``fsync_interval``.
``"always"``
    on stable storage: the journal is ``fdatasync``-ed before ``append``
    returns (group commit: concurrent appends share one fsync). Nothing
    acknowledged is lost on power loss, if the disk honours fsync. Costs one
    fsync latency per append (~0.2 ms on an SSD, several ms on SD cards).
``"never"``
    in the kernel, never fsynced: survives the death of the process; on power
    loss the kernel's dirty-page writeback (up to ~30 s on Linux) is the loss
    window, and a torn SQLite file is detected, moved aside and counted.

Bounds: ``max_bytes`` bounds the payload bytes pending (disk use is that
plus SQLite's page overhead and at most one journal file). ``drop_oldest``
is enforced by the writer at its next group commit, so pending bytes can
exceed the bound by one commit's worth for a few milliseconds;
``drop_newest`` (reason ``"full"``) and ``block`` are enforced on append.
A payload larger than ``max_bytes`` is refused and counted ``"too_large"``;
``block`` raises ``SpoolFull`` after ``block_timeout`` (counted
``"block_timeout"``). Records older than ``max_age`` are dropped (``"max_age"``).

Accounting: every record is counted once as accepted and ends counted once as
delivered, dropped (by reason), dead-lettered, or still pending; the counters
live in SQLite, in the same transaction as the change they count, so
``accepted == delivered + sum(dropped) + dead_lettered + pending`` holds across
restarts. Replaying a dead letter counts it as accepted again.

Crashes and corruption: opening a spool after SIGKILL replays the journal's
intact frames; a torn or corrupt frame is skipped and counted as dropped
``"corrupt"``. After an unclean shutdown SQLite is checked (``quick_check``);
an unreadable database is moved aside (``spool.db.corrupt``), what can be read
is salvaged and the rest counted ``"corrupt"``. Nothing here crash-loops.

One process owns a spool directory at a time: ``Spool()`` takes an exclusive
``flock`` on ``<dir>/lock`` and raises ``SpoolLocked`` when another process
holds it. Within the process, every method is thread-safe.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from modelmon import spool_journal as journal
from modelmon.spool_recovery import recover
from modelmon.spool_store import Store
from modelmon.spool_types import (
    FSYNC_MODES,
    FULL_POLICIES,
    DeadLetter,
    FsyncMode,
    FullPolicy,
    Record,
    SpoolClosed,
    SpoolFull,
    SpoolLocked,
    SpoolStats,
)

__all__ = [
    "FSYNC_MODES", "FULL_POLICIES", "DeadLetter", "FsyncMode", "FullPolicy", "Record", "Spool",
    "SpoolClosed", "SpoolFull", "SpoolLocked", "SpoolStats",
]

log = logging.getLogger(__name__)

# A mapped journal's pages count in the process's RSS until it is rotated.
DEFAULT_JOURNAL_BYTES = 8 * 1024 * 1024
# Appends wait for the writer when this many records are not yet in SQLite:
# the in-memory part of the queue stays bounded whatever the producers do.
_MAX_BUFFERED = 50_000
# An idle writer looks for records this often: ``append`` does not wake it
# (waking a thread is a system call on the caller's time, and at a few
# thousand appends a second it was most of the caller's extra cost), so a
# record reaches SQLite, and the shipper, within this delay.
_IDLE_POLL_SECONDS = 0.05
# The writer faults in this much of the journal ahead of the appends (see
# MappedJournal.prefault): more than a group commit's worth at 100k appends/s.
_PREFAULT_BYTES = 4 * 1024 * 1024
# While records keep arriving the writer moves them into SQLite every
# _GROUP_COMMIT_SECONDS, or as soon as _GROUP_COMMIT_RECORDS are waiting (the
# append that makes them so wakes it: one wake-up per that many appends). They
# are durable in the journal already; bigger group commits mean bigger shipped
# batches and less background work competing with the caller for the GIL
# (at 5,000 records/s: 500 a commit, a few GIL hand-overs a second).
_GROUP_COMMIT_SECONDS = 0.1
_GROUP_COMMIT_RECORDS = 2000
_time = time.time
_crc32 = zlib.crc32
_pack_body = journal.BODY.pack
_pack_header = journal.HEADER.pack
_MAGIC = journal.MAGIC
_make_record = Record._make


class Spool:
    """A durable, bounded queue of byte records in directory ``path`` (see module doc)."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int,
        max_age: float | None,
        full_policy: FullPolicy = "drop_oldest",
        fsync: FsyncMode = "interval",
        block_timeout: float | None = None,
        fsync_interval: float = 1.0,
        journal_bytes: int = DEFAULT_JOURNAL_BYTES,
    ) -> None:
        if full_policy not in FULL_POLICIES:
            raise ValueError(f"full_policy: expected one of {FULL_POLICIES}, got {full_policy!r}")
        if fsync not in FSYNC_MODES:
            raise ValueError(f"fsync: expected one of {FSYNC_MODES}, got {fsync!r}")
        if max_bytes <= 0:
            raise ValueError(f"max_bytes: expected a positive size, got {max_bytes!r}")
        if max_age is not None and max_age <= 0:
            raise ValueError(f"max_age: expected a positive duration or None, got {max_age!r}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.full_policy = full_policy
        self.fsync = fsync
        # ``append`` takes its inline path for a payload up to this size: under
        # drop_oldest without fsync "always" (-1: never).
        self._inline_max = max_bytes if full_policy == "drop_oldest" and fsync != "always" else -1
        self.block_timeout = block_timeout
        self._fsync_interval = fsync_interval
        self._journal_bytes = journal_bytes
        # Owner only: the spool holds log messages as logged (see docs/logging.md).
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_fd = _take_lock(self.path)
        try:
            self._store = Store(self.path, fsync)
            self.id: str = self._store.spool_id
            self._next_seq, self._first_journal_no = recover(self.path, self._store)
        except BaseException:
            os.close(self._lock_fd)
            raise
        # _append_lock guards the journal fd, the buffer and the totals below.
        # Lock order: _store.lock, then _append_lock.
        self._append_lock = threading.Lock()
        self._changed = threading.Condition(threading.Lock())
        self._buffer: list[tuple[int, float, int, int, bytes]] = []  # rows as stored
        self._caller_drops: dict[str, list[int]] = {}  # reason -> [records, items, bytes]
        pending = self._store.pending()
        self._pending_bytes = pending[2]  # everything pending, buffer included
        self._synced_seq = self._next_seq - 1
        self._rotated: list[tuple[journal.Journal, int]] = []  # (journal, its last seq)
        self._journal_no = self._first_journal_no
        self._journal = self._open_journal(journal_bytes)
        if fsync != "never":
            journal.fsync_dir(self.path)
        self._closed = False
        self._wake = threading.Event()
        # True while the writer waits for work: only then does an append wake it.
        self._writer_idle = False
        self._writer = threading.Thread(target=self._run_writer, name="modelmon-spool", daemon=True)
        self._writer.start()

    # -- producer side ------------------------------------------------------

    def append(self, payload: bytes, *, created: float | None = None, items: int = 1) -> int | None:
        """Add one record; returns its seq once durable per the fsync mode, or
        None when it was dropped (``drop_newest`` on a full spool, too large)."""
        size = len(payload)
        if size > self._inline_max:  # too large, or a policy append_many enforces
            return self.append_many((payload,), created=created, items=(items,))[0]
        # The hot path: one uncontended lock, one frame copied into the journal,
        # one list append; no system call in fsync modes "interval" and "never".
        if created is None:
            created = _time()
        with self._append_lock:
            if self._closed:
                raise SpoolClosed(f"spool {self.path} is closed")
            seq = self._next_seq
            # journal.encode, inline: this runs once per log call.
            crc = _crc32(payload, _crc32(_pack_body(size, seq, created, items)))
            frame = _pack_header(_MAGIC, size, seq, created, items, crc) + payload
            jrn = self._journal
            if jrn.used + len(frame) > jrn.capacity and jrn.used:
                jrn = self._rotate_journal(len(frame))
            jrn.put(frame)
            self._next_seq = seq + 1
            buffer = self._buffer
            buffer.append((seq, created, items, size, payload))
            self._pending_bytes += size
            buffered = len(buffer)
        if buffered >= _GROUP_COMMIT_RECORDS:
            if buffered == _GROUP_COMMIT_RECORDS:
                self._wake.set()
            elif buffered > _MAX_BUFFERED:
                self._wake.set()
                self._wait_until(lambda: len(self._buffer) < _MAX_BUFFERED // 2, 5.0)
        return seq

    def append_many(
        self,
        payloads: Sequence[bytes],
        *,
        created: float | None = None,
        items: Sequence[int] | None = None,
    ) -> list[int | None]:
        """Add records with one ``write(2)``; seqs in order, None for dropped ones."""
        if created is None:
            created = time.time()
        counts = items if items is not None else (1,) * len(payloads)
        if len(counts) != len(payloads):
            raise ValueError("append_many: items must have one count per payload")
        if self.full_policy == "block":
            self._wait_for_room(sum(len(p) for p in payloads))
        seqs: list[int | None] = []
        frames: list[bytes] = []
        encode = journal.encode
        with self._append_lock:
            if self._closed:
                raise SpoolClosed(f"spool {self.path} is closed")
            for payload, n in zip(payloads, counts, strict=True):
                size = len(payload)
                reason = None
                if size > self.max_bytes:
                    reason = "too_large"
                elif self.full_policy == "drop_newest" and self._pending_bytes + size > self.max_bytes:
                    reason = "full"
                if reason is not None:
                    c = self._caller_drops.setdefault(reason, [0, 0, 0])
                    c[0] += 1
                    c[1] += n
                    c[2] += size
                    seqs.append(None)
                    continue
                seq = self._next_seq
                self._next_seq = seq + 1
                frames.append(encode(seq, created, n, payload))
                self._buffer.append((seq, created, n, size, payload))
                self._pending_bytes += size
                seqs.append(seq)
            if frames:
                data = frames[0] if len(frames) == 1 else b"".join(frames)
                jrn = self._journal
                if jrn.used + len(data) > jrn.capacity and jrn.used:
                    jrn = self._rotate_journal(len(data))
                jrn.put(data)
            buffered = len(self._buffer)
        if frames and (self._writer_idle or self.fsync == "always"):
            self._wake_writer()
        if self.fsync == "always" and frames:
            self._wait_until(lambda: self._synced_seq >= self._next_written(seqs), None)
        elif buffered > _MAX_BUFFERED:
            self._wake.set()
            self._wait_until(lambda: len(self._buffer) < _MAX_BUFFERED // 2, 5.0)
        return seqs

    @staticmethod
    def _next_written(seqs: list[int | None]) -> int:
        return max(s for s in seqs if s is not None)

    def count_drop(self, reason: str, records: int = 1, items: int = 1, size: int = 0) -> None:
        """Count records refused before they reached the spool (a serialisation
        error, say) as accepted and dropped, so every loss shows in one accounting."""
        with self._append_lock:
            c = self._caller_drops.setdefault(reason, [0, 0, 0])
            c[0] += records
            c[1] += items
            c[2] += size

    def _wait_for_room(self, size: int) -> None:
        if size > self.max_bytes:
            return  # refused as too_large by append_many
        ok = self._wait_until(
            lambda: self._closed or self._pending_bytes + size <= self.max_bytes,
            self.block_timeout,
        )
        if not ok:
            with self._append_lock:
                c = self._caller_drops.setdefault("block_timeout", [0, 0, 0])
                c[0] += 1
                c[1] += 1
                c[2] += size
            raise SpoolFull(
                f"spool {self.path}: no room for {size} bytes within {self.block_timeout} s "
                f"(max_bytes={self.max_bytes}); the sink is not keeping up"
            )

    def _wait_until(self, predicate: object, timeout: float | None) -> bool:
        with self._changed:
            return self._changed.wait_for(predicate, timeout)  # type: ignore[arg-type]

    # -- consumer side ------------------------------------------------------

    def peek(
        self, max_records: int, *, max_bytes: int | None = None, newest_first: bool = False,
        after_seq: int = 0,
    ) -> list[Record]:
        """Pending records (not removed), oldest first; at least one if any is pending.
        ``after_seq``: only records with a higher seq (the ones not already in flight)."""
        return list(map(_make_record, self._store.peek(max_records, max_bytes, newest_first,
                                                       after_seq)))

    def peek_payloads(
        self, max_records: int, *, max_bytes: int | None = None, after_seq: int = 0,
    ) -> list[tuple[int, bytes]]:
        """``peek`` as (seq, payload) rows straight from SQLite, oldest first: for
        a shipper that needs nothing else (one object less per record)."""
        return self._store.peek_payloads(max_records, max_bytes, after_seq)

    def ack(self, seqs: Iterable[int]) -> None:
        """Delivered: remove and count as delivered. Unknown seqs are ignored."""
        self._remove(seqs, "delivered", None)

    def drop(self, seqs: Iterable[int], reason: str) -> None:
        """Remove and count as dropped with ``reason`` (a short, bounded label)."""
        self._remove(seqs, "dropped:" + reason, None)

    def dead_letter(self, seqs: Iterable[int], reason: str) -> None:
        """Move to the dead-letter store (inspect with ``dead_letters()``)."""
        self._remove(seqs, "dead_lettered", reason)

    def _remove(self, seqs: Iterable[int], counter: str, dead_reason: str | None) -> None:
        seqs = list(seqs)
        if not seqs:
            return
        with self._store.lock:
            freed = self._store.remove(seqs, counter, dead_reason)
            with self._append_lock:
                self._pending_bytes -= freed
        self._notify()

    def wait(self, timeout: float) -> bool:
        """Block until a record is pending (peekable) or ``timeout``; True if one is."""
        return self._wait_until(lambda: self._closed or self._store.has_pending(), timeout) and (
            self._store.has_pending()
        )

    # -- dead letters -------------------------------------------------------

    def dead_letters(self, limit: int = 100, after_seq: int = 0) -> list[DeadLetter]:
        return [DeadLetter(*row) for row in self._store.dead_letters(limit, after_seq)]

    def replay_dead_letters(self, seqs: Iterable[int] | None = None) -> int:
        """Move dead letters (all, or ``seqs``) back to pending with their seq;
        counted as accepted again. Returns how many moved."""
        with self._store.lock:
            moved, size = self._store.replay(None if seqs is None else list(seqs))
            with self._append_lock:
                self._pending_bytes += size
        self._notify()
        return moved

    def purge_dead_letters(self, seqs: Iterable[int] | None = None) -> int:
        """Delete dead letters for good (they stay counted as dead-lettered)."""
        return self._store.purge(None if seqs is None else list(seqs))

    # -- introspection ------------------------------------------------------

    def stats(self) -> SpoolStats:
        with self._store.lock:
            counters = self._store.counters()
            oldest = self._store.oldest_created()
            dead_stored = self._store.dead_letter_count()
            with self._append_lock:
                buf = self._buffer
                buffered = (len(buf), sum(r[2] for r in buf), sum(r[3] for r in buf))
                if self._buffer:
                    b_oldest = min(r[1] for r in buf)
                    oldest = b_oldest if oldest is None else min(oldest, b_oldest)
                for reason, c in self._caller_drops.items():
                    acc = counters.setdefault("accepted", [0, 0, 0])
                    drp = counters.setdefault("dropped:" + reason, [0, 0, 0])
                    for i in range(3):
                        acc[i] += c[i]
                        drp[i] += c[i]
        acc = counters.get("accepted", [0, 0, 0])
        for i in range(3):
            acc[i] += buffered[i]

        def get(name: str, i: int = 0) -> int:
            return counters.get(name, [0, 0, 0])[i]

        dropped = {k[8:]: v[0] for k, v in counters.items() if k.startswith("dropped:")}
        dropped_items = {k[8:]: v[1] for k, v in counters.items() if k.startswith("dropped:")}
        removed = [
            get("delivered", i) + get("dead_lettered", i)
            + sum(v[i] for k, v in counters.items() if k.startswith("dropped:"))
            for i in range(3)
        ]
        return SpoolStats(
            accepted=acc[0],
            delivered=get("delivered"),
            dropped=dropped,
            dead_lettered=get("dead_lettered"),
            pending=acc[0] - removed[0],
            pending_items=acc[1] - removed[1],
            pending_bytes=acc[2] - removed[2],
            oldest_created=oldest,
            disk_bytes=self._disk_bytes(),
            dead_letter_stored=dead_stored,
            accepted_items=acc[1],
            delivered_items=get("delivered", 1),
            dropped_items=dropped_items,
            dead_lettered_items=get("dead_lettered", 1),
        )

    def verify(self) -> tuple[int, int]:
        """(pending records counted on disk, pending per the counters); equal when sound."""
        self.flush_buffer()
        with self._store.lock:
            on_disk = self._store.count_rows()
        return on_disk, self.stats().pending

    def flush_buffer(self, timeout: float = 10.0) -> bool:
        """Wait until every record appended so far is peekable (committed to SQLite)."""
        target = self._next_seq - 1
        self._wake.set()
        return self._wait_until(
            lambda: self._store.ingested_seq >= target or self._closed, timeout
        )

    def _disk_bytes(self) -> int:
        total = 0
        for p in self.path.iterdir():
            if p.name.startswith(("spool.db", "journal-")):
                try:
                    total += p.stat().st_size
                except OSError:
                    pass
        return total

    # -- lifecycle ----------------------------------------------------------

    def close(self) -> None:
        """Move everything into SQLite, sync it, release the directory. Idempotent."""
        with self._append_lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        self._writer.join()
        try:
            self._ingest()
            self._sync(final=True)
            self._store.close(clean=True)
        except BaseException:
            log.exception("modelmon spool %s: close failed; the journal is kept", self.path)
            raise
        else:
            # Everything journalled is now durable in SQLite.
            self._journal.path.unlink(missing_ok=True)
        finally:
            self._journal.close()
            os.close(self._lock_fd)
            self._notify()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the writer thread --------------------------------------------------

    def _wake_writer(self) -> None:
        self._writer_idle = False
        self._wake.set()

    def _run_writer(self) -> None:
        next_sync = time.monotonic() + self._fsync_interval
        next_age = time.monotonic()
        while not self._closed:
            if self.fsync == "always" or not self._buffer:
                # Idle (or every append waits for its fsync): sleep until woken.
                # The flag is set before the last look at the buffer, so an
                # append that lands in between sees it and wakes us.
                self._writer_idle = True
                if not self._buffer or self.fsync == "always":
                    self._wake.wait(_IDLE_POLL_SECONDS)
                self._writer_idle = False
                self._wake.clear()
            else:
                # Busy: records keep coming; gather them into one group commit.
                self._wake.wait(_GROUP_COMMIT_SECONDS)
                self._wake.clear()
            try:
                if self.fsync == "always":
                    self._sync_journal()
                else:
                    self._prefault_journal()
                self._ingest()
                now = time.monotonic()
                if self.fsync == "interval" and now >= next_sync:
                    self._sync()
                    next_sync = now + self._fsync_interval
                if self.max_age is not None and now >= next_age:
                    self._expire()
                    next_age = now + min(self.max_age / 10, 5.0)
            except Exception:  # the writer must survive a full disk and retry
                log.exception("modelmon spool %s: writer step failed; retrying", self.path)
                time.sleep(0.5)

    def _prefault_journal(self) -> None:
        jrn = self._journal
        if isinstance(jrn, journal.MappedJournal):
            jrn.prefault(_PREFAULT_BYTES)

    def _sync_journal(self) -> None:
        with self._append_lock:
            target = self._next_seq - 1
            fd = self._journal.fd  # rotated journals are closed only by this thread
        os.fdatasync(fd)
        if target > self._synced_seq:
            self._synced_seq = target
            self._notify()

    def _ingest(self) -> None:
        with self._store.lock:
            with self._append_lock:
                batch = self._buffer
                if not batch and not self._caller_drops:
                    return
                self._buffer = []
                drops, self._caller_drops = self._caller_drops, {}
            try:
                trimmed = self._store.ingest(
                    batch, drops, self.max_bytes if self.full_policy == "drop_oldest" else None
                )
            except BaseException:
                # Still journalled; keep it in memory too and let the writer retry.
                with self._append_lock:
                    self._buffer[:0] = batch
                    for reason, c in drops.items():
                        have = self._caller_drops.setdefault(reason, [0, 0, 0])
                        for i in range(3):
                            have[i] += c[i]
                raise
            if trimmed:
                with self._append_lock:
                    self._pending_bytes -= trimmed
            if self.fsync != "interval":
                self._delete_rotated()
        self._notify()

    def _open_journal(self, size: int) -> journal.Journal:
        path = journal.journal_path(self.path, self._journal_no)
        return journal.open_journal(path, size, mapped=self.fsync != "always")

    def _rotate_journal(self, need: int) -> journal.Journal:
        """Called with _append_lock held when the next frame does not fit."""
        old = self._journal
        if self.fsync == "always":
            os.fdatasync(old.fd)
        # The file stays open (only its mapping goes) until the writer deletes it.
        old.seal()
        self._rotated.append((old, self._next_seq - 1))
        self._journal_no += 1
        self._journal = self._open_journal(max(self._journal_bytes, need))
        if self.fsync == "always":
            journal.fsync_dir(self.path)
        return self._journal

    def _delete_rotated(self) -> None:
        ingested = self._store.ingested_seq
        with self._append_lock:
            rotated = self._rotated
            done = [(j, last) for j, last in rotated if last <= ingested]
            self._rotated = [(j, last) for j, last in rotated if last > ingested]
        for jrn, _ in done:
            jrn.path.unlink(missing_ok=True)
            jrn.close()

    def _sync(self, final: bool = False) -> None:
        if self.fsync == "never" and not final:
            return
        with self._append_lock:
            fd = self._journal.fd
        if self.fsync != "never":
            os.fdatasync(fd)
        with self._store.lock:
            if self.fsync != "never":
                self._store.sync()
            self._delete_rotated()

    def _expire(self) -> None:
        assert self.max_age is not None
        with self._store.lock:
            freed = self._store.expire(time.time() - self.max_age)
            if freed:
                with self._append_lock:
                    self._pending_bytes -= freed
        if freed:
            self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- opening ------------------------------------------------------------


def _take_lock(directory: Path) -> int:
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SpoolLocked(
            f"spool directory {directory} is in use by another process (flock on "
            f"{directory / 'lock'}); stop it or give this process its own spool_dir"
        ) from None
    return fd

