"""The catalog refuses what a strict consumer would refuse in a scrape.

OpenMetrics 1.0 and ``promtool check metrics`` reserve sample-name suffixes
(``_total``, ``_created`` for counters; ``_count``, ``_sum``, ``_bucket`` for
histograms and summaries; ``_info`` for info metrics), want base units spelled
out. A KPI that breaks one of these is refused where it is declared, so no exporter can
ever serve it; these tests pin both the rules and the shipped catalog.
"""

from __future__ import annotations

import pytest

from modelmon.catalog import CATALOG
from modelmon.kpi import KPI, exposition_problems


def kpi(name: str, type_: str = "gauge", unit: str = "values", **kw: object) -> KPI:
    return KPI(name, type_, unit, ("model",), "help", "meaning", "service",  # type: ignore[arg-type]
               dashboard="model-service", row="Traffic and errors", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("entry", CATALOG, ids=lambda k: k.name)
def test_every_catalog_kpi_is_valid_in_both_exposition_formats(entry: KPI) -> None:
    assert exposition_problems(entry) == []


@pytest.mark.parametrize("name,type_,unit,fragment", [
    ("system_cpu_count", "gauge", "cores", "_count"),
    ("latency_sum", "gauge", "seconds", "_sum"),
    ("queue_bucket", "gauge", "values", "_bucket"),
    ("things_created", "gauge", "values", "_created"),
    ("requests_total", "gauge", "requests", "_total"),
    ("requests", "counter", "requests", "end in _total"),
    ("duration_count", "histogram", "seconds", "_count"),
    ("node_info", "counter", "info", "_info"),
    ("build_info", "gauge", "values", "_info"),
    ("request_duration_milliseconds", "histogram", "seconds", "base unit"),
    ("request_duration_ms", "histogram", "seconds", "abbreviat"),
    ("payload_kb", "gauge", "bytes", "abbreviat"),
    ("queue_gauge", "gauge", "values", "type"),
    ("Camel_case", "gauge", "values", "lower"),
    ("a:b", "gauge", "values", "lower"),
])
def test_a_kpi_with_a_reserved_or_non_base_name_is_refused(name, type_, unit, fragment) -> None:
    buckets = (0.1, 1.0) if type_ == "histogram" else None
    with pytest.raises(ValueError, match=fragment) as refused:
        kpi(name, type_, unit, buckets=buckets)
    assert name in str(refused.value), "the message names the KPI"


def test_negative_bucket_bounds_are_allowed_for_signed_targets() -> None:
    # OpenMetrics forbids _sum with negative bounds; the exposition drops it there
    # (tests/integration/exporters/service/test_exposition_conformance.py).
    assert kpi("prediction_value", "histogram", "value", buckets=(-1.0, 0.0, 1.0)).buckets


@pytest.mark.parametrize("buckets", [None, (), (1.0, 0.5), (0.1, float("nan"))])
def test_histograms_need_ascending_finite_buckets(buckets) -> None:
    with pytest.raises(ValueError, match="buckets"):
        kpi("duration_seconds", "histogram", "seconds", buckets=buckets)


def test_only_histograms_carry_buckets() -> None:
    with pytest.raises(ValueError, match="buckets"):
        kpi("queue_depth", "gauge", "values", buckets=(1.0, 2.0))


def test_reserved_label_names_are_refused() -> None:
    with pytest.raises(ValueError, match="le"):
        KPI("x_seconds", "histogram", "seconds", ("le",), "h", "m", "service",
            dashboard="model-service", row="r", buckets=(1.0,))
    with pytest.raises(ValueError, match="__"):
        KPI("x", "gauge", "values", ("__name",), "h", "m", "service",
            dashboard="model-service", row="r")


def test_configured_buckets_follow_the_same_rules() -> None:
    from prometheus_client import CollectorRegistry

    from modelmon.metrics import MetricSet

    with pytest.raises(ValueError, match=r"buckets\.prediction_value: .*ascending"):
        MetricSet(CollectorRegistry(), buckets={"prediction_value": [10.0, 0.0, 100.0]})
    MetricSet(CollectorRegistry(), buckets={"prediction_value": [-10.0, 0.0, 10.0]})
