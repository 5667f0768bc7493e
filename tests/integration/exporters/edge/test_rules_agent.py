"""`modelmon edge run` with rule files against a real Prometheus receiver: the
rules keep running through an outage, and after it the cloud holds the
recording results of every collection and the ALERTS series of the outage
window with their original timestamps."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
import requests

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


def _agent_query(agent: Agent, expr: str, at_ms: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "modelmon", "edge", "query", "--config", str(agent.config_path),
         "--time", f"{at_ms // 1000}.{at_ms % 1000:03d}", "--json", expr],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def test_edge_query_answers_like_the_cloud_prometheus(receiver: Receiver, agent: Agent) -> None:
    """`modelmon edge query` over the agent's window and the receiver Prometheus over
    the same remote-written samples give the same answer at the same instants."""
    (agent.workdir).mkdir(parents=True, exist_ok=True)
    (agent.workdir / "device.rules.yml").write_text(RULES)
    agent.extra = {"rules": [str(agent.workdir / "device.rules.yml")], "query_window": "10m"}
    agent.start()
    assert receiver.prom is not None
    receiver.prom.wait_for(f'ALERTS{{device="{agent.device}",alertstate="firing"}}', timeout=20)
    time.sleep(2.0)
    agent.wait_drained()
    collections = sorted(agent.spooled_times())
    exprs = [
        f'modelmon_edge_backlog_samples{{device="{agent.device}"}}',
        f'rate(modelmon_edge_samples_collected_total{{device="{agent.device}"}}[3s])',
        f'max_over_time(device:backlog_samples:max{{device="{agent.device}"}}[5s]) + 1',
        f'ALERTS{{device="{agent.device}"}}',
        "scalar(count(modelmon_edge_link_up))",
    ]
    for at_ms in (collections[-8], collections[-5] + 123):
        for expr in exprs:
            mine = _agent_query(agent, expr, at_ms)
            r = requests.get(f"{receiver.prom.url}/api/v1/query",
                             params={"query": expr, "time": f"{at_ms / 1000:.3f}"}, timeout=30)
            theirs = r.json()
            assert mine["status"] == theirs["status"] == "success", (mine, theirs)
            assert mine["data"]["resultType"] == theirs["data"]["resultType"]
            if mine["data"]["resultType"] == "scalar":
                assert mine["data"]["result"] == theirs["data"]["result"], expr
                continue

            def as_set(body: dict[str, Any]) -> set[tuple[tuple[tuple[str, str], ...], str]]:
                return {(tuple(sorted(s["metric"].items())), s["value"][1])
                        for s in body["data"]["result"]}

            assert as_set(mine) == as_set(theirs), expr
            assert mine["data"]["result"], expr
