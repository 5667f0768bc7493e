"""The docker-compose demo stack is valid: compose file, Prometheus config with
the generated rules, Alertmanager config, edge agent config."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "compose"


def run(args, **kwargs):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)
    assert proc.returncode == 0, f"{args}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_docker_compose_config_is_valid():
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose missing; run the README test command (bash tests/run.sh)"
    out = run([binary, "-f", str(COMPOSE / "docker-compose.yml"), "config"])
    services = yaml.safe_load(out)["services"]
    assert {"model-server", "exporter", "traffic", "edge-agent", "prometheus", "alertmanager",
            "webhook", "grafana", "elasticsearch", "kibana"} <= set(services)
    # the example Alertmanager config posts to 127.0.0.1:9095: the webhook receiver
    # listens there inside Alertmanager's network namespace
    assert services["webhook"]["network_mode"] == "service:alertmanager"
    assert "--webhook-port 9095" in str(services["webhook"]["command"])
    example = yaml.safe_load((REPO / "alert_rules" / "alertmanager.yml").read_text())
    urls = [h["url"] for r in example["receivers"] for h in r.get("webhook_configs", [])]
    assert urls and all(u.startswith("http://127.0.0.1:9095/") for u in urls)
    # the edge device runs the demo's edge rules, mounted where its config points
    mounts = " ".join(map(str, services["edge-agent"]["volumes"]))
    assert "demo/edge_rules.yml" in mounts and "/etc/modelmon/rules/edge_rules.yml" in mounts
    mounts = " ".join(str(v) for v in services["grafana"]["volumes"])
    assert "dashboards/json" in mounts and "grafana/provisioning" in mounts


def test_local_override_config_is_valid():
    """docker-compose.local.yml (the locally built images): the services that run
    without Docker Hub, Grafana/Elasticsearch/Kibana in the "hub" profile, the demo's
    rules generated for Prometheus, the production rules untouched."""
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose missing; run the README test command (bash tests/run.sh)"
    files = ["-f", str(COMPOSE / "docker-compose.yml"), "-f",
             str(COMPOSE / "docker-compose.local.yml")]
    config = yaml.safe_load(run([binary, *files, "config"]))
    services = config["services"]
    assert {name for name, service in services.items() if not service.get("profiles")} == {
        "model-server", "exporter", "traffic", "edge-agent", "webhook", "demo-rules",
        "prometheus", "alertmanager"}
    for hub_only in ("grafana", "elasticsearch", "kibana"):
        assert services[hub_only]["profiles"] == ["hub"]
    for name in ("model-server", "exporter", "traffic", "edge-agent", "webhook", "demo-rules"):
        assert services[name]["image"] == "modelmon:local", name
    assert services["prometheus"]["image"] == "modelmon-prometheus:local"
    assert services["alertmanager"]["image"] == "modelmon-alertmanager:local"
    assert "demo/thresholds.yml" in " ".join(services["demo-rules"]["volumes"])
    prometheus_mounts = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert prometheus_mounts["/etc/prometheus/rules"] == "demo-rules"
    assert prometheus_mounts["/etc/prometheus/prometheus.yml"].endswith("prometheus.demo.yml")
    assert services["prometheus"]["depends_on"]["demo-rules"]["condition"] == (
        "service_completed_successfully")
    # the network is internal only when asked (a dockerd without bridge or iptables)
    assert config["networks"]["default"]["internal"] is False
    internal = yaml.safe_load(run([binary, *files, "config"],
                                  env={**os.environ, "MODELMON_COMPOSE_INTERNAL": "true"}))
    assert internal["networks"]["default"]["internal"] is True


def test_demo_prometheus_config_with_the_demo_rules_passes_promtool(tmp_path):
    from modelmon.alerting import load_thresholds, render_all

    shutil.copy(COMPOSE / "prometheus" / "prometheus.demo.yml", tmp_path / "prometheus.yml")
    (tmp_path / "rules").mkdir()
    for name, text in render_all(load_thresholds(REPO / "demo" / "thresholds.yml")).items():
        (tmp_path / "rules" / name).write_text(text)
    out = run(["promtool", "check", "config", str(tmp_path / "prometheus.yml")])
    assert "SUCCESS" in out and "rules found" in out
    config = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    base = yaml.safe_load((COMPOSE / "prometheus" / "prometheus.yml").read_text())
    assert config["scrape_configs"] == base["scrape_configs"]  # the same targets


def test_prometheus_config_with_the_generated_rules_passes_promtool(tmp_path):
    # Lay the files out as the containers see them: rules/ beside the config.
    shutil.copy(COMPOSE / "prometheus" / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copytree(REPO / "alert_rules", tmp_path / "rules")
    out = run(["promtool", "check", "config", str(tmp_path / "prometheus.yml")])
    assert "SUCCESS" in out and "rules found" in out


def test_alertmanager_config_passes_amtool():
    run(["amtool", "check-config", str(REPO / "alert_rules" / "alertmanager.yml")])


def test_edge_agent_config_loads():
    from modelmon.exporters.edge import load_edge_config

    config = load_edge_config(COMPOSE / "edge" / "edge.yaml")
    assert config.device_id == "demo-edge-1"
    assert config.rules  # compose/edge/rules/ links the demo's edge rules, compiled at load


@pytest.mark.parametrize("file", ["docker-compose.yml", "docker-compose.local.yml"])
def test_every_service_port_and_command_refers_to_something_real(file):
    compose = yaml.safe_load((COMPOSE / file).read_text())
    commands = " ".join(str(s.get("command", "")) for s in compose["services"].values())
    assert ("modelmon.demo.model:create_demo_app()" in commands
            if file == "docker-compose.yml" else "modelmon rules build" in commands)
    from modelmon.cli import build_parser
    parser = build_parser()
    # every modelmon command line in the stack parses with the real CLI
    for service in compose["services"].values():
        command = service.get("command")
        if isinstance(command, str) and command.startswith("modelmon "):
            parser.parse_args(command.split()[1:])
        elif isinstance(command, str) and command.startswith("python -m modelmon.demo.edge_device"):
            from modelmon.demo.edge_device import main

            with pytest.raises(SystemExit) as excinfo:  # the arguments parse: --help exits 0
                main([*command.split()[3:], "--help"])
            assert excinfo.value.code == 0
