"""Every demo scenario passes ``modelmon demo --scenario NAME --check`` on the real
stack: Prometheus with the generated rules, Alertmanager, the webhook receiver,
the model servers and three edge agents behind their links. The check itself is
the assertion: it exits 0 only once the scenario's alerts were notified firing
and resolved by Alertmanager, its ECS events are in the file sink and, for the
outage, the backfill closed the gap (modelmon.demo.check)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelmon.demo.processes import find_binary
from modelmon.demo.scenarios import SCENARIOS

# Each is a minute or more (the stack's start, the story, the resolution): CI runs
# them, `-m 'not long'` skips them locally.
pytestmark = [pytest.mark.integration, pytest.mark.long]

ANY_PORT = [arg for option in ("--app-port", "--exporter-port", "--prometheus-port",
                               "--alertmanager-port", "--webhook-port", "--bundle-port",
                               "--edge-proxy-port",
                               "--edge-listen-port") for arg in (option, "0")]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_passes_its_check(name: str, tmp_path: Path) -> None:
    for binary in ("prometheus", "prometheus-alertmanager"):
        assert find_binary(binary), f"{binary} missing; run the README test command"
    scenario = SCENARIOS[name]
    proc = subprocess.run(
        [sys.executable, "-m", "modelmon", "demo", "--scenario", name, "--check",
         "--workdir", str(tmp_path), *ANY_PORT],
        capture_output=True, text=True, timeout=scenario.deadline + 420,
    )
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(tmp_path.glob("*.log")))
    assert proc.returncode == 0, f"{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}\n{logs}"
    assert f"PASS scenario {name}" in proc.stdout
