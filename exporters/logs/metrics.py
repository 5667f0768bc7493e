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
DROP_REASONS = ("max_age", "max_bytes", "full", "too_large", "block_timeout", "corrupt", "error")


class ShipperCollector:
    def __init__(self, shipper: LogShipper, prefix: str) -> None:
        self._shipper = shipper
        self._names = {
            n: (by_name(n).full_name(prefix), by_name(n).help)
            for n in ("log_events_total", "log_events_dropped_total", "log_spool_pending_events",
                      "log_spool_bytes", "log_spool_oldest_pending_age_seconds",
                      "log_dead_letters_stored")
        }

    def _family(self, cls: type, name: str, labels: list[str]) -> Metric:
        full, help_text = self._names[name]
        if cls is CounterMetricFamily:
            full = full.removesuffix("_total")
        return cls(full, help_text, labels=labels)  # type: ignore[no-any-return]

    def describe(self) -> Iterator[Metric]:
        yield from ()

    def collect(self) -> Iterator[Metric]:
        shipper = self._shipper
        try:
            stats = shipper.spool.stats()
        except Exception:  # a closed spool: nothing to report
            return
        sink = shipper.sink_name
        events = self._family(CounterMetricFamily, "log_events_total", ["sink", "outcome"])
        for outcome, value in (
            ("accepted", stats.accepted), ("delivered", stats.delivered),
            ("dropped", stats.dropped_total), ("dead_lettered", stats.dead_lettered),
            ("retried", shipper.retried),
        ):
            events.add_metric([sink, outcome], value)
        yield events
        dropped = self._family(CounterMetricFamily, "log_events_dropped_total", ["sink", "reason"])
        for reason, value in sorted({**dict.fromkeys(DROP_REASONS, 0), **stats.dropped}.items()):
            dropped.add_metric([sink, reason], value)
        yield dropped
        age = 0.0 if stats.oldest_created is None else max(time.time() - stats.oldest_created, 0)
        for name, value in (
            ("log_spool_pending_events", stats.pending),
            ("log_spool_bytes", stats.disk_bytes),
            ("log_spool_oldest_pending_age_seconds", age),
            ("log_dead_letters_stored", stats.dead_letter_stored),
        ):
            gauge = self._family(GaugeMetricFamily, name, ["sink"])
            gauge.add_metric([sink], value)
            yield gauge
