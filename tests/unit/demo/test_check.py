"""--check counts what Alertmanager notified and what the log sink holds, and
says what is missing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests

from modelmon.demo.check import Checker, EventLog
from modelmon.demo.processes import free_port
from modelmon.demo.scenarios import SCENARIOS
from modelmon.demo.webhook import WebhookReceiver


def _notify(hook: WebhookReceiver, status: str, labels: dict[str, str]) -> None:
    # Alertmanager's webhook payload, version 4 (the fields the receiver reads).
    body = {"version": "4", "status": status, "receiver": "pager", "alerts": [{
        "status": status, "labels": labels, "annotations": {"summary": "s"},
        "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
    }]}
    r = requests.post(f"{hook.url}/alerts/pager", json=body, timeout=5)
    assert r.status_code == 200


def test_an_alert_counts_once_fired_and_resolved(tmp_path: Path) -> None:
    scenario = SCENARIOS["errors"]
    hook = WebhookReceiver(free_port(), tmp_path / "n.jsonl")
    (tmp_path / "logs").mkdir()
    checker = Checker(scenario, hook, None, tmp_path / "logs", time.time())  # type: ignore[arg-type]
    try:
        labels = {"alertname": "ModelErrorBudgetBurningFast", "model": "fraud-detector",
                  "severity": "critical"}
        missing = checker.missing()
        assert any("never notified" in m for m in missing)
        assert any("ECS event error" in m and "not found" in m for m in missing)
        _notify(hook, "firing", {**labels, "model": "other-model"})  # another model's page
        _notify(hook, "firing", labels)
        assert any("fired, not resolved" in m for m in checker.missing())
        _notify(hook, "resolved", labels)
        with open(tmp_path / "logs" / "events.jsonl", "w") as f:
            f.write(json.dumps({"@timestamp": "2000-01-01T00:00:00Z",  # before the start
                                "event": {"action": "error"},
                                "service": {"name": "fraud-detector"}}) + "\n")
        assert [m for m in checker.missing() if "ECS event error" in m]
        with open(tmp_path / "logs" / "events.jsonl", "a") as f:
            f.write(json.dumps({"@timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                "event": {"action": "error"},
                                "service": {"name": "fraud-detector"}}) + "\n")
        assert checker.missing() == []
        logged = [json.loads(line) for line in (tmp_path / "n.jsonl").read_text().splitlines()]
        assert [n["status"] for n in logged] == ["firing", "firing", "resolved"]
    finally:
        hook.close()


def test_a_bad_payload_is_refused_not_fatal(tmp_path: Path) -> None:
    hook = WebhookReceiver(free_port())
    try:
        assert requests.post(f"{hook.url}/alerts/x", data=b"{", timeout=5).status_code == 400
        assert requests.post(f"{hook.url}/alerts/x", json={"alerts": [{}]},
                             timeout=5).status_code == 400
        assert hook.received() == []
    finally:
        hook.close()


def test_event_log_waits_for_a_whole_line(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"event": {"action": "x"}}\n{"event": {"act')
    log = EventLog(tmp_path)
    log.refresh()
    assert len(log.docs) == 1
    with open(path, "ab") as f:
        f.write(b'ion": "y"}}\n')
    log.refresh()
    assert [d["event"]["action"] for d in log.docs] == ["x", "y"]
