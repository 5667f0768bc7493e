"""The consumer side of ``Spool``: reads for the delivery worker (records
opened when the spool is encrypted), settlements (ack, drop, dead-letter),
and the dead-letter store. A mixin: ``Spool`` owns the state it uses."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .crypto import SpoolCipher, Undecryptable
from .health import StorageHealth
from .ledger import Ending
from .store import Store
from .types import DeadLetter, Record

log = logging.getLogger("modelmon.spool.spool")
_make_record = Record._make


class SpoolReader:
    path: Path
    health: StorageHealth
    undecryptable: int
    _store: Store
    _cipher: SpoolCipher | None
    _append_lock: threading.Lock
    _closed: bool
    _pending_bytes: int
    _notify: Callable[[], None]
    _wait_until: Callable[[Callable[[], bool], float | None], bool]

    # -- consumer side ------------------------------------------------------

    def peek(
        self, max_records: int, *, max_bytes: int | None = None, newest_first: bool = False,
        after_seq: int = 0,
    ) -> list[Record]:
        """Pending records (not removed), oldest first; at least one if any is pending.
        ``after_seq``: only records with a higher seq (the ones not already in flight)."""
        while True:
            rows = self._store.peek(max_records, max_bytes, newest_first, after_seq)
            if self._cipher is None or not rows:
                return list(map(_make_record, rows))
            opened = self._open([(r[0], r[2]) for r in rows])
            if opened or len(rows) == 0:
                return [Record(r[0], r[1], opened[r[0]], r[3]) for r in rows if r[0] in opened]

    def peek_payloads(
        self, max_records: int, *, max_bytes: int | None = None, after_seq: int = 0,
    ) -> list[tuple[int, bytes]]:
        """``peek`` as (seq, payload) rows straight from SQLite, oldest first: for
        a shipper that needs nothing else (one object less per record)."""
        while True:
            rows = self._store.peek_payloads(max_records, max_bytes, after_seq)
            if self._cipher is None or not rows:
                return rows
            opened = self._open(rows)
            if opened:
                return [(seq, opened[seq]) for seq, _ in rows if seq in opened]

    def _open(self, rows: Sequence[tuple[int, bytes]]) -> dict[int, bytes]:
        """Plaintexts by seq; a record no configured key opens is dead-lettered
        (kept sealed: replayable once its key is configured) and counted."""
        assert self._cipher is not None
        opened: dict[int, bytes] = {}
        failed: dict[str, list[int]] = {}
        open_ = self._cipher.open
        for seq, payload in rows:
            try:
                opened[seq] = open_(payload)
            except Undecryptable as exc:
                failed.setdefault(f"undecryptable: {exc}", []).append(seq)
        for reason, seqs in failed.items():
            log.error("modelmon spool %s: %d records cannot be decrypted (%s); dead-lettered",
                      self.path, len(seqs), reason)
            self.dead_letter(seqs, reason)
            self.undecryptable += len(seqs)
        return opened

    def ack(self, seqs: Iterable[int]) -> None:
        """Delivered: remove and count as delivered. Unknown seqs are ignored."""
        self._remove(seqs, "delivered", None)

    def drop(self, seqs: Iterable[int], reason: str) -> None:
        """Remove and count as dropped with ``reason`` (a short, bounded label)."""
        self._remove(seqs, "dropped", reason)

    def dead_letter(self, seqs: Iterable[int], reason: str) -> None:
        """Move to the dead-letter store (inspect with ``dead_letters()``)."""
        self._remove(seqs, "dead_lettered", reason)

    def _remove(self, seqs: Iterable[int], ending: Ending, reason: str | None) -> None:
        seqs = list(seqs)
        if not seqs:
            return
        with self._store.lock:
            try:
                freed = self._store.remove(seqs, ending, reason)
            except Exception as exc:
                self.health.failed("settle", exc)
                raise
            with self._append_lock:
                self._pending_bytes -= freed
        self.health.succeeded("settle")
        self._notify()

    def wait(self, timeout: float) -> bool:
        """Block until a record is pending (peekable) or ``timeout``; True if one is."""
        return self._wait_until(lambda: self._closed or self._store.has_pending(), timeout) and (
            self._store.has_pending()
        )

    # -- dead letters -------------------------------------------------------

    def dead_letters(self, limit: int = 100, after_seq: int = 0) -> list[DeadLetter]:
        """Dead letters, decrypted when a configured key opens them."""
        rows = self._store.dead_letters(limit, after_seq)
        cipher = self._cipher
        if cipher is None:
            return [DeadLetter(*row) for row in rows]
        out = []
        for seq, created, payload, items, reason, dead_at in rows:
            try:
                payload = cipher.open(payload)
            except Undecryptable:
                pass  # shown sealed; replayable once its key is configured
            out.append(DeadLetter(seq, created, payload, items, reason, dead_at))
        return out

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
