"""The delivery worker's ``linger``: a short batch waits (from when the worker
first saw it) for more records, a full one goes at once, and ``flush`` and
``stop`` end the wait (what lets the s3 archive write fewer, larger objects)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmon.spool import Spool
from modelmon.spool.delivery import DeliverySettings, DeliveryWorker
from modelmon.spool.destination import Batch, SendResult


class RecordingDestination:
    name = "recording"

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def send(self, batch: Batch) -> SendResult:
        self.calls.append(batch.seqs())
        return SendResult(delivered=batch.seqs())


def fill(spool: Spool, n: int) -> None:
    spool.append_many([b"record" for _ in range(n)], items=[1] * n)
    spool.flush_buffer()


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path, max_bytes=1 << 26, max_age=None) as s:
        yield s


def _worker(spool: Spool, linger: float) -> tuple[DeliveryWorker, RecordingDestination]:
    destination = RecordingDestination()
    worker = DeliveryWorker(spool, destination, DeliverySettings(
        batch_records=10, backoff_base=0.01, backoff_cap=0.02, linger=linger))
    worker.start()
    return worker, destination


def _wait_calls(destination: RecordingDestination, n: int, timeout: float) -> float:
    started = time.monotonic()
    while len(destination.calls) < n and time.monotonic() - started < timeout:
        time.sleep(0.01)
    return time.monotonic() - started


def test_a_short_batch_waits_for_the_linger_then_goes_whole(spool) -> None:
    worker, destination = _worker(spool, linger=0.6)
    try:
        started = time.monotonic()
        fill(spool, 3)
        time.sleep(0.2)
        fill(spool, 4)  # joins the lingering batch
        _wait_calls(destination, 1, 5)
        waited = time.monotonic() - started
    finally:
        worker.stop(2)
    assert destination.calls == [[1, 2, 3, 4, 5, 6, 7]]
    assert 0.6 <= waited < 2.0


def test_a_full_batch_goes_at_once(spool) -> None:
    worker, destination = _worker(spool, linger=30)
    try:
        fill(spool, 25)
        assert _wait_calls(destination, 2, 5) < 2
        assert destination.calls[:2] == [list(range(1, 11)), list(range(11, 21))]
        time.sleep(0.3)
        assert len(destination.calls) == 2  # the last 5 linger
    finally:
        worker.stop(2)


def test_flush_and_stop_end_the_wait(spool) -> None:
    worker, destination = _worker(spool, linger=30)
    try:
        fill(spool, 3)
        started = time.monotonic()
        assert worker.flush(5)
        assert time.monotonic() - started < 2 and destination.calls == [[1, 2, 3]]
        fill(spool, 2)
        time.sleep(0.2)
    finally:
        started = time.monotonic()
        worker.stop(5)
    assert time.monotonic() - started < 1 and not worker.is_alive()
    assert len(destination.calls) == 1  # the lingering 2 stay pending, as after any stop
    assert spool.stats().pending == 2


def test_linger_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="linger: expected a duration >= 0"):
        DeliverySettings(linger=-1)
