"""The docker-compose demo stack is valid: compose file, Prometheus config with
the generated rules, Alertmanager config, edge agent config."""

from __future__ import annotations

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


def test_every_service_port_and_command_refers_to_something_real():
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    commands = " ".join(str(s.get("command", "")) for s in compose["services"].values())
    assert "modelmon.demo.model:create_demo_app()" in commands
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
