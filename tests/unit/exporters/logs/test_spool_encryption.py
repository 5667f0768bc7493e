"""The log spool encrypted at rest, configured from the ``logs:`` section:
no event's plaintext in any file of the spool directory, events delivered in
clear to the sink, a missing or wrong key stops the shipper at start naming
``logs.spool.encryption``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from modelmon.config import ConfigError
from modelmon.exporters.logs import LogShipper
from modelmon.exporters.logs.config import check_sink
from modelmon.spool import Spool
from modelmon.spool.crypto import SpoolCipher

pytest.importorskip("cryptography")

KEY_A = "a1" * 32
KEY_B = "b2" * 32
MARKER = "PLAINTEXT-MARKER-logs-91c"


def section(tmp_path: Path, **encryption: object) -> dict[str, object]:
    return {"sink": "file", "spool_dir": str(tmp_path / "spool"),
            "file": {"path": str(tmp_path / "out" / "events.jsonl")},
            "spool": {"encryption": encryption}}


def every_byte(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def test_events_are_sealed_on_disk_and_delivered_in_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOG_SPOOL_KEY", KEY_A)
    config = section(tmp_path, key_env="LOG_SPOOL_KEY")
    check_sink(config)  # the pre-fork check of modelmon serve reads the keys too
    shipper = LogShipper.from_config(config, registry=CollectorRegistry())
    try:
        for i in range(50):
            shipper.emit({"message": f"{MARKER} {i}"})
        assert shipper.spool.flush_buffer()
        assert MARKER.encode() not in every_byte(tmp_path / "spool")
        assert shipper.flush(10)
    finally:
        shipper.close()
    assert MARKER.encode() not in every_byte(tmp_path / "spool")
    lines = (tmp_path / "out" / "events.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["message"] for line in lines) == sorted(
        f"{MARKER} {i}" for i in range(50))


def test_a_backlog_under_a_key_that_is_not_configured_stops_the_shipper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "a.key").write_text(KEY_A)
    (tmp_path / "b.key").write_text(KEY_B)
    # A backlog an earlier process left, sealed under key A.
    with Spool(tmp_path / "spool" / "slot-0", max_bytes=1 << 20, max_age=None,
               cipher=SpoolCipher([bytes.fromhex(KEY_A)])) as spool:
        spool.append(json.dumps({"message": "waits in the spool"}).encode())
    rotated_badly = section(tmp_path, key_file=str(tmp_path / "b.key"))
    for attempt in (lambda: check_sink(rotated_badly),
                    lambda: LogShipper.from_config(rotated_badly, registry=CollectorRegistry())):
        with pytest.raises(ConfigError, match=r"^logs\.spool\.encryption: .*previous_keys"):
            attempt()
    rotated = section(tmp_path, key_file=str(tmp_path / "b.key"),
                      previous_keys=[{"key_file": str(tmp_path / "a.key")}])
    check_sink(rotated)
    with LogShipper.from_config(rotated, registry=CollectorRegistry()) as shipper:
        assert shipper.flush(10)
    lines = (tmp_path / "out" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["waits in the spool"]


def test_a_missing_key_variable_names_the_field(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_SPOOL_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"^logs\.spool\.encryption\.key_env: .*LOG_SPOOL_KEY"):
        LogShipper.from_config(section(tmp_path, key_env="LOG_SPOOL_KEY"),
                               registry=CollectorRegistry())


def test_dead_letter_commands_open_an_encrypted_spool_with_the_configured_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import yaml

    from modelmon.cli import main

    monkeypatch.setenv("LOG_SPOOL_KEY", KEY_A)
    with Spool(tmp_path / "spool" / "slot-0", max_bytes=1 << 20, max_age=None,
               cipher=SpoolCipher([bytes.fromhex(KEY_A)])) as spool:
        spool.append(json.dumps({"message": MARKER}).encode())
        assert spool.flush_buffer()
        spool.dead_letter([r.seq for r in spool.peek(10)], "mapping")
    config = tmp_path / "modelmon.yaml"
    config.write_text(yaml.safe_dump({"logs": section(tmp_path, key_env="LOG_SPOOL_KEY")}))
    assert main(["logs", "dead-letter", "list", "--config", str(config), "--json"]) == 0
    assert MARKER in capsys.readouterr().out  # opened for the reader
    assert main(["logs", "dead-letter", "replay", "--config", str(config)]) == 0
    capsys.readouterr()
    # Without the keys: one line naming the field, not a traceback.
    no_keys = tmp_path / "no-keys.yaml"
    no_keys.write_text(yaml.safe_dump({"logs": {"spool_dir": str(tmp_path / "spool")}}))
    assert main(["logs", "dead-letter", "replay", "--config", str(no_keys)]) == 2
    assert "logs.spool.encryption:" in capsys.readouterr().err
