"""The delivery worker's promises, against a real spool and scripted destinations:
full-jitter backoff within its bounds, Retry-After honoured and capped, the
in-flight window never exceeded, answers settled in the order sent,
dead-lettering and dropping by reason, splitting, giving up, stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelmon.spool import Spool
from modelmon.spool.delivery import (
    DeliverySettings,
    DeliveryWorker,
    RateLimiter,
    full_jitter,
)
from modelmon.spool.destination import Batch, SendPool, SendResult

Answer = Callable[[int, list[int]], "SendResult | None"]


class ScriptedDestination:
    """Records each send; delivers all unless ``answer(call_no, seqs)`` says otherwise."""

    name = "scripted"

    def __init__(self, answer: Answer | None = None, delay: float = 0.0,
                 max_in_flight: int = 1) -> None:
        self.answer = answer
        self.delay = delay
        self.max_in_flight = max_in_flight
        self.lock = threading.Lock()
        self.calls: list[list[int]] = []
        self.active = self.max_active = 0
        self.answered: list[int] = []  # call numbers, in the order answered

    def send(self, batch: Batch) -> SendResult:
        seqs = batch.seqs()
        with self.lock:
            call_no = len(self.calls)
            self.calls.append(seqs)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                time.sleep(self.delay)
            result = self.answer(call_no, seqs) if self.answer else None
            return result if result is not None else SendResult(delivered=seqs)
        finally:
            with self.lock:
                self.active -= 1
                self.answered.append(call_no)


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path, max_bytes=1 << 26, max_age=None) as s:
        yield s


def fill(spool: Spool, n: int, items: int = 1) -> list[int]:
    seqs = spool.append_many([b"record-%d" % i for i in range(n)], items=[items] * n)
    spool.flush_buffer()
    return [s for s in seqs if s is not None]


def settings(**kw: object) -> DeliverySettings:
    base: dict[str, object] = {"batch_records": 10, "backoff_base": 0.01, "backoff_cap": 0.02}
    base.update(kw)
    return DeliverySettings(**base)  # type: ignore[arg-type]


# -- backoff ----------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 10, 40, 1000])
def test_full_jitter_is_uniform_between_zero_and_the_capped_exponential(attempt: int) -> None:
    bound = min(60.0, 0.5 * 2 ** (attempt - 1))
    seen = [full_jitter(attempt, 0.5, 60.0) for _ in range(2000)]
    assert all(0.0 <= d <= bound for d in seen)
    assert min(seen) < bound * 0.05 and max(seen) > bound * 0.95  # the whole range, not a band
    # The bounds themselves, as the random source's extremes give them.
    assert full_jitter(attempt, 0.5, 60.0, lambda lo, hi: hi) == bound
    assert full_jitter(attempt, 0.5, 60.0, lambda lo, hi: lo) == 0.0


def test_retry_after_is_waited_at_least_and_capped(spool: Spool) -> None:
    fill(spool, 3)
    worker = DeliveryWorker(spool, ScriptedDestination(
        lambda n, seqs: SendResult(retry=seqs, retry_after=2.5, result="throttled")),
        settings(retry_after_cap=60))
    step = worker.step()
    assert step.state == "retry" and 2.5 <= step.delay
    capped = DeliveryWorker(spool, ScriptedDestination(
        lambda n, seqs: SendResult(retry=seqs, retry_after=3600.0, result="throttled")),
        settings(retry_after_cap=5.0))
    step = capped.step()
    assert step.state == "retry" and 5.0 == step.delay  # the cap, above the jitter's 0.02


def test_consecutive_retries_grow_the_jitter_window_and_success_resets_it(spool: Spool) -> None:
    fill(spool, 1)
    fail = [True]
    dest = ScriptedDestination(lambda n, seqs: SendResult(retry=seqs) if fail[0] else None)
    worker = DeliveryWorker(spool, dest, settings(backoff_base=1.0, backoff_cap=8.0))
    delays = [worker.step().delay for _ in range(300)]
    # attempt n draws from [0, min(8, 2**(n-1))]: past the 4th, up to the cap.
    assert delays[0] <= 1.0 and delays[1] <= 2.0 and delays[2] <= 4.0
    assert max(delays[4:]) > 4.0 and max(delays) <= 8.0
    fail[0] = False
    assert worker.step().state == "progress"
    fail[0] = True
    fill(spool, 1)
    assert worker.step().delay <= 1.0  # the first retry again


# -- the in-flight window and the order of settlement ---------------------------------


@pytest.mark.parametrize("window", [1, 2, 4])
def test_sends_overlap_up_to_the_window_and_never_more(spool: Spool, window: int) -> None:
    seqs = fill(spool, 200)
    dest = ScriptedDestination(delay=0.01)
    worker = DeliveryWorker(spool, dest, settings(max_in_flight=window))
    worker.start()
    try:
        assert worker.flush(20)
    finally:
        worker.stop(5)
    assert dest.max_active == window
    assert sorted(s for call in dest.calls for s in call) == seqs  # each exactly once
    assert spool.stats().delivered == 200 and spool.stats().balanced


def test_a_shared_send_pool_bounds_every_worker_on_the_destination(tmp_path: Path) -> None:
    dest = ScriptedDestination(delay=0.01)
    pool = SendPool(dest, 2)
    with Spool(tmp_path / "a", max_bytes=1 << 26, max_age=None) as a, \
            Spool(tmp_path / "b", max_bytes=1 << 26, max_age=None) as b:
        fill(a, 100)
        fill(b, 100)
        workers = [DeliveryWorker(s, dest, settings(max_in_flight=2), senders=pool) for s in (a, b)]
        for w in workers:
            w.start()
        try:
            assert all(w.flush(20) for w in workers)
        finally:
            for w in workers:
                w.stop(5)
            pool.stop(5)
    assert dest.max_active == 2


def test_answers_are_settled_in_the_order_the_batches_were_sent(spool: Spool) -> None:
    fill(spool, 80)
    go = threading.Event()

    def answer(call_no: int, seqs: list[int]) -> None:
        assert go.wait(5)
        if call_no % 2 == 0:
            time.sleep(0.05)  # the older batch of each pair answers last

    dest = ScriptedDestination(answer, max_in_flight=2)
    acks: list[list[int]] = []
    real_ack = spool.ack

    def recording_ack(seqs: object) -> None:
        seqs = list(seqs)  # type: ignore[call-overload]
        acks.append(seqs)
        real_ack(seqs)

    spool.ack = recording_ack  # type: ignore[method-assign]
    worker = DeliveryWorker(spool, dest, settings(max_in_flight=2))
    worker.start()
    go.set()
    try:
        assert worker.flush(10)
    finally:
        worker.stop(5)
    assert dest.answered != sorted(dest.answered)  # answers came out of order...
    assert [batch for batch in acks if batch] == dest.calls  # ...settlements did not


def test_after_a_retry_everything_in_flight_is_settled_then_the_oldest_is_read_again(
    spool: Spool,
) -> None:
    seqs = fill(spool, 30)
    second_started = threading.Event()

    def answer(call_no: int, batch: list[int]) -> SendResult | None:
        if call_no == 1:
            second_started.set()
        if call_no == 0:
            assert second_started.wait(5)
            return SendResult(delivered=batch[1:], retry=batch[:1])
        return None

    dest = ScriptedDestination(answer, max_in_flight=2)
    worker = DeliveryWorker(spool, dest, settings(max_in_flight=2))
    worker.start()
    try:
        assert worker.flush(10)
    finally:
        worker.stop(5)
    assert dest.calls[0] == seqs[:10] and dest.calls[1] == seqs[10:20]
    assert dest.calls[2] == [seqs[0], *seqs[20:29]]
    assert worker.retried == 1
    assert spool.stats().delivered == 30


# -- refusals: dead letters, drops, splitting, giving up ----------------------------------


def test_refused_records_are_dead_lettered_or_dropped_by_reason(spool: Spool) -> None:
    seqs = fill(spool, 4)

    def answer(call_no: int, batch: list[int]) -> SendResult:
        return SendResult(delivered=batch[:2], dead={"mapping conflict": [batch[2]]},
                          dropped={"too_old": [batch[3]]})

    worker = DeliveryWorker(spool, ScriptedDestination(answer), settings())
    assert worker.step().state == "progress"
    stats = spool.stats()
    assert (stats.delivered, stats.dead_lettered, stats.dropped) == (2, 1, {"too_old": 1})
    assert [(d.seq, d.reason) for d in spool.dead_letters()] == [(seqs[2], "mapping conflict")]
    assert stats.pending == 0 and stats.balanced


def test_a_batch_refused_as_a_whole_is_split_down_to_the_bad_record(spool: Spool) -> None:
    seqs = fill(spool, 8)
    bad = seqs[5]

    def answer(call_no: int, batch: list[int]) -> SendResult | None:
        return SendResult(split="too_old") if bad in batch else None

    dest = ScriptedDestination(answer)
    worker = DeliveryWorker(spool, dest, settings())
    assert worker.step().state == "progress"
    stats = spool.stats()
    assert stats.dropped == {"too_old": 1} and stats.delivered == 7
    assert len(dest.calls) <= 2 * 4  # each record at most once per level, never in a loop


def test_a_batch_still_failing_after_max_retry_duration_is_dropped(spool: Spool) -> None:
    fill(spool, 3, items=5)
    settled: list[SendResult] = []

    class Observer:
        def settled(self, batch: Batch, result: SendResult) -> None:
            settled.append(result)

    worker = DeliveryWorker(spool, ScriptedDestination(lambda n, s: SendResult(retry=s)),
                            settings(max_retry_duration=0.05), observer=Observer())
    for _ in range(200):
        step = worker.step()
        if step.state == "progress":
            break
        time.sleep(step.delay)
    assert spool.stats().dropped_items == {"retry_exhausted": 15}
    assert {r: len(s) for r, s in settled[-1].dropped.items()} == {"retry_exhausted": 3}


def test_an_exception_in_send_retries_the_batch(spool: Spool) -> None:
    fill(spool, 2)

    def answer(call_no: int, batch: list[int]) -> None:
        if call_no == 0:
            raise ConnectionError("boom")

    worker = DeliveryWorker(spool, ScriptedDestination(answer), settings())
    assert worker.step().state == "retry"
    assert worker.step().state == "progress"
    assert spool.stats().delivered == 2


def test_the_rate_limit_paces_items_per_second() -> None:
    limiter = RateLimiter(100.0, burst=10.0)
    assert limiter.delay_for(10) == 0.0
    assert 0.09 <= limiter.delay_for(10) <= 0.11  # ten more items: a tenth of a second
    assert RateLimiter(None, 1.0).delay_for(10**6) == 0.0


# -- stop ----------------------------------------------------------------------------


def test_stop_settles_what_is_in_flight_and_leaves_the_rest_pending(spool: Spool) -> None:
    fill(spool, 100)
    first_sent = threading.Event()
    release = threading.Event()

    def answer(call_no: int, batch: list[int]) -> None:
        first_sent.set()
        assert release.wait(5)

    dest = ScriptedDestination(answer, max_in_flight=2)
    worker = DeliveryWorker(spool, dest, settings(max_in_flight=2))
    worker.start()
    assert first_sent.wait(5)
    stopper = threading.Thread(target=worker.stop, args=(10,))
    stopper.start()
    release.set()
    stopper.join(10)
    assert not worker.is_alive()
    stats = spool.stats()
    sent = sum(len(call) for call in dest.calls)
    assert stats.delivered == sent < 100 and stats.pending == 100 - sent and stats.balanced


def test_stop_interrupts_a_backoff(spool: Spool) -> None:
    fill(spool, 1)
    dest = ScriptedDestination(lambda n, s: SendResult(retry=s, retry_after=300.0))
    worker = DeliveryWorker(spool, dest, settings())
    worker.start()
    deadline = time.monotonic() + 5
    while not dest.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop(5)
    assert not worker.is_alive() and len(dest.calls) == 1
    assert spool.stats().pending == 1
