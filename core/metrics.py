"""Prometheus metric objects created from the KPI catalog.

One ``MetricSet`` exists per (registry, prefix): every ModelMonitor, the
/ingest service and the Flask integration that share a registry share its
metric objects, because prometheus_client refuses to register a name twice.
Metrics are created on first use, so a process exports only the groups it
uses (a model server without /ingest has no ``ingest_*`` series).

Every new series of a catalog metric passes through its MetricSet, whoever
calls ``labels()``: its values are cleaned of characters no consumer takes
and it is charged to the series budget (``max_series``), overflowing to
``__other__`` when the budget is spent (see modelmon.labels).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from modelmon.catalog import by_name
from modelmon.kpi import DEFAULT_PREFIX, KPI, bucket_problems
from modelmon.labels import (
    DEFAULT_MAX_SERIES,
    ENUM_LABELS,
    OTHER,
    LabelLimiter,
    SeriesBudget,
    clean_label_value,
)

DEFAULT_MAX_LABEL_VALUES = 200

# The metrics that count the budget's and the labels' own events: their
# labels are catalog names (bounded), and they must be countable when the
# budget is spent.
_UNBUDGETED = frozenset({
    "label_overflow_total", "label_values_replaced_total", "series_budget_exceeded_total",
})


class _Guarded:
    """prometheus_client's ``labels()`` with every new series passed through its MetricSet.

    Known series take the fast path (one dict lookup); a new one gets its
    values cleaned and is charged to the series budget (``MetricSet._new_series``).
    """

    _modelmon_set: MetricSet | None = None
    _modelmon_kpi: KPI

    def labels(self, *labelvalues: object, **labelkwargs: object) -> Any:
        guard = self._modelmon_set
        if guard is None:  # a child, or a metric without labels: prometheus_client answers
            return super().labels(*labelvalues, **labelkwargs)  # type: ignore[misc]
        if labelkwargs:
            names = self._modelmon_kpi.labels
            if labelvalues or sorted(labelkwargs) != sorted(names):
                raise ValueError(f"{self._modelmon_kpi.name}: give the labels {names} all by "
                                 "position or all by name")
            labelvalues = tuple(labelkwargs[n] for n in names)
        values = tuple(str(v) for v in labelvalues)
        child = self._metrics.get(values)  # type: ignore[attr-defined]
        if child is not None:
            return child
        return guard._new_series(self, values)

    def _modelmon_child(self, values: tuple[str, ...]) -> Any:
        return super().labels(*values)  # type: ignore[misc]


class GuardedCounter(_Guarded, Counter):
    pass


class GuardedGauge(_Guarded, Gauge):
    pass


class GuardedHistogram(_Guarded, Histogram):
    pass


# What a catalog entry becomes, by its type.
CatalogMetric = Counter | Gauge | Histogram
_M = TypeVar("_M", Counter, Gauge, Histogram)

_sets: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, MetricSet]] = (
    weakref.WeakKeyDictionary()
)
_sets_lock = threading.Lock()


class MetricSet:
    """The catalog's metrics in one registry under one prefix."""

    def __init__(
        self,
        registry: CollectorRegistry,
        prefix: str = DEFAULT_PREFIX,
        buckets: Mapping[str, Sequence[float]] | None = None,
        max_label_values: int = DEFAULT_MAX_LABEL_VALUES,
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> None:
        self.registry = registry
        self.prefix = prefix
        self._buckets = {k: tuple(float(b) for b in v) for k, v in (buckets or {}).items()}
        for name in self._buckets:
            if by_name(name).type != "histogram":
                raise ValueError(f"buckets.{name}: {name} is not a histogram; remove it")
            problems = bucket_problems(self._buckets[name])
            if problems:
                raise ValueError(f"buckets.{name}: " + "; ".join(problems))
        self._metrics: dict[str, CatalogMetric] = {}
        self._lock = threading.Lock()
        self.limiter = LabelLimiter(max_label_values, self._count_overflow)
        self._explicit_cap: int | None = None
        self.budget = SeriesBudget(max_series)
        self._explicit_budget: int | None = None
        self._series_lock = threading.Lock()

    def counter(self, name: str) -> Counter:
        """The prometheus_client Counter of catalog entry ``name`` (a counter KPI)."""
        return self._typed(name, Counter)

    def gauge(self, name: str) -> Gauge:
        """The prometheus_client Gauge of catalog entry ``name`` (a gauge KPI)."""
        return self._typed(name, Gauge)

    def histogram(self, name: str) -> Histogram:
        """The prometheus_client Histogram of catalog entry ``name`` (a histogram KPI)."""
        return self._typed(name, Histogram)

    def _typed(self, name: str, kind: type[_M]) -> _M:
        metric = self.get(name)
        if not isinstance(metric, kind):
            raise TypeError(
                f"KPI {name} is a {by_name(name).type} in the catalog, not a "
                f"{kind.__name__.lower()}; ask for it with MetricSet.{by_name(name).type}()"
            )
        return metric

    def get(self, name: str) -> CatalogMetric:
        """The prometheus_client metric for catalog entry ``name``."""
        metric = self._metrics.get(name)
        if metric is None:
            with self._lock:
                metric = self._metrics.get(name)
                if metric is None:
                    metric = self._create(by_name(name))
                    self._metrics[name] = metric
        return metric

    def adopt_label_cap(self, max_label_values: int | None) -> None:
        """Apply a caller's cap; fail loudly when two callers want different ones.

        Components that do not care about the cap (a log shipper) pass None;
        the first explicit cap wins and later explicit ones must agree.
        """
        if max_label_values is None:
            return
        if self._explicit_cap is None:
            self.limiter.max_values = max_label_values
            self._explicit_cap = max_label_values
        elif self._explicit_cap != max_label_values:
            raise ValueError(
                f"max_label_values: this registry already caps labels at {self._explicit_cap}; "
                "all monitors sharing a registry must use the same cap"
            )

    def adopt_series_budget(self, max_series: int | None) -> None:
        """Apply a caller's series budget, like ``adopt_label_cap``."""
        if max_series is None:
            return
        if self._explicit_budget is None:
            self.budget = SeriesBudget(max_series)  # validates
            self.budget.used = self._series_in_use()
            self._explicit_budget = max_series
        elif self._explicit_budget != max_series:
            raise ValueError(
                f"max_series: this registry already has a budget of {self._explicit_budget} "
                "series; all monitors sharing a registry must use the same budget"
            )

    def clean(self, metric: str, label: str, value: str) -> str:
        """``value`` fit for a label (see modelmon.labels), counting any replacement."""
        cleaned = clean_label_value(value)
        if cleaned != value:
            self.counter("label_values_replaced_total").labels(metric, label).inc()
        return cleaned

    def budget_spent(self) -> bool:
        """True when no new series fits in the budget (callers then fold to __other__)."""
        return not self.budget.room_for(1)

    def count_budget_exceeded(self, metric: str) -> None:
        self.counter("series_budget_exceeded_total").labels(metric).inc()

    def check_buckets(self, buckets: Mapping[str, Sequence[float]] | None) -> None:
        """Fail loudly when a second user of this registry wants other buckets."""
        for name, wanted in (buckets or {}).items():
            have = self._buckets.get(name, by_name(name).buckets)
            if tuple(float(b) for b in wanted) != have:
                raise ValueError(
                    f"buckets.{name}: this registry already uses buckets {have}; all "
                    "monitors sharing a registry must configure the same buckets"
                )

    def _create(self, kpi: KPI) -> CatalogMetric:
        full = kpi.full_name(self.prefix)
        metric: GuardedCounter | GuardedGauge | GuardedHistogram
        if kpi.type == "counter":
            # prometheus_client appends _total itself.
            metric = GuardedCounter(full.removesuffix("_total"), kpi.help, kpi.labels,
                                    registry=self.registry)
        elif kpi.type == "gauge":
            metric = GuardedGauge(
                full, kpi.help, kpi.labels, multiprocess_mode=kpi.multiprocess_mode,
                registry=self.registry,
            )
        else:
            buckets = self._buckets.get(kpi.name, kpi.buckets)
            assert buckets is not None, f"histogram {kpi.name} has no buckets in the catalog"
            metric = GuardedHistogram(full, kpi.help, kpi.labels, buckets=buckets,
                                      registry=self.registry)
        if kpi.labels:
            metric._modelmon_kpi = kpi
            metric._modelmon_set = self
        else:
            self.budget.charge(self._cost(metric))
        return metric

    # -- the series budget -----------------------------------------------------

    @staticmethod
    def _cost(metric: Counter | Gauge | Histogram) -> int:
        """Series one child adds to a text scrape (``_created`` included)."""
        if isinstance(metric, Histogram):
            return len(metric._upper_bounds) + 3  # buckets (+Inf too), _sum, _count, _created
        return 2 if isinstance(metric, Counter) else 1

    def _series_in_use(self) -> int:
        total = 0
        for metric in list(self._metrics.values()):
            children = len(metric._metrics) if getattr(metric, "_labelnames", ()) else 1
            total += children * self._cost(metric)
        return total

    def _new_series(self, metric: Any, values: tuple[str, ...]) -> Any:
        kpi = metric._modelmon_kpi
        names = kpi.labels
        if len(values) != len(names):
            raise ValueError(f"{kpi.name}: expected {len(names)} label values {names}, got {values}")
        cleaned = tuple(clean_label_value(v) for v in values)
        replaced = [n for n, v, c in zip(names, values, cleaned, strict=True) if v != c]
        cost = self._cost(metric)
        exceeded = False
        with self._series_lock:
            child = metric._metrics.get(cleaned)
            if child is None:
                if kpi.name in _UNBUDGETED:
                    self.budget.charge(cost)
                elif not self.budget.admit(cost):
                    exceeded = True
                    cleaned = tuple(
                        v if n in ENUM_LABELS else OTHER for n, v in zip(names, cleaned, strict=True)
                    )
                    child = metric._metrics.get(cleaned)
                    if child is None and not self.budget.admit_overflow(cost):
                        # Past the reserve too: one all-__other__ series per metric.
                        cleaned = (OTHER,) * len(names)
                        child = metric._metrics.get(cleaned)
                        if child is None:
                            self.budget.charge(cost)
                if child is None:
                    child = metric._modelmon_child(cleaned)
        # Counted outside the lock: counting creates series of its own.
        for name in replaced:
            self.counter("label_values_replaced_total").labels(kpi.name, name).inc()
        if exceeded:
            self.count_budget_exceeded(kpi.name)
        return child

    def _count_overflow(self, metric: str, label: str) -> None:
        self.counter("label_overflow_total").labels(metric, label).inc()


def metric_set(
    registry: CollectorRegistry | None = None,
    prefix: str = DEFAULT_PREFIX,
    buckets: Mapping[str, Sequence[float]] | None = None,
    max_label_values: int | None = None,
    max_series: int | None = None,
) -> MetricSet:
    """The shared MetricSet of ``registry`` (the global one by default).

    ``max_label_values`` None means "no preference" (the default cap of
    DEFAULT_MAX_LABEL_VALUES applies until a caller sets one); so does
    ``max_series`` None (DEFAULT_MAX_SERIES series in all).
    """
    registry = REGISTRY if registry is None else registry
    with _sets_lock:
        per_prefix = _sets.setdefault(registry, {})
        existing = per_prefix.get(prefix)
        if existing is None:
            existing = MetricSet(registry, prefix, buckets)
            per_prefix[prefix] = existing
    existing.check_buckets(buckets)
    existing.adopt_label_cap(max_label_values)
    existing.adopt_series_budget(max_series)
    return existing
