"""Prometheus metric objects created from the KPI catalog.

One ``MetricSet`` exists per (registry, prefix): every ModelMonitor, the
/ingest service and the Flask integration that share a registry share its
metric objects, because prometheus_client refuses to register a name twice.
Metrics are created on first use, so a process exports only the groups it
uses (a model server without /ingest has no ``ingest_*`` series).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from modelmon.catalog import by_name
from modelmon.kpi import DEFAULT_PREFIX, KPI, bucket_problems
from modelmon.labels import LabelLimiter

DEFAULT_MAX_LABEL_VALUES = 200

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
        if kpi.type == "counter":
            # prometheus_client appends _total itself.
            return Counter(full.removesuffix("_total"), kpi.help, kpi.labels, registry=self.registry)
        if kpi.type == "gauge":
            return Gauge(
                full, kpi.help, kpi.labels, multiprocess_mode=kpi.multiprocess_mode,
                registry=self.registry,
            )
        buckets = self._buckets.get(kpi.name, kpi.buckets)
        assert buckets is not None, f"histogram {kpi.name} has no buckets in the catalog"
        return Histogram(full, kpi.help, kpi.labels, buckets=buckets,
                         registry=self.registry)

    def _count_overflow(self, metric: str, label: str) -> None:
        self.counter("label_overflow_total").labels(metric, label).inc()


def metric_set(
    registry: CollectorRegistry | None = None,
    prefix: str = DEFAULT_PREFIX,
    buckets: Mapping[str, Sequence[float]] | None = None,
    max_label_values: int | None = None,
) -> MetricSet:
    """The shared MetricSet of ``registry`` (the global one by default).

    ``max_label_values`` None means "no preference" (the default cap of
    DEFAULT_MAX_LABEL_VALUES applies until a caller sets one).
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
    return existing
