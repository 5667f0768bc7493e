"""Every PromQL target of every dashboard runs against a real Prometheus that
scrapes a live workload (and evaluates the modelmon rules): it must parse and
return data, or stand in ALLOWLIST with the reason it cannot here."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from modelmon.alerting import render_all, thresholds_from_mapping
from modelmon.dashboards import render_all as render_dashboards
from modelmon.dashboards.references import json_panels, prometheus_targets
from modelmon.demo.processes import prometheus_config, running_prometheus

from .conftest import Workload

pytestmark = pytest.mark.integration

# (dashboard uid, panel title or "*") -> why the workload cannot give it data.
ALLOWLIST: dict[tuple[str, str], str] = {
    ("modelmon-edge-fleet", "System temperature"): (
        "temperature exists only where the OS exposes sensors (psutil.sensors_temperatures); "
        "the test machines are VMs without any"
    ),
    ("modelmon-model-quality", "Quality check errors per second"): (
        "counts failures of the quality exporter itself (a profile it cannot apply, a bug); "
        "a correct run has none, so the series does not exist"
    ),
    ("modelmon-model-quality", "Fleet mean absolute error"): (
        "the workload's model is a classifier: no regression label, so the rule has no "
        "denominator (tests/integration/exporters/quality/test_fleet_accuracy.py proves it "
        "equal to scikit-learn's MAE over three servers)"
    ),
    ("modelmon-model-service", "Label values replaced per second"): (
        "counts label values with control or format characters given through the Python "
        "API; the workload's traffic is clean (tests/unit/core/test_label_values.py "
        "proves the counter)"
    ),
    ("modelmon-model-service", "Series budget exceeded per second"): (
        "counts series folded into __other__ once max_series is spent; the workload stays "
        "far within the budget (tests/unit/exporters/service/test_series_budget.py drives it "
        "to its limit)"
    ),
}
# The docker collector needs a Docker daemon, which this workload does not start;
# tests/integration/plugins/test_docker_collector.py drives each KPI on a real dockerd.
ALLOWLIST.update({
    ("modelmon-model-service", title): "needs model containers on a Docker daemon"
    for title in (
        "Container CPU", "Container memory: working set and limit",
        "Container restarts and OOM kills", "Container state and health",
        "Container network and block I/O", "Containers left out by max_containers",
    )
})
# Nor has it a GPU (tests/unit/plugins/test_nvml.py reads real GPUs where there are).
ALLOWLIST.update({
    ("modelmon-model-service", title): "needs an NVIDIA GPU"
    for title in ("GPU utilization", "GPU memory: used, total and per container",
                  "GPU temperature and power", "GPU ECC errors")
})
# Grafana's variables, as "All" resolves them.
VARIABLES = {
    "$__rate_interval": "15s", "$model": ".*", "$version": ".*", "$device": ".*",
    "$drift_method": "psi",
}


def _resolve(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unresolved variable in {expr!r}"
    return expr


@contextlib.contextmanager
def _edge_agent(prometheus_url: str, tmp_path: Path) -> Iterator[None]:
    """A real edge agent remote-writing its device and agent KPIs to the Prometheus, with
    a model in its process and a configuration bundle pulled from a loopback server."""
    from modelmon import ModelMonitor
    from modelmon.exporters.edge import EdgeAgent
    from modelmon.exporters.edge.bundles import build_bundle, bundle_app
    from modelmon.exporters.edge.config import edge_config_from_mapping
    from modelmon.exporters.edge.http_server import serve

    source, published = tmp_path / "bundle-source", tmp_path / "bundles"
    source.mkdir()
    published.mkdir()
    (source / "bundle.yml").write_text("version: '1'\nmodels: {fraud: '3.2.0'}\n")
    (published / "press-lines.tar.gz").write_bytes(build_bundle(source))
    bundles = serve("127.0.0.1", 0, bundle_app(published))
    registry = CollectorRegistry()
    ModelMonitor("fraud", version="3.1.0", registry=registry)  # the rollout is not done
    # Rules on the device with alerting on, so the alert delivery KPIs exist; the
    # Alertmanager is a closed loopback port (the notifications fail and wait).
    rules = tmp_path / "device.rules.yml"
    rules.write_text("groups: [{name: device, rules: [{alert: Heartbeat, expr: vector(1)}]}]")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        alertmanager = f"http://127.0.0.1:{closed.getsockname()[1]}"
    agent = EdgeAgent(edge_config_from_mapping({"edge": {
        "device_id": "press-line-7", "interval": "0.5s", "listen": None,
        "collectors": ["system"], "spool": {"path": str(tmp_path / "edge")},
        "rules": [str(rules)], "evaluation_interval": "0.5s",
        "alerting": {"alertmanagers": [{"url": alertmanager, "timeout": "1s"}]},
        "remote_write": {"url": f"{prometheus_url}/api/v1/write"},
        "bundle": {"url": f"http://127.0.0.1:{bundles.server_port}/press-lines.tar.gz",
                   "allow_unsigned": True, "poll_interval": "1s"},
    }}), registry=registry)
    agent.start()
    try:
        yield
    finally:
        agent.stop()
        bundles.shutdown()
        bundles.server_close()


def _allowed(uid: str, title: str) -> str | None:
    return ALLOWLIST.get((uid, title))


def test_every_panel_query_parses_and_returns_data(tmp_path: Path, workload: Workload) -> None:
    rules = tmp_path / "modelmon.rules.yml"
    rules.write_text(render_all(thresholds_from_mapping({"evaluation_interval": "1s"}))[
        "modelmon.rules.yml"])
    config = prometheus_config(workload.targets, scrape_interval="1s", job="modelmon")
    config["rule_files"] = [str(rules)]
    dashboards = [json.loads(t) for t in render_dashboards().values()]
    with running_prometheus(config, workdir=tmp_path / "prometheus",
                            extra_args=["--web.enable-remote-write-receiver"]) as prom, \
            _edge_agent(prom.url, tmp_path):
        prom.wait_for("modelmon_feedback_total", timeout=30)
        prom.wait_for("modelmon_edge_link_up", timeout=30)
        time.sleep(6)  # several scrapes and rule evaluations for rate() and the rules
        empty: list[str] = []
        checked = 0
        for dash in dashboards:
            for title, expr in prometheus_targets(dash):
                result = prom.query(_resolve(expr))  # raises on a parse error
                checked += 1
                if not result and not _allowed(dash["uid"], title):
                    empty.append(f"{dash['uid']} / {title}: {expr}")
        assert not empty, (
            f"{len(empty)} of {checked} panel queries returned no data:\n" + "\n".join(empty)
            + f"\nworkload errors: {workload.errors}"
        )
        assert checked > 60


def test_allowlist_names_existing_panels() -> None:
    titles = {
        (dash["uid"], panel["title"])
        for dash in (json.loads(t) for t in render_dashboards().values())
        for _, panel in json_panels(dash)
    }
    for uid, title in ALLOWLIST:
        assert (uid, title) in titles, (uid, title)


def test_non_prometheus_panels_are_the_elasticsearch_ones() -> None:
    """Elasticsearch panels cannot run here (no Elasticsearch): they are the only ones skipped."""
    for text in render_dashboards().values():
        dash = json.loads(text)
        for _, panel in json_panels(dash):
            if panel["datasource"]["type"] != "prometheus":
                assert panel["datasource"]["type"] == "elasticsearch", panel["title"]
                assert dash["uid"] == "modelmon-logs-elasticsearch"
                for target in panel["targets"]:
                    assert re.search(r"log\.level:error", target["query"])
