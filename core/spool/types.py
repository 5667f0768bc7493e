"""What the spool's API speaks: its settings, records, statistics and errors
(``modelmon.spool`` re-exports them all)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from .crypto import SpoolCipher

FsyncMode = Literal["interval", "always", "never"]
FullPolicy = Literal["drop_oldest", "drop_newest", "block"]
FSYNC_MODES: tuple[str, ...] = ("interval", "always", "never")
FULL_POLICIES: tuple[str, ...] = ("drop_oldest", "drop_newest", "block")


@dataclass(frozen=True)
class SpoolSettings:
    """How a spool is bounded and made durable (``Spool.from_settings``)."""

    max_bytes: int = 512 * 1024 * 1024
    max_age: float | None = 7 * 86400.0
    full_policy: FullPolicy = "drop_oldest"
    fsync: FsyncMode = "interval"
    fsync_interval: float = 1.0
    block_timeout: float | None = None
    # Seal every payload before it reaches the disk (``modelmon.spool.crypto``).
    encryption: SpoolCipher | None = None


class SpoolFull(Exception):
    """``full_policy="block"`` waited ``block_timeout`` seconds for room."""


class SpoolLocked(RuntimeError):
    """Another process owns this spool directory."""


class SpoolUnavailable(OSError):
    """The spool directory cannot be created, locked or written (a path under a
    file, a read-only filesystem, no permission). The message names the path
    and the reason; a product adds the name of its setting."""

    def __init__(self, path: object, exc: BaseException) -> None:
        reason = getattr(exc, "strerror", None) or str(exc)
        super().__init__(f"cannot use {path} as a spool directory ({reason})")
        self.path = path
        self.reason = reason


class SpoolClosed(RuntimeError):
    """The spool was closed; nothing can be appended."""


class Record(NamedTuple):
    """A pending record. A named tuple: built straight from a SQLite row, several
    times cheaper than a frozen dataclass at tens of thousands of records a second."""

    seq: int
    created: float
    payload: bytes
    items: int


_make_record = Record._make


@dataclass(frozen=True, slots=True)
class DeadLetter:
    seq: int
    created: float
    payload: bytes
    items: int
    reason: str
    dead_at: float


@dataclass(frozen=True)
class SpoolStats:
    """Counters in records (``*_items``: in logical items). They persist across restarts."""

    accepted: int
    delivered: int
    dropped: Mapping[str, int]
    dead_lettered: int
    pending: int
    pending_items: int
    pending_bytes: int
    oldest_created: float | None
    disk_bytes: int
    dead_letter_stored: int = 0
    accepted_items: int = 0
    delivered_items: int = 0
    dropped_items: Mapping[str, int] = field(default_factory=dict)
    dead_lettered_items: int = 0
    # Failed storage operations by name (ingest, settle, sync, expire, append),
    # since the spool was opened; ``degraded``: the last failure while one lasts.
    storage_errors: Mapping[str, int] = field(default_factory=dict)
    degraded: str | None = None
    degraded_since: float | None = None

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def balanced(self) -> bool:
        """The accounting identity: accepted == delivered + dropped + dead_lettered + pending."""
        return self.accepted == (
            self.delivered + self.dropped_total + self.dead_lettered + self.pending
        )
