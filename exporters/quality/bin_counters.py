"""The live histogram on the reference bins as counters: what fleet drift sums up.

PSI, JS and KS of one process describe only its share of the traffic; averaged
across replicas they are no statistic at all. Counts aggregate: every process
exports, per drift feature (and for predictions and scores), how many values
fell in its reference bins, and Prometheus recording rules
(``modelmon.alerting.drift``) compute the statistics from the sum over the
fleet.

The counters are cumulative, like a histogram's ``le`` buckets: series ``bin=k``
counts the values in bins ``0..k``. KS needs cumulative shares and PromQL has
no running sum over a label, while a bin's own count is one subtraction away:
each series also carries ``previous_bin`` (``k - 1``, empty for bin 0), so the
rules join series ``k`` with series ``k - 1``. The reference shares are gauges
of the same shape, plus ``kind`` (numeric or categorical: KS only for numeric).

Every series exists at 0 from the start, so the first batch of a new process
is an increase like any other. The budget of the MetricSet is charged per
feature, all bins or none: a feature whose bins do not fit gets no series
rather than a partial histogram that would give wrong statistics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np

from modelmon.exporters.quality.profile import FeatureProfile
from modelmon.labels import OTHER
from modelmon.metrics import MetricSet

log = logging.getLogger(__name__)

# Rows of the single-row path are binned in bulk: a row touches up to
# bins x features cumulative series, a batch of rows touches each once.
_ROW_FLUSH_VALUES = 4096


class BinCounters:
    """Cumulative bin counters and reference shares of features side by side.

    ``kind`` is ``"feature"``, ``"prediction"`` or ``"score"`` and picks the
    catalog entries ``<kind>_cumulative_bin_values_total`` and
    ``<kind>_reference_cumulative_share``. Bins are laid out as in
    ``BinLayout``: feature ``j`` owns ``sizes[j]`` consecutive positions.
    Not thread-safe: the owner serializes ``add`` and ``add_row``.
    """

    def __init__(
        self,
        metrics: MetricSet,
        model: str,
        version: str,
        kind: str,
        features: Sequence[FeatureProfile],
        *,
        flush_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        counter_name = f"{kind}_cumulative_bin_values_total"
        share_name = f"{kind}_reference_cumulative_share"
        counter = metrics.counter(counter_name)
        share = metrics.gauge(share_name)
        self.sizes = np.array([f.bins for f in features], dtype=np.int64)
        self.offsets = np.concatenate(([0], np.cumsum(self.sizes)[:-1])).astype(np.int64)
        self.total = int(self.sizes.sum())
        self._incs: list[Callable[[float], None] | None] = [None] * self.total
        active = np.zeros(self.total, dtype=bool)
        per_bin = 2 + 1  # a counter and its _created, the reference gauge
        for j, f in enumerate(features):
            labels: tuple[str, ...] = (model, version)
            if kind == "feature":
                name = metrics.limiter.limit(counter_name, "feature", f.name)
                if name == OTHER:
                    continue
                labels = (*labels, name)
            if not metrics.budget.room_for(per_bin * f.bins):
                metrics.count_budget_exceeded(counter_name)
                log.warning(
                    "series budget spent: no fleet drift counters for %s %s; raise max_series "
                    "or track fewer drift features", kind, f.name,
                )
                continue
            ref = np.cumsum(np.asarray(f.counts, dtype=np.float64))
            ref_total = ref[-1] if ref.size else 0.0
            start = int(self.offsets[j])
            for b in range(f.bins):
                previous = "" if b == 0 else str(b - 1)
                self._incs[start + b] = counter.labels(*labels, str(b), previous).inc
                if ref_total > 0:
                    share.labels(*labels, str(b), previous, f.kind).set(ref[b] / ref_total)
            active[start : start + f.bins] = True
        self._active = active
        self._pending: list[int] = []
        self._flush_seconds = flush_seconds
        self._clock = clock
        self._last_flush = clock()

    def add(self, counts: np.ndarray) -> None:
        """Add per-bin counts (length ``total``) of one batch."""
        running = np.cumsum(counts)
        before = np.concatenate(([0], running))[self.offsets]
        cumulative = running - np.repeat(before, self.sizes)
        cumulative[~self._active] = 0
        incs = self._incs
        values = cumulative.tolist()
        for i in np.flatnonzero(cumulative).tolist():
            incs[i](values[i])  # type: ignore[misc]

    def add_bins(self, index: np.ndarray) -> None:
        """Add a rows x features matrix of bin positions (``total`` where there is no bin)."""
        self.add(np.bincount(index.ravel(), minlength=self.total + 1)[: self.total])

    def add_row(self, bins: list[int]) -> None:
        """Add one row's bin positions; counted in bulk within ``flush_seconds``."""
        self._pending.extend(bins)
        if len(self._pending) >= _ROW_FLUSH_VALUES or (
            self._clock() - self._last_flush >= self._flush_seconds
        ):
            self.flush()

    def flush(self) -> None:
        """Count the rows of ``add_row`` that are still pending."""
        self._last_flush = self._clock()
        if self._pending:
            pending = np.asarray(self._pending, dtype=np.int64)
            self._pending.clear()
            self.add(np.bincount(pending, minlength=self.total + 1)[: self.total])
