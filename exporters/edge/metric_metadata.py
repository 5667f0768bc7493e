"""The HELP, TYPE and UNIT of the metric families the agent collects.

The window keeps samples, not families: remote_write carries no HELP or TYPE.
The query API's ``/api/v1/metadata`` answers from this small table instead,
kept as a Prometheus scraping the agent's /metrics (OpenMetrics, its default)
keeps its scrape cache: per family name (``modelmon_requests`` for the series
``modelmon_requests_total``), the latest seen, forgotten
``FORGET_AFTER_COLLECTIONS`` collections after the family was last collected.
Bounded by ``MAX_FAMILIES``: a family beyond it is not recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

# Prometheus keeps a target's metadata 10 scrapes after the family disappeared.
FORGET_AFTER_COLLECTIONS = 10
MAX_FAMILIES = 10_000

# (type, help, unit) as the families' TYPE, HELP and UNIT lines give them.
Metadata = tuple[str, str, str]


class MetricMetadata:
    def __init__(self, max_families: int = MAX_FAMILIES) -> None:
        self._max = max_families
        self._lock = threading.Lock()  # the query API reads from its own threads
        self._entries: dict[str, tuple[Metadata, int]] = {}
        self._collection = 0

    def update(self, families: Iterable[tuple[str, Metadata]]) -> None:
        """Record one collection's families, (name, (type, help, unit)) each."""
        with self._lock:
            self._collection += 1
            now, entries = self._collection, self._entries
            forgotten = False
            for name, metadata in families:
                if name not in entries and len(entries) >= self._max and not forgotten:
                    self._forget(now)  # once per collection at most: room for a new family?
                    forgotten = True
                if name in entries or len(entries) < self._max:
                    entries[name] = (metadata, now)
            if now % FORGET_AFTER_COLLECTIONS == 0 and not forgotten:
                self._forget(now)

    def _forget(self, now: int) -> None:
        for name in [n for n, (_, seen) in self._entries.items()
                     if now - seen > FORGET_AFTER_COLLECTIONS]:
            del self._entries[name]

    def snapshot(self) -> dict[str, Metadata]:
        """Every family's metadata, by family name, sorted by name."""
        with self._lock:
            now = self._collection
            return {name: metadata for name, (metadata, seen) in sorted(self._entries.items())
                    if now - seen <= FORGET_AFTER_COLLECTIONS}
