"""Alert delivery as KPIs: what each Alertmanager took, what failed, what waits.

Prometheus's ``prometheus_notifications_{sent,errors,dropped}_total`` and
``_queue_length`` for the device (``modelmon.catalog.edge``): counted by the
delivery worker's thread as it sends (``sent``, ``failed`` per Alertmanager),
and read from the alert spool at each collection (``pending``, ``dropped`` by
reason), so they are part of the sample stream the agent remote-writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry

from modelmon.metrics import metric_set

# Why the alert spool drops notifications: every Alertmanager refused them
# (http_400, http_422), an undecodable record, or the spool's bounds.
DROP_REASONS = ("http_400", "http_422", "undecodable", "max_age", "max_bytes")


class AlertDeliveryMetrics:
    def __init__(self, registry: CollectorRegistry, prefix: str, device: str,
                 alertmanagers: Sequence[str], spool_drops: Mapping[str, int]) -> None:
        m = metric_set(registry, prefix)
        sent, failed = (m.counter("edge_alert_notifications_sent_total"),
                        m.counter("edge_alert_notifications_failed_total"))
        # Series that exist from the start, so increase() sees the first send.
        self._sent = {url: sent.labels(device, url) for url in alertmanagers}
        self._failed = {url: failed.labels(device, url) for url in alertmanagers}
        self._dropped = m.counter("edge_alert_notifications_dropped_total")
        self._pending = m.gauge("edge_alert_notifications_pending").labels(device)
        self.device = device
        for reason in DROP_REASONS:
            self._dropped.labels(device, reason)
        # The spool counts drops over its life; the counter counts them since this start.
        self._drops_seen = dict(spool_drops)

    def posted(self, alertmanager: str, notifications: int, accepted: bool) -> None:
        (self._sent if accepted else self._failed)[alertmanager].inc(notifications)

    def update_spool(self, pending: int, dropped: Mapping[str, int]) -> None:
        self._pending.set(pending)
        for reason, total in dropped.items():
            new = total - self._drops_seen.get(reason, 0)
            if new > 0:
                self._dropped.labels(self.device, reason).inc(new)
            self._drops_seen[reason] = total
