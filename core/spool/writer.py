"""The spool's writer thread: journal -> SQLite in group commits, fsync per
mode, expiry by age, journal rotation and deletion.

``Spool`` appends on the caller's thread (into the journal and an in-memory
buffer); this base class owns everything that happens after: it moves the
buffer into the store, counts the caller-side drops in the same transaction,
trims to ``max_bytes`` under ``drop_oldest``, fsyncs on the mode's schedule,
and deletes a journal file once all of its records are durable in SQLite.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import journal
from .health import StorageHealth
from .ledger import Tally
from .sql import Row
from .store import Store
from .types import FsyncMode, FullPolicy

log = logging.getLogger(__name__)

# An idle writer looks for records this often: ``append`` does not wake it
# (waking a thread is a system call on the caller's time, and at a few
# thousand appends a second it was most of the caller's extra cost), so a
# record reaches SQLite, and the shipper, within this delay.
_IDLE_POLL_SECONDS = 0.05
# The writer faults in the journal ahead of the appends (see MappedJournal.prefault):
# what the next _PREFAULT_SECONDS of appends write at the recent rate, within these
# bounds. A log shipper at 100k appends/s needs MiBs ahead; an edge agent appending a
# few KiB a second would otherwise carry MiBs of faulted pages in its RSS for nothing.
_PREFAULT_SECONDS = 1.0
_PREFAULT_MIN_BYTES = 64 * 1024
_PREFAULT_MAX_BYTES = 4 * 1024 * 1024


class _AppendRate:
    """Bytes appended per second to the mapped journal, as the writer sees it."""

    def __init__(self) -> None:
        self._journal: object = None
        self._used = 0
        self._at = 0.0
        self.bytes_per_second = 0.0

    def prefault_bytes(self, jrn: journal.MappedJournal, now: float) -> int:
        if jrn is not self._journal:  # a new journal: measure from here, keep the rate
            self._journal, self._used, self._at = jrn, jrn.used, now
        elif now - self._at >= 0.1:
            measured = (jrn.used - self._used) / (now - self._at)
            # Up at once, down by halves: a burst after a pause is not met unprepared.
            self.bytes_per_second = max(measured, self.bytes_per_second / 2)
            self._used, self._at = jrn.used, now
        ahead = self.bytes_per_second * _PREFAULT_SECONDS
        return int(min(_PREFAULT_MAX_BYTES, max(_PREFAULT_MIN_BYTES, ahead)))
# While records keep arriving the writer moves them into SQLite every
# _GROUP_COMMIT_SECONDS, or as soon as GROUP_COMMIT_RECORDS are waiting (the
# append that makes them so wakes it: one wake-up per that many appends). They
# are durable in the journal already; bigger group commits mean bigger shipped
# batches and less background work competing with the caller for the GIL
# (at 5,000 records/s: 500 a commit, a few GIL hand-overs a second).
_GROUP_COMMIT_SECONDS = 0.1
GROUP_COMMIT_RECORDS = 2000
# The longest pause between two tries of a failing writer step (a full disk).
_MAX_RETRY_PAUSE = 5.0


class SpoolWriter:
    """The state appends share with the writer thread, and the thread itself."""

    path: Path
    max_bytes: int
    max_age: float | None
    full_policy: FullPolicy
    fsync: FsyncMode
    _fsync_interval: float
    _journal_bytes: int
    _store: Store
    # Guards the journal fd, the buffer, the caller drops and _pending_bytes.
    # Lock order: _store.lock, then _append_lock.
    _append_lock: threading.Lock
    _changed: threading.Condition
    _buffer: list[Row]  # appended, not yet in SQLite
    _caller_drops: dict[str, Tally]  # refused on append, not yet counted in SQLite
    _pending_bytes: int  # everything pending, buffer included
    _next_seq: int
    _synced_seq: int
    _journal: journal.Journal
    _journal_no: int
    _rotated: list[tuple[journal.Journal | journal.KeptJournal, int]]  # (journal, its last seq)
    _closed: bool
    _wake: threading.Event
    _writer_idle: bool  # True while the writer waits: only then does an append wake it
    health: StorageHealth
    _sealing_key: str | None  # the id of the key every new record is sealed under

    def _wake_writer(self) -> None:
        self._writer_idle = False
        self._wake.set()

    def _run_writer(self) -> None:
        next_sync = time.monotonic() + self._fsync_interval
        next_age = time.monotonic()
        streak = 0  # consecutive failed steps: the pause grows with it
        rate = _AppendRate()
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
            operation = "ingest"
            try:
                if self.fsync == "always":
                    operation = "sync"
                    self._sync_journal()
                else:
                    self._prefault_journal(rate)
                operation = "ingest"
                self._ingest()
                self.health.succeeded("ingest")
                self.health.succeeded("recover")  # journals left at start are in SQLite
                now = time.monotonic()
                if self.fsync == "interval" and now >= next_sync:
                    operation = "sync"
                    self._sync()
                    self.health.succeeded("sync")
                    next_sync = now + self._fsync_interval
                if self.max_age is not None and now >= next_age:
                    operation = "expire"
                    self._expire()
                    self.health.succeeded("expire")
                    next_age = now + min(self.max_age / 10, 5.0)
                streak = 0
            except Exception as exc:  # the writer must survive a full disk and retry
                # Counted and logged at a bounded rate (StorageHealth); what
                # failed is still journalled and retried, later each time.
                self.health.failed(operation, exc)
                streak += 1
                self._wake.wait(min(_MAX_RETRY_PAUSE, 0.1 * 2 ** min(streak, 10)))
                self._wake.clear()

    def _prefault_journal(self, rate: _AppendRate) -> None:
        jrn = self._journal
        if isinstance(jrn, journal.MappedJournal):
            jrn.prefault(rate.prefault_bytes(jrn, time.monotonic()))

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
                    batch, drops, self.max_bytes if self.full_policy == "drop_oldest" else None,
                    key_id=self._sealing_key,
                )
            except BaseException:
                # Still journalled; keep it in memory too and let the writer retry.
                with self._append_lock:
                    self._buffer[:0] = batch
                    for reason, tally in drops.items():
                        self._count_caller_drop(reason, tally)
                raise
            if trimmed:
                with self._append_lock:
                    self._pending_bytes -= trimmed
            if self.fsync != "interval":
                self._delete_rotated()
        self._notify()

    def _count_caller_drop(self, reason: str, tally: Tally) -> None:
        """Called with _append_lock held."""
        have = self._caller_drops.get(reason)
        if have is None:
            self._caller_drops[reason] = Tally(tally.records, tally.items, tally.bytes)
        else:
            have += tally

    def _open_journal(self, size: int) -> journal.Journal:
        path = journal.journal_path(self.path, self._journal_no)
        return journal.open_journal(path, size, mapped=self.fsync != "always")

    def _rotate_journal(self, need: int) -> journal.Journal:
        """Called with _append_lock held when the next frame does not fit."""
        old = self._journal
        if self.fsync == "always":
            os.fdatasync(old.fd)
        # The new file first: when it cannot be made (a full disk) the old one
        # stays the journal and the append is refused, counted.
        new = journal.open_journal(journal.journal_path(self.path, self._journal_no + 1),
                                   max(self._journal_bytes, need),
                                   mapped=self.fsync != "always")
        # The file stays open (only its mapping goes) until the writer deletes it.
        old.seal()
        self._rotated.append((old, self._next_seq - 1))
        self._journal_no += 1
        self._journal = new
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

    def _wait_until(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()
