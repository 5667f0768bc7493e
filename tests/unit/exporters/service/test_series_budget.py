"""The series budget of modelmon serve (issue 12 finding 2): the per-label caps
allow 200 models x 200 versions; the budget bounds the product, so memory and
/metrics stay bounded whatever pairs a client invents, and the excess is counted."""

from __future__ import annotations

import pytest

from modelmon.catalog import CATALOG
from modelmon.config import ConfigError, ServeConfig, serve_config_from_mapping
from modelmon.exporters.service.app import create_app
from modelmon.labels import DEFAULT_MAX_SERIES, OTHER
from support.scrape_check import TEXT, scrape, series_lines

# What one /metrics line may take: the name, up to two 200-character label
# values (model, version) and the other labels, the value.
MAX_LINE_BYTES = 700


def bound(max_series: int) -> int:
    """Series a scrape may hold under ``max_series``: the budget, the overflow
    reserve, one all-__other__ series per catalog metric, the process collectors."""
    reserve = max(100, max_series // 10)
    return max_series + reserve + 30 * len(CATALOG) + 100


def test_a_hostile_loop_of_unique_model_versions_stays_within_the_budget(registry):
    max_series = 1000
    app = create_app(serve_config_from_mapping({"max_series": max_series}), registry=registry)
    client = app.test_client()
    pairs = 0
    for batch in range(6):  # 1,500 unique (model, version) pairs, long names
        events = [{"model": f"model-{batch}-{i}-" + "m" * 150, "version": f"v{i}-" + "v" * 150,
                   "latency_seconds": 0.01, "outcome": "error", "exception": f"E{i}"}
                  for i in range(250)]
        answer = client.post("/ingest", json=events)
        assert answer.status_code == 200, answer.json
        pairs += len(events)
    body = scrape(client)[TEXT]
    assert len(series_lines(body)) <= bound(max_series)
    assert len(body.encode()) <= bound(max_series) * MAX_LINE_BYTES
    directory = app.extensions["modelmon"]["directory"]
    assert len(directory._monitors) < 100  # memory: the pairs past the budget share one monitor
    exceeded = sum(s.value for f in registry.collect() for s in f.samples
                   if s.name == "modelmon_series_budget_exceeded_total")
    assert exceeded >= 1
    # Every event is still counted, the excess under __other__.
    total = sum(s.value for f in registry.collect() for s in f.samples
                if s.name == "modelmon_inference_requests_total")
    assert total == pairs
    assert registry.get_sample_value("modelmon_inference_requests_total", {
        "model": OTHER, "version": OTHER, "outcome": "error"}) > 0


def test_the_default_budget_is_documented_and_configurable():
    assert ServeConfig().max_series == DEFAULT_MAX_SERIES == 5000
    assert serve_config_from_mapping({"max_series": 20000}).max_series == 20000


@pytest.mark.parametrize("bad", [0, -5, "many", 1.5])
def test_a_bad_max_series_is_refused_naming_the_key(bad):
    with pytest.raises(ConfigError, match="max_series"):
        serve_config_from_mapping({"max_series": bad})
