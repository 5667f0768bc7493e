"""Redaction is on by default and off only when the configuration says
``redact: {enabled: false}`` in so many words; then every start says, at
WARNING, that PII will be shipped unredacted."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelmon.config import ConfigError
from modelmon.exporters.logs import LogShipper
from modelmon.exporters.logs.config import shipper_options

PII = "refund for jane@example.com, card 4111 1111 1111 1111"
WARNING_TEXT = "will be shipped unredacted"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and WARNING_TEXT in r.getMessage()]


def test_default_redacts_and_says_nothing(file_shipper: Any,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    shipped = file_shipper()
    shipped.shipper.emit({"message": PII})
    [event] = shipped.events()
    assert event["message"] == "refund for [REDACTED:email], card [REDACTED:card]"
    assert _warnings(caplog) == []


def test_an_empty_redact_section_still_redacts(file_shipper: Any) -> None:
    shipped = file_shipper(processor_config={"redact": None})
    shipped.shipper.emit({"message": PII})
    assert "jane@example.com" not in shipped.events()[0]["message"]


def test_enabled_false_ships_pii_and_warns_at_start(file_shipper: Any,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    shipped = file_shipper(processor_config={"redact": {"enabled": False}})
    [warning] = _warnings(caplog)  # at start, before any event
    assert "logs.redact.enabled is false" in warning
    shipped.shipper.emit({"message": PII})
    [event] = shipped.events()
    assert event["message"] == PII


def test_enabled_false_from_the_config_file_section(tmp_path: Any,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    import json

    caplog.set_level(logging.WARNING)
    out = tmp_path / "events.jsonl"
    shipper = LogShipper.from_config(
        {"sink": "file", "spool_dir": str(tmp_path / "spool"), "file": {"path": str(out)},
         "redact": {"enabled": False}},
        registry=CollectorRegistry())
    try:
        assert len(_warnings(caplog)) == 1
        shipper.emit({"message": PII})
        assert shipper.flush(10)
        assert json.loads(out.read_text())["message"] == PII
    finally:
        shipper.close(timeout=1)


@pytest.mark.parametrize("redact,fragment", [
    (False, "logs.redact: expected a mapping"),   # 'redact: false' is not the switch
    ("off", "logs.redact: expected a mapping"),
    ({"enabled": "no"}, "logs.redact.enabled: expected true or false"),
    ({"enabled": 0}, "logs.redact.enabled: expected true or false"),
])
def test_anything_but_the_explicit_switch_refuses_to_start(tmp_path: Any, redact: Any,
                                                           fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        shipper_options({"sink": "file", "redact": redact})
    with pytest.raises(ValueError, match=fragment.replace(".", r"\.")):
        LogShipper("file", path=tmp_path / "out.jsonl", spool_dir=tmp_path / "spool",
                   registry=CollectorRegistry(), processor_config={"redact": redact})
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "spool").exists()
