"""``modelmon demo --es-url``: the model server's and the edge devices' pipeline
events go to Elasticsearch (a test server faithful to the bulk/create wire
contract, tests/support/es_servers.py) instead of the JSON-lines file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support.es_servers import EsTestServer

ANY_PORT = [arg for option in ("--app-port", "--exporter-port", "--prometheus-port",
                               "--alertmanager-port", "--webhook-port", "--bundle-port",
                               "--edge-proxy-port", "--edge-listen-port") for arg in (option, "0")]

pytestmark = [pytest.mark.integration, pytest.mark.long]


def test_es_url_ships_the_cloud_and_edge_events(tmp_path: Path) -> None:
    es = EsTestServer().start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "modelmon", "demo", "--duration", "30", "--no-report",
             "--es-url", es.url, "--workdir", str(tmp_path), *ANY_PORT],
            capture_output=True, text=True, timeout=420,
        )
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert f"Elasticsearch {es.url}" in proc.stdout  # the view says where events go
        with es.lock:
            indices = list(es.indices)
        services: dict[str, set[str]] = {}
        for index in indices:
            for doc in es.docs(index).values():
                services.setdefault(doc["service"]["name"], set()).add(doc["event"]["action"])
        assert {"model-loaded", "prediction"} <= services.get("fraud-detector", set()), services
        # the devices' agents ship their link events there too (the link to the
        # receiver comes up once Prometheus starts)
        assert any(name.startswith("modelmon-edge-edge-") for name in services), services
        assert not list((tmp_path / "logs").glob("*.jsonl"))  # nothing went to the file sink
    finally:
        es.stop()
