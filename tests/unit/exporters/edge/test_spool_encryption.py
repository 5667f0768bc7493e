"""The edge spool encrypted at rest (``edge.spool.encryption``): no sample's
labels rest in clear in the state directory, the receiver gets them in clear,
and a wrong or missing key stops the agent at start naming the field."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge

from modelmon.config import ConfigError
from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping

pytest.importorskip("cryptography")

KEY_A = "c3" * 32
KEY_B = "d4" * 32
MARKER = "plaintext-marker-edge-5e1"


def config(tmp_path: Path, url: str, **encryption: Any) -> Any:
    return edge_config_from_mapping({"edge": {
        "device_id": "press-7", "interval": "1s", "listen": None, "collectors": [],
        "spool": {"path": str(tmp_path / "state"), "max_age": "30d", "encryption": encryption},
        "remote_write": {"url": url, "min_backoff": "0.01s", "max_backoff": "0.02s",
                         "backfill_rate_limit": None},
    }}, tmp_path)


def every_byte(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def marked_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("line_speed", "metres a minute", ["station"], registry=registry).labels(MARKER).set(3)
    return registry


def test_samples_are_sealed_on_disk_and_sent_in_clear(tmp_path: Path, receiver,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_SPOOL_KEY", KEY_A)
    agent = EdgeAgent(config(tmp_path, receiver.url, key_env="EDGE_SPOOL_KEY"),
                      marked_registry())
    now = float(int(time.time()))
    for i in range(5):
        agent.collect_once(now=now + i)
    agent.spool.flush_buffer()
    assert MARKER.encode() not in every_byte(tmp_path / "state" / "spool")
    for _ in range(20):
        if agent.sender.step().state == "idle":
            break
    agent.stop()
    assert MARKER.encode() not in every_byte(tmp_path / "state")
    sent = [dict(labels).get("station") for labels, _, _ in receiver.accepted]
    assert sent.count(MARKER) == 5


def test_a_key_that_opens_nothing_pending_stops_the_agent_at_start(tmp_path: Path, receiver,
                                                                  monkeypatch) -> None:
    (tmp_path / "a.key").write_text(KEY_A)
    (tmp_path / "b.key").write_text(KEY_B)
    receiver.answers = [(503, "down", {})] * 100
    agent = EdgeAgent(config(tmp_path, receiver.url, key_file="a.key"), marked_registry())
    agent.collect_once()
    agent.stop()
    with pytest.raises(ConfigError, match=r"^edge\.spool\.encryption: .*previous_keys"):
        EdgeAgent(config(tmp_path, receiver.url, key_file="b.key"), marked_registry())
    with pytest.raises(ConfigError, match=r"^edge\.spool\.encryption: .*no encryption key"):
        EdgeAgent(edge_config_from_mapping({"edge": {
            "device_id": "press-7", "listen": None, "collectors": [],
            "spool": {"path": str(tmp_path / "state")}, "remote_write": {"url": receiver.url},
        }}), marked_registry())
    agent = EdgeAgent(config(tmp_path, receiver.url, key_file="b.key",
                             previous_keys=[{"key_file": "a.key"}]), marked_registry())
    try:
        assert agent.spool.stats().pending == 1
    finally:
        agent.stop()


def test_a_missing_key_file_names_the_field(tmp_path: Path, receiver) -> None:
    with pytest.raises(ConfigError, match=r"^edge\.spool\.encryption\.key_file: cannot read"):
        EdgeAgent(config(tmp_path, receiver.url, key_file="missing.key"), marked_registry())


def test_reading_the_config_reads_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`modelmon edge status` loads the config on a shell without the agent's key."""
    monkeypatch.delenv("EDGE_SPOOL_KEY", raising=False)
    loaded = config(tmp_path, "http://127.0.0.1:9/api/v1/write", key_env="EDGE_SPOOL_KEY")
    assert loaded.spool.encryption == {"key_env": "EDGE_SPOOL_KEY", "previous_keys": []}
