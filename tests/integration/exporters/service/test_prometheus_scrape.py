"""Real Prometheus scrapes modelmon serve and an instrumented scikit-learn Flask app
(both on gunicorn); every service KPI arrives with the right type and labels."""

from __future__ import annotations

import json
import random
import signal
import sys
import time

import pytest
import requests

from modelmon.catalog import in_groups
from modelmon.demo.model import FEATURES, MODEL_NAME
from modelmon.demo.processes import free_port, prometheus_config, running_prometheus

OPTIONAL_LABELS = {"model_info": {"framework_version", "task"}}
PROM_TYPE = {"counter": "counter", "gauge": "gauge", "histogram": "histogram"}


def _row(rng):
    return {name: rng.gauss(0, 1) for name in FEATURES}


@pytest.fixture
def stack(start_server, tmp_path, prometheus_binary, modelmon_cmd):
    serve_yml = tmp_path / "serve.yml"
    serve_yml.write_text("threads: 4\n")
    exporter = start_server([*modelmon_cmd, "serve", "--config", str(serve_yml),
                             "--listen", "127.0.0.1:{port}"])
    app = start_server([sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "4",
                        "--bind", "127.0.0.1:{port}",
                        "modelmon.demo.model:create_demo_app()"])
    rng = random.Random(3)
    s = requests.Session()
    for i in range(30):
        batch = [_row(rng) for _ in range(1 + i % 4)]
        assert s.post(f"{app.url}/predict", json={"instances": batch}).status_code == 200
    assert s.post(f"{app.url}/predict", json={"instances": [{"amount": "x"}]}).status_code == 400
    s.post(f"{app.url}/fault", json={"rate": 1.0})
    assert s.post(f"{app.url}/predict", json={"instances": [_row(rng)]}).status_code == 500
    s.post(f"{app.url}/fault", json={"rate": 0.0})
    r = s.post(f"{exporter.url}/ingest", json=[
        {"model": "recommender", "version": "7", "latency_seconds": 0.02, "batch_size": 2,
         "request_bytes": 300, "response_bytes": 40},
        {"model": "recommender", "version": "7", "latency_seconds": 0.5, "outcome": "error",
         "exception": "TimeoutException"},
    ])
    assert r.status_code == 200
    targets = [exporter.url.removeprefix("http://"), app.url.removeprefix("http://")]
    with running_prometheus(prometheus_config(targets), binary=prometheus_binary,
                            workdir=tmp_path / "prom") as prom:
        prom.wait_for(f'modelmon_inference_requests_total{{model="{MODEL_NAME}"}}')
        prom.wait_for('modelmon_inference_requests_total{model="recommender"}')
        yield prom, exporter, app


def test_every_service_kpi_arrives_with_type_and_labels(stack):
    prom, exporter, app = stack
    metadata = requests.get(f"{prom.url}/api/v1/metadata", timeout=10).json()["data"]
    for kpi in in_groups(["service", "http", "ingest", "plugins"]):
        if kpi.name in ("label_overflow_total", "label_values_replaced_total",
                        "series_budget_exceeded_total"):
            continue  # only exported once a cap, a budget or a bad value is hit; unit-tested
        name = kpi.full_name()
        family = name.removesuffix("_total") if kpi.type == "counter" else name
        assert metadata.get(name) or metadata.get(family), f"{name} not scraped"
        types = {m["type"] for m in metadata.get(name, metadata.get(family, []))}
        assert types == {PROM_TYPE[kpi.type]}, f"{name}: type {types}"
        sample = name + ("_count" if kpi.type == "histogram" else "")
        series = requests.get(f"{prom.url}/api/v1/series", params={"match[]": sample},
                              timeout=10).json()["data"]
        assert series, f"no series for {sample}"
        for s in series:
            labels = set(s) - {"__name__", "instance", "job"}
            # Prometheus drops empty label values: model_info's optional
            # framework_version/task are absent when a server did not send them.
            optional = OPTIONAL_LABELS.get(kpi.name, set())
            assert set(kpi.labels) - optional <= labels <= set(kpi.labels), (
                f"{sample}: labels {labels} != {kpi.labels}")


def test_values_through_promql(stack):
    prom, _, _ = stack
    q = prom.query
    by_outcome = {r["metric"]["outcome"]: float(r["value"][1]) for r in q(
        f'sum by (outcome) (modelmon_inference_requests_total{{model="{MODEL_NAME}"}})')}
    assert by_outcome == {"success": 30.0, "rejected": 1.0, "error": 1.0}
    assert float(q(f'modelmon_inference_batch_size_sum{{model="{MODEL_NAME}"}}')[0]["value"][1]) \
        == sum(1 + i % 4 for i in range(30)) + 1 + 1
    exc = q('modelmon_inference_exceptions_total{model="recommender"}')
    assert exc[0]["metric"]["exception"] == "TimeoutException"
    info = q(f'modelmon_model_info{{model="{MODEL_NAME}"}}')[0]["metric"]
    assert info["framework"] == "sklearn" and info["version"] == "1.0.0"
    assert q(f'modelmon_model_last_load_timestamp_seconds{{model="{MODEL_NAME}"}}')
    assert q('up == 1') and len(q('up == 1')) == 2
    p95 = q(f'histogram_quantile(0.95, sum by (le) (modelmon_inference_duration_seconds_bucket{{model="{MODEL_NAME}"}}))')
    assert 0 < float(p95[0]["value"][1]) < 1


def test_demo_runs_and_stops_cleanly_on_ctrl_c(start_server, tmp_path, prometheus_binary,
                                                modelmon_cmd):
    prom_port = free_port()
    demo = start_server([*modelmon_cmd, "demo", "--app-port", "0", "--exporter-port", "0",
                         "--prometheus-port", str(prom_port), "--alertmanager-port", "0",
                         "--webhook-port", "0", "--bundle-port", "0", "--edge-proxy-port", "0",
                         "--edge-listen-port", "0", "--rps", "10", "--no-report",
                         "--workdir", str(tmp_path / "demo")], ready=False)
    url = f"http://127.0.0.1:{prom_port}"
    deadline = time.monotonic() + 150  # the demo starts Prometheus once its models answer
    found = []
    while time.monotonic() < deadline and len(found) < 3:
        time.sleep(1)
        assert demo.proc.poll() is None, demo.output()
        try:
            r = requests.get(f"{url}/api/v1/query", params={
                "query": "sum by (model) (modelmon_inference_requests_total) > 0"}, timeout=2)
            found = [x["metric"]["model"] for x in r.json()["data"]["result"]]
        except requests.RequestException:
            continue
    # the cloud models, and the edge devices' model (remote-written through their links)
    assert sorted(found) == ["fraud-detector", "recommender-java", "vibration-anomaly"], (
        demo.output())
    assert "Ctrl-C stops" in demo.output()
    # the demo runs its inputs through check_inputs: rows were checked
    quality = requests.get(f"{url}/api/v1/query", params={
        "query": 'sum(modelmon_input_rows_total{model="fraud-detector"})'}, timeout=5)
    assert float(quality.json()["data"]["result"][0]["value"][1]) > 0
    events = (tmp_path / "demo" / "logs" / "events.jsonl").read_text().splitlines()
    actions = {json.loads(line)["event"]["action"] for line in events}
    assert {"model-loaded", "prediction"} <= actions, actions
    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(30) == 0, demo.output()
    assert "stopping" in demo.output()
