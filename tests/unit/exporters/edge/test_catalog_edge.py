"""Every edge KPI in the catalog is exported by the agent, and nothing else is."""

from __future__ import annotations

import time

import psutil
from prometheus_client import CollectorRegistry

from modelmon.catalog import CATALOG
from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping
from modelmon.exporters.edge.bundles import build_bundle, bundle_app
from modelmon.exporters.edge.http_server import serve


def test_the_agent_exports_exactly_the_edge_group(tmp_path) -> None:
    # A bundle pulled, so that the bundle KPIs (modelmon.catalog.edge_config) have values.
    source = tmp_path / "bundle-source"
    source.mkdir()
    (source / "bundle.yml").write_text("version: '1'\nmodels: {fraud: '3.2'}\n")
    published = tmp_path / "published"
    published.mkdir()
    (published / "site.tar.gz").write_bytes(build_bundle(source))
    httpd = serve("127.0.0.1", 0, bundle_app(published))
    config = edge_config_from_mapping({"edge": {
        "device_id": "d", "listen": None, "collectors": ["system"],
        "spool": {"path": str(tmp_path / "state")},
        "remote_write": {"url": "http://127.0.0.1:9/api/v1/write"},
        "bundle": {"url": f"http://127.0.0.1:{httpd.server_port}/site.tar.gz",
                   "allow_unsigned": True},
        # The alert delivery KPIs exist from the start, for every Alertmanager.
        "alerting": {"alertmanagers": [{"url": "http://127.0.0.1:9"}]},
    }})
    agent = EdgeAgent(config, CollectorRegistry())
    try:
        assert agent.bundles is not None and agent.bundles.pull() == "applied"
        agent.collect_once()
        time.sleep(0.1)  # the CPU ratio needs two collections a few clock ticks apart
        families = list(agent.view.collect())
    finally:
        agent.stop()
        httpd.shutdown()
        httpd.server_close()
    names = {f.name for f in families if f.samples}
    edge = {k.full_name().removesuffix("_total") for k in CATALOG if k.group == "edge"}
    sensors = getattr(psutil, "sensors_temperatures", lambda: {})()
    if not sensors:  # this machine exposes no temperature sensor
        edge.discard("modelmon_system_temperature_celsius")
    assert edge - names == set(), "edge KPIs declared but not exported"
    ours = {n for n in names if n.startswith(("modelmon_edge_", "modelmon_system_"))}
    assert ours - {k.full_name().removesuffix("_total") for k in CATALOG} == set()
    assert all(s.labels.get("device") == "d" for f in families for s in f.samples)
