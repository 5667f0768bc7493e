"""``modelmon serve``: the exporter service for model servers that cannot import modelmon.

Routes: ``GET /metrics`` (Prometheus exposition), ``POST /ingest`` (events, see
``modelmon.exporters.service.ingest``), ``GET /healthz`` (always open, for probes).
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from werkzeug.exceptions import RequestEntityTooLarge

from modelmon.collectors import register_plugin_collectors
from modelmon.config import ServeConfig
from modelmon.exporters.service.ingest import (
    EventParser,
    event_kind,
    parse_body,
    parse_inference,
    read_limited,
    validate_batch,
)
from modelmon.exporters.service.monitor import ModelMonitor
from modelmon.exporters.service.scrape import render
from modelmon.exporters.service.web_auth import WebGuard
from modelmon.exporters.service.web_config import WebConfig, load_web_config
from modelmon.labels import OTHER
from modelmon.metrics import MetricSet, metric_set

if TYPE_CHECKING:
    from modelmon.exporters.logs import LogShipper

log = logging.getLogger(__name__)


class MonitorDirectory:
    """One ModelMonitor per (model, version) seen on /ingest, with capped model names."""

    def __init__(
        self, registry: CollectorRegistry, config: ServeConfig, logs: LogShipper | None = None
    ) -> None:
        self._registry = registry
        self._config = config
        self.logs = logs
        self.metrics: MetricSet = metric_set(
            registry, config.prefix, config.buckets, config.max_label_values, config.max_series
        )
        self._monitors: dict[tuple[str, str], ModelMonitor] = {}
        self._lock = threading.Lock()

    def get(self, model: str, version: str, framework: str = "unknown") -> ModelMonitor:
        limiter = self.metrics.limiter
        # Both labels come from the wire: cap them so a client cannot create
        # unbounded series.
        model = limiter.limit("model", "model", model)
        version = limiter.limit("version", "version", version)
        key = (model, version)
        mon = self._monitors.get(key)
        if mon is None:
            with self._lock:
                mon = self._monitors.get(key)
                if mon is None and key != (OTHER, OTHER) and self.metrics.budget_spent():
                    # The per-label caps allow 200 x 200 pairs; the series
                    # budget does not: new pairs share one monitor, and the
                    # directory (memory) stops growing with them.
                    self.metrics.count_budget_exceeded("model_info")
                    key = (model, version) = (OTHER, OTHER)
                    mon = self._monitors.get(key)
                if mon is None:
                    quality = self._config.quality.get(model)
                    mon = ModelMonitor(
                        model, version, framework, registry=self._registry,
                        prefix=self._config.prefix, buckets=self._config.buckets,
                        max_label_values=self._config.max_label_values,
                        max_series=self._config.max_series,
                        profile=quality.profile if quality else None,
                        quality_options=quality.for_version(model, version) if quality else None,
                        logs=self.logs,
                    )
                    self._monitors[key] = mon
        return mon


    def close(self) -> None:
        """Close every monitor's quality tracker: queued predictions reach the store."""
        with self._lock:
            monitors = list(self._monitors.values())
        for mon in monitors:
            try:
                mon.close()
            except Exception:  # one store failing to close must not keep the others open
                log.exception("closing the quality tracker of %s %s failed", mon.model, mon.version)


def _close_at_exit(directory: MonitorDirectory) -> None:
    """Close ``directory`` when the process exits (gunicorn's worker exits via
    sys.exit on SIGTERM/SIGINT, which runs atexit). A weak reference: an app
    that is dropped (tests build many) is not kept alive for the exit."""
    ref = weakref.ref(directory)

    def close() -> None:
        target = ref()
        if target is not None:
            target.close()

    atexit.register(close)


def _inference_parser(directory: MonitorDirectory) -> EventParser:
    def parse(event: Mapping[str, Any]) -> Callable[[], None]:
        ev = parse_inference(event)

        def apply() -> None:
            mon = directory.get(ev.model, ev.version, ev.framework)
            mon.observe_inference(
                ev.latency_seconds, ev.outcome, batch_size=ev.batch_size, exception=ev.exception,
                request_bytes=ev.request_bytes, response_bytes=ev.response_bytes,
            )
            if directory.logs is not None:
                extra: dict[str, Any] = {"error": {"type": ev.exception}} if ev.exception else {}
                mon.log.prediction(ev.latency_seconds, outcome=ev.outcome,
                                   batch_size=ev.batch_size, **extra)

        return apply

    return parse


def _quality_parsers(directory: MonitorDirectory) -> dict[str, EventParser]:
    """prediction / feedback events, when the quality exporter is available."""
    try:
        from modelmon.exporters.quality import ingest_parsers
    except ImportError:
        return {}
    return dict(ingest_parsers(directory.get))


def _log_shipper(config: ServeConfig, registry: CollectorRegistry) -> LogShipper | None:
    """The LogShipper of the config's ``logs:`` section, or None without one."""
    section = config.raw.get("logs")
    if section is None:
        return None
    from modelmon.exporters.logs import LogShipper
    from modelmon.exporters.logs.config import shipper_options

    shipper = LogShipper(**shipper_options(section, config.base_dir), registry=registry,
                         prefix=config.prefix)
    # Ship what is pending before the worker exits (gunicorn exits via sys.exit).
    atexit.register(shipper.close)
    return shipper


def _json_error(status: int, errors: list[str]) -> Response:
    return Response(
        json.dumps({"status": "error", "errors": errors}) + "\n",
        status=status, mimetype="application/json",
    )


def create_app(
    config: ServeConfig | None = None,
    registry: CollectorRegistry | None = None,
    web_config: WebConfig | None = None,
) -> Flask:
    """The Flask app of ``modelmon serve``; run it on a production WSGI server."""
    config = config or ServeConfig()
    if registry is None:
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    web = web_config if web_config is not None else load_web_config(config.web_config_file)
    directory = MonitorDirectory(registry, config, _log_shipper(config, registry))
    # Registered after the log shipper's: atexit runs it first, so what the
    # quality trackers flush can still be shipped.
    _close_at_exit(directory)
    register_plugin_collectors(registry, config.plugins, config.prefix)
    parsers: dict[str, EventParser] = {"inference": _inference_parser(directory)}
    parsers.update(_quality_parsers(directory))
    ingest_events = directory.metrics.counter("ingest_events_total")

    app = Flask("modelmon.serve")
    app.config["MAX_CONTENT_LENGTH"] = config.ingest.max_body_bytes
    app.extensions["modelmon"] = {"directory": directory, "registry": registry, "parsers": parsers}

    # Rate limit, response headers and basic auth of the web config, in front
    # of Flask so that a refused request costs no routing.
    app.wsgi_app = WebGuard(app.wsgi_app, web)  # type: ignore[method-assign]

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.get("/metrics")
    def metrics() -> Response:
        body, content_type = render(registry, request.headers.get("Accept"))
        return Response(body, content_type=content_type)

    if config.raw.get("bundles") is not None:  # edge configuration bundles, per device group
        from modelmon.exporters.edge.bundles.server import BundleFiles, bundles_dir

        bundles = BundleFiles(bundles_dir(config.raw["bundles"], config.base_dir))

        @app.get("/bundles/<name>")
        def bundle(name: str) -> Response:
            # Flask answers HEAD from this view and drops the body itself.
            status, headers, body = bundles.respond(name, request.headers.get("If-None-Match", ""))
            return Response(body, status=int(status.split()[0]), headers=headers)

    @app.post("/ingest")
    def ingest() -> Response:
        max_bytes = config.ingest.max_body_bytes
        too_large = _json_error(413, [
            f"body: exceeds ingest.max_body_bytes={max_bytes} bytes; send smaller batches or "
            "raise the limit"
        ])
        length = request.content_length
        if length is not None and length > max_bytes:
            return too_large
        if not request.is_json:
            return _json_error(415, ["Content-Type: expected application/json"])
        try:
            # The bytes actually read are counted: a chunked body has no
            # Content-Length to check up front.
            data = read_limited(request.stream.read, max_bytes)
        except RequestEntityTooLarge:
            data = None
        if data is None:
            return too_large
        body, problem = parse_body(data)
        if problem is not None:
            return _json_error(400, [problem])
        parsed, errors = validate_batch(body, parsers, config.ingest.max_events)
        if errors:
            for event in body if isinstance(body, list) else [body]:
                # Only known types become label values: the rest read "unknown".
                ingest_events.labels(event_kind(event, parsers), "invalid").inc()
            return _json_error(400, errors)
        for kind, apply in parsed:
            apply()
            ingest_events.labels(kind, "accepted").inc()
        return Response(
            json.dumps({"status": "ok", "accepted": len(parsed)}) + "\n",
            mimetype="application/json",
        )

    @app.errorhandler(413)
    def too_large(_: Exception) -> Response:
        return _json_error(413, [
            f"body: exceeds ingest.max_body_bytes={config.ingest.max_body_bytes}; send smaller "
            "batches or raise the limit"
        ])

    return app
