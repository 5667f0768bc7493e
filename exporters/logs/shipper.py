"""LogShipper: events -> processors -> durable spool -> background worker -> sink.

The calling thread only completes the event (timestamp, service, host,
correlation id), runs the processors, serialises it and appends it to the
spool; ``emit`` returns once the event is durable per the spool's fsync mode.
Every event, log records included, is spooled as its final document, so with
the redactor on (the default) nothing unredacted reaches the disk.
A background worker ships batches, classifies every item, retries with
full-jitter exponential backoff honouring ``Retry-After``, and dead-letters
what the destination refuses for good. A slow or dead destination never
blocks the caller unless ``full_policy="block"`` was chosen.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from modelmon.exporters.logs import correlation, ecs
from modelmon.exporters.logs.metrics import ShipperCollector
from modelmon.exporters.logs.sinks import Item, ItemBatch, SendResult, Sink
from modelmon.kpi import DEFAULT_PREFIX
from modelmon.metrics import metric_set
from modelmon.spool import FsyncMode, FullPolicy, Spool, SpoolFull, SpoolLocked

log = logging.getLogger(__name__)

MAX_SLOTS = 64
_MAX_RETRY_AFTER = 300.0
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_dumps = orjson.dumps
_current_correlation = correlation._current.get
Processor = Callable[[dict[str, Any]], "dict[str, Any] | None"]


def default_spool_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(state) / "modelmon" / "logs"


def _json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return str(value)


class LogShipper:
    """Ship structured events to Elasticsearch, Logstash or a file, losing none.

    >>> shipper = LogShipper(sink="elasticsearch", url="http://127.0.0.1:9200",
    ...                      spool_dir="/var/lib/modelmon/logs", service_name="fraud-api")
    >>> shipper.emit({"message": "model loaded", "event": {"action": "model-loaded"}})

    Options not listed here go to the sink (``url``, ``index``, ``api_key``...).
    Several processes may share ``spool_dir``: each takes a free ``slot-N``
    subdirectory, so a restarted process also ships what an earlier one left.
    """

    def __init__(
        self,
        sink: str | Sink = "file",
        *,
        spool_dir: str | Path | None = None,
        service_name: str = "modelmon",
        environment: str | None = None,
        max_bytes: int = 512 * 1024 * 1024,
        max_age: float | None = 7 * 86400.0,
        full_policy: FullPolicy = "drop_oldest",
        fsync: FsyncMode = "interval",
        fsync_interval: float = 1.0,
        block_timeout: float | None = None,
        batch_size: int = 1000,
        batch_bytes: int = 5 * 1024 * 1024,
        backoff_initial: float = 0.5,
        backoff_max: float = 60.0,
        registry: CollectorRegistry | None = None,
        prefix: str = DEFAULT_PREFIX,
        processors: Sequence[Processor] = (),
        plugin_processors: bool = True,
        processor_config: Mapping[str, Any] | None = None,
        log_inputs: bool = False,
        log_outputs: bool = False,
        max_payload_chars: int = 1024,
        **sink_options: Any,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
        self.log_inputs = log_inputs
        self.log_outputs = log_outputs
        self.max_payload_chars = max_payload_chars
        # Processors first: one that cannot be set up (a redaction typo) must
        # stop the shipper before it opens a sink or takes a spool slot.
        self._processors: list[tuple[str, Processor]] = [
            (getattr(p, "__name__", type(p).__name__), p) for p in processors
        ]
        if plugin_processors:
            self._processors = _plugin_processors(processor_config or {}) + self._processors
        self._sink = sink if not isinstance(sink, str) else _make_sink(sink, sink_options, spool_dir)
        if not isinstance(sink, str) and sink_options:
            raise TypeError(f"unknown LogShipper option(s): {', '.join(sorted(sink_options))}")
        self.sink_name: str = getattr(self._sink, "name", type(self._sink).__name__)
        root = Path(spool_dir) if spool_dir is not None else default_spool_dir()
        spool_options: dict[str, Any] = {
            "max_bytes": max_bytes, "max_age": max_age, "full_policy": full_policy,
            "fsync": fsync, "fsync_interval": fsync_interval, "block_timeout": block_timeout,
        }
        self.spool = _open_slot(root, **spool_options)
        self._base = ecs.base_fields(service_name, environment)
        self.base_fields = self._base  # what every event starts from (do not change it)
        self.service_name = service_name
        self._batch_size = batch_size
        self._batch_bytes = batch_bytes
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        metrics = metric_set(registry, prefix)
        self._bulk_duration = metrics.get("log_bulk_request_duration_seconds").labels(self.sink_name)
        self._bulk_requests = metrics.get("log_bulk_requests_total")
        self._processor_failures = metrics.get("log_processor_failures_total")
        for name, _ in self._processors:  # at 0 from the start, like the drop reasons
            self._processor_failures.labels(name)
        self.retried = 0
        self._retried_lock = threading.Lock()
        self._collector = ShipperCollector(self, prefix)
        self._registry = metrics.registry
        self._registry.register(self._collector)
        self._stop = threading.Event()
        self._idle = threading.Condition()
        # Up to the sink's ``max_in_flight`` sends at once, whoever submits them.
        self._sender = _Sender(self._sink, max(1, int(getattr(self._sink, "max_in_flight", 1))))
        self._worker = threading.Thread(target=self._run, name="modelmon-log-shipper", daemon=True)
        self._worker.start()
        # Slots left with a backlog by processes that are gone (a server scaled
        # down to fewer workers) would never drain: ship them too.
        self._adopter = threading.Thread(
            target=self._ship_orphaned_slots, args=(root, spool_options),
            name="modelmon-log-adopter", daemon=True,
        )
        self._adopter.start()

    @classmethod
    def from_config(cls, section: Mapping[str, Any], **overrides: Any) -> LogShipper:
        """A shipper from the ``logs:`` section of the modelmon config file."""
        from modelmon.exporters.logs.config import shipper_options

        return cls(**{**shipper_options(section), **overrides})

    # -- the caller's side --------------------------------------------------

    def emit(self, event: Mapping[str, Any]) -> int | None:
        """Spool one event (a dict of ECS fields); returns its spool seq once durable,
        or None when it was filtered or dropped (counted). Never raises."""
        try:
            ev = {**self._base, **event}
            if "@timestamp" not in ev:
                ev["@timestamp"] = ecs.timestamp()
        except Exception as exc:
            return self._count_error(exc)
        return self.emit_complete(ev)

    def emit_complete(self, ev: dict[str, Any]) -> int | None:
        """``emit`` for an event that already has the base fields and ``@timestamp``
        (the logging handler builds it so); ``ev`` may be changed. Never raises."""
        try:
            data = self._serialize(ev)
            return None if data is None else self.spool.append(data)
        except SpoolFull:
            return None  # counted by the spool as dropped{block_timeout}
        except Exception as exc:
            return self._count_error(exc)

    def _serialize(self, ev: dict[str, Any]) -> bytes | None:
        """Correlation id, processors, JSON: the document as spooled (None: filtered)."""
        if "trace" not in ev:
            cid = _current_correlation()
            if cid is not None:
                ev["trace"] = {"id": cid}
        for name, processor in self._processors:
            try:
                out = processor(ev)
            except Exception:
                self._processor_failures.labels(name).inc()
                continue
            if out is None:
                return None
            ev = out
        try:
            # Without OPT_NON_STR_KEYS orjson is twice as fast; the options
            # are only needed for the rare event with non-str keys or numpy.
            return _dumps(ev)
        except TypeError:
            return _dumps(ev, default=_json_default, option=_JSON_OPTIONS)

    def _count_error(self, exc: Exception) -> None:
        log.debug("log event dropped: %s", exc)
        try:
            self.spool.count_drop("error")
        except Exception:
            pass

    def handler(self, level: int = logging.NOTSET) -> logging.Handler:
        """A stdlib ``logging.Handler`` that ships every record as an ECS event."""
        from modelmon.exporters.logs.handler import ShipperHandler

        return ShipperHandler(self, level)

    # -- delivery -----------------------------------------------------------

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every pending event, earlier processes' included, is
        delivered or dead-lettered; False on timeout."""
        deadline = time.monotonic() + timeout
        self._adopter.join(timeout)
        if self._adopter.is_alive() or not self.spool.flush_buffer(
                max(0.0, deadline - time.monotonic())):
            return False
        with self._idle:
            while self.spool.stats().pending > 0:
                left = deadline - time.monotonic()
                if left <= 0 or not self._worker.is_alive():
                    return False
                self._idle.wait(min(left, 0.1))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Ship what can be shipped within ``timeout``, then stop; the rest stays
        in the spool for the next start."""
        if self._stop.is_set():
            return
        self.flush(timeout)
        self._stop.set()
        # One deadline for the three: a sink that hangs without a timeout of its
        # own holds close() for ~30 s at most, then the spool keeps the rest.
        deadline = time.monotonic() + max(timeout, 1.0) + 30
        self._worker.join(timeout=max(0.0, deadline - time.monotonic()))
        self._adopter.join(timeout=max(0.0, deadline - time.monotonic()))
        self._sender.stop(timeout=max(0.0, deadline - time.monotonic()))
        try:
            self._registry.unregister(self._collector)
        except KeyError:
            pass
        try:
            self._sink.close()
        finally:
            self.spool.close()

    def __enter__(self) -> LogShipper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        # Pipelined: up to the sink's ``max_in_flight`` batches are being sent (on
        # sender threads) while this thread settles finished ones in the spool and
        # reads the next, so the destination is never idle waiting for us.
        # Batches are settled in the order they were sent; after a batch with
        # items to retry, everything in flight is settled, the worker backs off
        # and reads again from the oldest pending record.
        depth = max(1, int(getattr(self._sink, "max_in_flight", 1)))
        sender = self._sender
        in_flight: collections.deque[tuple[ItemBatch, _Pending]] = collections.deque()
        spool = self.spool
        attempt = 0
        while True:
            stopping = self._stop.is_set()
            if not stopping and len(in_flight) < depth:
                try:
                    rows = spool.peek_payloads(
                        self._batch_size, max_bytes=self._batch_bytes,
                        after_seq=in_flight[-1][0].rows[-1][0] if in_flight else 0,
                    )
                except Exception:  # the worker must outlive a bad read
                    log.exception("log spool read failed; retrying")
                    rows = []
                    if not in_flight:
                        self._stop.wait(1.0)
                if rows:
                    items = ItemBatch(spool.id + "-", rows)
                    in_flight.append((items, sender.submit(items)))
                    continue
            if not in_flight:
                if stopping:
                    return
                with self._idle:
                    self._idle.notify_all()
                spool.wait(0.2)
                continue
            result = in_flight.popleft()[1].result()
            self._settle(spool, result)
            if result.retry:
                while in_flight:  # their retries and Retry-After count too
                    later = in_flight.popleft()[1].result()
                    self._settle(spool, later)
                    result.merge(later)
                attempt += 1
                self._back_off(result, attempt)
            else:
                attempt = 0

    def _ship_orphaned_slots(self, root: Path, options: Mapping[str, Any]) -> None:
        """Ship the backlog of every unlocked slot under ``root`` (left by a
        process that is gone) through our sink, one batch at a time.

        Each event is sent with the id it was spooled with (the orphan's spool
        id and seq), so one that the dead process had sent but not yet
        acknowledged answers 409 (Elasticsearch) or carries the same
        ``event.id`` (Logstash, files): it is indexed once. Deliveries count in
        the orphan slot's own accounting, which stays on disk.
        """
        for path in sorted(root.glob("slot-*")):
            # A slot without a database holds nothing; it may be one that a
            # starting process has just made and is about to lock.
            if path == self.spool.path or self._stop.is_set() or not (
                    path / "spool.db").exists():
                continue
            try:
                orphan = Spool(path, **options)
            except SpoolLocked:
                continue  # a live process owns it
            except Exception:
                log.exception("cannot open orphaned log spool %s; its events stay there", path)
                continue
            try:
                shipped = self._drain(orphan)
            except Exception:
                log.exception("shipping orphaned log spool %s stopped; the rest stays there",
                              path)
            else:
                if shipped:
                    log.info("shipped %d log events that %s held", shipped, path)
            finally:
                orphan.close()

    def _drain(self, spool: Spool) -> int:
        """Ship ``spool`` until it is empty or the shipper stops; returns how many
        events were delivered or dead-lettered."""
        prefix = spool.id + "-"
        attempt = done = 0
        while not self._stop.is_set():
            try:
                rows = spool.peek_payloads(self._batch_size, max_bytes=self._batch_bytes)
                if not rows:
                    break
            except Exception:  # as in the worker: retry, never give the slot up
                log.exception("orphaned log spool %s: read failed; retrying", spool.path)
                self._stop.wait(1.0)
                continue
            result = self._sender.submit(ItemBatch(prefix, rows)).result()
            self._settle(spool, result)
            done += len(result.delivered) + sum(map(len, result.dead.values()))
            if result.retry:
                attempt += 1
                self._back_off(result, attempt)
            else:
                attempt = 0
        return done

    def _settle(self, spool: Spool, result: SendResult) -> None:
        self._bulk_duration.observe(result.duration)
        self._bulk_requests.labels(self.sink_name, result.result).inc()
        try:
            spool.ack(result.delivered)
            for reason, seqs in result.dead.items():
                spool.dead_letter(seqs, reason)
        except Exception:
            log.exception("log spool update failed; the batch will be sent again")

    def _back_off(self, result: SendResult, attempt: int) -> None:
        with self._retried_lock:  # the worker and the adopter both count
            self.retried += len(result.retry)
        # Full jitter (AWS architecture blog): uniform in [0, min(cap, base*2^n)].
        delay = random.uniform(
            0, min(self._backoff_max, self._backoff_initial * 2 ** min(attempt, 30))
        )
        if result.retry_after is not None:
            # The server knows when it can take more: wait at least that long
            # (bounded, against a nonsense header).
            delay = max(delay, min(result.retry_after, _MAX_RETRY_AFTER))
        self._stop.wait(delay)


class _Pending:
    """The result of one send, once the sender thread has it."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._result: SendResult | None = None

    def set(self, result: SendResult) -> None:
        self._result = result
        self._done.set()

    def result(self) -> SendResult:
        self._done.wait()
        assert self._result is not None
        return self._result


class _Sender:
    """``threads`` threads running ``sink.send``, one batch each at a time."""

    def __init__(self, sink: Sink, threads: int = 1) -> None:
        self._sink = sink
        self._queue: queue.SimpleQueue[tuple[Sequence[Item], _Pending] | None] = (
            queue.SimpleQueue())
        self._threads = [
            threading.Thread(target=self._run, name="modelmon-log-sender", daemon=True)
            for _ in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, items: Sequence[Item]) -> _Pending:
        pending = _Pending()
        self._queue.put((items, pending))
        return pending

    def stop(self, timeout: float | None = None) -> None:
        """Let the threads finish their sends; give up on one that hangs after
        ``timeout`` (a sink without a timeout of its own: the thread is a daemon)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        name = getattr(self._sink, "name", type(self._sink).__name__)
        while (job := self._queue.get()) is not None:
            items, pending = job
            started = time.perf_counter()
            try:
                result = self._sink.send(items)
            except Exception:
                log.exception("log sink %s failed; the batch is retried", name)
                result = SendResult.all_retry(items, "error")
            result.duration = time.perf_counter() - started
            pending.set(result)


def _open_slot(root: Path, **options: Any) -> Spool:
    for n in range(MAX_SLOTS):
        try:
            return Spool(root / f"slot-{n}", **options)
        except SpoolLocked:
            continue
    raise SpoolLocked(
        f"all {MAX_SLOTS} spool slots under {root} are in use; give each group of "
        "processes its own spool_dir"
    )


def _make_sink(name: str, options: dict[str, Any], spool_dir: str | Path | None) -> Sink:
    from modelmon.exporters.logs.registry import sink_factories

    factories = sink_factories()
    factory = factories.get(name)
    if factory is None:
        raise ValueError(
            f"sink: unknown sink {name!r}; known sinks are {', '.join(sorted(factories))} "
            "(a sink plugin may be switched off by MODELMON_PLUGINS)"
        )
    if name == "file" and "path" not in options:
        root = Path(spool_dir) if spool_dir is not None else default_spool_dir()
        options = {**options, "path": root / "events.jsonl"}
    return factory(options)  # type: ignore[no-any-return]


def _plugin_processors(config: Mapping[str, Any]) -> list[tuple[str, Processor]]:
    from modelmon.exporters.logs.registry import log_processors

    return log_processors(config)
