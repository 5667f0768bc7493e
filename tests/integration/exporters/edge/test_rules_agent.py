"""`modelmon edge run` with rule files against a real Prometheus receiver: the
rules keep running through an outage, and after it the cloud holds the
recording results of every collection and the ALERTS series of the outage
window with their original timestamps."""

from __future__ import annotations

import time

import pytest

from support.edge_harness import Agent, Receiver

pytestmark = pytest.mark.integration

RULES = """
groups:
  - name: device
    rules:
      - record: device:backlog_samples:max
        expr: max(modelmon_edge_backlog_samples)
      - alert: EdgeAgentCollecting
        expr: count(modelmon_edge_backlog_samples) > 0
        for: 1s
        labels: {severity: info}
"""


def test_rules_run_offline_and_their_results_arrive_with_their_times(
        receiver: Receiver, agent: Agent) -> None:
    (agent.workdir).mkdir(parents=True, exist_ok=True)
    (agent.workdir / "device.rules.yml").write_text(RULES)
    agent.extra = {"rules": [str(agent.workdir / "device.rules.yml")],
                   "evaluation_interval": f"{agent.interval}s"}
    agent.start()
    assert receiver.prom is not None
    receiver.prom.wait_for(f'ALERTS{{device="{agent.device}",alertstate="firing"}}', timeout=20)

    receiver.stop()
    outage_start = time.time()
    time.sleep(3.0)
    outage_end = time.time()
    receiver.start()
    agent.wait_drained()
    agent.stop()

    collections = agent.spooled_times()
    recorded = receiver.sample_times(agent.device, "device:backlog_samples:max")
    assert collections and recorded == collections, (
        f"{len(collections - recorded)} collections without a recording result")
    result = receiver.prom.query(
        f'ALERTS{{device="{agent.device}",alertname="EdgeAgentCollecting",alertstate="firing"}}[1h]')
    firing = {round(float(ts) * 1000) for series in result for ts, _ in series["values"]}
    in_outage = {t for t in firing if outage_start * 1000 <= t <= outage_end * 1000}
    assert len(in_outage) >= 8, sorted(firing)[-5:]
    assert in_outage == {t for t in collections if outage_start * 1000 <= t <= outage_end * 1000}
