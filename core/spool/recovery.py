"""Opening a spool: replay the journals an earlier process left, count what
cannot be read. Used by ``Spool`` before its writer starts."""

from __future__ import annotations

import logging
from pathlib import Path

from . import journal
from .store import Store

log = logging.getLogger(__name__)


def recover(directory: Path, store: Store) -> tuple[int, int]:
    """Move every intact journalled record into ``store``; returns (next seq,
    next journal number). Torn or corrupt frames are counted as dropped 'corrupt'."""
    paths = journal.list_journals(directory)
    max_seq = store.max_seq()
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.error("modelmon spool %s: cannot read %s (%s); skipped", directory, path, exc)
            store.count_corrupt(1)
            continue
        frames: list[tuple[int, float, int, int, bytes]] = []
        corrupt = 0
        for item in journal.scan(data):
            if isinstance(item, journal.Corrupt):
                corrupt += 1
                log.warning(
                    "modelmon spool %s: %s has %d unreadable bytes at offset %d "
                    "(torn write or corruption); skipped and counted as dropped 'corrupt'",
                    directory, path.name, item.length, item.offset,
                )
                continue
            if item.seq > store.ingested_seq:
                frames.append((item.seq, item.created, item.items, len(item.payload), item.payload))
            max_seq = max(max_seq, item.seq)
        frames.sort()
        store.ingest(frames, {}, None)
        if corrupt:
            store.count_corrupt(corrupt)
    store.sync()
    for path in paths:
        path.unlink(missing_ok=True)
    if paths:
        journal.fsync_dir(directory)
    next_seq = max(max_seq, store.ingested_seq) + 1
    # Every seq below next_seq is accounted for in SQLite (or counted corrupt).
    store.ingested_seq = next_seq - 1
    store.mark_open()
    return next_seq, (journal.journal_number(paths[-1]) + 1) if paths else 0
