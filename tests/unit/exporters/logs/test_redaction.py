"""PII redaction: what is removed, what is kept, field-level drop and hash."""

from __future__ import annotations

from typing import Any

import pytest

from modelmon.exporters.logs.redaction import Redactor


@pytest.mark.parametrize("text,expected", [
    ("mail jane.doe+ml@example.co.uk now", "mail [REDACTED:email] now"),
    ("card 4111 1111 1111 1111 ok", "card [REDACTED:card] ok"),
    ("card 5500-0000-0000-0004", "card [REDACTED:card]"),
    ("call +1 415-555-0100 today", "call [REDACTED:phone] today"),
    ("tel (030) 1234 5678", "tel [REDACTED:phone]"),
    ("06 12 34 56 78", "[REDACTED:phone]"),
])
def test_common_pii_is_redacted(text: str, expected: str) -> None:
    assert Redactor().redact_text(text) == expected


@pytest.mark.parametrize("text", [
    "latency 12.5 ms for batch 64",
    "order 4111111111111112 shipped",  # fails the Luhn check: not a card
    "version 3.1.0 loaded at 2024-05-01T10:00:00Z",
    "client 10.0.0.7",  # IP addresses are kept unless asked for
])
def test_ordinary_text_is_kept(text: str) -> None:
    assert Redactor().redact_text(text) == text


def test_ip_addresses_on_request() -> None:
    r = Redactor(ip_addresses=True)
    assert r.redact_text("from 10.0.0.7 and fe80::1:2:3:4") == (
        "from [REDACTED:ip] and [REDACTED:ip]")
    assert r.redact_text("at 10:00:00 in std::vector") == "at 10:00:00 in std::vector"


def test_nested_fields_dropped_hashed_and_scrubbed() -> None:
    r = Redactor(drop_fields=["user.password"], hash_fields=["user.id"], hash_salt="s")
    event: dict[str, Any] = {
        "message": "reset for bob@example.com",
        "user": {"id": "u-123", "password": "hunter2", "email": "bob@example.com"},
        "labels": ["ok", "4111-1111-1111-1111"],
        "host": {"hostname": "a@b.cc"},  # modelmon's own fields are left alone
    }
    out = r(event)
    assert out["message"] == "reset for [REDACTED:email]"
    assert "password" not in out["user"]
    assert out["user"]["id"].startswith("sha256:") and out["user"]["id"] == r(
        {"user": {"id": "u-123"}})["user"]["id"]  # stable, so joins still work
    assert out["user"]["email"] == "[REDACTED:email]"
    assert out["labels"] == ["ok", "[REDACTED:card]"]
    assert out["host"]["hostname"] == "a@b.cc"


def test_the_built_in_plugin_redacts_shipped_events_per_config(file_shipper: Any) -> None:
    shipped = file_shipper(processor_config={"redact": {"ip_addresses": True}})
    shipped.shipper.emit({"message": "from 10.1.2.3 by x@y.org"})
    [event] = shipped.events()
    assert event["message"] == "from [REDACTED:ip] by [REDACTED:email]"


def test_unknown_redact_option_names_the_field() -> None:
    with pytest.raises(ValueError, match="logs.redact: unknown key"):
        Redactor.from_config({"emails": True, "ssn": True})


def test_field_rules_never_change_what_events_share() -> None:
    # The shipper's base fields (host, service) are shared by every event: hashing
    # host.name in one event must not hash it again in the next.
    shared_host = {"name": "gpu-node-7", "ip": ["10.0.0.7"]}
    redactor = Redactor(hash_fields=["host.name"], drop_fields=["host.ip"])
    first = redactor({"host": shared_host, "message": "a"})
    second = redactor({"host": shared_host, "message": "b"})
    assert shared_host == {"name": "gpu-node-7", "ip": ["10.0.0.7"]}
    assert first["host"] == second["host"]
    assert first["host"]["name"].startswith("sha256:") and "ip" not in first["host"]
