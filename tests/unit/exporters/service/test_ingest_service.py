"""POST /ingest, /metrics and /healthz of modelmon serve (Flask test client)."""

from __future__ import annotations

import json

import pytest

from modelmon.config import ServeConfig, serve_config_from_mapping
from modelmon.exporters.service.app import create_app
from modelmon.labels import OTHER


def make_client(registry, **config):
    cfg = serve_config_from_mapping(config) if config else ServeConfig()
    return create_app(cfg, registry=registry).test_client()


def test_one_event_and_a_batch_are_recorded(registry):
    client = make_client(registry)
    r = client.post("/ingest", json={"model": "rec", "version": "2", "latency_seconds": 0.05,
                                     "batch_size": 8, "request_bytes": 100})
    assert r.status_code == 200 and r.json == {"status": "ok", "accepted": 1}
    r = client.post("/ingest", json=[
        {"model": "rec", "version": "2", "latency_seconds": 0.2, "outcome": "error",
         "exception": "TimeoutError"},
        {"type": "inference", "model": "rec", "version": "2", "latency_seconds": 0.1,
         "outcome": "rejected", "timestamp": 1700000000.5},
    ])
    assert r.status_code == 200 and r.json["accepted"] == 2
    get = registry.get_sample_value
    labels = {"model": "rec", "version": "2"}
    for outcome in ("success", "error", "rejected"):
        assert get("modelmon_inference_requests_total", {**labels, "outcome": outcome}) == 1
    assert get("modelmon_inference_duration_seconds_count", labels) == 3
    assert get("modelmon_inference_batch_size_sum", labels) == 8
    assert get("modelmon_inference_exceptions_total", {**labels, "exception": "TimeoutError"}) == 1
    assert get("modelmon_payload_bytes_sum", {**labels, "direction": "request"}) == 100
    assert get("modelmon_ingest_events_total", {"event_type": "inference", "outcome": "accepted"}) == 3


@pytest.mark.parametrize("event,field", [
    ({"latency_seconds": 0.1}, "model: required"),
    ({"model": "", "latency_seconds": 0.1}, "model: expected a non-empty string"),
    ({"model": "m"}, "latency_seconds: required"),
    ({"model": "m", "latency_seconds": -1}, "latency_seconds: expected a finite number >= 0"),
    ({"model": "m", "latency_seconds": "fast"}, "latency_seconds"),
    ({"model": "m", "latency_seconds": True}, "latency_seconds"),
    ({"model": "m", "latency_seconds": 0.1, "outcome": "ok"}, "outcome: expected one of"),
    ({"model": "m", "latency_seconds": 0.1, "batch_size": 0}, "batch_size: expected an integer >= 1"),
    ({"model": "m", "latency_seconds": 0.1, "batch_size": 2.5}, "batch_size"),
    ({"model": "m", "latency_seconds": 0.1, "colour": "red"}, "colour: unknown field"),
    ({"model": "m", "latency_seconds": 0.1, "type": "telemetry"}, "type: unknown event type"),
    ({"model": ["m"], "latency_seconds": 0.1}, "model"),
])
def test_bad_events_get_400_naming_the_field(registry, event, field):
    r = make_client(registry).post("/ingest", json=event)
    assert r.status_code == 400
    assert any(field in e for e in r.json["errors"]), r.json


def test_a_batch_is_all_or_nothing_and_errors_say_which_event(registry):
    client = make_client(registry)
    r = client.post("/ingest", json=[
        {"model": "m", "latency_seconds": 0.1},
        {"model": "m", "latency_seconds": None},
        "not an object",
    ])
    assert r.status_code == 400
    assert r.json["errors"][0].startswith("events[1].latency_seconds")
    assert r.json["errors"][1].startswith("events[2]: expected a JSON object")
    assert registry.get_sample_value("modelmon_inference_requests_total",
                                     {"model": "m", "version": "unknown", "outcome": "success"}) is None


@pytest.mark.parametrize("body,ctype,status,fragment", [
    (b"{not json", "application/json", 400, "not valid JSON"),
    (b"[]", "application/json", 400, "empty"),
    (b'"text"', "application/json", 400, "expected a JSON object"),
    (b'{"model":"m","latency_seconds":1}', "text/plain", 415, "Content-Type"),
])
def test_malformed_bodies(registry, body, ctype, status, fragment):
    r = make_client(registry).post("/ingest", data=body, content_type=ctype)
    assert r.status_code == status
    assert fragment in " ".join(r.json["errors"])


def test_oversize_body_gets_413_naming_the_limit(registry):
    client = make_client(registry, ingest={"max_body_bytes": "1KiB"})
    big = [{"model": "m", "latency_seconds": 0.1}] * 100
    r = client.post("/ingest", data=json.dumps(big), content_type="application/json")
    assert r.status_code == 413
    assert "ingest.max_body_bytes=1024" in r.json["errors"][0]


def test_too_many_events(registry):
    client = make_client(registry, ingest={"max_events": 2})
    r = client.post("/ingest", json=[{"model": "m", "latency_seconds": 0.1}] * 3)
    assert r.status_code == 400 and "limit of 2" in r.json["errors"][0]


def test_model_names_from_the_wire_are_capped(registry):
    client = make_client(registry, max_label_values=3)
    for i in range(6):
        assert client.post("/ingest", json={"model": f"m{i}", "latency_seconds": 0.1}).status_code == 200
    get = registry.get_sample_value
    assert get("modelmon_inference_requests_total",
               {"model": "m2", "version": "unknown", "outcome": "success"}) == 1
    assert get("modelmon_inference_requests_total",
               {"model": OTHER, "version": "unknown", "outcome": "success"}) == 3
    assert get("modelmon_label_overflow_total", {"metric": "model", "label": "model"}) == 3


def test_metrics_and_healthz(registry):
    client = make_client(registry)
    client.post("/ingest", json={"model": "m", "latency_seconds": 0.1})
    r = client.get("/metrics")
    assert r.status_code == 200 and r.content_type.startswith("text/plain")
    assert b'modelmon_inference_requests_total{model="m",outcome="success",version="unknown"} 1.0' in r.data
    assert b'modelmon_collector_success{collector="build_info"} 1.0' in r.data
    om = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert om.content_type.startswith("application/openmetrics-text") and om.data.endswith(b"# EOF\n")
    assert client.get("/healthz").status_code == 200


def test_with_a_logs_section_ingested_inferences_are_shipped_as_events(registry, tmp_path):
    import json as _json

    config = serve_config_from_mapping(
        {"logs": {"sink": "file", "spool_dir": "spool", "file": {"path": "events.jsonl"}}},
        base_dir=tmp_path,
    )
    app = create_app(config, registry=registry)
    client = app.test_client()
    r = client.post("/ingest", json=[
        {"model": "rec", "version": "2", "latency_seconds": 0.05},
        {"model": "rec", "version": "2", "latency_seconds": 0.5, "outcome": "error",
         "exception": "TimeoutError"},
    ])
    assert r.status_code == 200
    shipper = app.extensions["modelmon"]["directory"].logs
    assert shipper.flush(10)
    events = [_json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [(e["model"]["name"], e["model"]["outcome"]) for e in events] == [
        ("rec", "success"), ("rec", "error")]
    assert events[1]["error"]["type"] == "TimeoutError"
    shipper.close()


def test_a_bad_logs_section_names_the_field(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "serve.yml"
    path.write_text("logs: {sink: file, spool: {max_bytes: lots}}\n")
    proc = subprocess.run([sys.executable, "-m", "modelmon", "serve", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "max_bytes" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
