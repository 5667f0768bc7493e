"""Alert delivery as KPIs, against real Alertmanagers and a real Prometheus receiver.

An HA pair with one Alertmanager down: the running one's ``sent`` counter
moves, the down one's ``failed`` counter moves; started late, its ``sent``
moves too. With both down the notifications wait: ``pending`` climbs, and
falls back once one returns. The counters are read where an operator reads
them: the agent's /metrics and the cloud Prometheus the agent remote-writes to.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from support.alertmanager import Alertmanager, Webhook
from support.edge_harness import Agent, Receiver
from support.waiting import wait

pytestmark = pytest.mark.integration

T = TypeVar("T")
P = "modelmon_edge_alert_notifications_"


def scrape(agent: Agent) -> dict[tuple[str, str], float]:
    """(sample name, alertmanager or reason label) -> value from the agent's /metrics."""
    text = requests.get(f"http://127.0.0.1:{agent.listen_port}/metrics", timeout=5).text
    return {(s.name, s.labels.get("alertmanager") or s.labels.get("reason", "")): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith(P) and s.labels.get("device") == agent.device}


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def test_delivery_counters_move_per_alertmanager_and_reach_the_cloud(
        tmp_path: Path, receiver: Receiver, agent: Agent, webhook: Webhook) -> None:
    up = Alertmanager(tmp_path / "am-up", webhook.url)
    late = Alertmanager(tmp_path / "am-late", webhook.url)  # down at first
    up_url, late_url = up.url + "/api/v2/alerts", late.url + "/api/v2/alerts"
    rule_file = agent.workdir / "device.rules.yml"
    rule_file.parent.mkdir(parents=True, exist_ok=True)
    rule_file.write_text("groups: [{name: device, rules: [{alert: Heartbeat, expr: vector(1)}]}]")
    agent.extra = {
        "rules": [str(rule_file)], "evaluation_interval": "0.5s",
        "alerting": {"alertmanagers": [{"url": up.url, "timeout": "1s"},
                                       {"url": late.url, "timeout": "1s"}],
                     "resend_delay": "1s"},
    }
    up.start()
    agent.start()
    try:
        wait("Heartbeat in the running Alertmanager", up.alerts, 20)
        seen = wait("a send counted for each Alertmanager", lambda: (
            m if (m := scrape(agent)).get((f"{P}sent_total", up_url), 0) >= 1
            and m.get((f"{P}failed_total", late_url), 0) >= 1 else None), 15)
        assert seen[(f"{P}sent_total", late_url)] == 0  # exported at 0 from the start
        assert seen[(f"{P}failed_total", up_url)] == 0
        assert seen[(f"{P}pending", "")] <= 1

        # The same counters in the cloud Prometheus, per Alertmanager.
        assert receiver.prom is not None
        cloud = wait("the counters remote-written", lambda: {
            r["metric"]["alertmanager"]: float(r["value"][1]) for r in receiver.prom.query(
                f'{P}sent_total{{device="{agent.device}"}} > 0 or '
                f'{P}failed_total{{device="{agent.device}"}} > 0')} or None, 20)
        assert set(cloud) == {up_url, late_url}

        late.start()
        wait("the late Alertmanager counted as sent",
             lambda: scrape(agent).get((f"{P}sent_total", late_url), 0) >= 1, 15)

        up.stop()
        late.stop()
        before = scrape(agent)
        waiting = wait("notifications pending with both Alertmanagers down",
                       lambda: (m := scrape(agent))[(f"{P}pending", "")] >= 3 and m, 15)
        assert waiting[(f"{P}failed_total", up_url)] > before[(f"{P}failed_total", up_url)]
        assert waiting[(f"{P}sent_total", up_url)] == before[(f"{P}sent_total", up_url)]

        up.start()
        wait("the backlog delivered", lambda: scrape(agent)[(f"{P}pending", "")] == 0, 20)
        after = scrape(agent)
        assert after[(f"{P}sent_total", up_url)] > waiting[(f"{P}sent_total", up_url)]
        dropped = {k[1]: v for k, v in after.items() if k[0] == f"{P}dropped_total"}
        assert dropped and not any(dropped.values()), dropped
    finally:
        up.stop()
        late.stop()
