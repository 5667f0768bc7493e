"""The issue's acceptance test: run the agent, stop the receiver, restart the
agent during the outage, start the receiver again, and find every sample
taken during the outage in Prometheus with its original timestamp."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from support.edge_harness import Agent, Receiver

pytestmark = pytest.mark.integration


def _wait_for_samples(receiver: Receiver, device: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not receiver.sample_times(device):
        assert time.monotonic() < deadline, "no sample reached Prometheus"
        time.sleep(0.2)


def _status_text(agent: Agent) -> str:
    return subprocess.run(
        [sys.executable, "-m", "modelmon", "edge", "status", "--config", str(agent.config_path),
         "--no-watch"], capture_output=True, text=True, timeout=30, check=True,
    ).stdout


def test_outage_with_a_restart_in_the_middle_loses_nothing(receiver: Receiver, agent: Agent) -> None:
    agent.start()
    _wait_for_samples(receiver, agent.device)
    deadline = time.monotonic() + 10
    while "link:          up" not in (text := _status_text(agent)):
        assert time.monotonic() < deadline, text
        time.sleep(0.3)

    receiver.stop()
    outage_start = time.time()
    time.sleep(1.5)
    agent.stop()  # restart the agent during the outage
    agent.start()
    time.sleep(1.5)
    status = _status_text(agent)
    assert "link:          DOWN" in status and "backlog:" in status
    outage_end = time.time()
    receiver.start()
    agent.wait_drained()

    taken = {t for t in agent.spooled_times() if outage_start * 1000 <= t <= outage_end * 1000}
    assert len(taken) >= 8, agent.logs()[-2000:]
    missing = taken - receiver.sample_times(agent.device)
    assert not missing, f"{len(missing)} of {len(taken)} outage samples missing"

    # The device's own KPIs arrive too, labelled by device, and the local /metrics serves them.
    assert receiver.prom is not None
    assert receiver.prom.query(f'modelmon_system_memory_bytes{{device="{agent.device}",state="total"}}')
    body = requests.get(f"http://127.0.0.1:{agent.listen_port}/metrics", timeout=5).text
    assert f'modelmon_edge_link_up{{device="{agent.device}"}} 1.0' in body
    stats = agent.status()["spool"]
    assert stats["dropped_samples"] == {}
