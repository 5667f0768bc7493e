"""The shipper's self-metrics read from the spool's persistent counters at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from modelmon.catalog import by_name

if TYPE_CHECKING:
    from modelmon.exporters.logs.shipper import LogShipper


# Every reason the spool or shipper drops for, exported at 0 from the start so
# rate() and the alerts see 0, not "no data", before the first drop.
DROP_REASONS = ("max_age", "max_bytes", "full", "too_large", "block_timeout", "corrupt", "error",
                "disk_full", "io_error")


class ShipperCollector:
    def __init__(self, shipper: LogShipper, prefix: str) -> None:
        self._shipper = shipper
        self._names = {
            n: (by_name(n).full_name(prefix), by_name(n).help)
            for n in ("log_events_total", "log_events_dropped_total", "log_spool_pending_events",
                      "log_spool_bytes", "log_spool_oldest_pending_age_seconds",
                      "log_dead_letters_stored")
        }

    def _counter(self, name: str, labels: list[str]) -> CounterMetricFamily:
        full, help_text = self._names[name]
        return CounterMetricFamily(full.removesuffix("_total"), help_text, labels=labels)

    def _gauge(self, name: str, labels: list[str]) -> GaugeMetricFamily:
        full, help_text = self._names[name]
        return GaugeMetricFamily(full, help_text, labels=labels)

    def describe(self) -> Iterator[Metric]:
        yield from ()

    def collect(self) -> Iterator[Metric]:
        shipper = self._shipper
        try:
            stats = shipper.spool.stats()
        except Exception:  # a closed spool: nothing to report
            return
        sink = shipper.sink_name
        events = self._counter("log_events_total", ["sink", "outcome"])
        for outcome, value in (
            ("accepted", stats.accepted), ("delivered", stats.delivered),
            ("dropped", stats.dropped_total), ("dead_lettered", stats.dead_lettered),
            ("retried", shipper.retried),
        ):
            events.add_metric([sink, outcome], value)
        yield events
        dropped = self._counter("log_events_dropped_total", ["sink", "reason"])
        for reason, value in sorted({**dict.fromkeys(DROP_REASONS, 0), **stats.dropped}.items()):
            dropped.add_metric([sink, reason], value)
        yield dropped
        oldest = stats.oldest_created
        age = 0.0 if oldest is None else max(time.time() - oldest, 0.0)
        gauges: tuple[tuple[str, float], ...] = (
            ("log_spool_pending_events", stats.pending),
            ("log_spool_bytes", stats.disk_bytes),
            ("log_spool_oldest_pending_age_seconds", age),
            ("log_dead_letters_stored", stats.dead_letter_stored),
        )
        for name, level in gauges:
            gauge = self._gauge(name, ["sink"])
            gauge.add_metric([sink], level)
            yield gauge
