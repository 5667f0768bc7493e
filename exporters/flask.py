"""Flask integration: ``instrument_app(app, mon)`` adds /metrics and per-endpoint metrics.

Per request it reads the clock twice and updates cached label children; the
endpoint label is the route template (``/predict/<model>``), never the raw
path, so cardinality stays bounded. POST/PUT bodies and their responses feed
``modelmon_payload_bytes``. Under gunicorn with several workers, set
``PROMETHEUS_MULTIPROC_DIR`` (``modelmon.exporters.gunicorn_config`` does)
and /metrics aggregates all workers.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, g, request
from modelmon.exporters.monitor import ModelMonitor
from modelmon.exporters.scrape import multiprocess_dir, render, scrape_registry_factory

from modelmon.collectors import PluginCollectors

UNMATCHED = "__unmatched__"
_perf_counter = time.perf_counter


def instrument_app(
    app: Flask,
    mon: ModelMonitor,
    *,
    metrics_path: str | None = "/metrics",
    plugins: bool = True,
    exclude_paths: tuple[str, ...] = ("/metrics", "/healthz"),
) -> Flask:
    """Instrument ``app``: per-endpoint request metrics and a ``metrics_path`` route.

    ``mon`` gives the registry, prefix and the model/version labels. With
    ``plugins`` the plugin collectors are served on the same /metrics, each
    behind its error boundary.
    """
    m = mon.metrics
    requests_total = m.get("http_requests_total")
    duration = m.get("http_request_duration_seconds")
    model, version = mon.model, mon.version
    request_bytes, response_bytes = mon._request_bytes, mon._response_bytes
    counters: dict[tuple[str, str, int], Any] = {}
    histograms: dict[tuple[str, str], Any] = {}
    skip = frozenset(exclude_paths)

    collectors: tuple[object, ...] = ()
    if plugins:
        plugin_collectors = PluginCollectors(prefix=m.prefix)
        collectors = (plugin_collectors,)
        if multiprocess_dir() is None:
            m.registry.register(plugin_collectors)  # type: ignore[arg-type]
    scrape_registry = scrape_registry_factory(m.registry, collectors)

    def before() -> None:
        g._modelmon_start = _perf_counter()

    def after(response: Response) -> Response:
        start = g.pop("_modelmon_start", None)
        if start is None:
            return response
        elapsed = _perf_counter() - start
        if request.path in skip:
            return response
        rule = request.url_rule
        endpoint = rule.rule if rule is not None else UNMATCHED
        method = request.method
        status = response.status_code
        key = (endpoint, method, status)
        counter = counters.get(key)
        if counter is None:
            counter = counters[key] = requests_total.labels(
                model, version, endpoint, method, str(status)
            )
        hist = histograms.get((endpoint, method))
        if hist is None:
            hist = histograms[(endpoint, method)] = duration.labels(
                model, version, endpoint, method
            )
        counter.inc()
        hist.observe(elapsed)
        if method == "POST" or method == "PUT":
            length = request.content_length
            if length is not None:
                request_bytes.observe(length)
            if not response.is_streamed:
                out = response.content_length
                if out is not None:
                    response_bytes.observe(out)
        return response

    app.before_request(before)
    app.after_request(after)

    if metrics_path:

        def metrics() -> Response:
            body, content_type = render(scrape_registry(), request.headers.get("Accept"))
            return Response(body, content_type=content_type)

        app.add_url_rule(metrics_path, "modelmon_metrics", metrics, methods=["GET"])
    return app
