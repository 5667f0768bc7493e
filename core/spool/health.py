"""Storage failures of a spool: counted by operation, logged at a bounded rate.

A full disk (or a failing card) makes every spool operation fail again and
again: the writer's group commits, the delivery worker's settlements, the
periodic fsync. Each failure is counted (``SpoolStats.storage_errors``, by
operation) and the spool reports itself ``degraded`` with the reason until an
operation succeeds again; the log says so once when it starts, at most once a
minute while it lasts (with the counts), and once when it ends, so a device
with a full disk does not also fill its log.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Mapping

LOG_EVERY = 60.0  # seconds between reminders while a failure lasts
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_SQLITE_FULL = 13


def is_disk_full(exc: BaseException) -> bool:
    """True for "no space left" from the kernel or from SQLite (SQLITE_FULL)."""
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return True
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return code == _SQLITE_FULL or "disk is full" in str(exc)
    return False


def describe(exc: BaseException) -> str:
    """A one-line reason: ``disk full: ...`` or the error's type and message."""
    if is_disk_full(exc):
        return f"disk full: {exc}"
    return f"{type(exc).__name__}: {exc}"


class StorageHealth:
    """What went wrong with a spool's storage, and since when (thread-safe)."""

    def __init__(self, where: str, logger: logging.Logger) -> None:
        self._where = where
        self._log = logger
        self._lock = threading.Lock()
        self._errors: dict[str, int] = {}
        self._failing: set[str] = set()
        self._reason: str | None = None
        self._since: float | None = None
        self._last_log = 0.0
        self._unlogged = 0

    def failed(self, operation: str, exc: BaseException) -> None:
        """Count one failure of ``operation`` (a short, bounded name)."""
        reason = describe(exc)
        now = time.monotonic()
        with self._lock:
            self._errors[operation] = self._errors.get(operation, 0) + 1
            first = not self._failing
            self._failing.add(operation)
            self._reason = f"{operation}: {reason}"
            if first:
                self._since = time.time()
            due = first or now - self._last_log >= LOG_EVERY
            if not due:
                self._unlogged += 1
                return
            self._last_log = now
            unlogged, self._unlogged = self._unlogged, 0
            counts = ", ".join(f"{k}={v}" for k, v in sorted(self._errors.items()))
        if first:
            self._log.error(
                "modelmon spool %s: %s failed (%s); retrying with backoff. Pending records "
                "are kept and delivered ones are not sent again; new records the disk cannot "
                "take are refused and counted (dropped, reason disk_full). At most one log "
                "line a minute while this lasts", self._where, operation, reason)
        else:
            self._log.error("modelmon spool %s: still failing (%s); %d more failures since the "
                            "last line; storage errors so far: %s", self._where, reason,
                            unlogged, counts)

    def succeeded(self, operation: str) -> None:
        """``operation`` worked: it no longer makes the spool degraded."""
        if operation not in self._failing:  # the common case, without the lock
            return
        with self._lock:
            self._failing.discard(operation)
            if self._failing:
                return
            since, self._since, self._reason = self._since, None, None
        lasted = 0.0 if since is None else time.time() - since
        self._log.warning("modelmon spool %s: storage works again after %.0f s", self._where,
                          lasted)

    @property
    def degraded(self) -> str | None:
        """The last failure while one lasts (``"settle: disk full: ..."``), else None."""
        return self._reason

    @property
    def degraded_since(self) -> float | None:
        return self._since

    def errors(self) -> Mapping[str, int]:
        with self._lock:
            return dict(self._errors)
