"""Issue 12 finding 4, the log shipper on a full disk: a delivered batch whose
acknowledgement cannot be written is not sent again in a loop; the failure is
counted; close() does not raise; nothing acknowledged is lost.

The spool is on a real 4 MiB tmpfs that the test fills (``support.full_disk``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from modelmon.exporters.logs import LogShipper
from modelmon.exporters.logs.sinks import ItemBatch, SendResult
from support.full_disk import SmallDisk, small_disk


@pytest.fixture
def disk() -> Iterator[SmallDisk]:
    with small_disk("4m") as made:
        if isinstance(made, str):
            pytest.skip(made)
        yield made


class CountingSink:
    """Takes every event; counts documents received and the distinct ones."""

    name = "counting"
    max_in_flight = 1

    def __init__(self) -> None:
        self.documents = 0
        self.ids: set[str] = set()
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()

    def send(self, batch: ItemBatch) -> SendResult:
        self.gate.wait()
        with self.lock:
            for item in batch:
                self.documents += 1
                self.ids.add(item.id)
        return SendResult(delivered=[item.seq for item in batch])

    def close(self) -> None:
        pass


def test_shipper_on_a_full_disk_does_not_resend_and_closes_cleanly(
    disk: SmallDisk, caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    sink = CountingSink()
    sink.gate.clear()  # the first answer comes once the disk is full
    shipper = LogShipper(sink, spool_dir=disk.path / "spool", registry=registry,
                         backoff_initial=0.05, backoff_max=0.4, plugin_processors=False)
    caplog.set_level(logging.INFO)
    unique = 1000
    pause = threading.Event()
    try:
        for i in range(unique):
            assert shipper.emit({"message": f"event {i}"}) is not None
        assert shipper.spool.flush_buffer()
        disk.fill()
        sink.gate.set()

        def unrecorded() -> float:
            value = registry.get_sample_value("modelmon_log_bulk_requests_total",
                                              {"sink": "counting", "result": "unrecorded"})
            return value or 0.0

        for _ in range(400):
            if unrecorded() >= 4:
                break
            pause.wait(0.05)
        assert unrecorded() >= 4
        assert sink.documents <= 2 * unique, f"{sink.documents} documents for {unique} events"
        dropped = registry.get_sample_value("modelmon_log_events_dropped_total",
                                            {"sink": "counting", "reason": "disk_full"})
        assert dropped == 0.0  # exported from the start
        # What the disk cannot take is refused and counted, never acknowledged.
        refused = sum(shipper.emit({"message": f"no room {i}" + "x" * 200}) is None
                      for i in range(200))
        assert refused > 0
        assert registry.get_sample_value("modelmon_log_events_dropped_total",
                                         {"sink": "counting", "reason": "disk_full"}) == refused
        lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(lines) <= 5, [r.getMessage()[:120] for r in lines]
    finally:
        shipper.close(timeout=1)  # must not raise on the full disk
    assert sink.documents <= 2 * unique
    disk.free()
    again = CountingSink()
    with LogShipper(again, spool_dir=disk.path / "spool", registry=CollectorRegistry(),
                    plugin_processors=False) as reopened:
        assert reopened.flush(20)
        stats = reopened.spool.stats()
        assert stats.balanced and stats.dropped.get("corrupt", 0) == 0
    # Every event was delivered at least once, counting both runs.
    assert len(sink.ids | again.ids) >= unique
