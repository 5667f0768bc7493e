"""The compose stack runs for real from locally built images (no Docker Hub):
``compose/local_images.py`` builds them (debootstrap, Debian's Prometheus and
Alertmanager, modelmon from this checkout) on a private dockerd (tests/support/
dockerd.py), ``docker-compose`` brings up the local set (docker-compose.yml +
docker-compose.local.yml) on an internal network, and the test sees, through
the services' own APIs at their container addresses: every scrape target up,
the edge agent's remote-written samples in Prometheus, and the traffic's error
burst paging through Alertmanager (ModelErrorBudgetBurningFast, the demo's
thresholds). The root filesystem is cached in ~/.cache/modelmon/compose."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from support.dockerd import Dockerd, overlay2_usable, running_dockerd

# Measured: 3.9 min from a cold cache (debootstrap, pip downloads), 2.9 warm; the
# timeout bounds the worst case of the steps' own bounded waits.
pytestmark = [pytest.mark.long, pytest.mark.integration, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "compose"
FILES = ("-f", str(COMPOSE / "docker-compose.yml"), "-f", str(COMPOSE / "docker-compose.local.yml"))
LOCAL_SET = {"model-server", "exporter", "traffic", "edge-agent", "webhook", "demo-rules",
             "prometheus", "alertmanager"}
TARGETS = {"modelmon-model-server", "modelmon-serve", "prometheus"}
EDGE_DEVICE = "demo-edge-1"  # compose/edge/edge.yaml
PAGE = {"alertname": "ModelErrorBudgetBurningFast", "model": "fraud-detector"}


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    # overlay2 where it works: vfs copies the 440 MB modelmon image twice per
    # container (up 59 s and down 75 s against 5 s and 13 s measured here).
    if overlay2_usable():
        with running_dockerd(tmp_path_factory.mktemp("dockerd"),
                             storage_driver="overlay2") as daemon:
            if not isinstance(daemon, str):
                yield daemon
                return
    with running_dockerd(tmp_path_factory.mktemp("dockerd")) as daemon:
        if isinstance(daemon, str):
            pytest.skip(f"dockerd cannot start here: {daemon}")
        yield daemon


class Stack:
    """docker-compose against the test's dockerd, as its own project."""

    def __init__(self, daemon: Dockerd) -> None:
        self.daemon = daemon
        self.project = f"mmcompose{os.getpid()}"
        self.env = {**daemon.env(), "COMPOSE_PROJECT_NAME": self.project,
                    # no bridge, no iptables here: no NAT, no published ports
                    "MODELMON_COMPOSE_INTERNAL": "true",
                    # removing containers of a big image is slow on a loaded machine
                    "COMPOSE_HTTP_TIMEOUT": "300"}

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        binary = shutil.which("docker-compose")
        assert binary, "docker-compose missing; run the README test command (bash tests/run.sh)"
        result = subprocess.run([binary, *FILES, *args], env=self.env, capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)} failed ({result.returncode}):"
                                 f"\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", "--tail", "40", service, check=False,
                            timeout=60)

    def address(self, service: str) -> str:
        container = self.compose("ps", "-q", service, timeout=60).strip()
        assert container, f"no {service} container:\n{self.logs(service)}"
        address = self.daemon.docker(
            "inspect", "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container)
        assert address, f"{service} has no address on the compose network"
        return address

    def wait(self, what: str, service: str, check: Callable[[], Any], timeout: float) -> Any:
        """Poll ``check`` until it returns something truthy; fail with the service's logs."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                last = check()
                if last:
                    return last
            except requests.RequestException as exc:
                last = exc
            time.sleep(2)
        raise AssertionError(f"{what}: not within {timeout:g} s (last: {last!r});\n"
                             f"docker-compose logs --tail 40 {service}:\n{self.logs(service)}")


def get(url: str, **params: str) -> Any:
    answer = requests.get(url, params=params, timeout=5)
    answer.raise_for_status()
    return answer.json()


def test_the_local_stack_scrapes_receives_the_edge_and_pages(dockerd: Dockerd) -> None:
    timings: list[tuple[str, float]] = []
    started = time.monotonic()
    build = subprocess.run([sys.executable, str(COMPOSE / "local_images.py")], env=dockerd.env(),
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, (f"compose/local_images.py failed ({build.returncode}):\n"
                                   f"{build.stdout[-4000:]}\n{build.stderr[-3000:]}")
    timings.append(("images", time.monotonic() - started))
    stack = Stack(dockerd)
    try:
        stack.compose("up", "-d", "--no-build")
        # the local set: the services that run without Docker Hub, demo-rules done
        running = set(dockerd.docker(
            "ps", "-a", "--filter", f"label=com.docker.compose.project={stack.project}",
            "--format", '{{.Label "com.docker.compose.service"}}').split())
        assert running == LOCAL_SET, f"services started: {sorted(running)}"
        timings.append(("up", time.monotonic() - started))
        prometheus = f"http://{stack.address('prometheus')}:9090"
        alertmanager = f"http://{stack.address('alertmanager')}:9093"

        def targets_up() -> dict[str, str] | None:
            active = get(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]
            health = {t["labels"]["job"]: t["health"] for t in active}
            return health if set(health) == TARGETS and set(health.values()) == {"up"} else None

        stack.wait("every scrape target up", "model-server", targets_up, 180)
        timings.append(("targets up", time.monotonic() - started))

        def edge_samples() -> list[Any]:
            query = f'count by (device) ({{device="{EDGE_DEVICE}"}})'
            result: list[Any] = get(f"{prometheus}/api/v1/query", query=query)["data"]["result"]
            return result

        stack.wait("the edge agent's remote-written samples in Prometheus", "edge-agent",
                   edge_samples, 90)
        timings.append(("edge samples", time.monotonic() - started))

        def paged() -> list[dict[str, Any]]:
            alerts = get(f"{alertmanager}/api/v2/alerts")
            return [a for a in alerts if all(a["labels"].get(k) == v for k, v in PAGE.items())]

        # The traffic's schedule bursts errors 20 s after the model server answers.
        alert = stack.wait(f"{PAGE['alertname']} in Alertmanager", "prometheus", paged, 150)[0]
        assert alert["status"]["state"] == "active"
        assert alert["labels"]["severity"] == "critical"
        timings.append(("paged", time.monotonic() - started))
    finally:
        stack.compose("down", "-v", "--timeout", "5", timeout=180, check=False)
    print("compose local stack, seconds since the start: "
          + ", ".join(f"{what} {at:.0f}" for what, at in timings))
