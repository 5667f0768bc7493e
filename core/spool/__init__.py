"""A durable, bounded, counted queue on local disk: what leaves a process waits here.

The log shipper and the edge agent both put what they must deliver in a
``Spool``; one ``DeliveryWorker`` (``modelmon.spool.delivery``) ships it::

    spool = Spool("/var/lib/modelmon/logs", max_bytes=512 * 2**20, max_age=7 * 86400)
    seq = spool.append(b'{"message": "hello"}')      # durable per the fsync mode
    records = spool.peek(500)                          # oldest first; not removed
    spool.ack([r.seq for r in records])                # delivered -> removed

Modules, one role each:

``spool``     the facade: appends on the caller's thread, stats, lifecycle
``reader``    reads for the delivery worker, settlements, dead letters
``writer``    the writer thread: journal -> SQLite group commits, fsync, expiry
``journal``   the CRC-framed append journal and its scanner
``store``     SQLite: pending records, dead letters, the ledger, in one transaction
``sql``       the bulk SQL: one-step reads (``peek_payloads``), multi-row inserts
``ledger``    ``Tally`` and ``Ledger``: the accounting, as named tallies
``recovery``  replaying journals on open; ``salvage``: reading a damaged database
``files``     owner-only directories and files
``health``    storage failures (a full disk): counted by operation, logged at a bounded rate
``crypto``    encryption at rest: AES-GCM sealing and opening, key ids
``keys``      spool keys from the configuration: files, variables or a KMS plugin
``types``     the public settings, records, stats and errors
``delivery``  the delivery worker: peek -> send -> settle -> back off
``destination``  what a destination implements (``send(batch) -> SendResult``)

On-disk layout of a spool directory (mode 0700; every file 0600)::

    lock                   flock(2): one owning process at a time
    spool.id               the spool's id (16 hex digits), also in spool.db's meta
    journal-NNNNNNNN.log   appends not yet in SQLite; frames
                           "MMJ1" | length u32 | seq u64 | created f64 | items u32 |
                           crc32 u32 | payload (little endian); deleted once durable
    spool.db (-wal, -shm)  SQLite in WAL mode, tables
                           records(seq, created, items, size, payload)
                           dead_letters(seq, created, items, size, reason, dead_at, payload)
                           counters(name, records, items, bytes): the ledger, one row
                             per tally: accepted, delivered, dead_lettered, dropped:<reason>
                           meta(key, value): spool_id, ingested_seq, clean, synced_at
    spool.db.corrupt*      a database that could not be read, moved aside

With encryption on, every payload above (journal frame and SQLite row alike)
is sealed before it is written: "MME1" | key id (8 hex) | nonce (12) |
ciphertext | tag (16) (``crypto``).

Invariants, each with a test in tests/unit/core/spool:

1. Acknowledged means durable per the fsync mode. When ``append`` returns the
   record is, in mode ``"interval"`` (default), in the kernel: it survives the
   death of the process (SIGKILL, OOM kill, crash); the journal and SQLite are
   fsynced every ``fsync_interval`` (1 s), so an operating-system crash or power
   loss can lose the records acknowledged in the last ``fsync_interval``. In
   mode ``"always"`` it is on stable storage (``fdatasync`` before ``append``
   returns; concurrent appends share one): nothing acknowledged is lost on
   power loss if the disk honours fsync; one fsync latency per append (~0.2 ms
   on an SSD, several ms on SD cards). In mode ``"never"`` it is in the kernel,
   never fsynced: the loss window on power loss is the kernel's writeback (up
   to ~30 s on Linux), and a torn SQLite file is detected, moved aside, counted.
2. Bounded by bytes and age. ``max_bytes`` bounds the payload bytes pending
   (disk use is that plus SQLite's page overhead and at most one journal
   file). ``drop_oldest`` (default) is enforced by the writer at its next group
   commit, so pending bytes can exceed the bound by one commit's worth for a few
   milliseconds; ``drop_newest`` (reason ``"full"``) and ``block`` are enforced
   on append. A payload larger than ``max_bytes`` is refused (``"too_large"``);
   ``block`` raises ``SpoolFull`` after ``block_timeout`` (``"block_timeout"``).
   Records older than ``max_age`` are dropped (``"max_age"``). Every drop is
   counted by reason.
3. SIGKILL or a torn write never loses acknowledged data and never causes a
   crash loop. Opening replays the journals' intact frames; a torn or corrupt
   frame is skipped and counted as dropped ``"corrupt"``. After an unclean
   stop SQLite is checked (``quick_check``); an unreadable database is moved
   aside, what can be read is salvaged and the rest counted ``"corrupt"``.
   A full disk: an append that cannot be journalled is refused and counted
   (``"disk_full"``), never acknowledged; failed storage operations are
   counted by name (``SpoolStats.storage_errors``), the spool reports itself
   ``degraded`` while they last and logs at most once a minute; the delivery
   worker keeps an answer it cannot record and records it again after a
   growing backoff, sending nothing meanwhile, so a delivered batch is never
   sent again for want of space; ``close`` never raises for want of space
   (the journal is kept and replayed). A directory that cannot be made or
   written raises ``SpoolUnavailable`` (path and reason).
4. ``accepted == delivered + sum(dropped) + dead_lettered + pending`` at all
   times and across restarts: each record is counted once as accepted and ends
   once, and the ledger is written in the same transaction as the change it
   counts. Replaying a dead letter counts it as accepted again.
5. Memory does not grow with the backlog: it holds only the records appended
   since the last group commit (at most ~50,000; appends wait beyond that);
   reads stream from SQLite with a 4 MiB page cache.
6. Files are owner-only: the directory 0700, every file 0600 whatever the umask;
   a spool written by an earlier version is made so when opened. With a
   ``SpoolCipher`` (``cipher=``, ``SpoolSettings.encryption``) no plaintext
   payload rests in any file: sealed with AES-GCM before the journal, opened
   on read; a record names its key, so older keys still open (rotation); a
   spool holding records no configured key opens refuses to open
   (``SpoolKeyMismatch``); a record that fails to open is dead-lettered
   (``"undecryptable: ..."``), counted, never a crash loop.

A record appended is peekable once the writer has moved it into SQLite (within
100 ms, sooner when records come fast). One process owns a directory at a
time (``SpoolLocked`` otherwise); within the process every method is
thread-safe.
"""

from __future__ import annotations

from .crypto import SpoolCipher, SpoolKeyMismatch
from .ledger import Ledger, Tally
from .spool import DEFAULT_JOURNAL_BYTES, Spool
from .types import (
    FSYNC_MODES,
    FULL_POLICIES,
    DeadLetter,
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

__all__ = [
    "DEFAULT_JOURNAL_BYTES", "FSYNC_MODES", "FULL_POLICIES", "DeadLetter", "FsyncMode",
    "FullPolicy", "Ledger", "Record", "Spool", "SpoolCipher", "SpoolClosed", "SpoolFull",
    "SpoolKeyMismatch", "SpoolLocked",
    "SpoolSettings", "SpoolStats", "SpoolUnavailable", "Tally",
]
