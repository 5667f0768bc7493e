"""prediction / feedback events: validation naming the field, and through POST /ingest."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelmon.exporters.quality import InvalidQualityEvent, handle_event
from modelmon.exporters.service.monitor import ModelMonitor


@pytest.fixture
def monitors(registry: CollectorRegistry):
    made: dict[tuple[str, str], ModelMonitor] = {}

    def monitor_for(model: str, version: str, framework: str = "unknown") -> ModelMonitor:
        key = (model, version)
        if key not in made:
            made[key] = ModelMonitor(model, version, registry=registry)
        return made[key]

    return monitor_for


def test_prediction_then_feedback(monitors, sample) -> None:
    handle_event({"type": "prediction", "model": "credit", "version": "1", "prediction": "approve",
                  "score": 0.9, "request_id": "r1", "timestamp": 1.7e9}, monitors)
    handle_event({"type": "prediction", "model": "credit", "version": "1", "prediction": "reject",
                  "scores": [0.2, 0.8], "request_id": "r2", "features": {"age": 30}}, monitors)
    handle_event({"type": "feedback", "model": "credit", "version": "1", "request_id": "r1",
                  "label": "approve"}, monitors)
    handle_event({"type": "feedback", "model": "credit", "version": "1", "request_id": "r2",
                  "label": "approve"}, monitors)
    monitors("credit", "1").quality.flush()
    assert sample("modelmon_predictions_total", **{"class": "approve"}) == 1
    assert sample("modelmon_prediction_score_sum") == pytest.approx(1.7)
    assert sample("modelmon_input_rows_total") == 1
    assert sample("modelmon_feedback_total", outcome="correct") == 1
    assert sample("modelmon_feedback_total", outcome="incorrect") == 1


BASE_P = {"type": "prediction", "model": "credit", "version": "1", "prediction": "a"}
BASE_F = {"type": "feedback", "model": "credit", "request_id": "r1", "label": "a"}


@pytest.mark.parametrize("event, field", [
    ({**BASE_P, "model": ""}, "model"),
    ({k: v for k, v in BASE_P.items() if k != "model"}, "model"),
    ({**BASE_P, "version": 3}, "version"),
    ({k: v for k, v in BASE_P.items() if k != "prediction"}, "prediction"),
    ({**BASE_P, "prediction": [1, 2]}, "prediction"),
    ({**BASE_P, "prediction": float("nan")}, "prediction"),
    ({**BASE_P, "score": 1.5}, "score"),
    ({**BASE_P, "score": "high"}, "score"),
    ({**BASE_P, "scores": []}, "scores"),
    ({**BASE_P, "scores": [0.1, None]}, "scores[1]"),
    ({**BASE_P, "request_id": 7}, "request_id"),
    ({**BASE_P, "features": [1, 2]}, "features"),
    ({**BASE_P, "timestamp": "yesterday"}, "timestamp"),
    ({**BASE_P, "colour": "red"}, "colour"),
    ({k: v for k, v in BASE_F.items() if k != "request_id"}, "request_id"),
    ({k: v for k, v in BASE_F.items() if k != "label"}, "label"),
    ({**BASE_F, "label": {"a": 1}}, "label"),
    ({**BASE_F, "latency_seconds": 1}, "latency_seconds"),
    ({**BASE_F, "type": "nonsense"}, "type"),
])
def test_bad_events_name_the_field(monitors, event: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidQualityEvent) as info:
        handle_event(event, monitors)
    assert str(info.value).startswith(f"{field}:")
    assert isinstance(info.value, ValueError)


def test_through_the_ingest_endpoint(registry: CollectorRegistry) -> None:
    from modelmon.exporters.service import app as service

    app = service.create_app(registry=registry)
    client = app.test_client()
    labels = {"model": "credit", "version": "1"}
    ok = client.post("/ingest", json=[
        {"type": "prediction", "model": "credit", "version": "1", "prediction": "a",
         "request_id": "r1"},
        {"type": "feedback", "model": "credit", "version": "1", "request_id": "r1", "label": "a"},
    ])
    assert ok.status_code < 300, ok.get_data(as_text=True)
    bad = client.post("/ingest", json=[
        {"type": "prediction", "model": "credit", "version": "1", "prediction": "a"},
        {"type": "prediction", "model": "credit", "version": "1", "score": 0.5},
    ])
    assert bad.status_code == 400
    assert "events[1].prediction: required" in bad.get_data(as_text=True)
    # All-or-nothing: the valid first event of the refused request was not recorded.
    assert registry.get_sample_value("modelmon_predictions_total", {**labels, "class": "a"}) == 1
