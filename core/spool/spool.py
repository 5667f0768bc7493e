"""``Spool``: the facade of the package (see the package docstring for the
promises, the on-disk layout and the fsync modes): appends on the caller's
thread, reads and settlements for the delivery worker, dead letters, stats."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

from . import journal
from .crypto import SpoolCipher, SpoolKeyMismatch
from .files import FILE_MODE, make_private_dir
from .health import StorageHealth, is_disk_full
from .ledger import Tally
from .reader import SpoolReader
from .recovery import recover
from .store import Store
from .types import (
    FSYNC_MODES,
    FULL_POLICIES,
    FsyncMode,
    FullPolicy,
    Record,
    SpoolClosed,
    SpoolFull,
    SpoolLocked,
    SpoolSettings,
    SpoolStats,
    SpoolUnavailable,
)
from .writer import GROUP_COMMIT_RECORDS, SpoolWriter

log = logging.getLogger(__name__)

# A mapped journal's pages count in the process's RSS until it is rotated.
DEFAULT_JOURNAL_BYTES = 8 * 1024 * 1024
# Appends wait for the writer when this many records are not yet in SQLite:
# the in-memory part of the queue stays bounded whatever the producers do.
_MAX_BUFFERED = 50_000
_time = time.time
_crc32 = zlib.crc32
_pack_body = journal.BODY.pack
_pack_header = journal.HEADER.pack
_MAGIC = journal.MAGIC
_make_record = Record._make


class Spool(SpoolReader, SpoolWriter):
    """A durable, bounded queue of byte records in directory ``path`` (see the
    package docstring)."""

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
        cipher: SpoolCipher | None = None,
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
        self._cipher = cipher
        self._sealing_key = None if cipher is None else cipher.current_id
        self.undecryptable = 0  # records no key opened, dead-lettered
        self._fsync_interval = fsync_interval
        self._journal_bytes = journal_bytes
        self.health = StorageHealth(str(self.path), log)
        self._append_failing = False
        try:
            make_private_dir(self.path)
            self._lock_fd = _take_lock(self.path)
        except SpoolLocked:
            raise
        except OSError as exc:
            raise SpoolUnavailable(self.path, exc) from None
        try:
            self._store = Store(self.path, fsync)
            self.id: str = self._store.spool_id
            recovered = recover(self.path, self._store)
            self._next_seq, self._first_journal_no = recovered.next_seq, recovered.next_journal
            # Records no configured key opens would be dead-lettered one by
            # one: refuse to start instead, naming the key ids (the fix is a key).
            self._store.check_keys(cipher)
        except SpoolKeyMismatch:
            self._store.close(clean=False)
            os.close(self._lock_fd)
            raise
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._append_lock = threading.Lock()
        self._changed = threading.Condition(threading.Lock())
        self._buffer = recovered.unsaved
        self._caller_drops = {}
        self._pending_bytes = self._store.pending().bytes + sum(r[3] for r in self._buffer)
        self._synced_seq = self._next_seq - 1
        self._rotated = [(journal.KeptJournal(p), last) for p, last in recovered.kept]
        if recovered.error is not None:
            self.health.failed("recover", recovered.error)
        self._journal_no = self._first_journal_no
        self._journal = self._open_journal(journal_bytes)
        if fsync != "never":
            journal.fsync_dir(self.path)
        self._closed = False
        self._wake = threading.Event()
        self._writer_idle = False
        self._writer = threading.Thread(target=self._run_writer, name="modelmon-spool", daemon=True)
        self._writer.start()

    @classmethod
    def from_settings(cls, path: str | Path, settings: SpoolSettings) -> Spool:
        return cls(path, max_bytes=settings.max_bytes, max_age=settings.max_age,
                   full_policy=settings.full_policy, fsync=settings.fsync,
                   fsync_interval=settings.fsync_interval,
                   block_timeout=settings.block_timeout, cipher=settings.encryption)

    # -- producer side ------------------------------------------------------

    def append(self, payload: bytes, *, created: float | None = None, items: int = 1) -> int | None:
        """Add one record; returns its seq once durable per the fsync mode, or
        None when it was dropped (``drop_newest`` on a full spool, too large, or a
        disk that cannot take it: ``disk_full``, counted)."""
        if self._cipher is not None:
            payload = self._cipher.seal(payload)  # before anything touches the disk
        size = len(payload)
        if size > self._inline_max:  # too large, or a policy append_many enforces
            return self._append_sealed((payload,), created, (items,))[0]
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
            try:
                # A frame larger than an empty journal rotates too: to a journal its size.
                if jrn.used + len(frame) > jrn.capacity:
                    jrn = self._rotate_journal(len(frame))
                jrn.put(frame)
            except OSError as exc:
                self._refuse(exc, Tally(1, items, size))
                return None
            if self._append_failing:
                self._append_recovered()
            self._next_seq = seq + 1
            buffer = self._buffer
            buffer.append((seq, created, items, size, payload))
            self._pending_bytes += size
            buffered = len(buffer)
        if buffered >= GROUP_COMMIT_RECORDS:
            if buffered == GROUP_COMMIT_RECORDS:
                self._wake.set()
            elif buffered > _MAX_BUFFERED and self.health.degraded is None:
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
        counts = items if items is not None else (1,) * len(payloads)
        if len(counts) != len(payloads):
            raise ValueError("append_many: items must have one count per payload")
        if self._cipher is not None:
            payloads = [self._cipher.seal(p) for p in payloads]
        return self._append_sealed(payloads, created, counts)

    def _append_sealed(self, payloads: Sequence[bytes], created: float | None,
                       counts: Sequence[int]) -> list[int | None]:
        if created is None:
            created = time.time()
        if self.full_policy == "block":
            self._wait_for_room(sum(len(p) for p in payloads))
        seqs: list[int | None] = []
        frames: list[bytes] = []
        rows: list[tuple[int, float, int, int, bytes]] = []
        encode = journal.encode
        with self._append_lock:
            if self._closed:
                raise SpoolClosed(f"spool {self.path} is closed")
            seq = self._next_seq
            pending = self._pending_bytes
            for payload, n in zip(payloads, counts, strict=True):
                size = len(payload)
                reason = None
                if size > self.max_bytes:
                    reason = "too_large"
                elif self.full_policy == "drop_newest" and pending + size > self.max_bytes:
                    reason = "full"
                if reason is not None:
                    self._count_caller_drop(reason, Tally(1, n, size))
                    seqs.append(None)
                    continue
                frames.append(encode(seq, created, n, payload))
                rows.append((seq, created, n, size, payload))
                pending += size
                seqs.append(seq)
                seq += 1
            if frames:
                # Journalled first: a record that cannot be written (a full
                # disk) is refused and counted, never acknowledged.
                data = frames[0] if len(frames) == 1 else b"".join(frames)
                jrn = self._journal
                try:
                    if jrn.used + len(data) > jrn.capacity:
                        jrn = self._rotate_journal(len(data))
                    jrn.put(data)
                except OSError as exc:
                    self._refuse(exc, Tally(len(rows), sum(r[2] for r in rows),
                                            sum(r[3] for r in rows)))
                    return [None] * len(seqs)
                if self._append_failing:
                    self._append_recovered()
                self._next_seq = seq
                self._buffer.extend(rows)
                self._pending_bytes = pending
            buffered = len(self._buffer)
        if frames and (self._writer_idle or self.fsync == "always"):
            self._wake_writer()
        if self.fsync == "always" and frames:
            self._wait_until(lambda: self._synced_seq >= self._next_written(seqs), None)
        elif buffered > _MAX_BUFFERED and self.health.degraded is None:
            self._wake.set()
            self._wait_until(lambda: len(self._buffer) < _MAX_BUFFERED // 2, 5.0)
        return seqs

    def _refuse(self, exc: OSError, tally: Tally) -> None:
        """Records that could not be journalled (called with _append_lock held):
        counted as dropped ``disk_full`` (or ``io_error``), never acknowledged."""
        self._count_caller_drop("disk_full" if is_disk_full(exc) else "io_error", tally)
        self._append_failing = True
        self.health.failed("append", exc)

    def _append_recovered(self) -> None:
        self._append_failing = False
        self.health.succeeded("append")

    @staticmethod
    def _next_written(seqs: list[int | None]) -> int:
        return max(s for s in seqs if s is not None)

    def count_drop(self, reason: str, records: int = 1, items: int = 1, size: int = 0) -> None:
        """Count records refused before they reached the spool (a serialisation
        error, say) as accepted and dropped, so every loss shows in one accounting."""
        with self._append_lock:
            self._count_caller_drop(reason, Tally(records, items, size))

    def _wait_for_room(self, size: int) -> None:
        if size > self.max_bytes:
            return  # refused as too_large by append_many
        ok = self._wait_until(
            lambda: self._closed or self._pending_bytes + size <= self.max_bytes,
            self.block_timeout,
        )
        if not ok:
            with self._append_lock:
                self._count_caller_drop("block_timeout", Tally(1, 1, size))
            raise SpoolFull(
                f"spool {self.path}: no room for {size} bytes within {self.block_timeout} s "
                f"(max_bytes={self.max_bytes}); the sink is not keeping up"
            )

    # -- introspection ------------------------------------------------------

    def stats(self) -> SpoolStats:
        with self._store.lock:
            ledger = self._store.ledger()
            oldest = self._store.oldest_created()
            dead_stored = self._store.dead_letter_count()
            with self._append_lock:
                buf = self._buffer
                ledger.accepted.add(len(buf), sum(r[2] for r in buf), sum(r[3] for r in buf))
                if buf:
                    b_oldest = min(r[1] for r in buf)
                    oldest = b_oldest if oldest is None else min(oldest, b_oldest)
                for reason, tally in self._caller_drops.items():
                    ledger.count_drop(reason, tally)
        pending = ledger.pending()
        return SpoolStats(
            accepted=ledger.accepted.records,
            delivered=ledger.delivered.records,
            dropped={reason: t.records for reason, t in ledger.dropped.items()},
            dead_lettered=ledger.dead_lettered.records,
            pending=pending.records,
            pending_items=pending.items,
            pending_bytes=pending.bytes,
            oldest_created=oldest,
            disk_bytes=self._disk_bytes(),
            dead_letter_stored=dead_stored,
            accepted_items=ledger.accepted.items,
            delivered_items=ledger.delivered.items,
            dropped_items={reason: t.items for reason, t in ledger.dropped.items()},
            dead_lettered_items=ledger.dead_lettered.items,
            storage_errors={**self.health.errors(),
                            **({"decrypt": self.undecryptable} if self.undecryptable else {})},
            degraded=self.health.degraded,
            degraded_since=self.health.degraded_since,
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
        """Move everything into SQLite, sync it, release the directory. Idempotent.
        Never raises for want of space: what SQLite cannot take stays in the
        journal, which the next open replays."""
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
        except Exception as exc:
            self.health.failed("close", exc)
            log.error("modelmon spool %s: could not finish closing (%s); the journal is kept "
                      "and replayed at the next start", self.path, exc)
            self._store.abandon()
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


def _take_lock(directory: Path) -> int:
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # a lock file an earlier version made under a lax umask
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SpoolLocked(
            f"spool directory {directory} is in use by another process (flock on "
            f"{directory / 'lock'}); stop it or give this process its own spool_dir"
        ) from None
    return fd

