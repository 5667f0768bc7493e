"""A bundle's thresholds and collector settings in a running `modelmon edge run`,
built and imported with the command line, against a real Prometheus receiver.

The thresholds set ``edge.model_skew_for: 0s`` (default 30m) and the bundle
pins a model the device does not run: the edge rule group regenerated from
them on the device fires EdgeModelVersionSkew at once, on the device's query
API and in the cloud Prometheus. Its collector settings point the system
collector at another mount point, collected from the next interval without
a restart. A second bundle whose collector settings the device's plugin
refuses is refused by the agent, and the first keeps running.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from support.edge_harness import Agent, Receiver
from support.waiting import wait

pytestmark = pytest.mark.integration

SKEW = 'ALERTS{alertname="EdgeModelVersionSkew",alertstate="firing",evaluated_on="device"}'


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelmon", "edge", "bundle", *args],
                          capture_output=True, text=True, timeout=60)


def source(root: Path, version: str, plugins: dict[str, Any]) -> Path:
    src = root / f"src-{version}"
    src.mkdir(parents=True)
    (src / "thresholds.yml").write_text(
        "evaluation_interval: 1s\nedge: {model_skew_for: 0s}\n")
    (src / "bundle.yml").write_text(yaml.safe_dump({
        "version": version, "thresholds": "thresholds.yml", "models": {"fraud": "9.9"},
        "collectors": ["system"], "plugins": plugins}))
    return src


def test_thresholds_and_collector_settings_of_an_imported_bundle_run(
        tmp_path: Path, receiver: Receiver, agent: Agent) -> None:
    mount = str(tmp_path)
    agent.extra = {"bundle": {"allow_unsigned": True}}
    agent.write_config()
    config = yaml.safe_load(agent.config_path.read_text())
    del config["edge"]["collectors"]  # the device leaves its collectors to the bundle
    agent.config_path.write_text(yaml.safe_dump(config))
    agent.start()

    def device(expr: str) -> list[dict[str, Any]]:
        answer = requests.get(f"http://127.0.0.1:{agent.listen_port}/api/v1/query",
                              params={"query": expr}, timeout=5).json()
        return list(answer["data"]["result"])

    built = cli("build", str(source(tmp_path, "v1", {"system": {"mountpoints": [mount]}})),
                "--out", str(tmp_path / "v1.tar.gz"))
    assert built.returncode == 0, built.stderr
    assert "thresholds" in built.stdout
    imported = cli("import", str(tmp_path / "v1.tar.gz"), "--config", str(agent.config_path))
    assert imported.returncode == 0 and "applied" in imported.stdout, imported.stderr

    wait("the bundle's mount point collected",
         lambda: device(f'modelmon_system_filesystem_bytes{{mountpoint="{mount}"}}'))
    [alert] = wait("EdgeModelVersionSkew firing on the device", lambda: device(SKEW))
    assert alert["metric"]["model"] == "fraud" and alert["metric"]["version"] == "9.9"
    assert receiver.prom is not None
    wait("the device's alert in the cloud Prometheus",
         lambda: receiver.prom.query(f'{SKEW[:-1]},device="{agent.device}"}}'))

    # Settings the device's system plugin refuses: the agent refuses the bundle.
    cli("build", str(source(tmp_path, "v2", {"system": {"mountpoint": ["/"]}})),
        "--out", str(tmp_path / "v2.tar.gz"))
    refused = cli("import", str(tmp_path / "v2.tar.gz"), "--config", str(agent.config_path))
    assert refused.returncode != 0 and "refused it (collectors)" in refused.stderr
    assert "plugins.system" in refused.stderr
    status = agent.status()["bundle"]
    assert status["version"] == "v1" and status["last_refusal"]["reason"] == "collectors"
    time.sleep(2.0)  # collections and evaluations after the refusal still run v1's
    assert device(f'count_over_time(modelmon_system_filesystem_bytes{{mountpoint="{mount}"}}'
                  '[1s])')
    assert device(f"count_over_time({SKEW}[2s])")
