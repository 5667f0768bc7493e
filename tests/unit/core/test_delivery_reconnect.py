"""The reconnect hold (``modelmon.spool.reconnect``) and the delivery worker
with it, on a fixed clock and seed, against a real spool: after an outage
the backlog waits a uniform random part of ``reconnect_jitter``, live
records keep flowing when read newest first, nothing is sent out of order
when read oldest first, a short blip is not held, ``flush`` ends the hold."""

from __future__ import annotations

import random
import statistics
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmon.spool import Spool
from modelmon.spool.delivery import DeliverySettings, DeliveryWorker
from modelmon.spool.destination import Batch, SendResult
from modelmon.spool.reconnect import ReconnectHold

WALL0 = 1_750_000_000.0
JITTER = 30.0


class Clock:
    """A clock the test moves by hand (monotonic and wall at once)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Link:
    """A destination that is down (every batch: retry) until ``up`` is set;
    records every batch it is sent."""

    name = "link"

    def __init__(self) -> None:
        self.up = False
        self.calls: list[list[int]] = []
        self.lock = threading.Lock()

    def send(self, batch: Batch) -> SendResult:
        seqs = batch.seqs()
        with self.lock:
            self.calls.append(seqs)
        return SendResult(delivered=seqs) if self.up else SendResult(retry=seqs, result="down")


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path, max_bytes=1 << 26, max_age=None) as s:
        yield s


def append(spool: Spool, n: int, created: float) -> list[int]:
    seqs = spool.append_many([b"sample-%d" % i for i in range(n)], created=created)
    spool.flush_buffer()
    return [s for s in seqs if s is not None]


def worker_on(spool: Spool, clock: Clock, *, newest_first: bool, seed: int = 7
              ) -> tuple[DeliveryWorker, Link, ReconnectHold]:
    link = Link()
    hold = ReconnectHold(JITTER, clock=clock, wall=clock, rng=random.Random(seed))
    settings = DeliverySettings(batch_records=10, backoff_base=0.0, backoff_cap=0.0,
                                newest_first=newest_first, reconnect_jitter=JITTER)
    return DeliveryWorker(spool, link, settings, reconnect=hold), link, hold


def expected_hold(seed: int = 7) -> float:
    return random.Random(seed).uniform(0.0, JITTER)


# -- the hold on its own -------------------------------------------------------------


def test_a_backlog_older_than_the_jitter_is_held_for_a_uniform_draw() -> None:
    clock = Clock(WALL0)
    hold = ReconnectHold(JITTER, clock=clock, wall=clock, rng=random.Random(7))
    hold.failed()
    started = hold.succeeded(lambda: WALL0 - 1800, newest_seq=42)
    assert started == pytest.approx(expected_hold()) and 0 < started <= JITTER
    assert hold.edge_seq == 42 and hold.holds == 1
    clock.now += started / 2
    assert hold.left() == pytest.approx(started / 2)
    assert hold.succeeded(lambda: WALL0 - 1800, newest_seq=50) == 0.0  # not a reconnect
    clock.now += started / 2
    assert hold.left() == 0.0


def test_no_hold_without_jitter_after_a_short_blip_or_between_successes() -> None:
    clock = Clock(WALL0)
    off = ReconnectHold(0.0, clock=clock, wall=clock)
    off.failed()
    assert off.succeeded(lambda: WALL0 - 86400, 1) == 0.0
    hold = ReconnectHold(JITTER, clock=clock, wall=clock, rng=random.Random(1))
    hold.failed()
    assert hold.succeeded(lambda: WALL0 - JITTER / 2, 1) == 0.0  # a blip: its backlog is young
    assert hold.succeeded(lambda: WALL0 - 3600, 2) == 0.0  # no failure since the last success
    hold.failed()
    assert hold.succeeded(lambda: None, 3) == 0.0  # nothing pending
    hold.failed()
    assert hold.succeeded(lambda: WALL0 - 3600, 4) > 0.0


def test_the_first_success_after_a_start_is_a_reconnect() -> None:
    # A device that rebooted during the outage has failed nothing yet.
    clock = Clock(WALL0)
    hold = ReconnectHold(JITTER, clock=clock, wall=clock, rng=random.Random(3))
    assert hold.succeeded(lambda: WALL0 - 1800, 9) == pytest.approx(
        random.Random(3).uniform(0.0, JITTER))


def test_a_fleet_s_holds_spread_over_the_whole_window() -> None:
    clock = Clock(WALL0)
    holds = []
    for device in range(200):
        hold = ReconnectHold(JITTER, clock=clock, wall=clock, rng=random.Random(device))
        holds.append(hold.succeeded(lambda: WALL0 - 1800, 1))
    assert all(0.0 <= h <= JITTER for h in holds)
    assert min(holds) < 0.05 * JITTER and max(holds) > 0.95 * JITTER
    assert statistics.mean(holds) == pytest.approx(JITTER / 2, rel=0.15)
    # No second of the window takes more than a small share of the fleet.
    per_second = [sum(1 for h in holds if s <= h < s + 1) for s in range(int(JITTER))]
    assert max(per_second) <= 20


def test_a_negative_jitter_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="reconnect_jitter"):
        ReconnectHold(-1.0)
    with pytest.raises(ValueError, match="reconnect_jitter"):
        DeliverySettings(reconnect_jitter=-1.0)


# -- the worker with it ---------------------------------------------------------------


def test_oldest_first_sends_nothing_during_the_hold_then_everything(spool: Spool) -> None:
    clock = Clock(WALL0)
    backlog = append(spool, 30, created=WALL0 - 1800)
    worker, link, hold = worker_on(spool, clock, newest_first=False)
    assert worker.step().state == "retry"  # the link is down
    assert link.calls == [backlog[:1]]  # a probe: one record
    link.up = True
    assert worker.step().state == "progress"  # the reconnect: the oldest record goes
    assert link.calls[-1] == backlog[:1]
    delay = hold.left()
    assert delay == pytest.approx(expected_hold())
    live = append(spool, 5, created=WALL0)
    calls = len(link.calls)
    step = worker.step()
    assert step.state == "retry" and step.delay == pytest.approx(delay)
    assert len(link.calls) == calls  # nothing, not even the live records: fifo keeps order
    clock.now += delay
    while worker.step().state == "progress":
        pass
    sent = [seq for call in link.calls[calls:] for seq in call]
    assert sent == backlog[1:] + live
    assert len(link.calls[calls]) == 10  # full batches again
    assert spool.stats().pending == 0


def test_live_first_keeps_sending_new_records_while_the_backlog_waits(spool: Spool) -> None:
    clock = Clock(WALL0)
    backlog = append(spool, 30, created=WALL0 - 1800)
    worker, link, hold = worker_on(spool, clock, newest_first=True)
    assert worker.step().state == "retry"
    link.up = True
    assert worker.step().state == "progress"
    assert link.calls[-1] == backlog[-1:]  # the probe: the newest record
    assert hold.left() > 0 and hold.edge_seq == backlog[-1]
    calls = len(link.calls)
    for second in range(1, 4):  # three collections during the hold
        clock.now = WALL0 + second
        live = append(spool, 2, created=clock.now)
        assert worker.step().state == "progress"
        assert link.calls[-1] == live
    step = worker.step()  # only backlog is left: wait, and look for live records soon
    assert step.state == "retry" and 0 < step.delay <= 0.25
    assert all(seq > hold.edge_seq for call in link.calls[calls:] for seq in call)
    clock.now = WALL0 + JITTER
    while worker.step().state == "progress":
        pass
    assert spool.stats().pending == 0 and spool.stats().delivered == 36


def test_a_short_blip_is_not_held(spool: Spool) -> None:
    clock = Clock(WALL0)
    append(spool, 20, created=WALL0 - JITTER / 3)
    worker, link, hold = worker_on(spool, clock, newest_first=False)
    assert worker.step().state == "retry"
    link.up = True
    assert [worker.step().state for _ in range(4)] == ["progress"] * 3 + ["idle"]
    assert [len(call) for call in link.calls] == [1, 1, 10, 9]  # probes, then full batches
    assert hold.holds == 0


def test_flush_ends_the_hold(spool: Spool) -> None:
    clock = Clock(WALL0)  # never moves: only flush can end the hold
    append(spool, 30, created=WALL0 - 1800)
    worker, link, hold = worker_on(spool, clock, newest_first=False)
    link.up = True
    assert worker.step().state == "progress"  # the first success after the start
    assert hold.left() > 0 and spool.stats().pending == 29
    worker.start()
    try:
        assert worker.flush(10)
    finally:
        worker.stop(5)
    assert spool.stats().pending == 0


class Throttling(Link):
    """Up, but answers ``throttled`` (a 429) to the batches listed in ``throttle``."""

    def __init__(self) -> None:
        super().__init__()
        self.up = True
        self.throttle: set[int] = set()

    def send(self, batch: Batch) -> SendResult:
        seqs = batch.seqs()
        with self.lock:
            self.calls.append(seqs)
            if len(self.calls) in self.throttle:
                return SendResult(retry=seqs, result="throttled")
        return SendResult(delivered=seqs)


def test_a_throttling_receiver_is_no_outage_the_backfill_is_not_held_again(spool: Spool) -> None:
    # Mimir or VictoriaMetrics answer 429 while they are up: the backoff and
    # Retry-After pace the sender; counting it as an outage would hold the
    # backlog again after each 429 and drop the batches back to probes.
    clock = Clock(WALL0)
    backlog = append(spool, 40, created=WALL0 - 1800)
    link = Throttling()
    hold = ReconnectHold(JITTER, clock=clock, wall=clock, rng=random.Random(7))
    settings = DeliverySettings(batch_records=10, backoff_base=0.0, backoff_cap=0.0,
                                reconnect_jitter=JITTER)
    worker = DeliveryWorker(spool, link, settings, reconnect=hold)
    assert worker.step().state == "progress"  # the start's reconnect: a probe, then the hold
    assert hold.holds == 1
    clock.now += hold.left()
    link.throttle = {2, 4}
    states = [worker.step().state for _ in range(8)]
    assert states.count("retry") == 2 and hold.holds == 1  # no second hold
    assert [len(call) for call in link.calls[1:]] == [10, 10, 10, 10, 10, 9]  # full batches
    assert link.calls[2] == link.calls[1] and link.calls[4] == link.calls[3]  # retried as is
    assert spool.stats().pending == 0 and spool.stats().delivered == len(backlog)
