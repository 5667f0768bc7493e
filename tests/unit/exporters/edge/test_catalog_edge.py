"""Every edge KPI in the catalog is exported by the agent, and nothing else is."""

from __future__ import annotations

import time

import psutil
from prometheus_client import CollectorRegistry

from modelmon.catalog import CATALOG
from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping


def test_the_agent_exports_exactly_the_edge_group(tmp_path) -> None:
    config = edge_config_from_mapping({"edge": {
        "device_id": "d", "listen": None, "collectors": ["system"],
        "spool": {"path": str(tmp_path)},
        "remote_write": {"url": "http://127.0.0.1:9/api/v1/write"},
    }})
    agent = EdgeAgent(config, CollectorRegistry())
    try:
        agent.collect_once()
        time.sleep(0.1)  # the CPU ratio needs two collections a few clock ticks apart
        families = list(agent.view.collect())
    finally:
        agent.stop()
    names = {f.name for f in families if f.samples}
    edge = {k.full_name().removesuffix("_total") for k in CATALOG if k.group == "edge"}
    sensors = getattr(psutil, "sensors_temperatures", lambda: {})()
    if not sensors:  # this machine exposes no temperature sensor
        edge.discard("modelmon_system_temperature_celsius")
    assert edge - names == set(), "edge KPIs declared but not exported"
    ours = {n for n in names if n.startswith(("modelmon_edge_", "modelmon_system_"))}
    assert ours - {k.full_name().removesuffix("_total") for k in CATALOG} == set()
    assert all(s.labels.get("device") == "d" for f in families for s in f.samples)
