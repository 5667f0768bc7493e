"""The catalog follows Prometheus naming practice and is self-consistent."""

from __future__ import annotations

import re

import pytest

from modelmon.catalog import CATALOG, by_name
from modelmon.kpi import DEFAULT_PREFIX

NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@pytest.mark.parametrize("kpi", CATALOG, ids=lambda k: k.name)
def test_kpi_follows_prometheus_naming(kpi):
    assert NAME.match(kpi.name), kpi.name
    assert all(NAME.match(label) for label in kpi.labels), kpi.labels
    assert "le" not in kpi.labels and "quantile" not in kpi.labels
    if kpi.type == "counter":
        assert kpi.name.endswith("_total"), "counters end in _total"
    else:
        assert not kpi.name.endswith("_total"), "only counters end in _total"
    if kpi.unit == "seconds":
        assert "_seconds" in kpi.name, "a seconds KPI says so in its name"
    if kpi.unit == "bytes":
        assert "_bytes" in kpi.name
    if kpi.type == "histogram":
        assert kpi.buckets and list(kpi.buckets) == sorted(kpi.buckets)
    assert kpi.help.strip() and kpi.meaning.strip(), "help and meaning are both written"


def test_names_are_unique_and_prefixed():
    names = [k.name for k in CATALOG]
    assert len(names) == len(set(names))
    assert all(k.full_name().startswith(DEFAULT_PREFIX) for k in CATALOG)
    assert by_name("inference_requests_total").full_name("acme_") == "acme_inference_requests_total"


def test_issue_service_kpis_are_declared_with_their_labels():
    expected = {
        "inference_requests_total": ("model", "version", "outcome"),
        "inference_duration_seconds": ("model", "version"),
        "inference_in_flight": ("model", "version"),
        "inference_batch_size": ("model", "version"),
        "inference_exceptions_total": ("model", "version", "exception"),
        "payload_bytes": ("model", "version", "direction"),
        "model_load_duration_seconds": ("model", "version"),
        "model_last_load_timestamp_seconds": ("model", "version"),
        "collector_success": ("collector",),
        "collector_duration_seconds": ("collector",),
    }
    for name, labels in expected.items():
        assert by_name(name).labels == labels
    assert by_name("model_info").labels[:3] == ("model", "version", "framework")


def test_inference_duration_buckets_span_1ms_to_60s():
    buckets = by_name("inference_duration_seconds").buckets
    assert buckets[0] == 0.001 and buckets[-1] == 60.0


def test_unknown_kpi_error_says_where_to_add_it():
    with pytest.raises(KeyError, match="add an entry"):
        by_name("no_such_kpi")
