"""Issue 12 finding 4, the edge agent on a full disk: it keeps running, says
so in ``modelmon edge status`` with the reason, never floods the receiver or
its own log, and stops without raising.

The state directory is on a real 4 MiB tmpfs that the test fills
(``support.full_disk``).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping
from modelmon.exporters.service.monitor import ModelMonitor
from support.full_disk import SmallDisk, small_disk


@pytest.fixture
def disk() -> Iterator[SmallDisk]:
    with small_disk("4m") as made:
        if isinstance(made, str):
            pytest.skip(made)
        yield made


def _wait_for(predicate, what: str, limit: int = 400) -> None:  # type: ignore[no-untyped-def]
    pause = threading.Event()
    for _ in range(limit):
        if predicate():
            return
        pause.wait(0.05)
    raise AssertionError(f"never happened: {what}")


def test_agent_on_a_full_disk_keeps_running_reports_why_and_does_not_flood(
    disk: SmallDisk, receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    section = {"edge": {
        "device_id": "press-7", "interval": "0.1s", "listen": None, "collectors": [],
        "spool": {"path": str(disk.path / "state"), "max_age": "30d"},
        "remote_write": {"url": receiver.url, "min_backoff": "0.05s", "max_backoff": "0.4s",
                         "backfill_rate_limit": None},
    }}
    config_file = tmp_path / "edge.yaml"
    config_file.write_text(yaml.safe_dump(section))
    registry = CollectorRegistry()
    ModelMonitor("fraud", version="3", registry=registry).observe_inference(0.02)
    agent = EdgeAgent(edge_config_from_mapping(section), registry)
    caplog.set_level(logging.INFO)
    agent.start()
    try:
        _wait_for(lambda: agent.metrics.sent_total > 0, "a first delivery")
        # Hold the next request until the disk is full: its answer then cannot
        # be recorded.
        gate, held = threading.Event(), threading.Event()

        def hold(series):  # type: ignore[no-untyped-def]
            held.set()
            gate.wait(30)

        receiver.judge = hold
        _wait_for(held.is_set, "a request in flight")
        disk.fill()
        receiver.judge = None
        gate.set()
        _wait_for(lambda: agent.spool.stats().degraded is not None, "the spool degraded")
        requests_then = len(receiver.requests)
        # Two seconds of a full disk at ten collections a second.
        threading.Event().wait(2.0)
        alive = {t.name for t in threading.enumerate()}
        assert {"modelmon-edge-sender", "modelmon-edge-collector"} <= alive
        # At most one request per collection made meanwhile (20), never a loop.
        assert len(receiver.requests) - requests_then <= 25
        proc = subprocess.run([sys.executable, "-m", "modelmon", "edge", "status", "--no-watch",
                               "--config", str(config_file)], capture_output=True, text=True,
                              timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "agent:         running" in proc.stdout, proc.stdout
        assert "DEGRADED" in proc.stdout and "disk full" in proc.stdout, proc.stdout
        unrecorded = registry.get_sample_value("modelmon_edge_send_requests_total",
                                                {"device": "press-7", "outcome": "unrecorded"})
        assert unrecorded is not None and unrecorded >= 1
        lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(lines) <= 8, [r.getMessage()[:120] for r in lines]
    finally:
        agent.stop()  # must not raise on the full disk
    stats_dropped = agent.metrics.dropped_totals
    assert stats_dropped.get("disk_full", 0) > 0, stats_dropped
