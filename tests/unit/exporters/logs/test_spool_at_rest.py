"""What a log spool leaves on disk: with the default redaction, no unredacted
PII in any file of the spool (database, WAL, journal...), and nothing that
another user of the machine can read."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from modelmon.exporters.logs import LogShipper
from modelmon.exporters.logs.sinks import Item, SendResult

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"


class Unreachable:
    """A destination that is never there: everything stays spooled."""

    name = "unreachable"

    def send(self, items: Sequence[Item]) -> SendResult:
        return SendResult.all_retry(items, "error")

    def close(self) -> None:
        pass


@pytest.fixture
def umask_022() -> Iterator[None]:
    # The usual umask: files a library creates without a mode come out 0644.
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _every_byte(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def _log(shipper: LogShipper, message: str, *args: object) -> None:
    logger = logging.getLogger(f"modelmon.test.at_rest.{id(shipper)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = shipper.handler()
    logger.addHandler(handler)
    try:
        logger.info(message, *args)
    finally:
        logger.removeHandler(handler)


def test_with_the_default_redaction_no_unredacted_pii_reaches_the_spool(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    shipper = LogShipper(sink=Unreachable(), spool_dir=spool_dir, registry=CollectorRegistry(),
                         backoff_initial=30.0)  # the default processors: the redactor
    seen: list[bytes] = []
    try:
        _log(shipper, "refund for %s on card %s", EMAIL, CARD)
        _log(shipper, f"plain message: {EMAIL} paid with {CARD.replace(' ', '')}")
        shipper.emit({"message": f"emit(): {EMAIL}", "user": {"email": EMAIL}})
        seen.append(_every_byte(spool_dir))  # the journal in front of the store
        assert shipper.spool.flush_buffer(10)
        seen.append(_every_byte(spool_dir))  # the store (spool.db, its WAL)
        assert shipper.spool.stats().pending == 3
    finally:
        shipper.close(timeout=0)
    seen.append(_every_byte(spool_dir))  # what the next start finds
    for data in seen:
        for pii in (EMAIL, CARD, CARD.replace(" ", "")):
            assert pii.encode() not in data
    assert b"[REDACTED:email]" in seen[-1] and b"[REDACTED:card]" in seen[-1]


def test_spool_directories_are_owner_only(tmp_path: Path, umask_022: None) -> None:
    spool_dir = tmp_path / "spool"
    shipper = LogShipper(sink=Unreachable(), spool_dir=spool_dir, registry=CollectorRegistry(),
                         backoff_initial=30.0)
    try:
        _log(shipper, "an event for the spool")
        assert shipper.spool.flush_buffer(10)
        dirs = [spool_dir, *(p for p in spool_dir.rglob("*") if p.is_dir())]
    finally:
        shipper.close(timeout=0)
    modes = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in dirs}
    assert modes == dict.fromkeys(modes, "0o700")


def test_spool_files_are_owner_only(tmp_path: Path, umask_022: None) -> None:
    spool_dir = tmp_path / "spool"
    shipper = LogShipper(sink=Unreachable(), spool_dir=spool_dir, registry=CollectorRegistry(),
                         backoff_initial=30.0)
    modes: dict[str, str] = {}
    try:
        _log(shipper, "an event for the spool")
        assert shipper.spool.flush_buffer(10)
        # While the spool is open: the WAL and shared-memory files exist now.
        for p in spool_dir.rglob("*"):
            if p.is_file():
                modes[str(p.relative_to(spool_dir))] = oct(stat.S_IMODE(p.stat().st_mode))
    finally:
        shipper.close(timeout=0)
    assert any(name.endswith("spool.db") for name in modes)
    assert modes == dict.fromkeys(modes, "0o600")
