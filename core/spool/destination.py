"""What the delivery worker sends and what it needs from a destination.

A destination (a log sink, the remote_write client) implements one method,
``send(batch) -> SendResult``: send the batch and classify every record of it.
The worker owns everything else: reading, pacing, the in-flight window,
settling in the spool, backing off, splitting.

A ``SendResult`` classifies each record (by spool seq) as

``delivered``  the destination has it: acknowledged and removed;
``retry``      not now (5xx, 429, connection error): stays pending, the worker
               backs off, honouring ``retry_after`` (bounded);
``dead``       refused for good, kept for inspection and replay (``reason -> seqs``);
``dropped``    refused for good and not worth keeping, counted by reason;

or the batch as a whole as ``split``: refused because of some record in it
(Prometheus rolls a whole remote_write request back for one sample too old),
so the worker sends each half once more, down to single records; a single
record refused so is dropped with the ``split`` reason.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)


class Batch:
    """Records read from one spool: (seq, payload) rows in seq order, the
    spool's id prefix (``<spool id>-``: with the seq, a record's deterministic
    id) and, when read so, the logical items of each record."""

    __slots__ = ("items", "prefix", "rows")

    def __init__(self, prefix: str, rows: list[tuple[int, bytes]],
                 items: list[int] | None = None) -> None:
        self.prefix = prefix
        self.rows = rows
        self.items = items

    def __len__(self) -> int:
        return len(self.rows)

    def seqs(self) -> list[int]:
        return [row[0] for row in self.rows]

    def item_count(self, seqs: Iterable[int] | None = None) -> int:
        """Logical items in the batch (one per record unless read with counts),
        or in its records ``seqs``."""
        if seqs is None:
            return len(self.rows) if self.items is None else sum(self.items)
        wanted = set(seqs)
        counts = self.items if self.items is not None else [1] * len(self.rows)
        return sum(n for (seq, _), n in zip(self.rows, counts, strict=True) if seq in wanted)

    def halves(self) -> tuple[Batch, Batch]:
        half = len(self.rows) // 2
        items = self.items
        return (Batch(self.prefix, self.rows[:half], None if items is None else items[:half]),
                Batch(self.prefix, self.rows[half:], None if items is None else items[half:]))


class _HasSeq(Protocol):
    @property
    def seq(self) -> int: ...


def seqs_of(records: Batch | Sequence[_HasSeq]) -> list[int]:
    """The spool seqs of a batch, or of any sequence of things with a ``seq``."""
    seqs = getattr(records, "seqs", None)
    if callable(seqs):
        return list(seqs())
    return [record.seq for record in records]  # type: ignore[union-attr]


@dataclass
class SendResult:
    """How a destination answered one send (see the module docstring)."""

    delivered: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    dead: dict[str, list[int]] = field(default_factory=dict)  # reason -> seqs
    dropped: dict[str, list[int]] = field(default_factory=dict)  # reason -> seqs
    split: str | None = None  # refused as a whole: send halves (a single record: drop)
    retry_after: float | None = None
    # A short label of the answer, for metrics (e.g. "ok", "throttled", "success").
    result: str = "ok"
    duration: float = 0.0  # seconds the send took, set by the worker

    def add_dead(self, reason: str, seq: int) -> None:
        self.dead.setdefault(reason, []).append(seq)

    def add_dropped(self, reason: str, seq: int) -> None:
        self.dropped.setdefault(reason, []).append(seq)

    def merge(self, other: SendResult) -> None:
        self.delivered += other.delivered
        self.retry += other.retry
        for reason, seqs in other.dead.items():
            self.dead.setdefault(reason, []).extend(seqs)
        for reason, seqs in other.dropped.items():
            self.dropped.setdefault(reason, []).extend(seqs)
        if other.retry_after is not None:
            self.retry_after = max(self.retry_after or 0.0, other.retry_after)
        if other.result != "ok":
            self.result = other.result

    @classmethod
    def all_retry(cls, records: Batch | Sequence[_HasSeq], result: str,
                  retry_after: float | None = None) -> SendResult:
        return cls(retry=seqs_of(records), retry_after=retry_after, result=result)


@runtime_checkable
class Destination(Protocol):
    """Where a worker delivers. ``send`` may set ``max_in_flight`` (default 1)
    to have that many calls overlap, one batch each; it must then be safe to
    call from several threads. ``send`` should not raise: an exception retries
    the whole batch (logged)."""

    name: str

    def send(self, batch: Batch) -> SendResult: ...


class Pending:
    """The result of one send, once a sender has it."""

    __slots__ = ("_done", "_result")

    def __init__(self, result: SendResult | None = None) -> None:
        self._done = threading.Event()
        self._result = result
        if result is not None:
            self._done.set()

    def set(self, result: SendResult) -> None:
        self._result = result
        self._done.set()

    def result(self) -> SendResult:
        self._done.wait()
        assert self._result is not None
        return self._result


def timed_send(destination: Destination, batch: Batch) -> SendResult:
    """``destination.send`` with its duration set; an exception retries the batch."""
    started = time.perf_counter()
    try:
        result = destination.send(batch)
    except Exception:
        log.exception("delivery to %s failed; the batch is retried",
                      getattr(destination, "name", type(destination).__name__))
        result = SendResult.all_retry(batch, "error")
    result.duration = time.perf_counter() - started
    return result


class SendPool:
    """``threads`` threads running ``destination.send``, one batch each at a
    time, shared by every worker that delivers to the destination (the
    window is the destination's, whoever submits)."""

    def __init__(self, destination: Destination, threads: int = 1,
                 name: str = "modelmon-sender") -> None:
        self.destination = destination
        self.size = threads
        self._queue: queue.SimpleQueue[tuple[Batch, Pending] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._run, name=name, daemon=True)
                         for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, batch: Batch) -> Pending:
        pending = Pending()
        self._queue.put((batch, pending))
        return pending

    def stop(self, timeout: float | None = None) -> None:
        """Let the threads finish their sends; give up on one that hangs after
        ``timeout`` (a destination without a timeout of its own: the threads
        are daemons)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            batch, pending = job
            pending.set(timed_send(self.destination, batch))
