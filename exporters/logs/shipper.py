"""LogShipper: events -> processors -> durable spool -> background worker -> sink.

The calling thread only completes the event (timestamp, service, host,
correlation id), runs the processors, serialises it and appends it to the
spool; ``emit`` returns once the event is durable per the spool's fsync mode.
Every event, log records included, is spooled as its final document, so with
the redactor on (the default) nothing unredacted reaches the disk.
The core delivery worker (``modelmon.spool.delivery``) ships batches through
the sink, which classifies every item; it retries with full-jitter exponential
backoff honouring ``Retry-After`` and dead-letters what the destination
refuses for good. A slow or dead destination never blocks the caller unless
``full_policy="block"`` was chosen. Slot claiming and the adoption of slots
that gone processes left are in ``slots``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram

from modelmon.config import ConfigError
from modelmon.exporters.logs import correlation, ecs
from modelmon.exporters.logs.metrics import ShipperCollector
from modelmon.exporters.logs.sinks import ItemBatch, SendResult, Sink
from modelmon.exporters.logs.slots import MAX_SLOTS, OrphanAdopter, open_slot
from modelmon.kpi import DEFAULT_PREFIX
from modelmon.metrics import metric_set
from modelmon.spool import SpoolFull, SpoolSettings, SpoolUnavailable
from modelmon.spool.crypto import SpoolKeyMismatch
from modelmon.spool.delivery import DeliverySettings, DeliveryWorker
from modelmon.spool.destination import Batch, SendPool

log = logging.getLogger(__name__)

__all__ = ["MAX_SLOTS", "LogShipper", "SinkDestination", "default_spool_dir"]

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_dumps = orjson.dumps
_current_correlation = correlation._current.get
Processor = Callable[[dict[str, Any]], "dict[str, Any] | None"]


def spool_dir_error(exc: OSError) -> str:
    """What to tell a user whose spool directory cannot be used: the setting and the fix."""
    return (f"logs.spool_dir: {exc}; make it a directory this user can write, or set "
            "logs.spool_dir (LogShipper(spool_dir=...)) to one")


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
        spool: SpoolSettings | None = None,
        delivery: DeliverySettings | None = None,
        registry: CollectorRegistry | None = None,
        prefix: str = DEFAULT_PREFIX,
        processors: Sequence[Processor] = (),
        plugin_processors: bool = True,
        processor_config: Mapping[str, Any] | None = None,
        log_inputs: bool = False,
        log_outputs: bool = False,
        max_payload_chars: int = 1024,
        **options: Any,
    ) -> None:
        # The spool's and the worker's settings also come one by one, as
        # keyword arguments (max_bytes=..., batch_size=...): see _settings.
        linger_given = "linger" in options or (delivery is not None and delivery.linger > 0)
        spool_settings, delivery_settings, sink_options = _settings(spool, delivery, options)
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
        destination = SinkDestination(self._sink)
        self.sink_name: str = destination.name
        root = Path(spool_dir) if spool_dir is not None else default_spool_dir()
        try:
            self.spool = open_slot(root, spool_settings)
        except SpoolUnavailable as exc:
            self._sink.close()
            raise ConfigError(spool_dir_error(exc)) from None
        except SpoolKeyMismatch as exc:
            self._sink.close()
            raise ConfigError(f"logs.spool.encryption: {exc}") from None
        self._base = ecs.base_fields(service_name, environment)
        self.base_fields = self._base  # what every event starts from (do not change it)
        self.service_name = service_name
        metrics = metric_set(registry, prefix)
        self._processor_failures = metrics.counter("log_processor_failures_total")
        for name, _ in self._processors:  # at 0 from the start, like the drop reasons
            self._processor_failures.labels(name)
        bulk = _BulkMetrics(metrics.histogram("log_bulk_request_duration_seconds"),
                            metrics.counter("log_bulk_requests_total"), self.sink_name)
        self._collector = ShipperCollector(self, prefix)
        self._registry = metrics.registry
        self._registry.register(self._collector)
        self._closed = False
        self._stop = threading.Event()
        delivery_settings = dataclasses.replace(delivery_settings,
                                                max_in_flight=destination.max_in_flight)
        sink_linger = getattr(self._sink, "linger", None)
        if not linger_given and sink_linger is not None:
            # The sink's own default (the s3 archive: fewer, larger objects).
            delivery_settings = dataclasses.replace(delivery_settings, linger=float(sink_linger))
        self.spool_settings = spool_settings
        self.delivery_settings = delivery_settings
        # Up to the sink's ``max_in_flight`` sends at once, whoever submits them.
        self._senders = SendPool(destination, destination.max_in_flight, "modelmon-log-sender")
        self._worker = DeliveryWorker(self.spool, destination, delivery_settings, observer=bulk,
                                      senders=self._senders, stop=self._stop,
                                      name="modelmon-log-shipper")
        self._worker.start()
        # Slots left with a backlog by processes that are gone (a server scaled
        # down to fewer workers) would never drain: ship them too.
        self._adopter = OrphanAdopter(root, self.spool.path, spool_settings, destination,
                                      delivery_settings, senders=self._senders, observer=bulk,
                                      stop=self._stop)
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
            self._count_error(exc)
            return None
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
            self._count_error(exc)
            return None

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

    @property
    def retried(self) -> int:
        """Events a sink answered "retry" so far (orphaned slots' included)."""
        return self._worker.retried + self._adopter.retried

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every pending event, earlier processes' included, is
        delivered or dead-lettered; False on timeout."""
        deadline = time.monotonic() + timeout
        self._adopter.join(timeout)
        if self._adopter.is_alive():
            return False
        return self._worker.flush(max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float = 5.0) -> None:
        """Ship what can be shipped within ``timeout``, then stop; the rest stays
        in the spool for the next start."""
        if self._closed:
            return
        self._closed = True
        self.flush(timeout)
        self._stop.set()
        # One deadline for the three: a sink that hangs without a timeout of its
        # own holds close() for ~30 s at most, then the spool keeps the rest.
        deadline = time.monotonic() + max(timeout, 1.0) + 30
        self._worker.stop(timeout=max(0.0, deadline - time.monotonic()))
        self._adopter.join(timeout=max(0.0, deadline - time.monotonic()))
        self._senders.stop(timeout=max(0.0, deadline - time.monotonic()))
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


class SinkDestination:
    """A log sink as the delivery worker's destination: the worker's batch of
    spool rows becomes the ``ItemBatch`` the sink classifies."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.name: str = getattr(sink, "name", type(sink).__name__)
        self.max_in_flight = max(1, int(getattr(sink, "max_in_flight", 1)))

    def send(self, batch: Batch) -> SendResult:
        return self.sink.send(ItemBatch(batch.prefix, batch.rows))


class _BulkMetrics:
    """log_bulk_request_duration_seconds and log_bulk_requests_total, per send."""

    def __init__(self, duration: Histogram, requests: Counter, sink_name: str) -> None:
        self._duration = duration.labels(sink_name)
        self._requests = requests
        self._sink_name = sink_name
        requests.labels(sink_name, "unrecorded")  # at 0 from the start, for alerts

    def settled(self, batch: Batch, result: SendResult) -> None:
        self._duration.observe(result.duration)
        self._requests.labels(self._sink_name, result.result).inc()

    def unrecorded(self, batch: Batch, exc: BaseException) -> None:
        """The spool could not record an answer (a full disk): counted as the
        result ``unrecorded``; the worker records it again later, sending nothing."""
        self._requests.labels(self._sink_name, "unrecorded").inc()


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


# LogShipper's keyword arguments for the spool's and the worker's settings
# (the names of the logs config section), and the fields they set.
_SPOOL_OPTIONS = ("max_bytes", "max_age", "full_policy", "fsync", "fsync_interval", "encryption",
                  "block_timeout")
_DELIVERY_OPTIONS = {"batch_size": "batch_records", "batch_bytes": "batch_bytes",
                     "backoff_initial": "backoff_base", "backoff_max": "backoff_cap",
                     "linger": "linger"}
_DEFAULT_DELIVERY = DeliverySettings(batch_records=1000, batch_bytes=5 * 1024 * 1024,
                                     backoff_base=0.5, backoff_cap=60.0)


def _settings(
    spool: SpoolSettings | None, delivery: DeliverySettings | None, options: dict[str, Any]
) -> tuple[SpoolSettings, DeliverySettings, dict[str, Any]]:
    """The spool's and the worker's settings, from the grouped objects and the
    single keyword arguments (which win); what is left goes to the sink."""
    spool_fields = {k: options.pop(k) for k in _SPOOL_OPTIONS if k in options}
    if isinstance(spool_fields.get("encryption"), Mapping):
        from modelmon.spool.keys import cipher_from_config

        spool_fields["encryption"] = cipher_from_config(spool_fields["encryption"],
                                                        "logs.spool.encryption")
    delivery_fields = {field: options.pop(k) for k, field in _DELIVERY_OPTIONS.items()
                       if k in options}
    batch_size = delivery_fields.get("batch_records", 1)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    return (dataclasses.replace(spool or SpoolSettings(), **spool_fields),
            dataclasses.replace(delivery or _DEFAULT_DELIVERY, **delivery_fields),
            options)
