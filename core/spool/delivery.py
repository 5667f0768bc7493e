"""The delivery worker: spool -> destination, one loop for every product.

    peek -> (pace) -> send -> settle -> back off on retry

* **peek** a batch of pending records, oldest first (or newest first), bounded
  by records, bytes and logical items;
* **linger** (``linger`` seconds, off by default): a batch short of
  ``batch_records``/``batch_bytes`` waits, from when the worker first saw
  its oldest record, for more records to fill it (Kafka's ``linger.ms``): an
  archive writes fewer, larger objects. ``flush`` and ``stop`` end the wait;
  ``step`` never lingers;
* **pace** to ``rate_limit`` items/s (a token bucket; off by default);
* **send** through the destination (``destination.Destination``); up to
  ``max_in_flight`` sends overlap, each on its own batch (read after the
  last one in flight), on a ``SendPool``'s threads;
* **settle** each answer in the spool in the order the batches were sent:
  ``ack`` what was delivered, ``dead_letter`` or ``drop`` what was refused for
  good (by reason), split a batch refused as a whole into halves, each sent
  once more (down to single records, so each record is sent at most ~log2(n)
  times, never in a loop);
* after an answer with records to **retry**, every batch in flight is settled
  first (their retries and ``Retry-After`` count too), then the worker waits
  a full-jitter backoff: uniform in ``[0, min(backoff_cap, backoff_base *
  2**(n-1))]`` for the n-th consecutive retry (AWS architecture blog: it
  spreads a fleet's retries after an outage), but at least the destination's
  ``Retry-After`` bounded by ``retry_after_cap``; it then reads again from
  the oldest pending record. With ``max_retry_duration``, a batch still
  failing after that long is dropped (``retry_exhausted``).
* after a **reconnect** (the first success after failures, or the first one
  at all) with a backlog older than ``reconnect_jitter``, the backlog waits a
  uniform random delay in ``[0, reconnect_jitter]`` (``reconnect``): a fleet
  whose link returns at once does not send every backlog at once. Reading
  newest first, what is appended after the reconnect keeps flowing; reading
  oldest first, nothing is sent meanwhile. ``flush`` ends the wait. Until
  that first success, each batch is a single record (a probe).
* when the spool cannot **record** an answer (a full disk), the worker keeps
  the answer in memory, sends nothing more, and tries to record it again
  after a growing backoff (``unrecorded`` counts the failed tries; the
  observer's optional ``unrecorded(batch, exc)`` hears of each). Delivered
  records are thus never sent again because their acknowledgement could not
  be written: a full disk never multiplies the load on the destination.

Nothing the worker does blocks the spool's producers. ``stop`` ends the loop
after the sends in flight are settled; what is pending stays in the spool.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from .destination import Batch, Destination, Pending, SendPool, SendResult, timed_send
from .reconnect import ReconnectHold
from .spool import Spool
from .types import Record

log = logging.getLogger(__name__)

# While a reconnect holds the backlog, how often a newest-first worker looks
# for records appended since (the live edge).
_HOLD_POLL = 0.25


@dataclass(frozen=True)
class DeliverySettings:
    batch_records: int = 1000
    batch_bytes: int | None = 5 * 1024 * 1024
    batch_items: int | None = None  # e.g. samples per remote_write request
    newest_first: bool = False  # live data first (then one send at a time)
    max_in_flight: int = 1
    backoff_base: float = 0.5
    backoff_cap: float = 60.0
    retry_after_cap: float = 300.0  # against a nonsense Retry-After
    max_retry_duration: float | None = None  # None: retry forever
    rate_limit: float | None = None  # items/s
    rate_burst: float | None = None  # items; default: one batch's worth
    linger: float = 0.0  # seconds a short batch waits to fill; 0: send at once
    reconnect_jitter: float = 0.0  # max hold of the backlog after a reconnect; 0: none

    def __post_init__(self) -> None:
        if self.batch_records < 1:
            raise ValueError(f"batch_records: expected a positive integer, got "
                             f"{self.batch_records!r}")
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight: expected a positive integer, got "
                             f"{self.max_in_flight!r}")
        if self.linger < 0:
            raise ValueError(f"linger: expected a duration >= 0, got {self.linger!r}")
        if self.backoff_base < 0 or self.backoff_cap < 0:
            raise ValueError("backoff_base, backoff_cap: expected durations >= 0")
        if self.reconnect_jitter < 0:
            raise ValueError(f"reconnect_jitter: expected a duration >= 0, got "
                             f"{self.reconnect_jitter!r}")


def full_jitter(attempt: int, base: float, cap: float,
                uniform: Callable[[float, float], float] = random.uniform) -> float:
    """The delay before retry ``attempt`` (1, 2, ...): uniform in
    ``[0, min(cap, base * 2**(attempt-1))]``."""
    return uniform(0.0, min(cap, base * 2.0 ** min(max(attempt - 1, 0), 62)))


class RateLimiter:
    """Token bucket in items/s; a request larger than the bucket just waits longer."""

    def __init__(self, rate: float | None, burst: float) -> None:
        self.rate = rate
        self._burst = burst
        self._tokens = burst
        self._last = time.monotonic()

    def delay_for(self, items: int) -> float:
        """Seconds to wait before sending ``items``; the tokens are taken now."""
        if self.rate is None:
            return 0.0
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= items
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class DeliveryObserver(Protocol):
    def settled(self, batch: Batch, result: SendResult) -> None:
        """After each answer is settled in the spool (drops by the worker included).
        An observer may also define ``unrecorded(batch, exc)``: called each
        time an answer could not be recorded in the spool (it will be again)."""


@dataclass(frozen=True)
class Step:
    """What one ``step`` did: ``idle`` (nothing pending), ``progress``, or
    ``retry`` after ``delay`` seconds."""

    state: Literal["idle", "progress", "retry"]
    delay: float = 0.0


class DeliveryWorker:
    """Delivers ``spool`` to ``destination`` (see the module docstring).

    ``start()`` runs the loop on a thread; ``step()`` does one batch on the
    caller's thread (tests, a one-off drain). ``senders``: a ``SendPool`` to
    share with other workers on the same destination (its size is the window).
    ``reconnect``: the hold after a reconnect (default: one of
    ``settings.reconnect_jitter``; a test passes one on a fixed clock).
    """

    def __init__(
        self,
        spool: Spool,
        destination: Destination,
        settings: DeliverySettings | None = None,
        *,
        observer: DeliveryObserver | None = None,
        senders: SendPool | None = None,
        stop: threading.Event | None = None,
        name: str = "modelmon-delivery",
        reconnect: ReconnectHold | None = None,
    ) -> None:
        self.spool = spool
        self.destination = destination
        self.settings = settings = settings or DeliverySettings()
        self._observer = observer
        self._stop = stop if stop is not None else threading.Event()
        depth = 1 if settings.newest_first else settings.max_in_flight
        self._own_senders: SendPool | None = None
        if senders is None and depth > 1:
            senders = self._own_senders = SendPool(destination, depth, name + "-sender")
        self._senders = senders
        self._depth = depth if senders is None else min(depth, senders.size)
        burst = settings.rate_burst
        if burst is None:
            burst = max(float(settings.batch_items or settings.batch_records),
                        settings.rate_limit or 0.0)
        self._limiter = RateLimiter(settings.rate_limit, burst)
        self._prefix = spool.id + "-"
        self._attempt = 0
        self._failing_since: float | None = None
        self._idle = threading.Condition()
        self._retried = 0
        self._retried_lock = threading.Lock()
        # An answer the spool could not record (a full disk), with the batch
        # it answers: recorded again before anything more is sent.
        self._unrecorded: tuple[Batch, SendResult] | None = None
        self._unrecorded_attempt = 0
        self.unrecorded = 0  # failed tries to record an answer
        # (first seq, when the worker first saw it) of a short batch lingering.
        self._linger_start: tuple[int, float] | None = None
        self._flushes = 0  # flush() calls waiting: no lingering meanwhile
        self._flushes_lock = threading.Lock()
        self.reconnect = reconnect or ReconnectHold(settings.reconnect_jitter)
        self._newest_read = 0  # the highest seq read so far: the live edge at a reconnect
        self._thread = threading.Thread(target=self.run, name=name, daemon=True)

    @property
    def retried(self) -> int:
        """Records answered "retry" so far."""
        return self._retried

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the sends in flight are settled; the rest stays pending."""
        self._stop.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._own_senders is not None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._own_senders.stop(left)

    def flush(self, timeout: float) -> bool:
        """Wait until nothing is pending in the spool; False on timeout or
        when the worker is not running."""
        with self._flushes_lock:
            self._flushes += 1
        self.reconnect.end()
        try:
            return self._flush(timeout)
        finally:
            with self._flushes_lock:
                self._flushes -= 1

    def _flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self.spool.flush_buffer(timeout):
            return False
        with self._idle:
            while self.spool.stats().pending > 0:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._idle.wait(min(left, 0.1))
        return True

    # -- the loop ---------------------------------------------------------------

    def run(self) -> None:
        """Deliver until stopped (the thread's target; callable directly)."""
        in_flight: collections.deque[tuple[Batch, Pending]] = collections.deque()
        while True:
            if self._unrecorded is not None and not in_flight:
                if self._stop.is_set():
                    return  # pending in the spool; sent again after a restart (same ids)
                if not self._record_unrecorded():
                    self._stop.wait(self._unrecorded_backoff())
                    continue
            stopping = self._stop.is_set() or self._unrecorded is not None
            if not stopping and len(in_flight) < self._depth:
                after = in_flight[-1][0].rows[-1][0] if in_flight else 0
                batch = self._read_safely(after, wait=not in_flight)
                if batch is not None and not in_flight and self._lingering(batch):
                    # Read again soon: more records, a flush or the linger's end.
                    self._stop.wait(0.1)
                    continue
                if batch is not None and self._pace(batch):
                    in_flight.append((batch, self._submit(batch)))
                    continue
            if not in_flight:
                if self._stop.is_set():
                    return
                held = self.reconnect.left()
                if held > 0:  # pending records wait: spool.wait would not
                    self._stop.wait(min(held, _HOLD_POLL))
                    continue
                with self._idle:
                    self._idle.notify_all()
                self.spool.wait(0.2)
                continue
            batch, pending = in_flight.popleft()
            result = self._settle(batch, pending.result())
            if self._unrecorded is not None:
                continue  # settle what is in flight, then back off (top of the loop)
            if result.retry:
                while in_flight:
                    later_batch, later = in_flight.popleft()
                    result.merge(self._settle(later_batch, later.result()))
                delay = self._retry_later(batch, result)
                if delay:
                    self._stop.wait(delay)
            else:
                self._succeeded()

    def step(self) -> Step:
        """Read, send and settle one batch (sent on the shared send pool, if
        any, else on this thread); say what to do next."""
        if self._unrecorded is not None and not self._record_unrecorded():
            return Step("retry", self._unrecorded_backoff())
        try:
            batch = self.read()
        except Exception:
            log.exception("spool %s: read failed; retrying", self.spool.path)
            return Step("retry", 1.0)
        if batch is None:
            held = self.reconnect.left()
            if held > 0:
                return Step("retry", min(held, _HOLD_POLL) if self.settings.newest_first else held)
            return Step("idle")
        if not self._pace(batch):
            return Step("retry", 0.0)
        result = self._settle(batch, self._submit(batch).result())
        if self._unrecorded is not None:
            return Step("retry", self._unrecorded_backoff())
        if result.retry:
            return Step("retry", self._retry_later(batch, result))
        self._succeeded()
        return Step("progress")

    def drain(self) -> int:
        """``step`` until nothing is pending or the worker is stopped, waiting
        out backoffs; returns how many records ended (delivered, dead-lettered
        or dropped)."""
        before = self.spool.stats()
        while not self._stop.is_set():
            step = self.step()
            if step.state == "idle":
                break
            if step.delay:
                self._stop.wait(step.delay)
        after = self.spool.stats()
        return ((after.delivered + after.dead_lettered + after.dropped_total)
                - (before.delivered + before.dead_lettered + before.dropped_total))

    # -- the parts --------------------------------------------------------------

    def read(self, after_seq: int = 0) -> Batch | None:
        """The next batch of pending records after ``after_seq``, or None
        (also while a reconnect holds the backlog and nothing live is pending)."""
        s = self.settings
        spool = self.spool
        if self.reconnect.left() > 0:
            if not s.newest_first:
                return None
            after_seq = max(after_seq, self.reconnect.edge_seq)
        limit = 1 if self.reconnect.probing else s.batch_records
        if s.batch_items is None and not s.newest_first:
            rows = spool.peek_payloads(limit, max_bytes=s.batch_bytes, after_seq=after_seq)
            if rows:
                self._newest_read = max(self._newest_read, rows[-1][0])
            return Batch(self._prefix, rows) if rows else None
        records = spool.peek(limit, max_bytes=s.batch_bytes, newest_first=s.newest_first,
                             after_seq=after_seq)
        if not records:
            return None
        self._newest_read = max(self._newest_read, records[0].seq if s.newest_first
                                else records[-1].seq)
        chosen: list[Record] = []
        items = 0
        for record in records:
            if chosen and s.batch_items is not None and items + record.items > s.batch_items:
                break
            chosen.append(record)
            items += record.items
        chosen.sort(key=lambda r: r.seq)  # each series in timestamp order
        return Batch(self._prefix, [(r.seq, r.payload) for r in chosen],
                     [r.items for r in chosen])

    def _read_safely(self, after_seq: int, wait: bool) -> Batch | None:
        try:
            return self.read(after_seq)
        except Exception:  # the worker must outlive a bad read
            log.exception("spool %s: read failed; retrying", self.spool.path)
            if wait:
                self._stop.wait(1.0)
            return None

    def _lingering(self, batch: Batch) -> bool:
        """True while a short batch should wait for more records."""
        s = self.settings
        if s.linger <= 0 or self._flushes or self._stop.is_set():
            return False
        full = len(batch) >= s.batch_records or (
            s.batch_items is not None and batch.item_count() >= s.batch_items) or (
            s.batch_bytes is not None
            and sum(len(payload) for _, payload in batch.rows) >= 0.9 * s.batch_bytes)
        if full:
            return False
        first, now = batch.rows[0][0], time.monotonic()
        if self._linger_start is None or self._linger_start[0] != first:
            self._linger_start = (first, now)
        return now - self._linger_start[1] < s.linger

    def _pace(self, batch: Batch) -> bool:
        """Wait for the rate limit; False when stopped meanwhile."""
        delay = self._limiter.delay_for(batch.item_count())
        return not (delay > 0 and self._stop.wait(delay))

    def _submit(self, batch: Batch) -> Pending:
        if self._senders is None:
            return Pending(timed_send(self.destination, batch))
        return self._senders.submit(batch)

    def _settle(self, batch: Batch, result: SendResult) -> SendResult:
        """Apply ``result`` to the spool; returns what is left to retry."""
        if result.split is not None:
            if len(batch) > 1:
                self._observe(batch, result)
                return self._split(batch)
            result.dropped.setdefault(result.split, []).extend(batch.seqs())
        if self._unrecorded is not None:
            # An earlier answer is not recorded yet: keep this one with it.
            self._unrecorded[1].merge(result)
        elif not self._record(batch, result):
            self._unrecorded = (batch, result)
            self._unrecorded_attempt = 1
        if result.retry:
            with self._retried_lock:
                self._retried += len(result.retry)
        self._observe(batch, result)
        return result

    def _record(self, batch: Batch, result: SendResult) -> bool:
        """Write ``result`` into the spool; False when the spool cannot (it is
        counted there by operation and logged at a bounded rate). Writing the
        same answer again is harmless: settled seqs are ignored."""
        spool = self.spool
        try:
            spool.ack(result.delivered)
            for reason, seqs in result.dead.items():
                spool.dead_letter(seqs, reason)
            for reason, seqs in result.dropped.items():
                spool.drop(seqs, reason)
        except Exception as exc:
            self.unrecorded += 1
            unrecorded = getattr(self._observer, "unrecorded", None)
            if unrecorded is not None:
                try:
                    unrecorded(batch, exc)
                except Exception:
                    log.exception("delivery observer failed")
            return False
        return True

    def _record_unrecorded(self) -> bool:
        assert self._unrecorded is not None
        batch, result = self._unrecorded
        if not self._record(batch, result):
            self._unrecorded_attempt += 1
            return False
        self._unrecorded = None
        self._unrecorded_attempt = 0
        return True

    def _unrecorded_backoff(self) -> float:
        """Equal jitter (half fixed, half random): the disk is local, there is no
        herd to spread, and a retry must never come in a tight loop."""
        s = self.settings
        bound = min(s.backoff_cap, max(s.backoff_base, 0.05) * 2.0 ** min(
            self._unrecorded_attempt - 1, 62))
        return bound / 2 + random.uniform(0.0, bound / 2)

    def _split(self, batch: Batch) -> SendResult:
        """Each half once more; stop at the first half that must be retried
        (the rest stays pending)."""
        done = SendResult()
        for half in batch.halves():
            if not self._pace(half):
                done.retry += half.seqs()
                return done
            result = self._settle(half, self._submit(half).result())
            done.merge(result)
            if result.retry or self._unrecorded is not None:
                return done
        return done

    def _observe(self, batch: Batch, result: SendResult) -> None:
        if self._observer is not None:
            try:
                self._observer.settled(batch, result)
            except Exception:  # counting must never stop delivery
                log.exception("delivery observer failed")

    def _retry_later(self, batch: Batch, result: SendResult) -> float:
        """The backoff after ``result``; 0 when the batch was given up instead."""
        s = self.settings
        now = time.monotonic()
        if result.result != "throttled":
            # A receiver that throttles is up: no outage, so the next success is no
            # reconnect; else a rate-limiting receiver (Mimir, VictoriaMetrics)
            # would hold the backlog again and again and drop it to probes.
            self.reconnect.failed()
        if self._failing_since is None:
            self._failing_since = now
        if s.max_retry_duration is not None and now - self._failing_since >= s.max_retry_duration:
            self._give_up(batch, result.retry)
            return 0.0
        self._attempt += 1
        delay = full_jitter(self._attempt, s.backoff_base, s.backoff_cap)
        if result.retry_after is not None:
            # The destination knows when it can take more: wait at least that
            # long (bounded, against a nonsense header).
            delay = max(delay, min(result.retry_after, s.retry_after_cap))
        return delay

    def _give_up(self, batch: Batch, seqs: list[int]) -> None:
        log.error("giving up on %d records of %s after retrying for %.0fs", len(seqs),
                  self.spool.path, self.settings.max_retry_duration)
        self._failing_since = None
        self._attempt = 0
        self._settle(batch, SendResult(dropped={"retry_exhausted": list(seqs)},
                                       result="retry_exhausted"))

    def _succeeded(self) -> None:
        self._attempt = 0
        self._failing_since = None
        self.reconnect.succeeded(self._oldest_created, self._newest_read)

    def _oldest_created(self) -> float | None:
        return self.spool.stats().oldest_created
