"""The agent's own KPIs (``modelmon_edge_*``), labelled by device.

Created from the catalog through ``metric_set``; the children for this
device are bound once so the sender's hot loop only does float updates.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from modelmon.metrics import metric_set

from .remote_write import RemoteWriteResult

log = logging.getLogger(__name__)

# Reasons the spool itself drops records for; the sender's own drop reasons
# (too_old, http_400, ...) are counted where they happen.
SPOOL_DROP_REASONS = ("max_age", "max_bytes", "full", "corrupt", "too_large", "block_timeout",
                      "disk_full", "io_error")


class EdgeMetrics:
    def __init__(self, registry: CollectorRegistry, prefix: str, device: str) -> None:
        m = metric_set(registry, prefix)
        self._m = m
        self.device = device
        self.link_up = m.gauge("edge_link_up").labels(device)
        self.last_success = m.gauge("edge_last_send_success_timestamp_seconds").labels(device)
        self.backlog_samples = m.gauge("edge_backlog_samples").labels(device)
        self.backlog_bytes = m.gauge("edge_backlog_bytes").labels(device)
        self.backlog_age = m.gauge("edge_backlog_oldest_sample_age_seconds").labels(device)
        self.backfill_hold = m.gauge("edge_backfill_hold_seconds").labels(device)
        self.collected = m.counter("edge_samples_collected_total").labels(device)
        self.sent = m.counter("edge_samples_sent_total").labels(device)
        self.send_duration = m.histogram("edge_send_duration_seconds").labels(device)
        self.disk_bytes = m.gauge("edge_spool_disk_bytes").labels(device)
        self._max_bytes = m.gauge("edge_spool_max_bytes").labels(device)
        self._dropped = m.counter("edge_samples_dropped_total")
        self._requests = m.counter("edge_send_requests_total")
        self._lock = threading.Lock()
        # Totals since this agent started, for status.json (counters cannot be read back cheaply).
        self.sent_total = 0
        self.dropped_totals: dict[str, int] = {}
        self.link_state: bool | None = None
        # Called as (link_up, now) when the link goes down or comes back.
        self.on_link_change: Callable[[bool, float], None] | None = None
        self.last_success_time: float | None = None
        self.last_error: str = ""
        self._spool_drops_seen: dict[str, int] = {}
        # Series that exist from the start, so rate() and alerts see 0, not "no data".
        for outcome in ("success", "retry", "rejected", "dropped", "unauthorized", "unrecorded"):
            self._requests.labels(device, outcome)
        for reason in SPOOL_DROP_REASONS:
            self._dropped.labels(device, reason)

    def set_spool_limits(self, max_bytes: int, max_age: float | None) -> None:
        """Export the spool's limits so alerts judge each device by its own."""
        self._max_bytes.set(max_bytes)
        if max_age is not None:
            self._m.gauge("edge_spool_max_age_seconds").labels(self.device).set(max_age)

    def count_dropped(self, reason: str, samples: int) -> None:
        reason = self._m.limiter.limit("edge_samples_dropped_total", "reason", reason)
        self._dropped.labels(self.device, reason).inc(samples)
        with self._lock:
            self.dropped_totals[reason] = self.dropped_totals.get(reason, 0) + samples

    def count_unrecorded(self) -> None:
        """A receiver's answer the spool could not record (a full disk): counted as
        the request outcome ``unrecorded``, once per try."""
        self._requests.labels(self.device, "unrecorded").inc()

    def observe_send(self, result: RemoteWriteResult, samples: int, now: float) -> None:
        self._requests.labels(self.device, result.outcome).inc()
        self.send_duration.observe(result.duration)
        if result.outcome == "success":
            self.sent.inc(samples)
            self.last_success.set(now)
            with self._lock:
                self.sent_total += samples
                self.last_success_time = now
        else:
            self.last_error = f"{result.reason}: {result.message}"[:300]
        reached = result.outcome != "retry"
        self.link_up.set(1.0 if reached else 0.0)
        previous, self.link_state = self.link_state, reached
        if previous is not None and previous != reached and self.on_link_change is not None:
            try:
                self.on_link_change(reached, now)
            except Exception:  # reporting the link must never stop the sender
                log.exception("edge link change callback failed")

    def update_spool(self, stats: Any, now: float, baseline: Mapping[str, int]) -> None:
        """Backlog gauges, and the spool's own drops since ``baseline`` as counter increments."""
        self.backlog_samples.set(stats.pending_items)
        self.backlog_bytes.set(stats.pending_bytes)
        oldest = stats.oldest_created
        self.backlog_age.set(0.0 if oldest is None else max(0.0, now - oldest))
        self.disk_bytes.set(stats.disk_bytes)
        for reason in SPOOL_DROP_REASONS:
            total = int(stats.dropped_items.get(reason, 0)) - int(baseline.get(reason, 0))
            delta = total - self._spool_drops_seen.get(reason, 0)
            if delta > 0:
                self._spool_drops_seen[reason] = total
                self.count_dropped(reason, delta)
