"""Every /metrics endpoint is valid to strict consumers, in both formats.

Text format 0.0.4 goes through ``promtool check metrics`` (the Prometheus
linter) and prometheus_client's text parser; OpenMetrics 1.0 through
prometheus_client's OpenMetrics parser, which enforces the spec's MUSTs
(histogram ``_sum`` only without negative buckets, ``_count`` only with
``_sum``, counter-like samples never negative, ``# EOF``). promtool 2.42 reads
only the text format (on an OpenMetrics body it takes every ``_total`` and
``_created`` sample for a metric without HELP), so it lints the text bodies.

The endpoints: ``instrument_app`` (single process and gunicorn multiprocess
mode), ``modelmon serve`` and the edge agent's local listener, each with the
built-in collectors (system, build_info) and a quality-enabled monitor.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from modelmon.config import serve_config_from_mapping
from modelmon.demo.processes import find_binary
from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping
from modelmon.exporters.quality import Profile
from modelmon.exporters.service.app import create_app
from modelmon.exporters.service.flask import instrument_app
from modelmon.exporters.service.monitor import ModelMonitor
from modelmon.exporters.service.scrape import render

HERE = Path(__file__).resolve().parent
TEXT = "text/plain; version=0.0.4"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
FORMATS = pytest.mark.parametrize("accept", [TEXT, OPENMETRICS], ids=["text", "openmetrics"])


def check_body(body: str, content_type: str) -> list[Any]:
    """The families of ``body``; fails with what the strict consumer said."""
    if content_type.startswith("application/openmetrics-text"):
        assert body.endswith("# EOF\n"), "an OpenMetrics body ends with # EOF"
        return list(parse_openmetrics(body))
    assert content_type.startswith("text/plain"), content_type
    promtool = find_binary("promtool")
    assert promtool, "promtool missing: install Debian's prometheus package (see .ci/run)"
    lint = subprocess.run([promtool, "check", "metrics"], input=body, text=True,
                          capture_output=True, timeout=60)
    assert lint.returncode == 0, f"promtool check metrics:\n{lint.stdout}{lint.stderr}"
    return list(parse_text(body))


def assert_valid(body: str, content_type: str, accept: str, *expected: str) -> None:
    wanted = "application/openmetrics-text" if accept == OPENMETRICS else "text/plain"
    assert content_type.startswith(wanted), content_type
    names = {f.name for f in check_body(body, content_type)}
    # OpenMetrics names a counter family without _total.
    missing = {e for e in expected if e not in names and e.removesuffix("_total") not in names}
    assert not missing, f"families missing from the scrape: {sorted(missing)}"


# -- a quality-enabled monitor with every kind of sample ------------------------

def _profile() -> Profile:
    rng = np.random.default_rng(0)
    train = [{"amount": float(a), "country": c}
             for a, c in zip(rng.normal(0, 1, 500), rng.choice(["DE", "FR"], 500), strict=True)]
    return Profile.from_data(train, model="fraud", predictions=rng.choice(["ok", "fraud"], 500),
                             scores=rng.beta(5, 2, 500))


def _traffic(classifier: ModelMonitor, regressor: ModelMonitor) -> None:
    ids = [uuid.uuid4().hex for _ in range(3)]
    with classifier.track(batch_size=3):
        classifier.check_inputs([{"amount": 9.0, "country": "IT"}, {"amount": None},
                                 {"amount": "x", "country": "DE"}])
        classifier.record_predictions(["ok", "fraud", "ok"],
                                      scores=[[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]],
                                      request_ids=ids)
    classifier.record_feedback(ids[0], "ok")
    classifier.record_feedback(ids[1], "ok")
    classifier.record_feedback("unknown-id", "ok")
    # A negative output makes the regression histogram's sum negative, which OpenMetrics
    # forbids (modelmon.exposition drops _sum/_count there).
    regressor.record_predictions([-3.5, 0.0, 12.0], request_ids=ids)
    regressor.record_feedback(ids[0], 1.0)


def _monitors(registry: CollectorRegistry, tmp_path: Path) -> tuple[ModelMonitor, ModelMonitor]:
    classifier = ModelMonitor(
        "fraud", "2", framework="sklearn", task="classification", registry=registry,
        profile=_profile(),
        quality_options={"window": 100, "feedback_db": str(tmp_path / "fraud.sqlite")},
    )
    regressor = ModelMonitor(
        "price", "1", task="regression", registry=registry,
        quality_options={"task": "regression", "feedback_db": str(tmp_path / "price.sqlite")},
    )
    return classifier, regressor


QUALITY_FAMILIES = (
    "modelmon_predictions_total", "modelmon_prediction_score", "modelmon_prediction_value",
    "modelmon_feature_drift", "modelmon_feedback_total", "modelmon_feedback_label_delay_seconds",
    "modelmon_feedback_absolute_error", "modelmon_feature_missing_total",
)
PLUGIN_FAMILIES = ("modelmon_system_memory_bytes", "modelmon_build_info",
                   "modelmon_collector_success")


@FORMATS
def test_instrumented_flask_app(registry, tmp_path, accept):
    classifier, regressor = _monitors(registry, tmp_path)
    app = Flask("conformance")
    instrument_app(app, classifier)
    _traffic(classifier, regressor)
    r = app.test_client().get("/metrics", headers={"Accept": accept})
    assert r.status_code == 200
    assert_valid(r.get_data(as_text=True), r.content_type, accept,
                 "modelmon_http_requests_total", *QUALITY_FAMILIES, *PLUGIN_FAMILIES)


@FORMATS
def test_modelmon_serve(registry, tmp_path, accept):
    profile = tmp_path / "fraud.json"
    _profile().save(profile)
    config = serve_config_from_mapping({"quality": {"models": {
        "fraud": {"profile": profile.name,
                  "options": {"window": 100, "feedback_db": "{model}-{version}.sqlite"}},
        "price": {"options": {"task": "regression", "feedback_db": "{model}.sqlite"}},
    }}}, base_dir=tmp_path)
    client = create_app(config, registry=registry).test_client()
    events: list[dict[str, Any]] = [
        {"type": "inference", "model": "fraud", "version": "2", "latency_seconds": 0.01,
         "batch_size": 2},
        {"type": "prediction", "model": "fraud", "version": "2", "prediction": "ok",
         "score": 0.8, "request_id": "a", "features": {"amount": 9.0, "country": "IT"}},
        {"type": "prediction", "model": "fraud", "version": "2", "prediction": "fraud",
         "score": 0.3, "request_id": "b", "features": {"amount": None, "country": "DE"}},
        {"type": "feedback", "model": "fraud", "version": "2", "request_id": "a", "label": "ok"},
        {"type": "prediction", "model": "price", "prediction": 3.5, "request_id": "c"},
        {"type": "feedback", "model": "price", "request_id": "c", "label": 1.0},
    ]
    r = client.post("/ingest", json=events)
    assert r.status_code == 200, r.get_data(as_text=True)
    r = client.get("/metrics", headers={"Accept": accept})
    assert r.status_code == 200
    assert_valid(r.get_data(as_text=True), r.content_type, accept, "modelmon_ingest_events_total",
                 *QUALITY_FAMILIES, *PLUGIN_FAMILIES)


@FORMATS
def test_edge_agent_listener(registry, tmp_path, accept):
    config = edge_config_from_mapping({"edge": {
        "device_id": "press-7", "interval": "1s", "listen": "127.0.0.1:0",
        "collectors": ["system"], "labels": {"site": "plant-3"},
        "spool": {"path": str(tmp_path / "state")},
        "remote_write": {"url": "http://127.0.0.1:9/api/v1/write"},
    }})
    agent = EdgeAgent(config, registry)
    classifier, regressor = _monitors(registry, tmp_path)
    _traffic(classifier, regressor)
    agent.start(collect=False)
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{agent.listen_port}/metrics",
                                         headers={"Accept": accept})
        with urllib.request.urlopen(request, timeout=30) as answer:
            body, content_type = answer.read().decode(), answer.headers["Content-Type"]
    finally:
        agent.stop()
    assert_valid(body, content_type, accept, "modelmon_system_logical_cpus",
                 "modelmon_edge_link_up", *QUALITY_FAMILIES)


@FORMATS
def test_gunicorn_multiprocess(start_server, tmp_path, accept):
    state = tmp_path / "state"
    state.mkdir()
    app = start_server(
        [sys.executable, "-m", "gunicorn", "-c", "python:modelmon.exporters.service.gunicorn_config",
         "--workers", "2", "--pythonpath", str(HERE), "--bind", "127.0.0.1:{port}",
         "conformance_app:app"],
        health_path="/metrics",
        env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "multiproc"),
             "CONFORMANCE_STATE": str(state)},
    )
    for _ in range(6):
        with urllib.request.urlopen(urllib.request.Request(
                f"{app.url}/traffic", method="POST"), timeout=60) as answer:
            assert answer.status == 200
    request = urllib.request.Request(f"{app.url}/metrics", headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=30) as answer:
        body, content_type = answer.read().decode(), answer.headers["Content-Type"]
    assert_valid(body, content_type, accept, "modelmon_http_requests_total", *QUALITY_FAMILIES,
                 *PLUGIN_FAMILIES)


@pytest.mark.parametrize("buckets", [None, [-50.0, -10.0, 0.0, 10.0, 50.0]],
                         ids=["default-buckets", "negative-bounds"])
def test_signed_regression_outputs_keep_both_formats_valid(tmp_path, buckets):
    registry = CollectorRegistry()
    regressor = ModelMonitor(
        "temperature", "1", task="regression", registry=registry,
        buckets=None if buckets is None else {"prediction_value": buckets},
        quality_options={"task": "regression", "feedback_db": ":memory:"},
    )
    regressor.record_predictions([-30.0, -3.5, 1.0])
    signed = {"model": "temperature", "version": "1"}

    body, content_type = render(registry, OPENMETRICS)
    families = {f.name: f for f in check_body(body.decode(), content_type)}
    samples = families["modelmon_prediction_value"].samples
    names = {s.name for s in samples if s.labels.items() >= signed.items()}
    assert names == {"modelmon_prediction_value_bucket", "modelmon_prediction_value_created"}
    inf = [s for s in samples if s.name.endswith("_bucket") and s.labels["le"] == "+Inf"]
    assert [s.value for s in inf] == [3.0], "the +Inf bucket still counts every output"

    # The text format allows a negative sum and keeps _sum and _count for mean queries
    # (prometheus_client itself leaves _sum out once a bucket bound is negative).
    body, content_type = render(registry, TEXT)
    families = {f.name: f for f in check_body(body.decode(), content_type)}
    by_name = {s.name: s.value for s in families["modelmon_prediction_value"].samples
               if "le" not in s.labels}
    assert by_name["modelmon_prediction_value_count"] == 3.0
    if buckets is None:
        assert by_name["modelmon_prediction_value_sum"] == pytest.approx(-32.5)


def test_only_the_signed_label_sets_lose_their_sum(tmp_path):
    registry = CollectorRegistry()
    kwargs = {"task": "regression", "registry": registry}
    ModelMonitor("cold", "1", quality_options={"task": "regression", "feedback_db": ":memory:"},
                 **kwargs).record_predictions([-1.0])
    ModelMonitor("warm", "1", quality_options={"task": "regression", "feedback_db": ":memory:"},
                 **kwargs).record_predictions([2.0])
    body, content_type = render(registry, OPENMETRICS)
    families = {f.name: f for f in check_body(body.decode(), content_type)}
    sums = {s.labels["model"] for s in families["modelmon_prediction_value"].samples
            if s.name == "modelmon_prediction_value_sum"}
    assert sums == {"warm"}


def test_edge_listener_filters_by_name_and_stays_strict(registry, tmp_path):
    """?name[]= (prometheus_client's filter) works on the agent's view, in both formats."""
    config = edge_config_from_mapping({"edge": {
        "device_id": "press-7", "interval": "1s", "listen": "127.0.0.1:0",
        "spool": {"path": str(tmp_path / "state")},
        "remote_write": {"url": "http://127.0.0.1:9/api/v1/write"},
    }})
    agent = EdgeAgent(config, registry)
    _, regressor = _monitors(registry, tmp_path)
    regressor.record_predictions([-4.0])
    agent.start(collect=False)
    try:
        for accept in (TEXT, OPENMETRICS):
            url = (f"http://127.0.0.1:{agent.listen_port}/metrics"
                   "?name[]=modelmon_prediction_value_bucket&name[]=modelmon_edge_link_up")
            request = urllib.request.Request(url, headers={"Accept": accept})
            with urllib.request.urlopen(request, timeout=30) as answer:
                body, content_type = answer.read().decode(), answer.headers["Content-Type"]
            names = {s.name for f in check_body(body, content_type) for s in f.samples}
            assert names == {"modelmon_prediction_value_bucket", "modelmon_edge_link_up"}
    finally:
        agent.stop()


# -- label values a client chooses ------------------------------------------------

def _render_monitor(model: str, version: str) -> Callable[[str], tuple[str, str]]:
    registry = CollectorRegistry()
    mon = ModelMonitor(model, version, registry=registry,
                       quality_options={"feedback_db": ":memory:"})
    mon.record_predictions([model, version], scores=[0.5, 0.9])
    with mon.track():
        pass

    def scrape(accept: str) -> tuple[str, str]:
        body, content_type = render(registry, accept)
        return body.decode(), content_type

    return scrape


_printable = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=_printable, version=_printable)
def test_any_printable_label_value_keeps_the_scrape_valid(model, version):
    scrape = _render_monitor(model, version)
    for accept in (TEXT, OPENMETRICS):
        body, content_type = scrape(accept)
        check_body(body, content_type)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.text(min_size=1, max_size=20), version=st.text(min_size=1, max_size=20))
@example(model="\ud800", version="1")  # a lone surrogate
@example(model="a\x00b", version="\u202e")  # NUL, right-to-left override
def test_any_label_value_keeps_the_scrape_valid(model, version):
    scrape = _render_monitor(model, version)
    for accept in (TEXT, OPENMETRICS):
        body, content_type = scrape(accept)
        check_body(body, content_type)
