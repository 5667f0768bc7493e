"""instrument_app: per-endpoint request metrics and /metrics in one call."""

from __future__ import annotations

from flask import Flask

from modelmon import ModelMonitor, instrument_app

L = {"model": "m", "version": "1"}


def make_app(registry):
    mon = ModelMonitor("m", version="1", registry=registry)
    app = Flask("t")

    @app.post("/predict/<variant>")
    def predict(variant):
        with mon.track(batch_size=1):
            return {"variant": variant}

    @app.get("/boom")
    def boom():
        raise RuntimeError("bug")

    instrument_app(app, mon)
    return app.test_client()


def test_requests_are_counted_by_route_template_method_and_status(registry):
    client = make_app(registry)
    for variant in ("a", "b", "c"):
        assert client.post(f"/predict/{variant}", json={"x": [1, 2, 3]}).status_code == 200
    assert client.get("/boom").status_code == 500
    assert client.get("/no/such/path").status_code == 404
    get = registry.get_sample_value
    req = "modelmon_http_requests_total"
    assert get(req, {**L, "endpoint": "/predict/<variant>", "method": "POST", "status": "200"}) == 3
    assert get(req, {**L, "endpoint": "/boom", "method": "GET", "status": "500"}) == 1
    assert get(req, {**L, "endpoint": "__unmatched__", "method": "GET", "status": "404"}) == 1
    assert get("modelmon_http_request_duration_seconds_count",
               {**L, "endpoint": "/predict/<variant>", "method": "POST"}) == 3
    assert get("modelmon_payload_bytes_count", {**L, "direction": "request"}) == 3
    assert get("modelmon_payload_bytes_count", {**L, "direction": "response"}) == 3
    assert get("modelmon_inference_requests_total", {**L, "outcome": "success"}) == 3


def test_metrics_route_serves_the_registry_and_is_not_counted(registry):
    client = make_app(registry)
    client.post("/predict/a", json={})
    body = client.get("/metrics").data.decode()
    assert 'modelmon_http_requests_total{endpoint="/predict/<variant>"' in body
    assert 'modelmon_collector_success{collector="build_info"} 1.0' in body
    assert registry.get_sample_value(
        "modelmon_http_requests_total",
        {**L, "endpoint": "/metrics", "method": "GET", "status": "200"}) is None


def test_requests_answered_by_an_earlier_before_request_hook_are_counted(registry):
    mon = ModelMonitor("m", version="1", registry=registry)
    app = Flask("auth")

    @app.before_request
    def require_token():
        from flask import request
        if request.headers.get("X-Token") != "ok":
            return "unauthorized", 401
        return None

    @app.post("/predict")
    def predict():
        return "ok"

    instrument_app(app, mon)
    client = app.test_client()
    assert client.post("/predict").status_code == 401
    assert client.post("/predict", headers={"X-Token": "ok"}).status_code == 200
    get = registry.get_sample_value
    for status in ("401", "200"):
        assert get("modelmon_http_requests_total",
                   {**L, "endpoint": "/predict", "method": "POST", "status": status}) == 1


def test_with_a_log_shipper_every_event_of_a_request_carries_its_correlation_id(registry, tmp_path):
    import json

    from modelmon.exporters.logs import LogShipper

    shipper = LogShipper("file", path=tmp_path / "events.jsonl", spool_dir=tmp_path / "spool",
                         registry=registry)
    try:
        mon = ModelMonitor("m", version="1", registry=registry, logs=shipper)
        app = Flask("logs")

        @app.post("/predict")
        def predict():
            mon.log.request_received(batch_size=1)
            mon.log.prediction(0.01, prediction=1)
            return "ok"

        instrument_app(app, mon)
        client = app.test_client()
        given = client.post("/predict", headers={"X-Request-ID": "req-7"})
        made = client.post("/predict")
        assert given.headers["X-Request-ID"] == "req-7"
        generated = made.headers["X-Request-ID"]
        assert generated and generated != "req-7"
        assert shipper.flush(10)
        events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
        assert [e["trace"]["id"] for e in events] == ["req-7", "req-7", generated, generated]
        assert {e["model"]["name"] for e in events} == {"m"}
    finally:
        shipper.close()


def test_without_logs_no_correlation_header_is_added(registry):
    client = make_app(registry)
    assert "X-Request-ID" not in client.post("/predict/a", json={}).headers


def test_made_up_http_methods_cannot_create_series(registry):
    client = make_app(registry)
    for i in range(20):
        client.open("/predict/a", method=f"BREW{i}")
    series = [s for m in registry.collect() if m.name == "modelmon_http_requests"
              for s in m.samples if s.name.endswith("_total")]
    assert {s.labels["method"] for s in series} == {"other"}
    assert sum(s.value for s in series) == 20


def test_two_apps_on_one_registry_export_each_plugin_metric_once(registry):
    first = make_app(registry)
    make_app(registry)  # a second instrumented app sharing the registry
    body = first.get("/metrics").data.decode()
    assert body.count("# TYPE modelmon_collector_success gauge") == 1
    assert body.count('modelmon_collector_success{collector="build_info"}') == 1
