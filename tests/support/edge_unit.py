"""An edge agent for unit tests, driven step by step against a loopback receiver
(``support.remote_write_receiver``): collections with ``collect_once(now=...)``,
sends with ``drain`` (the sender's ``step()``), so tests are deterministic."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping

T0 = float(int(time.time()) - 600)  # within the spool max_age


def make_agent(tmp_path: Path, url: str, registry: CollectorRegistry,
               labels: dict[str, Any] | None = None, **remote_write: Any) -> EdgeAgent:
    config = edge_config_from_mapping({"edge": {
        "device_id": "press-7", "interval": "1s", "listen": None, "collectors": [],
        "labels": labels if labels is not None else {"site": "plant-3"},
        "spool": {"path": str(tmp_path / "state"), "max_age": "30d"},
        "remote_write": {"url": url, "min_backoff": "0.01s", "max_backoff": "0.02s",
                         "backfill_rate_limit": None, **remote_write},
    }})
    return EdgeAgent(config, registry)


def drain(agent: EdgeAgent, max_steps: int = 200) -> list[str]:
    """Send until the spool is empty; the states the sender went through."""
    agent.spool.flush_buffer()
    states = []
    for _ in range(max_steps):
        step = agent.sender.step()
        states.append(step.state)
        if step.state == "idle":
            return states
    raise AssertionError(f"spool did not drain in {max_steps} steps: {states[-5:]}")
