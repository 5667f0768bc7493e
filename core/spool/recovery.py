"""Opening a spool: replay the journals an earlier process left, count what
cannot be read. Used by ``Spool`` before its writer starts.

On a full disk SQLite cannot take the replayed records: they are handed to
the spool's writer instead (``Recovered.unsaved``) and their journals kept
until it has moved them (``Recovered.kept``), so a spool opens, degraded, on a
full disk rather than failing every start."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from . import journal
from .health import is_disk_full
from .sql import Row
from .store import Store

log = logging.getLogger(__name__)


@dataclass
class Recovered:
    next_seq: int
    next_journal: int
    unsaved: list[Row] = field(default_factory=list)  # replayed, not yet in SQLite
    kept: list[tuple[Path, int]] = field(default_factory=list)  # (journal, its last seq)
    error: BaseException | None = None  # why SQLite could not take them


def recover(directory: Path, store: Store) -> Recovered:
    """Move every intact journalled record into ``store``. Torn or corrupt
    frames are counted as dropped 'corrupt'."""
    paths = journal.list_journals(directory)
    max_seq = store.max_seq()
    out = Recovered(0, 0)
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.error("modelmon spool %s: cannot read %s (%s); skipped", directory, path, exc)
            store.count_corrupt(1)
            continue
        frames: list[Row] = []
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
        if out.error is None:
            try:
                store.ingest(frames, {}, None, scan_keys=True)
                if corrupt:
                    store.count_corrupt(corrupt)
                continue
            except Exception as exc:
                if not is_disk_full(exc):
                    raise
                out.error = exc
        # No room in SQLite: the writer moves them when there is.
        out.unsaved += frames
        out.kept.append((path, max(f[0] for f in frames) if frames else 0))
        if corrupt:
            log.error("modelmon spool %s: %d corrupt regions in %s not counted (the disk is "
                      "full)", directory, corrupt, path.name)
    kept = {p for p, _ in out.kept}
    try:
        store.sync()
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        out.error = out.error or exc
    for path in paths:
        if path not in kept:
            path.unlink(missing_ok=True)
    if paths:
        journal.fsync_dir(directory)
    out.next_seq = max(max_seq, store.ingested_seq) + 1
    if not out.unsaved:
        # Every seq below next_seq is accounted for in SQLite (or counted corrupt).
        store.ingested_seq = out.next_seq - 1
    try:
        store.mark_open()
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        out.error = out.error or exc
    out.next_journal = (journal.journal_number(paths[-1]) + 1) if paths else 0
    return out
