"""The agent's alerts, end to end to loopback Alertmanager API v2 endpoints whose
answers each test scripts (the real Alertmanager is in
tests/integration/exporters/edge/test_alerts_alertmanager.py): an HA list,
retries, refusals, coalesced backlogs, the local-action hook, config errors.

Collections are driven with ``collect_once(now=...)`` and delivery with the
alert worker's ``step()``, so the tests are deterministic."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pluggy
import pytest
from prometheus_client import CollectorRegistry, Gauge

from modelmon import hookimpl, hookspecs
from modelmon.config import ConfigError
from modelmon.demo.processes import free_port
from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping
from modelmon.exporters.edge.alerting.notifier import rfc3339
from modelmon.exporters.edge.status import read_status
from support.edge_unit import T0

RULES = """
groups:
  - name: line
    rules:
      - alert: Hot
        expr: line_temperature > 80
        labels: {severity: critical}
"""


@dataclass
class FakeAlertmanager:
    """``POST /api/v2/alerts`` with Alertmanager's checks of a postable alert
    (labels present and non-empty, RFC 3339 times, endsAt not before startsAt)."""

    answers: list[int] = field(default_factory=list)  # scripted statuses, then 200
    posts: list[list[dict[str, Any]]] = field(default_factory=list)
    url: str = ""

    def handle(self, path: str, body: bytes) -> int:
        if path != "/api/v2/alerts":
            return 404
        alerts = json.loads(body)
        for alert in alerts:
            if not alert.get("labels") or not all(isinstance(v, str) and v
                                                  for v in alert["labels"].values()):
                return 400
            starts = dt.datetime.fromisoformat(alert["startsAt"])
            if "endsAt" in alert and dt.datetime.fromisoformat(alert["endsAt"]) < starts:
                return 400
        if self.answers:
            return self.answers.pop(0)
        self.posts.append(alerts)
        return 200


@pytest.fixture
def am() -> Iterator[FakeAlertmanager]:
    fake = FakeAlertmanager()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = fake.handle(self.path, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


class Line:
    """An agent whose one rule watches a gauge the test sets."""

    def __init__(self, tmp_path: Path, managers: list[str], pm: pluggy.PluginManager | None = None,
                 plugins: dict[str, Any] | None = None, **alerting: Any) -> None:
        (tmp_path / "line.rules.yml").write_text(RULES)
        self.registry = CollectorRegistry()
        self.temperature = Gauge("line_temperature", "°C", registry=self.registry)
        config = edge_config_from_mapping({"plugins": plugins or {}, "edge": {
            "device_id": "press-7", "interval": "10s", "listen": None, "collectors": [],
            "spool": {"path": str(tmp_path / "state"), "max_age": "30d"},
            "remote_write": {"url": "http://127.0.0.1:1/api/v1/write", "min_backoff": "0.01s",
                             "max_backoff": "0.02s"},
            "rules": ["line.rules.yml"],
            "alerting": {"alertmanagers": [{"url": u, "timeout": "2s"} for u in managers],
                         "resend_delay": "1m", **alerting},
        }}, tmp_path)
        self.agent = EdgeAgent(config, self.registry, plugin_manager=pm)
        assert self.agent.alerting is not None
        self.alerting = self.agent.alerting

    def collect(self, t: float, temperature: float) -> None:
        self.temperature.set(temperature)
        self.agent.collect_once(now=T0 + t)

    def deliver(self, max_steps: int = 50) -> list[str]:
        self.alerting.spool.flush_buffer()
        states = []
        for _ in range(max_steps):
            step = self.alerting.worker.step()
            states.append(step.state)
            if step.state == "idle":
                return states
        raise AssertionError(f"not delivered in {max_steps} steps: {states[-5:]}")


def test_one_alertmanager_of_an_ha_pair_taking_the_alerts_delivers_them(tmp_path, am):
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    line = Line(tmp_path, [down, am.url])
    try:
        line.collect(0, 90.0)
        assert line.deliver() == ["progress", "idle"]
        stats = line.alerting.spool.stats()
    finally:
        line.agent.stop()
    assert am.posts == [[{
        "labels": {"alertname": "Hot", "severity": "critical", "device": "press-7"},
        "annotations": {}, "startsAt": rfc3339(int(T0 * 1000)),
        "endsAt": rfc3339(int(T0 * 1000) + 240_000),
        "generatorURL": line.alerting.config.external_url
        + "/graph?g0.expr=line_temperature+%3E+80&g0.tab=1",
    }]]
    assert stats.pending == 0 and stats.delivered_items == 1
    status = read_status(tmp_path / "state" / "status.json")  # written as the agent stopped
    assert status is not None and status["alerting"]["delivered_notifications"] == 1


def test_an_outage_backlog_arrives_coalesced_with_true_times(tmp_path, am):
    """Fired at 0, resent at 70 and 140, resolved at 150, fired again at 160, all
    while Alertmanager answered 503: one POST, one alert per episode, in order."""
    am.answers = [503] * 3
    line = Line(tmp_path, [am.url])
    temps = {t: (90.0 if t < 150 or t >= 160 else 70.0) for t in range(0, 170, 10)}
    try:
        for t, temp in temps.items():
            line.collect(t, temp)
            if t in (0, 70):
                line.alerting.spool.flush_buffer()
                assert line.alerting.worker.step().state == "retry"
        states = line.deliver()
        delivered = line.alerting.spool.stats().delivered
    finally:
        line.agent.stop()
    assert states.count("retry") == 1 and states[-2:] == ["progress", "idle"]
    ms = int(T0 * 1000)
    assert [[(a["startsAt"], a["endsAt"]) for a in post] for post in am.posts] == [[
        (rfc3339(ms), rfc3339(ms + 150_000)),  # the first episode, resolved
        (rfc3339(ms + 160_000), rfc3339(ms + 160_000 + 240_000)),  # the second, firing
    ]]
    assert delivered == 5  # 0, 70, 140, 150, 160


def test_alerts_alertmanager_refuses_are_dropped_and_counted(tmp_path, am):
    am.answers = [400]
    line = Line(tmp_path, [am.url])
    try:
        line.collect(0, 90.0)
        line.deliver()
        stats = line.alerting.spool.stats()
    finally:
        line.agent.stop()
    assert am.posts == [] and stats.pending == 0
    assert dict(stats.dropped_items) == {"http_400": 1}


@pytest.mark.parametrize("status", [401, 404, 500, 503])
def test_alerts_are_kept_while_a_fix_can_still_deliver_them(tmp_path, am, status):
    am.answers = [status] * 2
    line = Line(tmp_path, [am.url])
    try:
        line.collect(0, 90.0)
        states = line.deliver()
    finally:
        line.agent.stop()
    assert states.count("retry") == 2 and len(am.posts) == 1


def test_the_agent_restarted_sends_the_backlog_left_by_the_last_run(tmp_path, am):
    am.answers = [503]
    line = Line(tmp_path, [am.url])
    line.collect(0, 90.0)
    line.alerting.spool.flush_buffer()
    assert line.alerting.worker.step().state == "retry"
    line.agent.stop()
    again = Line(tmp_path, [am.url])
    try:
        again.collect(10, 90.0)  # firing since 0 (restored): not resent within resend_delay
        again.deliver()
    finally:
        again.agent.stop()
    assert [[a["startsAt"] for a in post] for post in am.posts] == [[rfc3339(int(T0 * 1000))]]


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    @hookimpl
    def modelmon_on_edge_alert(self, alert: dict[str, Any], config: dict[str, Any]) -> None:
        self.seen.append((alert["status"], alert["labels"]["alertname"], dict(config)))


class Broken:
    @hookimpl
    def modelmon_on_edge_alert(self, alert: dict[str, Any]) -> None:
        raise RuntimeError("the lamp is unplugged")


def test_local_actions_hear_of_firing_and_resolved_offline_even_when_one_raises(tmp_path):
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    recorder = Recorder()
    pm.register(Broken(), name="broken")
    pm.register(recorder, name="lamp")
    down = f"http://127.0.0.1:{free_port()}"
    line = Line(tmp_path, [down], pm=pm, plugins={"lamp": {"colour": "red"}})
    line.alerting.actions.start()
    try:
        for t, temp in ((0, 90.0), (10, 90.0), (20, 70.0), (30, 70.0)):
            line.collect(t, temp)
        line.alerting.actions.stop()  # runs what is queued, then ends the thread
    finally:
        line.agent.stop()
    assert recorder.seen == [("firing", "Hot", {"colour": "red"}),
                             ("resolved", "Hot", {"colour": "red"})]
    assert line.alerting.actions.failed == 2


def _config(alerting: Any, **edge: Any) -> None:
    edge_config_from_mapping({"edge": {
        "device_id": "d", "spool": {"path": "/tmp/unused"},
        "remote_write": {"url": "http://r/api/v1/write"}, "alerting": alerting, **edge}})


@pytest.mark.parametrize(("alerting", "message"), [
    ({}, "edge.alerting.alertmanagers: required"),
    ({"alertmanagers": [{"url": "am:9093"}]}, "edge.alerting.alertmanagers[0].url: expected an http(s) URL"),
    ({"alertmanagers": [{"url": "http://am:9093/api/v2/alerts"}]},
     "edge.alerting.alertmanagers[0].url: give the Alertmanager's base URL"),
    ({"alertmanagers": [{"url": "http://am", "timeout": "0s"}]},
     "edge.alerting.alertmanagers[0].timeout: must be positive"),
    ({"alertmanagers": [{"url": "http://am", "tsl": {}}]},
     "edge.alerting.alertmanagers[0].tsl: unknown key"),
    ({"alertmanagers": [{"url": "http://am"}], "resend_delay": "soon"}, "edge.alerting.resend_delay"),
    ({"alertmanagers": [{"url": "http://am"}], "external_url": "press-7"},
     "edge.alerting.external_url: expected an http(s) URL"),
    ({"alertmanager": [{"url": "http://am"}]}, "edge.alerting.alertmanager: unknown key"),
])
def test_config_errors_name_the_field(alerting, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        _config(alerting)


def test_the_built_in_webhook_action_posts_alertmanagers_webhook_body(tmp_path):
    from modelmon import plugin_manager
    from modelmon.plugins import edge_alert_webhook

    assert ("edge_alert_webhook", "modelmon.plugins.edge_alert_webhook") in \
        plugin_manager.DEFAULT_PLUGINS
    received: list[tuple[str, dict[str, Any]]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.path, json.loads(self.rfile.read(
                int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(edge_alert_webhook, name="edge_alert_webhook")
    down = f"http://127.0.0.1:{free_port()}"
    urls = [f"{down}/siren", f"http://127.0.0.1:{server.server_address[1]}/siren"]
    line = Line(tmp_path, [down], pm=pm,
                plugins={"edge_alert_webhook": {"urls": urls, "timeout": "2s"}})
    line.alerting.actions.start()
    try:
        for t, temp in ((0, 90.0), (10, 70.0)):
            line.collect(t, temp)
        line.alerting.actions.stop()
    finally:
        line.agent.stop()
        server.shutdown()
        server.server_close()
    assert [(path, body["status"], body["alerts"][0]["labels"]["alertname"])
            for path, body in received] == [("/siren", "firing", "Hot"),
                                            ("/siren", "resolved", "Hot")]
    resolved = received[1][1]["alerts"][0]
    assert resolved["startsAt"] == rfc3339(int(T0 * 1000))
    assert resolved["endsAt"] == rfc3339(int(T0 * 1000) + 10_000)
    assert received[1][1]["version"] == "4" and line.alerting.actions.failed == 0


def test_the_webhook_action_names_its_setting_when_the_urls_are_wrong():
    from modelmon.plugins import edge_alert_webhook

    with pytest.raises(ValueError, match=r"plugins\.edge_alert_webhook\.urls: expected a list"):
        edge_alert_webhook.modelmon_on_edge_alert({"status": "firing"}, {"urls": "http://x"})


def test_with_a_logs_section_each_alert_change_is_an_ecs_event(tmp_path):
    down = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "line.rules.yml").write_text(RULES)
    registry = CollectorRegistry()
    temperature = Gauge("line_temperature", "°C", registry=registry)
    agent = EdgeAgent(edge_config_from_mapping({
        "logs": {"sink": "file", "spool_dir": str(tmp_path / "log-spool"),
                 "file": {"path": str(tmp_path / "events.jsonl")}},
        "edge": {"device_id": "press-7", "interval": "10s", "listen": None, "collectors": [],
                 "spool": {"path": str(tmp_path / "state")},
                 "remote_write": {"url": down + "/api/v1/write"},
                 "rules": ["line.rules.yml"], "alerting": {"alertmanagers": [{"url": down}]}},
    }, tmp_path), registry)
    try:
        for t, temp in ((0, 90.0), (10, 70.0)):
            temperature.set(temp)
            agent.collect_once(now=T0 + t)
        assert agent.logs is not None and agent.logs.flush(10)
    finally:
        agent.stop()
    events = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    alerts = [e for e in events if e["event"]["action"] == "edge-alert"]
    assert [(e["log"]["level"], e["model"]["edge"]["alert"]["status"]) for e in alerts] == [
        ("warning", "firing"), ("info", "resolved")]
    resolved = alerts[1]["model"]["edge"]
    assert resolved["device"] == "press-7" and resolved["alert"]["name"] == "Hot"
    assert resolved["alert"]["starts_at"] == rfc3339(int(T0 * 1000))
    assert resolved["alert"]["ends_at"] == rfc3339(int(T0 * 1000) + 10_000)


def test_edge_status_shows_where_alerts_go_and_what_waits():
    import time

    from modelmon.exporters.edge.status import render

    now = time.time()
    text = render({"device_id": "press-7", "updated": now, "alerting": {
        "alertmanagers": ["http://am-1:9093/api/v2/alerts", "http://am-2:9093/api/v2/alerts"],
        "pending_notifications": 12, "delivered_notifications": 3400, "last_success": now - 600,
        "last_error": "503 unavailable", "dropped_notifications": {"http_400": 2}}}, now)
    assert "alertmanager:  http://am-1:9093/api/v2/alerts, http://am-2:9093/api/v2/alerts" in text
    assert ("alerts:        12 notifications waiting, 3,400 delivered, last 10m ago - last "
            "error: 503 unavailable") in text
    assert "alerts dropped: http_400=2" in text
    assert "alertmanager" not in render({"device_id": "press-7", "updated": now}, now)


def test_a_backlog_longer_than_a_batch_never_tells_alertmanager_a_firing_alert_ended(
        tmp_path, am, monkeypatch):
    """Resends at 0, 70, ..., 560 s (T0 is 600 s ago) sent two records a batch: the
    firing notices whose validity (4 minutes) passed are left out while records wait
    behind them; Alertmanager gets the alert once valid, with its true start."""
    import datetime as dt
    import types

    from modelmon.exporters.edge.alerting import alertmanager, pipeline

    class Clock(dt.datetime):  # delivery happens 600 s after T0, however slow the machine
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
            return dt.datetime.fromtimestamp(T0 + 600, tz)

    monkeypatch.setattr(alertmanager, "dt", types.SimpleNamespace(datetime=Clock, UTC=dt.UTC))
    monkeypatch.setattr(pipeline, "BATCH_RECORDS", 2)
    am.answers = [503]
    line = Line(tmp_path, [am.url])
    try:
        for t in range(0, 570, 10):
            line.collect(t, 90.0)
        line.alerting.spool.flush_buffer()
        assert line.alerting.spool.stats().pending == 9  # 0, 70, ..., 560
        states = line.deliver()
    finally:
        line.agent.stop()
    assert states.count("progress") == 5
    ms = int(T0 * 1000)
    sent = [(a["startsAt"], a["endsAt"]) for post in am.posts for a in post]
    # Left out: 70 (batch 0, 70), 210 (140, 210), 350 (280, 350); then 490 and 560.
    assert sent == [(rfc3339(ms), rfc3339(ms + (t + 240) * 1000)) for t in (490, 560)]
    assert all("status" not in a for post in am.posts for a in post)


def test_an_alert_spool_that_cannot_be_read_does_not_cost_the_collection(tmp_path):
    """Its counts are read at every collection (the delivery KPIs): a failing alert spool
    (closed here, as after a SQLite error) leaves the samples spooled all the same."""
    line = Line(tmp_path, ["http://127.0.0.1:1"])
    line.collect(0, 20.0)
    before = line.agent.spool.stats().accepted
    line.alerting.spool.close()
    line.collect(10, 21.0)
    assert line.agent.spool.stats().accepted > before
