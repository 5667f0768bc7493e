"""An error burst of a real instrumented model pages through real Prometheus
and Alertmanager, and the same model's warnings are inhibited meanwhile."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from modelmon.alerting import render_all, thresholds_from_mapping
from modelmon.demo.processes import (
    free_port,
    prometheus_config,
    running_prometheus,
    stop_process,
    wait_http_ok,
)

from .conftest import REPO, LiveModel, binary

pytestmark = pytest.mark.integration

# Seconds instead of minutes: the rules and Alertmanager timings a test can wait for.
FAST_RULES = {
    "evaluation_interval": "1s",
    "slo": {"page_for": "0s", "ticket_for": "0s"},
}


class Webhook:
    """Alertmanager webhook receiver: keeps every notification, by path."""

    def __init__(self) -> None:
        self.notifications: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with owner.lock:
                    owner.notifications.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def received(self, path: str, alertname: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                alert for p, body in self.notifications if p == path
                for alert in body["alerts"] if alert["labels"]["alertname"] == alertname
            ]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.thread.start()
    yield hook
    hook.server.shutdown()


@pytest.fixture
def alertmanager(tmp_path: Path, webhook: Webhook) -> Iterator[str]:
    """The committed example config, its receivers pointed at the webhook, short waits."""
    config = yaml.safe_load((REPO / "alert_rules" / "alertmanager.yml").read_text())
    config["route"].update(group_wait="1s", group_interval="1s")
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook.url + "/alerts/" + receiver["name"]
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(tmp_path / "alertmanager.log", "wb")
    proc = subprocess.Popen(
        [
            binary("prometheus-alertmanager"), f"--config.file={path}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip port: a single loopback instance
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(url + "/-/ready", 30, proc)
        yield url
    finally:
        stop_process(proc)
        log.close()


def test_error_burst_pages_and_inhibits_the_models_warnings(
    tmp_path: Path, live_model: LiveModel, alertmanager: str, webhook: Webhook
) -> None:
    rules = tmp_path / "modelmon.rules.yml"
    rules.write_text(render_all(thresholds_from_mapping(FAST_RULES))["modelmon.rules.yml"])
    config = prometheus_config([live_model.target], scrape_interval="1s", job="modelmon-e2e")
    config["rule_files"] = [str(rules)]
    config["alerting"] = {
        "alertmanagers": [{"static_configs": [{"targets": [alertmanager.removeprefix("http://")]}]}]
    }
    with running_prometheus(config, workdir=tmp_path / "prometheus") as prom:
        prom.wait_for('modelmon_inference_requests_total{outcome="success"}', timeout=20)
        prom.wait_for("model:modelmon_inference_errors:ratio_rate5m", timeout=20)
        assert webhook.received("/alerts/pager", "ModelErrorBudgetBurningFast") == []

        live_model.error_share = 0.5  # the burst
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if webhook.received("/alerts/pager", "ModelErrorBudgetBurningFast"):
                break
            time.sleep(0.25)
        pages = webhook.received("/alerts/pager", "ModelErrorBudgetBurningFast")
        assert pages, f"no page within 40s; prometheus alerts: {prom.query('ALERTS')}"
        page = pages[0]
        assert page["status"] == "firing"
        assert page["labels"]["model"] == "fraud-detector"
        assert page["labels"]["severity"] == "critical"
        assert page["annotations"]["runbook_url"].endswith("#modelerrorbudgetburningfast")
        assert "fraud-detector" in page["annotations"]["description"]

        # The slow burn (a warning) fires too, but Alertmanager holds it back
        # while the same model pages.
        deadline = time.monotonic() + 15
        slow: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not slow:
            alerts = requests.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
            slow = [a for a in alerts if a["labels"]["alertname"] == "ModelErrorBudgetBurningSlow"]
            time.sleep(0.25)
        assert slow, "the slow-burn warning never reached Alertmanager"
        assert slow[0]["status"]["state"] == "suppressed"
        assert slow[0]["status"]["inhibitedBy"]
        time.sleep(2)  # more than group_wait + group_interval
        assert webhook.received("/alerts/tickets", "ModelErrorBudgetBurningSlow") == []
