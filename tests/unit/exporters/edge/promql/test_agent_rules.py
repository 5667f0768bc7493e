"""Rules in the agent: `rules:` in the edge config, evaluated over the agent's own
collections, results spooled and remote-written with their evaluation times,
offline included (a loopback receiver whose answers the test scripts)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge

from modelmon.config import ConfigError
from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping

T0 = float(int(time.time()) - 600)
RULES = """
groups:
  - name: device
    rules:
      - record: device:temp:max
        expr: max without (sensor) (temp_celsius)
      - alert: DeviceHot
        expr: device:temp:max > 70
        for: 2s
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.device }} at {{ $value }}C"}
"""


def make_agent(tmp_path: Path, url: str, registry: CollectorRegistry, rules: str = RULES
               ) -> EdgeAgent:
    (tmp_path / "device.rules.yml").write_text(rules)
    config = edge_config_from_mapping({"edge": {
        "device_id": "press-7", "interval": "1s", "listen": None, "collectors": [],
        "labels": {"site": "plant-3"},
        "rules": ["*.rules.yml"],
        "spool": {"path": str(tmp_path / "state"), "max_age": "30d"},
        "remote_write": {"url": url, "min_backoff": "0.01s", "max_backoff": "0.02s",
                         "backfill_rate_limit": None},
    }}, tmp_path)
    return EdgeAgent(config, registry)


def drain(agent: EdgeAgent) -> None:
    agent.spool.flush_buffer()
    for _ in range(200):
        if agent.sender.step().state == "idle":
            return
    raise AssertionError("spool did not drain")


def test_recordings_and_alerts_are_remote_written_with_evaluation_times(
        tmp_path, receiver) -> None:
    registry = CollectorRegistry()
    temp = Gauge("temp_celsius", "t", ["sensor"], registry=registry)
    agent = make_agent(tmp_path, receiver.url, registry)
    receiver.answers = [(503, "down", {})] * 50  # offline for the whole run
    try:
        for i, value in enumerate([40, 75, 80, 85, 90, 30]):
            temp.labels("a").set(value)
            temp.labels("b").set(value - 5)
            agent.collect_once(now=T0 + i)
        agent.spool.flush_buffer()
        for _ in range(5):
            agent.sender.step()
        assert not receiver.accepted  # nothing got through while offline
        receiver.answers = []
        drain(agent)
    finally:
        agent.stop()
    ms = [int((T0 + i) * 1000) for i in range(6)]
    recorded = {t: v for labels, v, t in receiver.accepted
                if dict(labels)["__name__"] == "device:temp:max"}
    assert recorded == dict(zip(ms, [40, 75, 80, 85, 90, 30], strict=True))
    alerts = sorted((t, dict(labels)["alertstate"]) for labels, v, t in receiver.accepted
                    if dict(labels)["__name__"] == "ALERTS" and v == v)
    assert alerts == [(ms[1], "pending"), (ms[2], "pending"), (ms[3], "firing"),
                      (ms[4], "firing")]
    labels = next(dict(lb) for lb, _, _ in receiver.accepted if dict(lb)["__name__"] == "ALERTS")
    assert labels == {"__name__": "ALERTS", "alertname": "DeviceHot", "alertstate": "pending",
                      "device": "press-7", "site": "plant-3", "severity": "warning"}
    # The alert series ends with a staleness marker when the alert resolves.
    ended = [t for lb, v, t in receiver.accepted if dict(lb)["__name__"] == "ALERTS" and v != v]
    assert ms[5] in ended
    assert agent.rules is not None
    (resolved,) = [a for r in agent.rules.last_results for a in r.alerts]
    assert resolved.state == "inactive" and resolved.resolved_at_ms == ms[5]
    assert resolved.annotations == {"summary": "press-7 at 90C"}  # as last active


def test_a_refused_rule_stops_the_agent_naming_the_field_and_rule(tmp_path, receiver) -> None:
    bad = "groups: [{name: g, rules: [{alert: A, expr: 'sort(temp_celsius)'}]}]"
    with pytest.raises(ConfigError, match=r"edge.rules: .*rule 'A': function sort\(\)"):
        make_agent(tmp_path, receiver.url, CollectorRegistry(), rules=bad)
