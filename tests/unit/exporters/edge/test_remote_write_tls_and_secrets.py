"""remote_write with a client certificate (against a loopback TLS receiver that
requires one) and credentials from files, which never show in logs, the
agent's /metrics, ``modelmon edge status`` or the config's repr."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from modelmon.config import ConfigError
from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping
from modelmon.exporters.edge.status import render
from modelmon.exporters.service.monitor import ModelMonitor
from support.remote_write_receiver import Receiver, serve
from support.tls_certs import Pki, make_pki

T0 = float(int(time.time()) - 600)
SECRET = "s3cr3t-Zq81-do-not-log"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_receiver(pki: Pki) -> Iterator[tuple[Receiver, list[str]]]:
    rec, server, refused = serve(pki)
    yield rec, refused
    server.shutdown()
    server.server_close()


def _agent(tmp_path: Path, remote_write: dict[str, Any], registry: CollectorRegistry) -> EdgeAgent:
    config = edge_config_from_mapping({"edge": {
        "device_id": "press-7", "interval": "1s", "listen": None, "collectors": [],
        "spool": {"path": str(tmp_path / "state"), "max_age": "30d"},
        "remote_write": {"min_backoff": "0.01s", "max_backoff": "0.02s",
                         "backfill_rate_limit": None, **remote_write},
    }})
    return EdgeAgent(config, registry)


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    ModelMonitor("fraud", version="3", registry=registry).observe_inference(0.02)
    return registry


def test_with_the_client_certificate_samples_are_delivered(tmp_path, pki, tls_receiver) -> None:
    receiver, refused = tls_receiver
    agent = _agent(tmp_path, {"url": receiver.url, "tls": {
        "ca_file": str(pki.ca), "cert_file": str(pki.client_cert), "key_file": str(pki.client_key)}},
        _registry())
    try:
        spooled = agent.collect_once(now=T0)
        agent.spool.flush_buffer()
        assert agent.sender.step().state == "progress"
        assert agent.spool.stats().delivered_items == spooled
    finally:
        agent.stop()
    assert receiver.samples("modelmon_model_info") and refused == []


@pytest.mark.parametrize("client", ["none", "rogue"])
def test_without_a_valid_client_certificate_the_send_is_retried_and_data_kept(
    tmp_path, pki, tls_receiver, client
) -> None:
    receiver, refused = tls_receiver
    tls: dict[str, str] = {"ca_file": str(pki.ca)}
    if client == "rogue":
        tls |= {"cert_file": str(pki.rogue_cert), "key_file": str(pki.rogue_key)}
    registry = _registry()
    agent = _agent(tmp_path, {"url": receiver.url, "tls": tls}, registry)
    try:
        spooled = agent.collect_once(now=T0)
        agent.spool.flush_buffer()
        assert agent.sender.step().state == "retry"
        stats = agent.spool.stats()
        assert stats.pending_items == spooled and stats.dropped_items == {}
        assert registry.get_sample_value(
            "modelmon_edge_send_requests_total", {"device": "press-7", "outcome": "retry"}) == 1
    finally:
        agent.stop()
    assert receiver.requests == [] and refused


def test_a_key_file_without_its_certificate_is_refused_at_load(tmp_path, pki) -> None:
    with pytest.raises(ConfigError, match=r"remote_write\.tls\.cert_file"):
        _agent(tmp_path, {"url": "https://127.0.0.1:9/w", "tls": {"key_file": str(pki.client_key)}},
               CollectorRegistry())
    # An encrypted key would make OpenSSL ask for its passphrase on the terminal.
    with pytest.raises(ConfigError, match=r"remote_write\.tls\.cert_file: .*unencrypted"):
        _agent(tmp_path, {"url": "https://127.0.0.1:9/w", "tls": {
            "cert_file": str(pki.client_cert), "key_file": str(pki.encrypted_client_key)}},
            CollectorRegistry())
    with pytest.raises(ConfigError, match=r"remote_write\.tls\.key_file: .*does not exist"):
        _agent(tmp_path, {"url": "https://127.0.0.1:9/w", "tls": {
            "cert_file": str(pki.client_cert), "key_file": str(tmp_path / "nope.key")}},
            CollectorRegistry())


def _secret_configs(tmp_path: Path, url: str) -> dict[str, dict[str, Any]]:
    (tmp_path / "pw").write_text(SECRET + "\n")
    return {
        "password_file": {"url": url, "basic_auth": {"username": "edge",
                                                     "password_file": str(tmp_path / "pw")}},
        "password": {"url": url, "basic_auth": {"username": "edge", "password": SECRET}},
        "bearer_token": {"url": url, "bearer_token": SECRET},
        "credentials_file": {"url": url, "authorization": {"credentials_file": str(tmp_path / "pw")}},
        "credentials": {"url": url, "authorization": {"type": "Bearer", "credentials": SECRET}},
        "url_userinfo": {"url": url.replace("http://", f"http://edge:{SECRET}@")},
        "header": {"url": url, "headers": {"X-API-Key": SECRET}},
    }


@pytest.mark.parametrize("how", ["password_file", "password", "bearer_token", "credentials_file",
                                 "credentials", "url_userinfo", "header"])
def test_secrets_reach_the_receiver_and_nowhere_else(tmp_path, receiver, caplog, how) -> None:
    caplog.set_level(logging.DEBUG)
    remote_write = _secret_configs(tmp_path, receiver.url)[how]
    registry = _registry()
    receiver.answers.append((503, "down", {}))  # a failure is logged, with the URL
    agent = _agent(tmp_path, remote_write, registry)
    try:
        agent.collect_once(now=T0)
        agent.spool.flush_buffer()
        assert agent.sender.step().state == "retry"
        assert agent.sender.step().state == "progress"
        agent._write_status()
        status = render(agent.status())
        metrics = generate_latest(registry).decode()
        config_repr = repr(agent.config)
    finally:
        agent.stop()
    headers = receiver.requests[-1]["headers"]
    if how == "header":
        assert headers["X-API-Key"] == SECRET
    else:
        authorization = headers["Authorization"]
        assert SECRET in authorization or SECRET in __import__("base64").b64decode(
            authorization.split()[1]).decode()
        assert authorization.split()[0] in ("Basic", "Bearer")
    assert SECRET not in caplog.text
    assert SECRET not in status and SECRET not in (tmp_path / "state" / "status.json").read_text()
    assert SECRET not in metrics
    assert SECRET not in config_repr


def test_authorization_type_and_both_credentials_fields(tmp_path, receiver) -> None:
    with pytest.raises(ConfigError, match=r"remote_write\.authorization\.credentials_file"):
        _agent(tmp_path, {"url": receiver.url, "authorization": {
            "credentials": "a", "credentials_file": str(tmp_path)}}, CollectorRegistry())
    with pytest.raises(ConfigError, match=r"remote_write\.authorization"):
        _agent(tmp_path, {"url": receiver.url, "bearer_token": "a",
                          "authorization": {"credentials": "b"}}, CollectorRegistry())
    (tmp_path / "key").write_text("tok\n")
    agent = _agent(tmp_path, {"url": receiver.url, "authorization": {
        "type": "Token", "credentials_file": str(tmp_path / "key")}}, _registry())
    try:
        agent.collect_once(now=T0)
        agent.spool.flush_buffer()
        agent.sender.step()
    finally:
        agent.stop()
    assert receiver.requests[0]["headers"]["Authorization"] == "Token tok"


def test_the_logs_section_s_secrets_are_not_in_the_edge_config_repr(tmp_path) -> None:
    config = edge_config_from_mapping({
        "edge": {"device_id": "d", "spool": {"path": str(tmp_path)},
                 "remote_write": {"url": "http://127.0.0.1:9/api/v1/write"}},
        "logs": {"sink": "elasticsearch", "spool_dir": str(tmp_path / "logs"),
                 "elasticsearch": {"url": f"http://shipper:{SECRET}@127.0.0.1:9", "password": SECRET}},
    })
    assert SECRET not in repr(config)
    assert config.logs is not None and config.logs["elasticsearch"]["password"] == SECRET
