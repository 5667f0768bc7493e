"""The staleness marker as the real consumer reads it: a series the agent
stopped collecting disappears from Prometheus queries at the next collection,
not five minutes later (the lookback), while the others stay."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge

from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping
from support.edge_harness import Receiver

pytestmark = pytest.mark.integration


def test_a_series_gone_from_the_device_is_stale_in_prometheus_at_once(tmp_path: Path,
                                                                      receiver: Receiver) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("app_workers", "workers", ["pool"], registry=registry)
    gauge.labels("a").set(1)
    gauge.labels("b").set(2)
    agent = EdgeAgent(edge_config_from_mapping({"edge": {
        "device_id": "stale-1", "listen": None, "collectors": [],
        "spool": {"path": str(tmp_path / "state")},
        "remote_write": {"url": receiver.write_url, "backfill_rate_limit": None},
    }}), registry)
    t0 = float(int(time.time()) - 60)
    try:
        agent.collect_once(now=t0)
        gauge.remove("b")
        for i in (10, 20):
            agent.collect_once(now=t0 + i)
        agent.spool.flush_buffer()
        while agent.sender.step().state != "idle":
            pass
        assert agent.spool.stats().delivered_items == agent.spool.stats().accepted_items
    finally:
        agent.stop()
    assert receiver.prom is not None

    def pools_at(at: float) -> list[str]:
        return sorted(s["metric"]["pool"] for s in receiver.prom.query('app_workers{device="stale-1"}', at=at))

    assert pools_at(t0 + 5) == ["a", "b"]
    assert pools_at(t0 + 15) == ["a"]  # without the marker: ["a", "b"] for 5 minutes
    assert pools_at(t0 + 25) == ["a"]
