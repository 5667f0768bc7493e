"""Configuration bundles end to end: `modelmon edge run` pulls signed bundles from a
real HTTP server on loopback, runs their rules, refuses a tampered one and keeps
its last known good across a restart without the server; a bundle imported by
hand with `modelmon edge bundle import`; and what runs where reaches the cloud
Prometheus through remote_write."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from modelmon.exporters.edge.bundles import build_bundle, bundle_app
from modelmon.exporters.edge.bundles.format import MANIFEST, _tar
from modelmon.exporters.edge.bundles.signing import generate_keypair, load_private_key
from modelmon.exporters.edge.http_server import serve
from modelmon.exporters.edge.status import read_status
from support.edge_harness import Agent, Receiver

pytestmark = pytest.mark.integration

RULES = """
groups:
  - name: fleet
    rules:
      - record: device:backlog_samples:max
        expr: max(modelmon_edge_backlog_samples)
"""


def _source(root: Path, version: str, model_version: str) -> Path:
    src = root / f"src-{version}"
    (src / "rules").mkdir(parents=True)
    (src / "rules" / "fleet.yml").write_text(RULES)
    (src / "bundle.yml").write_text(
        f"version: '{version}'\nrules: [rules/*.yml]\nmodels: {{fraud: '{model_version}'}}\n")
    return src


def _tampered(data: bytes) -> bytes:
    """The bundle with its manifest changed after signing (a model pin swapped)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        parts = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    manifest = json.loads(parts[MANIFEST])
    manifest["models"]["fraud"] = "6.6.6"
    return _tar({**parts, MANIFEST: json.dumps(manifest).encode()})


@pytest.fixture
def published(tmp_path: Path) -> Iterator[tuple[Path, Any]]:
    directory = tmp_path / "published"
    directory.mkdir()
    httpd = serve("127.0.0.1", 0, bundle_app(directory))
    yield directory, httpd
    httpd.shutdown()
    httpd.server_close()


def _bundle_status(agent: Agent) -> dict[str, Any]:
    return (read_status(agent.state_dir / "status.json") or {}).get("bundle") or {}


def _wait(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout}s")
        time.sleep(0.1)


def test_pull_refuse_restart_and_import(tmp_path: Path, receiver: Receiver, agent: Agent,
                                        published: tuple[Path, Any]) -> None:
    directory, httpd = published
    generate_keypair(tmp_path / "fleet.key", tmp_path / "fleet.pub")
    key = load_private_key(tmp_path / "fleet.key")
    v1 = build_bundle(_source(tmp_path, "1", "3.2.0"), key=key)
    (directory / "site.tar.gz").write_bytes(v1)
    agent.extra = {"bundle": {"url": f"http://127.0.0.1:{httpd.server_port}/site.tar.gz",
                              "public_key": str(tmp_path / "fleet.pub"),
                              "poll_interval": "0.3s"}}
    agent.start()
    prom, device = receiver.prom, agent.device
    assert prom is not None

    # Down: the bundle applied; its rules run on the device. Up: what runs where.
    prom.wait_for(f'modelmon_edge_config_info{{device="{device}",version="1"}}')
    prom.wait_for(f'device:backlog_samples:max{{device="{device}"}}')
    prom.wait_for(f'modelmon_edge_model_desired_info{{device="{device}",model="fraud",'
                  'version="3.2.0"}')
    prom.wait_for(f'modelmon_edge_bundle_last_success_timestamp_seconds{{device="{device}"}}')

    # A tampered bundle is refused; the first one keeps running.
    (directory / "site.tar.gz").write_bytes(_tampered(
        build_bundle(_source(tmp_path, "2", "4.0.0"), key=key)))
    _wait(lambda: (_bundle_status(agent).get("last_refusal") or {}).get("reason") == "signature",
          "no refusal")
    assert _bundle_status(agent)["version"] == "1"
    prom.wait_for(f'modelmon_edge_bundles_refused_total{{device="{device}",reason="signature"}}'
                  " == 1")
    prom.wait_for(f'modelmon_edge_bundle_pulls_total{{device="{device}",outcome="refused"}} > 0')
    assert prom.query(f'modelmon_edge_config_info{{device="{device}",version="2"}}') == []

    # Restart with the bundle server gone: the last known good comes back from disk.
    agent.stop()
    httpd.shutdown()
    httpd.server_close()  # connections refused from now on
    agent.start()
    assert _bundle_status(agent)["version"] == "1"
    query = f"http://127.0.0.1:{agent.listen_port}/api/v1/query"
    started = time.time()

    def recorded_since_restart() -> bool:
        body = requests.get(query, params={"query": "device:backlog_samples:max"},
                            timeout=5).json()
        return any(float(s["value"][0]) > started for s in body["data"]["result"])

    _wait(recorded_since_restart, "the bundle's rule did not run after the restart")

    # No link to the bundle URL: a bundle imported by hand, checked with the device's key.
    v3 = tmp_path / "v3.tar.gz"
    v3.write_bytes(build_bundle(_source(tmp_path, "3", "3.3.0"), key=key))
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(_tampered(v3.read_bytes()))
    cli = [sys.executable, "-m", "modelmon", "edge", "bundle", "import", "--config",
           str(agent.config_path)]
    refused = subprocess.run([*cli, str(bad)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "signature" in refused.stderr, refused.stderr
    applied = subprocess.run([*cli, str(v3)], capture_output=True, text=True, timeout=60)
    assert applied.returncode == 0 and "applied" in applied.stdout, applied.stderr
    assert _bundle_status(agent)["version"] == "3"
    prom.wait_for(f'modelmon_edge_model_desired_info{{device="{device}",model="fraud",'
                  'version="3.3.0"}')
    # The replaced bundle's series end with a staleness marker: the rollout view counts
    # the device once, under its new version.
    prom.wait_for(f'absent(modelmon_edge_config_info{{device="{device}",version="1"}})')
    assert prom.query(f'count(modelmon_edge_config_info{{device="{device}"}})')[0][
        "value"][1] == "1"
