"""Promise 3, full disk: a spool on a real filesystem that fills up backs off,
counts the failure, never multiplies the load on its destination, and closes
without raising; when space comes back, nothing acknowledged is lost.

The filesystem is a 4 MiB tmpfs (``support.full_disk``), filled for real.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from modelmon.spool import Spool
from modelmon.spool.delivery import DeliverySettings, DeliveryWorker
from modelmon.spool.destination import Batch, SendResult
from support.full_disk import SmallDisk, small_disk


@pytest.fixture
def disk() -> Iterator[SmallDisk]:
    with small_disk("4m") as made:
        if isinstance(made, str):
            pytest.skip(made)
        yield made


class Counting:
    """A destination that takes everything and counts what it was sent."""

    name = "counting"

    def __init__(self) -> None:
        self.sent = 0
        self.seen: set[int] = set()
        self.lock = threading.Lock()

    def send(self, batch: Batch) -> SendResult:
        with self.lock:
            self.sent += len(batch)
            self.seen.update(batch.seqs())
        return SendResult(delivered=batch.seqs())


class RecordingStop(threading.Event):
    """The worker's stop event; remembers every pause the worker took."""

    def __init__(self) -> None:
        super().__init__()
        self.pauses: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None and timeout > 0:
            self.pauses.append(timeout)
        return super().wait(timeout)


def fill_spool(spool: Spool, n: int) -> None:
    for i in range(n):
        assert spool.append(b'{"n": %d, "pad": "%s"}' % (i, b"x" * 100)) is not None
    assert spool.flush_buffer()


def test_full_disk_backs_off_and_never_resends_what_was_delivered(
    disk: SmallDisk, caplog: pytest.LogCaptureFixture,
) -> None:
    unique = 1000
    spool = Spool(disk.path / "spool", max_bytes=1 << 30, max_age=None)
    fill_spool(spool, unique)
    disk.fill()
    destination = Counting()
    stop = RecordingStop()
    worker = DeliveryWorker(spool, destination,
                            DeliverySettings(backoff_base=0.05, backoff_cap=0.4), stop=stop)
    caplog.set_level(logging.INFO)
    worker.start()
    # Until the worker has tried (and failed) to record the answer several times.
    while worker.unrecorded < 4:
        assert worker.is_alive()
        threading.Event().wait(0.05)
    assert destination.sent <= 2 * unique, "a full disk multiplied the load on the destination"
    assert destination.seen == set(range(1, unique + 1))
    stats = spool.stats()
    assert stats.storage_errors.get("settle", 0) >= 4
    assert stats.degraded is not None and "disk full" in stats.degraded
    # The pauses between tries grow (equal jitter: each at least half its bound).
    backoffs = stop.pauses[:3]
    assert len(backoffs) == 3 and backoffs[2] > backoffs[0]
    # A few lines about it, not one per try.
    spool_lines = [r for r in caplog.records if r.name.startswith("modelmon.spool")]
    assert len(spool_lines) <= 5, [r.getMessage() for r in spool_lines]

    disk.free()
    assert worker.flush(20)
    worker.stop(5)
    stats = spool.stats()
    assert stats.delivered == unique and stats.pending == 0 and stats.balanced
    assert stats.degraded is None
    assert destination.sent <= 2 * unique
    spool.close()


def test_close_on_a_full_disk_does_not_raise_and_loses_nothing(disk: SmallDisk) -> None:
    path = disk.path / "spool"
    spool = Spool(path, max_bytes=1 << 30, max_age=None)
    fill_spool(spool, 200)
    disk.fill()
    # Appends the disk cannot take are refused and counted, never acknowledged.
    refused = [spool.append(b"x" * 200) for _ in range(20_000)]
    acknowledged = sum(seq is not None for seq in refused)
    stats = spool.stats()
    assert stats.dropped.get("disk_full", 0) == 20_000 - acknowledged > 0
    assert stats.storage_errors.get("append", 0) > 0
    spool.close()  # must not raise
    disk.free()
    with Spool(path, max_bytes=1 << 30, max_age=None) as reopened:
        stats = reopened.stats()
        assert stats.balanced
        assert stats.pending == 200 + acknowledged
        assert stats.dropped.get("corrupt", 0) == 0


_CHILD = """
import os, sys
from modelmon.spool import Spool
spool = Spool(sys.argv[1], max_bytes=1 << 30, max_age=None)
for i in range(2000):
    spool.append(b"x" * 300)
os._exit(0)  # killed: the journal is left for the next start to replay
"""


def test_a_spool_opens_on_a_full_disk_degraded_not_a_crash_loop(disk: SmallDisk) -> None:
    import subprocess
    import sys

    path = disk.path / "spool"
    subprocess.run([sys.executable, "-c", _CHILD, str(path)], check=True, timeout=60)
    disk.fill()
    spool = Spool(path, max_bytes=1 << 30, max_age=None)  # must not raise
    stats = spool.stats()
    assert stats.pending == 2000 and stats.balanced
    assert stats.degraded is not None and "disk full" in stats.degraded
    disk.free()  # the writer moves the replayed records into SQLite, by itself
    assert spool.flush_buffer(30)
    assert len(spool.peek(10_000)) == 2000
    assert spool.stats().degraded is None
    spool.close()
    assert [p.name for p in path.glob("journal-*")] == []
    with Spool(path, max_bytes=1 << 30, max_age=None) as reopened:
        assert reopened.flush_buffer()
        stats = reopened.stats()
        assert stats.pending == 2000 and stats.balanced and stats.dropped_total == 0
        assert len(reopened.peek(10_000)) == 2000
        assert stats.degraded is None
