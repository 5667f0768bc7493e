"""Elastic Cloud end to end: a ``cloud_id`` and an API key, against the
Elasticsearch test server over TLS with security on (it checks
``Authorization: ApiKey`` and answers anything else 401, as Elasticsearch
does).

The Cloud ID decodes, as the official clients decode it, to
``https://<es_uuid>.<host>:<port>``: with host ``1`` and es_uuid ``127.0.0``
that is ``https://127.0.0.1:<port>``, the loopback server (no DNS here can
resolve a real deployment's name to it)."""

from __future__ import annotations

import base64
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelmon.config import ConfigError
from modelmon.exporters.logs import LogShipper
from modelmon.exporters.logs.config import check_sink, shipper_options
from support.es_servers import EsTestServer
from support.tls_certs import Pki, make_pki

KEY_ID, KEY = "VuaCfGcBCdbkQm-e5aOx", "ui2lp2axTNmsyakw9tvNnw"
ENCODED = base64.b64encode(f"{KEY_ID}:{KEY}".encode()).decode()
INDEX = "logs-modelmon-cloud"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def cloud(pki: Pki) -> Iterator[tuple[EsTestServer, str]]:
    """An Elasticsearch with TLS and API keys, and the Cloud ID that points to it."""
    server = EsTestServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    server._httpd.socket = context.wrap_socket(server._httpd.socket, server_side=True)
    server.api_keys = {KEY_ID: KEY}
    server.start()
    payload = f"1:{server.port}$127.0.0$kibana0"
    cloud_id = "fraud-logs:" + base64.b64encode(payload.encode()).decode()
    try:
        yield server, cloud_id
    finally:
        server.stop()


def _section(tmp_path: Path, cloud_id: str, pki: Pki, **auth: Any) -> dict[str, Any]:
    return {"sink": "elasticsearch", "spool_dir": str(tmp_path / "spool"),
            "backoff": {"initial": "20ms", "max": "100ms"},
            "elasticsearch": {"cloud_id": cloud_id, "ca_file": str(pki.ca), "index": INDEX,
                              **auth}}


def _ship(section: dict[str, Any], tmp_path: Path, n: int, timeout: float) -> tuple[bool, Any]:
    shipper = LogShipper(**shipper_options(section, tmp_path), registry=CollectorRegistry())
    try:
        for i in range(n):
            shipper.emit({"message": f"prediction {i}", "n": i})
        return shipper.flush(timeout), shipper.spool.stats()
    finally:
        shipper.close(timeout=0.5)


@pytest.mark.parametrize("auth", ["api_key_file", "id_and_key"])
def test_cloud_id_and_api_key_deliver(tmp_path, pki, cloud, auth) -> None:
    server, cloud_id = cloud
    (tmp_path / "es-api-key").write_text(ENCODED + "\n")
    given = {"api_key_file": {"api_key_file": str(tmp_path / "es-api-key")},
             "id_and_key": {"api_key": f"{KEY_ID}:{KEY}"}}[auth]
    flushed, stats = _ship(_section(tmp_path, cloud_id, pki, **given), tmp_path, 50, 20)
    assert flushed and stats.delivered == 50
    assert server.count(INDEX) == 50 and server.unauthenticated == 0


def test_a_wrong_key_is_refused_and_the_events_wait_for_the_right_one(
        tmp_path, pki, cloud, caplog) -> None:
    server, cloud_id = cloud
    caplog.set_level(logging.WARNING)
    wrong = base64.b64encode(f"{KEY_ID}:not-the-key".encode()).decode()
    flushed, stats = _ship(_section(tmp_path, cloud_id, pki, api_key=wrong), tmp_path, 30, 1.0)
    assert not flushed and stats.pending == 30 and stats.dead_lettered == 0
    assert server.unauthenticated > 0 and server.count(INDEX) == 0
    assert "401" in caplog.text and "credentials" in caplog.text
    assert wrong not in caplog.text
    # Fixed: the same spool ships what waited, once.
    flushed, stats = _ship(_section(tmp_path, cloud_id, pki, api_key=ENCODED), tmp_path, 0, 20)
    assert flushed and stats.pending == 0
    assert server.count(INDEX) == 30


def test_without_the_ca_the_cloud_endpoint_is_not_trusted(tmp_path, pki, cloud) -> None:
    server, cloud_id = cloud
    section = _section(tmp_path, cloud_id, pki, api_key=ENCODED)
    del section["elasticsearch"]["ca_file"]
    flushed, stats = _ship(section, tmp_path, 5, 1.0)
    assert not flushed and stats.pending == 5 and server.count(INDEX) == 0


@pytest.mark.parametrize("options,message", [
    ({"cloud_id": "fraud-logs:bm90LWEtY2xvdWQtaWQ="}, r"logs\.elasticsearch\.cloud_id: not an "
                                                      r"Elastic Cloud ID"),
    ({"cloud_id": "x:" + base64.b64encode(b"h$u$k").decode(), "url": "https://es:9200"},
     r"logs\.elasticsearch\.cloud_id: give cloud_id or url/hosts, not both"),
])
def test_bad_cloud_settings_name_the_field(tmp_path, options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        check_sink({"sink": "elasticsearch", "spool_dir": str(tmp_path),
                    "elasticsearch": options})
