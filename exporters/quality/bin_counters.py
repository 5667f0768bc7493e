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
each series also carries ``previous_bin`` (``k - 1``, ``none`` for bin 0), so the
rules join series ``k`` with series ``k - 1``. The reference shares are gauges
of the same shape, plus ``kind`` (numeric or categorical: KS only for numeric).

Every series exists at 0 from the start, so the first batch of a new process
is an increase like any other. Two budgets are charged per feature, all bins
or none: the model version's ``max_bin_series`` (a ``BinSeriesAllowance``,
shared by its features, predictions and scores) and the registry's
``max_series``. A feature whose bins do not fit gets no series rather than a
partial histogram that would give wrong statistics; it is counted in
``series_budget_exceeded_total{metric}`` and logged with the option to raise.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence

import numpy as np

from modelmon.catalog.quality import NO_PREVIOUS_BIN
from modelmon.exporters.quality.profile import FeatureProfile
from modelmon.labels import OTHER
from modelmon.metrics import MetricSet

log = logging.getLogger(__name__)

# How long counts may wait before they reach the exported counters. A
# prometheus_client increment costs about a microsecond (a lock; an mmap write
# in multiprocess mode) and a batch touches every bin of every drift feature,
# so batches add into a numpy array and one background thread per process
# turns it into increments at this period: the counters lag by at most this
# much, a tiny fraction of any drift window.
FLUSH_SECONDS = 1.0

# Series a bin costs in a scrape: its counter, the counter's _created, the reference gauge.
SERIES_PER_BIN = 3
# Per model version: the defaults (50 drift features x 10 bins, a classifier's
# prediction and score bins) take about 1,600; the rest of max_series (5,000)
# stays for everything else.
DEFAULT_MAX_BIN_SERIES = 2_000


class BinSeriesAllowance:
    """How many fleet drift series one model version may export (``max_bin_series``).

    Predictions and scores are charged first, then features by importance, each
    all bins or none (see ``BinCounters``).
    """

    def __init__(self, max_series: int = DEFAULT_MAX_BIN_SERIES) -> None:
        if isinstance(max_series, bool) or not isinstance(max_series, int) or max_series < 0:
            raise ValueError(
                f"max_bin_series: expected a non-negative integer (series of the fleet drift "
                f"bins of one model version, {SERIES_PER_BIN} per bin; 0 exports none), got "
                f"{max_series!r}"
            )
        self.max_series = max_series
        self.used = 0
        self._lock = threading.Lock()

    def take(self, cost: int) -> bool:
        with self._lock:
            if self.used + cost > self.max_series:
                return False
            self.used += cost
            return True


class _Flusher:
    """The one daemon thread of a process that flushes every live BinCounters."""

    def __init__(self) -> None:
        self.counters: weakref.WeakSet[BinCounters] = weakref.WeakSet()
        self.pid = 0  # the process whose thread runs; 0 after a fork
        self.lock = threading.Lock()
        self.flushing = threading.Lock()  # one flush of everything at a time
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self.pid = 0  # threads do not survive fork(): the child starts its own
        self.lock = threading.Lock()
        self.flushing = threading.Lock()

    def add(self, counters: BinCounters) -> None:
        with self.lock:
            self.counters.add(counters)
            self.ensure_running()

    def ensure_running(self) -> None:
        if self.pid != os.getpid():
            self.pid = os.getpid()
            threading.Thread(target=self._run, name="modelmon-bin-counters", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush_all()

    def flush_all(self) -> None:
        with self.flushing:
            for counters in list(self.counters):
                try:
                    counters.flush()
                except Exception:  # never let monitoring die; the next period retries
                    log.exception("flushing fleet drift bin counters failed")


_FLUSHER = _Flusher()


def flush_all() -> None:
    """Count every row added so far in this process's bin counters, now, and return
    once no flush is under way (shutdown, tests); the daemon thread does it every
    FLUSH_SECONDS otherwise."""
    _FLUSHER.flush_all()


class BinCounters:
    """Cumulative bin counters and reference shares of features side by side.

    ``kind`` is ``"feature"``, ``"prediction"`` or ``"score"`` and picks the
    catalog entries ``<kind>_cumulative_bin_values_total`` and
    ``<kind>_reference_cumulative_share``. Bins are laid out as in
    ``BinLayout``: feature ``j`` owns ``sizes[j]`` consecutive positions.
    ``add``, ``add_bins`` and ``add_row`` only accumulate; ``flush`` (every
    ``FLUSH_SECONDS`` on a background thread, and on ``QualityTracker.flush``)
    increments the counters.
    """

    def __init__(
        self,
        metrics: MetricSet,
        model: str,
        version: str,
        kind: str,
        features: Sequence[FeatureProfile],
        allowance: BinSeriesAllowance | None = None,
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
        allowance = allowance if allowance is not None else BinSeriesAllowance()
        # The most important features first, should max_bin_series not hold them all.
        order = sorted(range(len(features)), key=lambda j: -(features[j].importance or 0.0))
        for j in order:
            f = features[j]
            labels: tuple[str, ...] = (model, version)
            if kind == "feature":
                name = metrics.limiter.limit(counter_name, "feature", f.name)
                if name == OTHER:
                    continue
                labels = (*labels, name)
            cost = SERIES_PER_BIN * f.bins
            if not metrics.budget.room_for(cost):
                metrics.count_budget_exceeded(counter_name)
                log.warning(
                    "series budget spent: no fleet drift counters for %s %s; raise max_series "
                    "or track fewer drift features", kind, f.name,
                )
                continue
            if not allowance.take(cost):
                metrics.count_budget_exceeded(counter_name)
                log.warning(
                    "max_bin_series (%d) of %s %s spent: no fleet drift counters for %s %s; "
                    "raise the max_bin_series quality option or track fewer drift features",
                    allowance.max_series, model, version, kind, f.name,
                )
                continue
            ref = np.cumsum(np.asarray(f.counts, dtype=np.float64))
            ref_total = ref[-1] if ref.size else 0.0
            start = int(self.offsets[j])
            for b in range(f.bins):
                previous = NO_PREVIOUS_BIN if b == 0 else str(b - 1)
                self._incs[start + b] = counter.labels(*labels, str(b), previous).inc
                if ref_total > 0:
                    share.labels(*labels, str(b), previous, f.kind).set(ref[b] / ref_total)
            active[start : start + f.bins] = True
        self._active = active
        self._counts = np.zeros(self.total, dtype=np.int64)
        self._row_bins: list[int] = []
        self._lock = threading.Lock()
        _FLUSHER.add(self)

    def add(self, counts: np.ndarray) -> None:
        """Add per-bin counts (length ``total``) of one batch."""
        if _FLUSHER.pid != os.getpid():
            _FLUSHER.ensure_running()  # a forked worker of a preloaded app
        with self._lock:
            self._counts += counts

    def add_bins(self, index: np.ndarray) -> None:
        """Add a rows x features matrix of bin positions (``total`` where there is no bin)."""
        self.add(np.bincount(index.ravel(), minlength=self.total + 1)[: self.total])

    def add_row(self, bins: list[int]) -> None:
        """Add one row's bin positions."""
        with self._lock:
            self._row_bins.extend(bins)

    def flush(self) -> None:
        """Increment the exported counters by everything added since the last flush."""
        with self._lock:
            counts, rows = self._counts, self._row_bins
            if not rows and not counts.any():
                return
            self._counts, self._row_bins = np.zeros_like(counts), []
        if rows:
            counts += np.bincount(np.asarray(rows, dtype=np.int64),
                                  minlength=self.total + 1)[: self.total]
        running = np.cumsum(counts)
        before = np.concatenate(([0], running))[self.offsets]
        cumulative = running - np.repeat(before, self.sizes)
        cumulative[~self._active] = 0
        incs = self._incs
        values = cumulative.tolist()
        for i in np.flatnonzero(cumulative).tolist():
            incs[i](values[i])  # type: ignore[misc]
